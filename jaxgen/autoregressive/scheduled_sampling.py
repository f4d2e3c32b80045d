"""Scheduled sampling against exposure bias (Bengio et al., 2015; Duckworth et al., 2019).

Teacher forcing trains ``log p(x) = sum_i log p(x_i | x_{<i})`` with the *true* history
``x_{<i}`` as input, but generation feeds the model its *own* samples. Scheduled sampling
closes that gap during training: the history token at position ``j`` is the ground truth
``x_j`` with probability ``p_truth`` and the model's own sample ``x~_j`` otherwise, while the
targets stay the true ``x_i``:

    loss = -(1/B) sum_b sum_i log p(x_i | h_{<i}),   h_j = x_j  w.p. p_truth,  else x~_j.

``p_truth`` decays over training with a schedule (`SAMPLING_SCHEDULES`, paper's notation,
step ``i``):

* ``constant``:        ``p = k``
* ``linear``:          ``p = max(min_value, k - c i)``
* ``exponential``:     ``p = max(min_value, k^i)``,                ``0 < k <= 1``
* ``inverse_sigmoid``: ``p = max(min_value, k / (k + exp(i / k)))``, ``k >= 1``

Two ways to get ``x~``:

* **Parallel** (any `AutoregressiveModel`; Duckworth et al. 2019): a teacher-forced pass
  gives every conditional ``p(. | x_{<j})`` at once; ``x~_j`` is drawn from it (no gradient:
  the draw is discrete and the pass is under ``stop_gradient``); the mixed history goes
  through a second pass, ``params_from_inputs(encode(h))``, and the head scores the *true*
  ``x`` under those parameters. One round of this is the first step of the exact sequential
  procedure (each ``x~_j`` conditions on the true, not the mixed, history).
* **Sequential** (`LSTMModel`; Bengio et al. 2015): one ``lax.scan`` whose input at step
  ``t`` is ``x_{t-1}`` with probability ``p_truth``, else a sample from the model's own
  conditional at ``t - 1`` given the mixed history so far (gradients flow through the
  recurrent state, not through the discrete draws).

`scheduled_sampling_loss` has the training loop's stateful loss signature
(``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))``, see
`jaxgen.training.steps`); its ``extra`` is the step counter the schedule reads, so resumed
runs replay the schedule. `make_scheduled_sampling_loss` builds it with its ``extra_init``.
"""
from __future__ import annotations

import functools
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.rnn import LSTMModel
from jaxgen.types import Array, PRNGKey

SAMPLING_SCHEDULES = ("constant", "linear", "exponential", "inverse_sigmoid")
METHODS = ("parallel", "sequential")


# ------------------------------------------------------------------------------------------
# Schedules: step -> probability of feeding the ground truth. Pure jnp (step may be traced).


def constant_schedule(step: Array, *, k: float = 1.0) -> Array:
    """``p = k`` at every step (``k = 1``: teacher forcing; ``k = 0``: free running)."""
    return jnp.full(jnp.shape(step), k, jnp.float32)


def linear_schedule(step: Array, *, k: float = 1.0, c: float = 0.0,
                    min_value: float = 0.0) -> Array:
    """``p_i = max(min_value, k - c i)`` (Bengio et al. 2015, linear decay)."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.clip(jnp.maximum(min_value, k - c * step), 0.0, 1.0)


def exponential_schedule(step: Array, *, k: float, min_value: float = 0.0) -> Array:
    """``p_i = max(min_value, k^i)`` with ``0 < k <= 1`` (exponential decay)."""
    step = jnp.asarray(step, jnp.float32)
    return jnp.clip(jnp.maximum(min_value, jnp.power(jnp.float32(k), step)), 0.0, 1.0)


def inverse_sigmoid_schedule(step: Array, *, k: float, min_value: float = 0.0) -> Array:
    """``p_i = max(min_value, k / (k + exp(i / k)))`` with ``k >= 1`` (inverse sigmoid decay;
    ``p_0 = k / (k + 1)``, half-way at ``i = k log k``)."""
    step = jnp.asarray(step, jnp.float32)
    p = k / (k + jnp.exp(step / k))  # exp overflows to inf for huge i: p -> 0, no NaN
    return jnp.clip(jnp.maximum(min_value, p), 0.0, 1.0)


def make_schedule(name: str, *, k: float = 1.0, c: float = 0.0,
                  min_value: float = 0.0) -> Callable[[Array], Array]:
    """``step -> p_truth`` for schedule ``name`` in `SAMPLING_SCHEDULES` (parameters as in
    the paper).

    Raises:
      ValueError: unknown ``name`` (the message lists `SAMPLING_SCHEDULES`), or a parameter
        outside its schedule's range.
    """
    if name not in SAMPLING_SCHEDULES:
        raise ValueError(f"scheduled sampling schedule must be one of {SAMPLING_SCHEDULES}, "
                         f"got {name!r}")
    k, c, min_value = float(k), float(c), float(min_value)
    if not 0.0 <= min_value <= 1.0:
        raise ValueError(f"scheduled sampling min_value must be in [0, 1], got {min_value}")
    if name == "constant":
        if not 0.0 <= k <= 1.0:
            raise ValueError(f"the constant schedule needs 0 <= k <= 1, got k={k}")
        return functools.partial(constant_schedule, k=k)
    if name == "linear":
        if c < 0.0:
            raise ValueError(f"the linear schedule needs a slope c >= 0, got c={c}")
        return functools.partial(linear_schedule, k=k, c=c, min_value=min_value)
    if name == "exponential":
        if not 0.0 < k <= 1.0:
            raise ValueError(f"the exponential schedule needs 0 < k <= 1, got k={k}")
        return functools.partial(exponential_schedule, k=k, min_value=min_value)
    if k < 1.0:
        raise ValueError(f"the inverse_sigmoid schedule needs k >= 1, got k={k}")
    return functools.partial(inverse_sigmoid_schedule, k=k, min_value=min_value)


# ------------------------------------------------------------------------------------------
# Mixed histories and their log-likelihoods.


class MixedHistory(NamedTuple):
    """What a scheduled-sampling pass fed the model.

    Attributes:
      inputs: ``[B, *E]`` int32, the history levels (truth or the model's own samples).
      use_truth: ``[B, *E]`` bool, where ``inputs`` is the ground truth.
      teacher_forced_log_prob: ``[B]``, ``log p(x)`` under teacher forcing (the parallel
        method's first pass; ``None`` for the sequential method).
    """

    inputs: Array
    use_truth: Array
    teacher_forced_log_prob: Array | None


def _check_p_truth(p_truth) -> Array:
    if isinstance(p_truth, (int, float)) and not 0.0 <= p_truth <= 1.0:
        raise ValueError(f"p_truth must be a probability in [0, 1], got {p_truth}")
    p = jnp.asarray(p_truth, jnp.float32)
    if p.ndim != 0:
        raise ValueError(f"p_truth must be a scalar, got shape {p.shape}")
    return p


def parallel_scheduled_sampling_log_prob(model: AutoregressiveModel, x: Array, key: PRNGKey,
                                         p_truth) -> tuple[Array, MixedHistory]:
    """Two-pass ("parallel") scheduled sampling for any autoregressive model.

    1. ``theta = stop_gradient(params_from_inputs(encode(x)))``, teacher forcing.
    2. ``x~_j ~ p(. | theta_j)`` for every position ``j`` (the model's one-step guesses).
    3. ``h_j = x_j`` with probability ``p_truth`` (independently per position), else ``x~_j``.
    4. ``log p~(x) = sum_i log p(x_i | params_from_inputs(encode(h))_i)``: the *true* targets
       under the conditionals computed from the mixed history.

    The gradient reaches the parameters only through pass 4 (``h`` is a constant).

    Args:
      model: any `AutoregressiveModel`.
      x: ``[B, *event_shape]`` int levels.
      key: PRNG key (split into the sampling and the mixing keys).
      p_truth: scalar in ``[0, 1]`` (may be traced); 1 gives teacher forcing exactly.

    Returns:
      ``(log_prob [B], MixedHistory)``.
    """
    x = model.check_input(x)
    p = _check_p_truth(p_truth)
    sample_key, mix_key = jax.random.split(key)
    params_tf = jax.lax.stop_gradient(model.params_from_inputs(model.encode(x)))  # [B, *E, P]
    guesses = model.head.sample(sample_key, params_tf).astype(jnp.int32)  # [B, *E]
    use_truth = jax.random.uniform(mix_key, x.shape) < p  # [B, *E]; p=1: all, p=0: none
    mixed = jnp.where(use_truth, x, guesses)
    params = model.params_from_inputs(model.encode(mixed))  # [B, *E, P]
    log_prob = jnp.sum(model.log_prob_per_dim(params, x), axis=-1)  # [B]
    tf_log_prob = jnp.sum(model.log_prob_per_dim(params_tf, x), axis=-1)
    return log_prob, MixedHistory(mixed, use_truth, tf_log_prob)


def sequential_scheduled_sampling_log_prob(model: LSTMModel, x: Array, key: PRNGKey,
                                           p_truth) -> tuple[Array, MixedHistory]:
    """Exact scheduled sampling for `LSTMModel` (Bengio et al. 2015), one ``lax.scan``.

    With ``(h, c)_0 = 0`` and input ``u_0 = 0``, for ``t = 0 .. D-1`` (raster order):

        (h, c)_t = LSTM((h, c)_{t-1}, u_t),   theta_t = readout(h_t),
        log p~(x) += log p(x_t | theta_t),
        x~_t ~ p(. | stop_gradient(theta_t)),
        u_{t+1} = onehot(x_t)  w.p. p_truth,  else onehot(x~_t).

    ``x~_t`` conditions on the mixed history ``u_{<=t}``, as at generation time. Each
    position is one `LSTMModel.step` (from `LSTMModel.initial_state` and
    `LSTMModel.initial_input`).
    ``p_truth = 1`` is teacher forcing (the same numbers as `LSTMModel.log_prob`).

    Args:
      model: an `LSTMModel`.
      x: ``[B, *event_shape]`` int levels.
      key: PRNG key (position ``t`` uses ``split(key, D)[t]``, split into sample/mix keys).
      p_truth: scalar in ``[0, 1]`` (may be traced).

    Returns:
      ``(log_prob [B], MixedHistory)``; ``inputs[:, t]`` is the level fed at step ``t + 1``
      (``use_truth`` likewise); the last position is never fed.
    """
    if not isinstance(model, LSTMModel):
        raise ValueError("sequential scheduled sampling needs an LSTMModel (a recurrent state "
                         f"to carry), got {type(model).__name__}; use method='parallel'")
    x = model.check_input(x)
    p = _check_p_truth(p_truth)
    b, d, k = x.shape[0], model.num_dims, model.num_levels
    x_flat = x.reshape(b, d)  # [B, D]
    keys = jax.random.split(key, d)

    def step(carry, inputs):
        state, u = carry  # (h, c) [B, H] each; u [B, K]
        x_t, key_t = inputs  # [B]
        sample_key, mix_key = jax.random.split(key_t)
        state, params_t = model.step(state, u)  # params_t [B, P]
        log_prob_t = model.head.log_prob(params_t, x_t)  # [B]
        guess = model.head.sample(sample_key, jax.lax.stop_gradient(params_t)).astype(jnp.int32)
        use_truth = jax.random.uniform(mix_key, (b,)) < p
        fed = jnp.where(use_truth, x_t, guess)
        return (state, jax.nn.one_hot(fed, k)), (log_prob_t, fed, use_truth)

    init = (model.initial_state(b), model.initial_input(b))
    _, (log_probs, fed, use_truth) = jax.lax.scan(step, init, (x_flat.T, keys))  # [D, B]
    shape = (b, *model.event_shape)
    return (jnp.sum(log_probs, axis=0),
            MixedHistory(fed.T.reshape(shape), use_truth.T.reshape(shape), None))


def scheduled_sampling_log_prob(model: AutoregressiveModel, x: Array, key: PRNGKey, p_truth,
                                *, method: str = "parallel") -> tuple[Array, MixedHistory]:
    """`parallel_scheduled_sampling_log_prob` or `sequential_scheduled_sampling_log_prob`."""
    if method == "parallel":
        return parallel_scheduled_sampling_log_prob(model, x, key, p_truth)
    if method == "sequential":
        return sequential_scheduled_sampling_log_prob(model, x, key, p_truth)
    raise ValueError(f"scheduled sampling method must be one of {METHODS}, got {method!r}")


# ------------------------------------------------------------------------------------------
# The training-loop loss.


def scheduled_sampling_loss(model: AutoregressiveModel, batch: Array, key: PRNGKey,
                            step: Array, *, schedule_fn: Callable[[Array], Array],
                            method: str = "parallel"):
    """``loss = -(1/B) sum_b log p~(x_b)`` with ``p_truth = schedule_fn(step)``.

    The stateful loss signature of `jaxgen.training.steps` (bind ``schedule_fn`` and
    ``method`` with ``functools.partial``, or use `make_scheduled_sampling_loss`): ``extra``
    is the int32 step counter of the schedule, returned incremented.

    Returns:
      ``(loss, (metrics, step + 1))``; metrics: ``nll`` (the loss), ``p_truth``,
      ``model_input_fraction`` (share of history tokens that were model samples) and, for
      the parallel method, ``nll_teacher_forced`` (free from its first pass).
    """
    p_truth = schedule_fn(step)
    log_prob, mixed = scheduled_sampling_log_prob(model, batch, key, p_truth, method=method)
    loss = -jnp.mean(log_prob)
    metrics = {"nll": loss, "p_truth": p_truth,
               "model_input_fraction": jnp.mean((~mixed.use_truth).astype(jnp.float32))}
    if mixed.teacher_forced_log_prob is not None:
        metrics["nll_teacher_forced"] = -jnp.mean(mixed.teacher_forced_log_prob)
    return loss, (metrics, step + 1)


def make_scheduled_sampling_loss(schedule: str, *, method: str = "parallel", k: float = 1.0,
                                 c: float = 0.0, min_value: float = 0.0):
    """``(loss_fn, extra_init)`` for ``train(..., loss_fn=loss_fn, extra_init=extra_init)``.

    Raises:
      ValueError: unknown schedule (lists `SAMPLING_SCHEDULES`) or method (lists `METHODS`),
        or a bad schedule parameter.
    """
    if method not in METHODS:
        raise ValueError(f"scheduled sampling method must be one of {METHODS}, got {method!r}")
    schedule_fn = make_schedule(schedule, k=k, c=c, min_value=min_value)
    loss_fn = functools.partial(scheduled_sampling_loss, schedule_fn=schedule_fn, method=method)
    return loss_fn, jnp.zeros((), jnp.int32)


__all__ = ["METHODS", "MixedHistory", "SAMPLING_SCHEDULES", "constant_schedule",
           "exponential_schedule", "inverse_sigmoid_schedule", "linear_schedule",
           "make_schedule", "make_scheduled_sampling_loss",
           "parallel_scheduled_sampling_log_prob", "scheduled_sampling_log_prob",
           "scheduled_sampling_loss", "sequential_scheduled_sampling_log_prob"]
