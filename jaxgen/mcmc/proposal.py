"""Shared pieces of Metropolis-Hastings kernels: Gaussian noise and the accept step.

Random numbers come from ``jaxgen.mcmc.rng`` (jax.random's numbers, generated faster).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.mcmc import rng
from jaxgen.types import Array, PRNGKey


def normal_like(key: PRNGKey, x: Array) -> Array:
    """Standard normal noise with the shape and (float) dtype of ``x``."""
    dtype = x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else jnp.float32
    return rng.normal(key, x.shape, dtype)


def metropolis_accept(key: PRNGKey, log_ratio: Array) -> tuple[Array, Array]:
    """Accepts with probability ``a = min(1, exp(log_ratio))``; NaN ratios reject.

    Returns:
      ``(accept, a)``: bool and float scalars.
    """
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    rate = jnp.exp(jnp.minimum(log_ratio, 0.0))
    accept = jnp.log(rng.uniform(key, ())) < log_ratio
    return accept, rate


__all__ = ["normal_like", "metropolis_accept"]
