"""Training objectives of the autoregressive family (`jaxgen.training.objective.Objective`).

* `MADEObjective`: connectivity-agnostic training (one of ``M`` masks drawn per step) and
  hidden dropout in training only; ``finalize`` reports each mask's own test NLL next to the
  ensemble's.
* `ScheduledSampling`: the history token at each position is the ground truth with
  probability ``p_truth(step)`` and the model's own sample otherwise (Bengio et al., 2015);
  ``extra`` is the step counter the schedule reads, so a resumed run continues the schedule.
"""
from __future__ import annotations

import numpy as np

from jaxgen.autoregressive.made import made_loss
from jaxgen.autoregressive.scheduled_sampling import make_scheduled_sampling_loss
from jaxgen.mcmc.run import jit
from jaxgen.training.objective import Objective
from jaxgen.training.state import merge_model, split_model


class MADEObjective(Objective):
    """``L = -(1/B) sum_b log p_m(x_b)``, ``m ~ U{0..M-1}`` per step (`made_loss`; with
    dropout, hidden units dropped in training). Evaluation uses the ensemble ``log_prob``.

    Args:
      eval_batch_size: batch size of ``finalize``'s per-mask test NLLs.
    """

    def __init__(self, eval_batch_size: int = 1000):
        self.eval_batch_size = int(eval_batch_size)

    def loss(self, model, batch, key, extra):
        loss, metrics = made_loss(model, batch, key)
        return loss, extra, metrics

    def finalize(self, model, data, key):
        """``test_nll_nats_per_mask`` ``[M]`` and their mean, for ``M > 1`` masks (nats)."""
        del key
        if model.num_masks == 1:
            return model, {}
        graphdef, params, model_state = split_model(model)
        # Compiled once here, at the top of finalize (the project's one jit wrapper).
        per_mask = jit(lambda params, model_state, batch, context:  # [B, *E] -> [M, B]
                       merge_model(graphdef, params, model_state).log_prob_per_mask(
                           batch, context))

        test = np.asarray(data.test)
        labels = getattr(data, "test_labels", None)  # a conditional data set's p(x | y)
        total = np.zeros(model.num_masks)
        for start in range(0, test.shape[0], self.eval_batch_size):
            stop = start + self.eval_batch_size
            context = None if labels is None else labels[start:stop]
            total += np.asarray(per_mask(params, model_state, test[start:stop],
                                         context)).sum(axis=1)
        nll = -total / test.shape[0]
        return model, {"test_nll_nats_per_mask": [float(v) for v in nll],
                       "test_nll_nats_mean_single_mask": float(nll.mean())}


class ScheduledSampling(Objective):
    """Scheduled sampling (`jaxgen.autoregressive.scheduled_sampling`).

    Args:
      schedule: name of the ``p_truth`` schedule (constant, linear, exponential,
        inverse_sigmoid); ``k``, ``c``, ``min_value`` its parameters.
      method: ``parallel`` (two passes, any model) or ``sequential`` (one exact scan, LSTM).
    """

    def __init__(self, schedule: str, *, method: str = "parallel", k: float = 1.0,
                 c: float = 0.0, min_value: float = 0.0):
        self.schedule, self.method = schedule, method
        self.k, self.c, self.min_value = float(k), float(c), float(min_value)
        self._loss, self._init = make_scheduled_sampling_loss(
            schedule, method=method, k=self.k, c=self.c, min_value=self.min_value)

    def init(self, model, train_data, key):
        return self._init

    def loss(self, model, batch, key, extra):
        loss, (metrics, extra) = self._loss(model, batch, key, extra)
        return loss, extra, metrics


__all__ = ["MADEObjective", "ScheduledSampling"]
