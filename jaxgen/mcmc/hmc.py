"""Hamiltonian Monte Carlo with a leapfrog integrator and a diagonal mass matrix.

``H(x, p) = -log pi(x) + p^T M^{-1} p / 2``. One step draws ``p ~ N(0, M)``, runs
``L`` leapfrog steps of size ``eps``::

    p <- p + (eps/2) grad log pi(x);  x <- x + eps M^{-1} p;  p <- p + (eps/2) grad log pi(x)

and accepts the end point with probability ``min(1, exp(H(x, p) - H(x', p')))``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc.proposal import metropolis_accept, normal_like
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class HMCState(NamedTuple):
    """Attributes: position ``[*S]``, logdensity (scalar), logdensity_grad ``[*S]``."""

    position: Array
    logdensity: Array
    logdensity_grad: Array


class HMCInfo(NamedTuple):
    """Attributes: acceptance_rate, is_accepted, energy_change ``H(x', p') - H(x, p)``."""

    acceptance_rate: Array
    is_accepted: Array
    energy_change: Array


def hmc(logdensity_fn: Callable[[Array], Array], step_size: float, num_integration_steps: int,
        inverse_mass_matrix: Array | float = 1.0) -> SamplingAlgorithm:
    """HMC kernel.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar).
      step_size: leapfrog step ``eps``.
      num_integration_steps: leapfrog steps ``L`` per proposal (static int >= 1).
      inverse_mass_matrix: diagonal of ``M^{-1}`` (scalar or ``[*S]``).
    """
    if int(num_integration_steps) < 1:
        raise ValueError(f"num_integration_steps must be >= 1, got {num_integration_steps}")
    value_and_grad = jax.value_and_grad(logdensity_fn)
    inv_mass = jnp.asarray(inverse_mass_matrix)

    def init(position: Array) -> HMCState:
        position = jnp.asarray(position)
        logdensity, grad = value_and_grad(position)
        return HMCState(position, logdensity, grad)

    def leapfrog(carry, _):
        x, p, _, g = carry
        p = p + 0.5 * step_size * g
        x = x + step_size * inv_mass * p
        logdensity, g = value_and_grad(x)
        p = p + 0.5 * step_size * g
        return (x, p, logdensity, g), None

    def step(key: PRNGKey, state: HMCState):
        key_mom, key_acc = jax.random.split(key)
        p0 = normal_like(key_mom, state.position) / jnp.sqrt(inv_mass)  # p ~ N(0, M)
        init_carry = (state.position, p0, state.logdensity, state.logdensity_grad)
        (x, p, logdensity, g), _ = jax.lax.scan(leapfrog, init_carry, None,
                                                length=int(num_integration_steps))
        kinetic = lambda mom: 0.5 * jnp.sum(inv_mass * mom ** 2)
        energy_change = (-logdensity + kinetic(p)) - (-state.logdensity + kinetic(p0))
        accept, rate = metropolis_accept(key_acc, -energy_change)
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b),
                           HMCState(x, logdensity, g), state)
        return new, HMCInfo(rate, accept, energy_change)

    return SamplingAlgorithm(init, step)


__all__ = ["HMCState", "HMCInfo", "hmc"]
