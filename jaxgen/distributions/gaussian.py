"""Gaussian with diagonal covariance, parameterized by ``mean`` and ``log_std``."""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp

from jaxgen.checks import resolve_sample_shape
from jaxgen.types import Array, PRNGKey

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_log_prob(mean: Array, log_std: Array, x: Array) -> Array:
    """log N(x; mu, sigma^2) = -z^2 / 2 - log sigma - log(2 pi) / 2, z = (x - mu) / sigma.

    Elementwise (broadcasting); a diagonal Gaussian's log density is the sum over its event
    axes.
    """
    mean, log_std, x = jnp.asarray(mean), jnp.asarray(log_std), jnp.asarray(x)
    z = (x - mean) * jnp.exp(-log_std)
    return -0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI


def sample_gaussian(key: PRNGKey, mean: Array, log_std: Array,
                    shape: int | Sequence[int] | None = None) -> Array:
    """Draws ``x = mu + sigma * eps``, eps ~ N(0, I) (reparameterized).

    Args:
      key: PRNG key.
      mean, log_std: parameters; their broadcast shape is the batch shape.
      shape: output shape containing the batch shape under broadcasting (default: it).
    """
    mean, log_std = jnp.asarray(mean), jnp.asarray(log_std)
    batch_shape = jnp.broadcast_shapes(mean.shape, log_std.shape)
    shape = resolve_sample_shape(shape, batch_shape)
    dtype = jnp.result_type(mean.dtype, log_std.dtype, jnp.float32)
    return mean + jnp.exp(log_std) * jax.random.normal(key, shape, dtype)


def kl_diag_gaussian(mean_p: Array, log_std_p: Array, mean_q: Array, log_std_q: Array,
                     *, event_ndims: int = 1) -> Array:
    """KL(p || q) between diagonal Gaussians, in closed form.

    KL = sum_i [ log(sigma_q,i / sigma_p,i)
                 + (sigma_p,i^2 + (mu_p,i - mu_q,i)^2) / (2 sigma_q,i^2) - 1/2 ],
    summed over the trailing ``event_ndims`` axes (0: elementwise, per coordinate).
    Written with ``exp(2 (log sigma_p - log sigma_q))`` so no variance is formed on its own.
    """
    if event_ndims < 0:
        raise ValueError(f"event_ndims must be >= 0, got {event_ndims}")
    mean_p, log_std_p = jnp.asarray(mean_p), jnp.asarray(log_std_p)
    mean_q, log_std_q = jnp.asarray(mean_q), jnp.asarray(log_std_q)
    log_ratio = log_std_p - log_std_q
    kl = (-log_ratio + 0.5 * jnp.exp(2 * log_ratio)
          + 0.5 * jnp.square((mean_p - mean_q) * jnp.exp(-log_std_q)) - 0.5)
    if event_ndims > kl.ndim:
        raise ValueError(f"event_ndims={event_ndims} exceeds the rank of the broadcast "
                         f"parameters, shape {kl.shape}")
    return jnp.sum(kl, axis=tuple(range(kl.ndim - event_ndims, kl.ndim)))


__all__ = ["gaussian_log_prob", "kl_diag_gaussian", "sample_gaussian"]
