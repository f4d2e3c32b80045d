"""Second-order samplers: Hessian-preconditioned Langevin and simplified manifold MALA.

The metric is the (regularized) negative Hessian of the log density,
``G(x) = V |Lambda|_+ V^T`` where ``-grad^2 log pi(x) = V Lambda V^T`` and
``|lambda|_+ = max(|lambda|, damping)`` (a SoftAbs-style fix that keeps ``G`` positive
definite off the convex region). With ``M = G^{-1}`` the preconditioned Langevin step is::

    x' = x + eps M(x) g(x) + sqrt(2 eps) M(x)^{1/2} xi,     g = grad log pi

i.e. ``q(x'|x) = N(mu(x), 2 eps M(x))``, ``mu(x) = x + eps M(x) g(x)``, and
``log q(x'|x) = 1/2 log det G(x) - (x' - mu)^T G(x) (x' - mu) / (4 eps) + const``.
``hessian_langevin`` takes the step as is; ``smmala`` (simplified manifold MALA, Girolami &
Calderhead 2011) adds the Metropolis-Hastings correction. The metric adapts to local scales,
so an ill-conditioned target costs nothing extra -- at ``O(D^3)`` per step, which is why these
samplers are for low-dimensional targets.

Positions may be any array; they are flattened to ``[D]`` internally.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc import rng
from jaxgen.mcmc.proposal import metropolis_accept
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class ManifoldState(NamedTuple):
    """Attributes: position ``[*S]``; logdensity; logdensity_grad ``[D]``; eigenvalues
    ``[D]`` of the metric (``|lambda|_+``) and eigenvectors ``[D, D]`` at the position."""

    position: Array
    logdensity: Array
    logdensity_grad: Array
    metric_eigenvalues: Array
    metric_eigenvectors: Array


class ManifoldInfo(NamedTuple):
    """Attributes: acceptance_rate (1 for the unadjusted sampler), is_accepted."""

    acceptance_rate: Array
    is_accepted: Array


def _geometry(logdensity_flat: Callable, damping: float):
    value_and_grad = jax.value_and_grad(logdensity_flat)
    hessian = jax.hessian(logdensity_flat)

    def geometry(x):  # x [D]
        logdensity, grad = value_and_grad(x)
        lam, vecs = jnp.linalg.eigh(-hessian(x))  # [D], [D, D]
        lam = jnp.maximum(jnp.abs(lam), damping)
        return logdensity, grad, lam, vecs

    return geometry


def _manifold(logdensity_fn, step_size, damping, adjusted: bool) -> SamplingAlgorithm:
    if step_size <= 0 or damping <= 0:
        raise ValueError(f"step_size and damping must be positive, got {step_size}, {damping}")

    def init(position: Array) -> ManifoldState:
        position = jnp.asarray(position)
        shape = position.shape
        geometry = _geometry(lambda v: logdensity_fn(v.reshape(shape)), damping)
        return ManifoldState(position, *geometry(position.reshape(-1)))

    def mean_and_log_q(x, grad, lam, vecs):
        """``mu(x) = x + eps V diag(1/lam) V^T g``."""
        mean = x + step_size * vecs @ ((vecs.T @ grad) / lam)

        def log_q(y):  # log q(y | x) + const
            z = vecs.T @ (y - mean)  # [D]
            return 0.5 * jnp.sum(jnp.log(lam)) - jnp.sum(lam * z ** 2) / (4.0 * step_size)

        return mean, log_q

    def step(key: PRNGKey, state: ManifoldState):
        shape = state.position.shape
        geometry = _geometry(lambda v: logdensity_fn(v.reshape(shape)), damping)
        key_prop, key_acc = jax.random.split(key)
        x = state.position.reshape(-1)
        lam, vecs = state.metric_eigenvalues, state.metric_eigenvectors
        mean, log_q_fwd = mean_and_log_q(x, state.logdensity_grad, lam, vecs)
        xi = rng.normal(key_prop, x.shape, x.dtype)
        proposal = mean + jnp.sqrt(2.0 * step_size) * vecs @ (xi / jnp.sqrt(lam))
        logdensity, grad, lam_new, vecs_new = geometry(proposal)
        new = ManifoldState(proposal.reshape(shape), logdensity, grad, lam_new, vecs_new)
        if not adjusted:
            one = jnp.ones((), x.dtype)
            return new, ManifoldInfo(one, jnp.array(True))
        _, log_q_bwd = mean_and_log_q(proposal, grad, lam_new, vecs_new)
        log_ratio = logdensity - state.logdensity + log_q_bwd(x) - log_q_fwd(proposal)
        accept, rate = metropolis_accept(key_acc, log_ratio)
        new = jax.tree.map(lambda a, b: jnp.where(accept, a, b), new, state)
        return new, ManifoldInfo(rate, accept)

    return SamplingAlgorithm(init, step)


def smmala(logdensity_fn: Callable[[Array], Array], step_size: float,
           damping: float = 1e-3) -> SamplingAlgorithm:
    """Simplified manifold MALA (MH-adjusted Hessian-preconditioned Langevin).

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar, twice differentiable).
      step_size: ``eps``; for a Gaussian target ``eps = 1/2`` gives
        ``x' = mu + (x - mu)/2 + Sigma^{1/2} xi`` whatever the conditioning.
      damping: floor on the metric's eigenvalues.
    """
    return _manifold(logdensity_fn, step_size, damping, adjusted=True)


def hessian_langevin(logdensity_fn: Callable[[Array], Array], step_size: float,
                     damping: float = 1e-3) -> SamplingAlgorithm:
    """Unadjusted Hessian-preconditioned Langevin (no accept step; ``O(eps)`` bias)."""
    return _manifold(logdensity_fn, step_size, damping, adjusted=False)


__all__ = ["ManifoldState", "ManifoldInfo", "smmala", "hessian_langevin"]
