"""Measuring exposure bias: how a model behaves after its own prefixes vs after real ones.

A teacher-forced model only ever sees real histories ``x_{<i} ~ p_data``; at generation
time it conditions on its own, ``s_{<i} ~ p_model``. Without an oracle for ``p_data``'s
conditionals the error on own prefixes cannot be measured directly, but the *shift* can.
With ``D`` positions (raster order), a prefix length ``L`` and ``M = D - L``,
`continuation_nll` returns three averages in nats per continuation position:

* ``data``: real continuations after real prefixes (cross-entropy, teacher forcing)

      E_{x ~ data}[ -(1/M) sum_{i >= L} log p(x_i | x_{<i}) ];

* ``own_after_data_prefix``: the model's own continuations after real prefixes (its
  continuation entropy where it was trained), ``s_{>=L} ~ p(. | x_{<L})``:

      E_{x ~ data} E_{s}[ -(1/M) sum_{i >= L} log p(s_i | x_{<L}, s_{L:i}) ];

* ``own_after_own_prefix``: the same after its own prefixes, ``s ~ p`` (plain samples):

      E_{s ~ p}[ -(1/M) sum_{i >= L} log p(s_i | s_{<i}) ].

For ``p = p_data`` all three equal ``H(X_{>=L} | X_{<L}) / M``. ``exposure_gap =
own_after_own_prefix - own_after_data_prefix`` isolates the prefix's source (the
continuations are the model's in both): it is how much the model's continuation behaviour
changes when it conditions on its own prefixes (positive: it is less sure of itself there,
e.g. lost after an atypical prefix; negative: more sure, e.g. collapsing onto a mode).
``data - own_after_data_prefix`` is the calibration gap on real prefixes.

`own_history_nll` is the second, local measure: the NLL of the *true* ``x`` when each
history token is, with probability ``replace_prob``, replaced by the model's own one-step
sample from its conditional there (the parallel scheduled-sampling pass,
`jaxgen.autoregressive.scheduled_sampling`). Its rise over the teacher-forced NLL is how
much the model's predictions of the truth degrade when its own errors enter the history.
Caveat for both: a model that ignores its history scores "no exposure bias"; read them
next to the test NLL.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.made import MADE
from jaxgen.autoregressive.scheduled_sampling import parallel_scheduled_sampling_log_prob
from jaxgen.types import Array, PRNGKey


def _check_prefix_len(model: AutoregressiveModel, prefix_len: int) -> int:
    if not 0 <= int(prefix_len) < model.num_dims:
        raise ValueError(f"prefix_len must be in [0, D) = [0, {model.num_dims}), got "
                         f"{prefix_len}")
    return int(prefix_len)


def complete(model: AutoregressiveModel, key: PRNGKey, x: Array, prefix_len: int) -> Array:
    """Keeps the first ``prefix_len`` positions of ``x`` *in the model's generation order*
    (raster order for every model but a MADE with ``ordering="random"``, whose order is mask
    0's) and samples the rest from the model's conditional given them.

    ``s_{<L} = x_{<L}``, then ``s_i ~ p(. | s_{<i})`` for ``i = L .. D-1`` (``i`` counting
    generation steps), one full ``params_from_inputs`` pass per position
    (`AutoregressiveModel.fill_naive`; works for every model; a MADE ensemble first draws its
    member from the posterior given the prefix).
    Position ``i`` uses the key ``split(key, D)[i]``, as `AutoregressiveModel.sample_naive`
    does: ``prefix_len = 0`` reproduces ``sample_naive(key, B)``.

    Args:
      model: any `AutoregressiveModel`.
      key: PRNG key.
      x: ``[B, *event_shape]`` int levels (only the prefix is read).
      prefix_len: ``L`` in ``[0, D)`` (static).

    Returns:
      ``[B, *event_shape]`` int32.
    """
    x = model.check_input(x)
    length = _check_prefix_len(model, prefix_len)
    return model.fill_naive(key, x.reshape(x.shape[0], model.num_dims), length).reshape(x.shape)


def continuation_log_prob(model: AutoregressiveModel, x: Array, prefix_len: int) -> Array:
    """``log p(x_{>=L} | x_{<L}) = sum_{i >= L} log p(x_i | x_{<i})`` (``i`` in generation
    order): ``[B, *event_shape]`` -> ``[B]`` nats.

    For a MADE ensemble (``num_masks > 1``) the conditional of the mixture,
    ``log p(x) - log p(x_{<L})`` with ``p(x_{<L}) = mean_m p_m(x_{<L})``: what `complete`
    samples (it needs the masks to share one ordering, as `complete` does).
    """
    x = model.check_input(x)
    length = _check_prefix_len(model, prefix_len)
    if isinstance(model, MADE) and model.num_masks > 1:
        if 0 < length and not model.shares_one_ordering:
            raise ValueError(f"prefix_len={length}: this MADE ensemble's masks have different "
                             "orderings, so its conditional given a prefix is intractable; "
                             "use one mask or ordering='natural'")
        prefix = model._prefix_log_prob_per_mask(x.reshape(x.shape[0], model.num_dims),
                                                 length)  # [M, B]
        log_prefix = jax.nn.logsumexp(prefix, axis=0) - jnp.log(model.num_masks)
        return model.log_prob(x) - log_prefix
    params = model.params_from_inputs(model.encode(x))  # [B, *E, P]
    return jnp.sum(model.log_prob_per_dim(params, x)[:, length:], axis=-1)


class ContinuationNLL(NamedTuple):
    """Nats per continuation position (see the module docstring).

    Attributes:
      data: real continuations after real prefixes.
      own_after_data_prefix: the model's continuations after real prefixes.
      own_after_own_prefix: the model's continuations after its own prefixes.
    """

    data: Array
    own_after_data_prefix: Array
    own_after_own_prefix: Array

    @property
    def exposure_gap(self) -> Array:
        """``own_after_own_prefix - own_after_data_prefix``."""
        return self.own_after_own_prefix - self.own_after_data_prefix


def continuation_nll(model: AutoregressiveModel, key: PRNGKey, data: Array, prefix_len: int,
                     num_samples: int | None = None) -> ContinuationNLL:
    """Continuation NLLs after real vs own prefixes (module docstring), scalars.

    Args:
      model: any `AutoregressiveModel`.
      key: PRNG key (split into the completion and the sampling keys).
      data: ``[B, *event_shape]`` int levels (e.g. the test split).
      prefix_len: ``L`` in ``[0, D)``.
      num_samples: model samples for ``own_after_own_prefix`` (default ``B``).
    """
    data = model.check_input(data)
    length = _check_prefix_len(model, prefix_len)
    complete_key, sample_key = jax.random.split(key)
    n = data.shape[0] if num_samples is None else int(num_samples)
    m = model.num_dims - length
    completed = jax.lax.stop_gradient(complete(model, complete_key, data, length))
    samples = jax.lax.stop_gradient(model.sample(sample_key, n))
    return ContinuationNLL(
        data=-jnp.mean(continuation_log_prob(model, data, length)) / m,
        own_after_data_prefix=-jnp.mean(continuation_log_prob(model, completed, length)) / m,
        own_after_own_prefix=-jnp.mean(continuation_log_prob(model, samples, length)) / m)


def own_history_nll(model: AutoregressiveModel, key: PRNGKey, x: Array,
                    replace_prob) -> Array:
    """Nats per dimension of the true ``x`` when a ``replace_prob`` share of the history is
    the model's own one-step samples: ``-(1/(B D)) sum_b log p~(x_b)`` with
    ``p_truth = 1 - replace_prob`` (``replace_prob = 0``: the teacher-forced NLL per dim)."""
    if isinstance(replace_prob, (int, float)) and not 0.0 <= replace_prob <= 1.0:
        raise ValueError(f"replace_prob must be a probability in [0, 1], got {replace_prob}")
    log_prob, _ = parallel_scheduled_sampling_log_prob(model, x, key, 1.0 - replace_prob)
    return -jnp.mean(log_prob) / model.num_dims


__all__ = ["ContinuationNLL", "complete", "continuation_log_prob", "continuation_nll",
           "own_history_nll"]
