"""Autoregressive models: ``log p(x) = sum_i log p(x_i | x_{<i})`` in raster order.

Every model has ``event_shape``, ``log_prob(x) -> [B]`` (int levels in; real values for
MADE and the causal transformer with a continuous head, `continuous_heads`), ``sample(key, n)``
(fast where a cache exists) and ``sample_naive(key, n)`` (one full pass per position), and
``params_from_inputs(encode(x))``, the teacher-forced pass whose Jacobian proves the
autoregressive property.

Against exposure bias (training on true histories, generating from one's own):
`scheduled_sampling` (losses and schedules), `reinforce` (sequence-level fine-tuning) and
`exposure_bias` (measurements).
"""
from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.continuous_heads import (CONTINUOUS_HEADS, GaussianHead,
                                                    GaussianMixtureHead, LogisticMixtureHead)
from jaxgen.autoregressive.exposure_bias import (ContinuationNLL, complete,
                                                 continuation_log_prob, continuation_nll,
                                                 own_history_nll)
from jaxgen.autoregressive.gated_pixelcnn import GatedPixelCNN
from jaxgen.autoregressive.heads import (BernoulliHead, CategoricalHead,
                                         DiscretizedLogisticMixtureHead, make_head)
from jaxgen.autoregressive.made import MADE, connectivity_agnostic_loss
from jaxgen.autoregressive.nade import NADE
from jaxgen.autoregressive.pixelcnn import PixelCNN
from jaxgen.autoregressive.pixelrnn import DiagonalBiLSTM, RowLSTM
from jaxgen.autoregressive.reinforce import (REINFORCE_BASELINES, ReinforceState,
                                             init_reinforce_state, make_reinforce_step,
                                             reinforce_baseline)
from jaxgen.autoregressive.rnn import LSTMModel
from jaxgen.autoregressive.scheduled_sampling import (
    METHODS, SAMPLING_SCHEDULES, MixedHistory, constant_schedule, exponential_schedule,
    inverse_sigmoid_schedule, linear_schedule, make_schedule, make_scheduled_sampling_loss,
    parallel_scheduled_sampling_log_prob, scheduled_sampling_log_prob, scheduled_sampling_loss,
    sequential_scheduled_sampling_log_prob)
from jaxgen.autoregressive.transformer import CausalTransformer

__all__ = ["AutoregressiveModel", "BernoulliHead", "CONTINUOUS_HEADS", "CategoricalHead",
           "CausalTransformer", "ContinuationNLL", "GaussianHead", "GaussianMixtureHead",
           "LogisticMixtureHead", "DiagonalBiLSTM", "DiscretizedLogisticMixtureHead",
           "GatedPixelCNN", "LSTMModel", "MADE", "METHODS", "MixedHistory", "NADE", "PixelCNN",
           "REINFORCE_BASELINES", "ReinforceState", "RowLSTM", "SAMPLING_SCHEDULES",
           "complete", "connectivity_agnostic_loss", "constant_schedule",
           "continuation_log_prob", "continuation_nll", "exponential_schedule",
           "init_reinforce_state", "inverse_sigmoid_schedule", "linear_schedule", "make_head",
           "make_reinforce_step", "make_schedule", "make_scheduled_sampling_loss",
           "own_history_nll", "parallel_scheduled_sampling_log_prob", "reinforce_baseline",
           "scheduled_sampling_log_prob", "scheduled_sampling_loss",
           "sequential_scheduled_sampling_log_prob"]
