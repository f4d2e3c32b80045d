"""Random-walk Metropolis-Hastings: the zero-order sampler (uses only ``log pi(x)``).

Proposal ``x' = x + s * xi``, ``xi ~ N(0, I)`` (symmetric), accepted with probability
``min(1, pi(x') / pi(x))``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc.proposal import metropolis_accept, normal_like
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class RWMHState(NamedTuple):
    """Attributes: position ``[*S]`` (one chain), logdensity (scalar) at it."""

    position: Array
    logdensity: Array


class RWMHInfo(NamedTuple):
    """Attributes: acceptance_rate ``min(1, pi(x')/pi(x))``; is_accepted (bool)."""

    acceptance_rate: Array
    is_accepted: Array


def rwmh(logdensity_fn: Callable[[Array], Array], step_size: float | Array) -> SamplingAlgorithm:
    """Random-walk Metropolis with Gaussian increments.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar, unnormalized is fine).
      step_size: proposal scale ``s`` (scalar, or ``[*S]`` per coordinate).

    Returns:
      ``SamplingAlgorithm(init, step)``: ``init(x) -> RWMHState``,
      ``step(key, state) -> (RWMHState, RWMHInfo)``.
    """

    def init(position: Array) -> RWMHState:
        position = jnp.asarray(position)
        return RWMHState(position, logdensity_fn(position))

    def step(key: PRNGKey, state: RWMHState):
        key_prop, key_acc = jax.random.split(key)
        proposal = state.position + step_size * normal_like(key_prop, state.position)
        logdensity = logdensity_fn(proposal)
        log_ratio = logdensity - state.logdensity
        accept, rate = metropolis_accept(key_acc, log_ratio)
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                           RWMHState(proposal, logdensity), state)
        return new, RWMHInfo(rate, accept)

    return SamplingAlgorithm(init, step)


__all__ = ["RWMHState", "RWMHInfo", "rwmh"]
