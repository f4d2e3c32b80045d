"""Metropolis-adjusted Langevin (MALA): a Langevin proposal corrected by MH.

Proposal ``x' ~ q(.|x) = N(x + eps g(x), 2 eps I)`` with ``g = grad log pi``, so
``log q(x'|x) = -|x' - x - eps g(x)|^2 / (4 eps) + const``; accept with probability
``min(1, pi(x') q(x|x') / (pi(x) q(x'|x)))``. Exact for any ``eps``: the step size only
trades acceptance against move length (acceptance -> 1 as ``eps -> 0``).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc.langevin import LangevinState
from jaxgen.mcmc.proposal import metropolis_accept, normal_like
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm

MALAState = LangevinState


class MALAInfo(NamedTuple):
    """Attributes: acceptance_rate (MH probability), is_accepted (bool)."""

    acceptance_rate: Array
    is_accepted: Array


def mala(logdensity_fn: Callable[[Array], Array], step_size: float) -> SamplingAlgorithm:
    """MALA kernel.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar).
      step_size: ``eps`` (the proposal covariance is ``2 eps I``).

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``MALAState``/``MALAInfo``.
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def log_q(x_to, x_from, grad_from):
        """``log q(x_to | x_from)`` up to a constant."""
        return -jnp.sum((x_to - x_from - step_size * grad_from) ** 2) / (4.0 * step_size)

    def init(position: Array) -> MALAState:
        position = jnp.asarray(position)
        logdensity, grad = value_and_grad(position)
        return MALAState(position, logdensity, grad)

    def step(key: PRNGKey, state: MALAState):
        key_prop, key_acc = jax.random.split(key)
        x, g = state.position, state.logdensity_grad
        proposal = x + step_size * g + jnp.sqrt(2.0 * step_size) * normal_like(key_prop, x)
        logdensity, grad = value_and_grad(proposal)
        log_ratio = (logdensity - state.logdensity + log_q(x, proposal, grad)
                     - log_q(proposal, x, g))
        accept, rate = metropolis_accept(key_acc, log_ratio)
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                           MALAState(proposal, logdensity, grad), state)
        return new, MALAInfo(rate, accept)

    return SamplingAlgorithm(init, step)


__all__ = ["MALAState", "MALAInfo", "mala"]
