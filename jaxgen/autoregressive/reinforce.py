"""REINFORCE fine-tuning of an autoregressive model on whole sampled sequences.

Maximum likelihood never shows a model its own samples; REINFORCE (Williams, 1992) trains
on them directly, toward a sequence-level reward ``R(x)`` (``reward_fn: [n, *E] -> [n]``):

    J(theta) = E_{x ~ p_theta}[R(x)],
    grad J   = E_{x ~ p_theta}[(R(x) - b) grad log p_theta(x)],
    log p_theta(x) = sum_t log p_theta(x_t | x_{<t}),

where any baseline ``b`` not depending on ``x`` leaves the gradient unbiased and lowers its
variance. One step draws ``n`` sequences with the model's own (fast) ``sample`` (constants:
no gradient through the draw), and descends the surrogate

    L(theta) = -(1/n) sum_b (R(x_b) - b_b) log p_theta(x_b)

with an optax optimizer. Baselines (`REINFORCE_BASELINES`):

* ``none``: ``b = 0``.
* ``batch_mean``: ``b = mean_b R(x_b)`` (slightly biased: ``b`` includes ``R(x_b)``).
* ``leave_one_out``: ``b_b = (sum_c R(x_c) - R(x_b)) / (n - 1)`` (unbiased).
* ``moving_average``: ``m <- decay m + (1 - decay) mean_b R(x_b)`` carried in the state;
  step ``t`` uses the bias-corrected ``m_t / (1 - decay^t)`` of the previous steps (the
  batch mean at ``t = 0``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from jaxgen.training.state import merge_model, split_model
from jaxgen.types import Array, PRNGKey

REINFORCE_BASELINES = ("none", "batch_mean", "leave_one_out", "moving_average")


class ReinforceState(NamedTuple):
    """Pytree carried by `make_reinforce_step`'s step.

    Attributes:
      step: int32 scalar, updates taken.
      params: the model's ``nnx.Param`` state (optimized).
      model_state: the model's other variables (passed through).
      opt_state: the optax state.
      reward_average: float32 scalar, the (uncorrected) moving average ``m`` of batch-mean
        rewards (used by the ``moving_average`` baseline; tracked for every baseline).
    """

    step: Array
    params: Any
    model_state: Any
    opt_state: Any
    reward_average: Array


def init_reinforce_state(model: nnx.Module, optimizer: optax.GradientTransformation):
    """``(graphdef, ReinforceState)`` at step 0 for ``model``."""
    graphdef, params, model_state = split_model(model)
    return graphdef, ReinforceState(jnp.zeros((), jnp.int32), params, model_state,
                                    optimizer.init(params), jnp.zeros((), jnp.float32))


def reinforce_baseline(rewards: Array, reward_average: Array, step: Array, *,
                       baseline: str, decay: float) -> Array:
    """Baseline ``b`` (``[]`` or ``[n]``) for ``rewards [n]`` (see the module docstring)."""
    if baseline == "none":
        return jnp.zeros(())
    if baseline == "batch_mean":
        return jnp.mean(rewards)
    if baseline == "leave_one_out":
        n = rewards.shape[0]
        if n < 2:
            raise ValueError(f"the leave_one_out baseline needs num_samples >= 2, got {n}")
        return (jnp.sum(rewards) - rewards) / (n - 1)
    if baseline == "moving_average":
        correction = 1.0 - jnp.power(jnp.float32(decay), step.astype(jnp.float32))
        return jnp.where(step > 0, reward_average / jnp.maximum(correction, 1e-12),
                         jnp.mean(rewards))
    raise ValueError(f"baseline must be one of {REINFORCE_BASELINES}, got {baseline!r}")


def make_reinforce_step(graphdef, optimizer: optax.GradientTransformation,
                        reward_fn: Callable[[Array], Array], *, num_samples: int,
                        baseline: str = "batch_mean", baseline_decay: float = 0.9):
    """Builds ``step(state, key) -> (state, metrics)``, a pure function to ``jax.jit``.

    Args:
      graphdef: from `init_reinforce_state`.
      optimizer: the optax transformation whose state `init_reinforce_state` built.
      reward_fn: ``[n, *event_shape]`` int samples -> ``[n]`` rewards (higher is better).
      num_samples: sequences drawn per step.
      baseline: one of `REINFORCE_BASELINES`.
      baseline_decay: ``decay`` of the ``moving_average`` baseline, in ``[0, 1)``.

    Returns:
      The step; its metrics: ``reward`` (batch mean), ``reward_std``, ``baseline`` (mean),
      ``log_prob`` (mean ``log p(x)`` of the samples), ``loss`` (surrogate), ``grad_norm``.

    Raises:
      ValueError: unknown ``baseline`` (lists `REINFORCE_BASELINES`), ``num_samples < 1``, a decay
        outside ``[0, 1)``, or (at trace time) a ``reward_fn`` not returning ``[n]``.
    """
    if baseline not in REINFORCE_BASELINES:
        raise ValueError(f"baseline must be one of {REINFORCE_BASELINES}, got {baseline!r}")
    if int(num_samples) < 1:
        raise ValueError(f"num_samples must be positive, got {num_samples}")
    if not 0.0 <= float(baseline_decay) < 1.0:
        raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}")
    n, decay = int(num_samples), float(baseline_decay)

    def step(state: ReinforceState, key: PRNGKey):
        model = merge_model(graphdef, state.params, state.model_state)
        samples = jax.lax.stop_gradient(model.sample(key, n))  # [n, *E]
        rewards = jnp.asarray(reward_fn(samples), jnp.float32)
        if rewards.shape != (n,):
            raise ValueError(f"reward_fn must return one reward per sample, shape ({n},); "
                             f"got shape {rewards.shape}")
        b = reinforce_baseline(rewards, state.reward_average, state.step, baseline=baseline,
                               decay=decay)
        advantage = jax.lax.stop_gradient(rewards - b)  # [n]

        def surrogate(params):
            log_prob = merge_model(graphdef, params, state.model_state).log_prob(samples)
            return -jnp.mean(advantage * log_prob), log_prob  # [], [n]

        (loss, log_prob), grads = jax.value_and_grad(surrogate, has_aux=True)(state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        new_state = ReinforceState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            model_state=state.model_state,
            opt_state=opt_state,
            reward_average=decay * state.reward_average + (1.0 - decay) * jnp.mean(rewards))
        metrics = {"reward": jnp.mean(rewards), "reward_std": jnp.std(rewards),
                   "baseline": jnp.mean(b), "log_prob": jnp.mean(log_prob), "loss": loss,
                   "grad_norm": optax.tree.norm(grads)}
        return new_state, metrics

    return step


__all__ = ["REINFORCE_BASELINES", "ReinforceState", "init_reinforce_state",
           "make_reinforce_step", "reinforce_baseline"]
