"""Gradient-informed samplers for binary vectors: Gibbs-with-gradients and discrete MALA.

Both take ``logdensity_fn = f``, defined on ``{0, 1}^D`` and differentiable on its real
relaxation (a Boltzmann machine's ``-E(x)``, an RBM's ``-F(v)``, a neural energy of binary
inputs), and use ``g = grad f(x)`` to guess which bits are worth flipping:
``f(flip_i(x)) - f(x) ~= (1 - 2 x_i) g_i =: d_i(x)`` (first-order Taylor along the flip).

* **Gibbs-with-gradients** (Grathwohl et al. 2021): propose ONE site
  ``i ~ q(i | x) = softmax(d(x) / 2)_i``, flip it, accept with
  ``min(1, exp(f(x') - f(x)) q(i | x') / q(i | x))``. Exact (Metropolis-corrected) for any
  ``f``; the proposal is locally informed, so on a model with ``D`` sites it spends its one
  flip where a site-by-site Gibbs sweep would spend ``D`` evaluations.
* **Discrete MALA** (Zhang et al. 2022, DMALA): every site flips independently with
  ``q(x'_i | x) ∝ exp(g_i (x'_i - x_i) / 2 - (x'_i - x_i)^2 / (2 alpha))``, i.e. a flip
  has log-odds ``d_i / 2 - 1 / (2 alpha)``; the product proposal is corrected by MH with
  the reverse proposal from ``x'``. ``alpha`` (step size) trades the number of flips
  against acceptance.

Each step costs one ``value_and_grad`` of ``f`` (the state carries ``f`` and ``g`` at the
current point).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc import rng
from jaxgen.mcmc.proposal import metropolis_accept
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class DiscreteGradientState(NamedTuple):
    """Attributes: position ``[*S]`` int32 in {0, 1}; logdensity ``f(x)``; logdensity_grad
    ``grad f(x)`` ``[*S]`` float32 (of the real relaxation)."""

    position: Array
    logdensity: Array
    logdensity_grad: Array


class DiscreteGradientInfo(NamedTuple):
    """Attributes: acceptance_rate (MH probability), is_accepted, num_flipped (bits the
    proposal flipped; the position changes only when accepted)."""

    acceptance_rate: Array
    is_accepted: Array
    num_flipped: Array


def _value_and_grad(logdensity_fn, shape):
    def fn(x_flat):  # [D] float -> (scalar, [D])
        return jax.value_and_grad(lambda v: logdensity_fn(v.reshape(shape)))(x_flat)
    return fn


def _init_fn(logdensity_fn):
    def init(position: Array) -> DiscreteGradientState:
        position = jnp.asarray(position)
        value, grad = _value_and_grad(logdensity_fn, position.shape)(
            position.reshape(-1).astype(jnp.float32))
        return DiscreteGradientState(position.astype(jnp.int32), value,
                                     grad.reshape(position.shape))
    return init


def gibbs_with_gradients(logdensity_fn: Callable[[Array], Array]) -> SamplingAlgorithm:
    """Gibbs-with-gradients: one gradient-proposed flip per step, MH-corrected.

    ``q(i | x) = softmax_i((1 - 2 x_i) g_i / 2)``; accept
    ``min(1, exp(f(x') - f(x) + log q(i | x') - log q(i | x)))``.

    Args:
      logdensity_fn: ``x [*S] float in {0, 1} -> log pi(x)`` (scalar), differentiable in
        ``x``.

    Returns:
      ``SamplingAlgorithm``: ``init(x [*S]) -> DiscreteGradientState``,
      ``step(key, state) -> (state, DiscreteGradientInfo)``.
    """

    def step(key: PRNGKey, state: DiscreteGradientState):
        key_site, key_acc = jax.random.split(key)
        shape = state.position.shape
        x = state.position.reshape(-1).astype(jnp.float32)  # [D]
        g = state.logdensity_grad.reshape(-1)
        log_q = jax.nn.log_softmax((1.0 - 2.0 * x) * g / 2.0)  # [D]
        site = jax.random.categorical(key_site, log_q)
        proposal = x.at[site].set(1.0 - x[site])
        value, grad = _value_and_grad(logdensity_fn, shape)(proposal)
        log_q_rev = jax.nn.log_softmax((1.0 - 2.0 * proposal) * grad / 2.0)
        log_ratio = value - state.logdensity + log_q_rev[site] - log_q[site]
        accept, rate = metropolis_accept(key_acc, log_ratio)
        new = DiscreteGradientState(proposal.reshape(shape).astype(jnp.int32), value,
                                    grad.reshape(shape))
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, state)
        return new, DiscreteGradientInfo(rate, accept, jnp.ones((), jnp.int32))

    return SamplingAlgorithm(_init_fn(logdensity_fn), step)


def discrete_mala(logdensity_fn: Callable[[Array], Array], step_size: float
                  ) -> SamplingAlgorithm:
    """Discrete Langevin (DMALA) on ``{0, 1}^D``: every site flips independently with
    log-odds ``l_i(x) = (1 - 2 x_i) g_i / 2 - 1 / (2 alpha)``, MH-corrected.

    ``log q(x' | x) = sum_i [m_i log sigmoid(l_i) + (1 - m_i) log sigmoid(-l_i)]`` with
    ``m = 1[x' != x]``; the reverse uses ``l(x')`` and the same ``m``.

    Args:
      logdensity_fn: as for `gibbs_with_gradients`.
      step_size: ``alpha > 0``.

    Returns:
      ``SamplingAlgorithm`` with ``DiscreteGradientState`` / ``DiscreteGradientInfo``.
    """
    if not float(step_size) > 0:
        raise ValueError(f"discrete_mala needs step_size > 0, got {step_size}")
    penalty = 1.0 / (2.0 * float(step_size))

    def log_q(x, g, flips):
        logits = (1.0 - 2.0 * x) * g / 2.0 - penalty
        return jnp.sum(jnp.where(flips, jax.nn.log_sigmoid(logits),
                                 jax.nn.log_sigmoid(-logits)))

    def step(key: PRNGKey, state: DiscreteGradientState):
        key_flip, key_acc = jax.random.split(key)
        shape = state.position.shape
        x = state.position.reshape(-1).astype(jnp.float32)
        g = state.logdensity_grad.reshape(-1)
        logits = (1.0 - 2.0 * x) * g / 2.0 - penalty
        flips = rng.uniform(key_flip, x.shape) < jax.nn.sigmoid(logits)
        proposal = jnp.where(flips, 1.0 - x, x)
        value, grad = _value_and_grad(logdensity_fn, shape)(proposal)
        log_ratio = (value - state.logdensity + log_q(proposal, grad, flips)
                     - log_q(x, g, flips))
        accept, rate = metropolis_accept(key_acc, log_ratio)
        new = DiscreteGradientState(proposal.reshape(shape).astype(jnp.int32), value,
                                    grad.reshape(shape))
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, state)
        return new, DiscreteGradientInfo(rate, accept, jnp.sum(flips).astype(jnp.int32))

    return SamplingAlgorithm(_init_fn(logdensity_fn), step)


__all__ = ["DiscreteGradientInfo", "DiscreteGradientState", "discrete_mala",
           "gibbs_with_gradients"]
