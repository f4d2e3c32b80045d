"""First-order unadjusted samplers: Langevin (ULA) and the SGLD-style variant.

ULA discretizes the Langevin diffusion ``dx = grad log pi(x) dt + sqrt(2) dW`` with step
``eps``: ``x <- x + eps grad log pi(x) + sqrt(2 eps) xi`` (for an energy,
``x <- x - eps grad E(x) + sqrt(2 eps) xi``). It has no accept step, so its stationary law is
``pi`` only up to an ``O(eps)`` bias.

The SGLD-style variant used to train energy-based models decouples the drift and noise
scales and clips the gradient: ``x <- x + step_size * clip(grad log pi(x)) + noise_scale * xi``
(``noise_scale = sqrt(2 step_size)`` recovers ULA).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc.proposal import normal_like
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class LangevinState(NamedTuple):
    """Attributes: position ``[*S]``, logdensity (scalar), logdensity_grad ``[*S]``."""

    position: Array
    logdensity: Array
    logdensity_grad: Array


class LangevinInfo(NamedTuple):
    """Attributes: grad_norm, the (unclipped) ``|grad log pi(x)|`` before the step."""

    grad_norm: Array


def clip_by_norm(g: Array, max_norm: float | None) -> Array:
    """``g * min(1, max_norm / |g|)`` (``max_norm=None``: no clipping)."""
    if max_norm is None:
        return g
    norm = jnp.sqrt(jnp.sum(g ** 2))
    return g * jnp.minimum(1.0, max_norm / jnp.maximum(norm, 1e-30))


def sgld(logdensity_fn: Callable[[Array], Array], step_size: float, noise_scale: float,
         grad_clip: float | None = None) -> SamplingAlgorithm:
    """SGLD-style Langevin: ``x <- x + step_size * clip(grad) + noise_scale * xi``.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar).
      step_size: drift scale on the gradient.
      noise_scale: standard deviation of the added Gaussian noise.
      grad_clip: max L2 norm of the gradient (None: no clipping).

    Returns:
      ``SamplingAlgorithm(init, step)`` with ``LangevinState``/``LangevinInfo``.
    """
    value_and_grad = jax.value_and_grad(logdensity_fn)

    def init(position: Array) -> LangevinState:
        position = jnp.asarray(position)
        logdensity, grad = value_and_grad(position)
        return LangevinState(position, logdensity, grad)

    def step(key: PRNGKey, state: LangevinState):
        grad = state.logdensity_grad
        position = (state.position + step_size * clip_by_norm(grad, grad_clip)
                    + noise_scale * normal_like(key, state.position))
        logdensity, new_grad = value_and_grad(position)
        info = LangevinInfo(jnp.sqrt(jnp.sum(grad ** 2)))
        return LangevinState(position, logdensity, new_grad), info

    return SamplingAlgorithm(init, step)


def langevin(logdensity_fn: Callable[[Array], Array], step_size: float) -> SamplingAlgorithm:
    """Unadjusted Langevin: ``x <- x + eps grad log pi(x) + sqrt(2 eps) xi``.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)`` (scalar).
      step_size: ``eps``.
    """
    return sgld(logdensity_fn, step_size, jnp.sqrt(2.0 * step_size), None)


__all__ = ["LangevinState", "LangevinInfo", "clip_by_norm", "langevin", "sgld"]
