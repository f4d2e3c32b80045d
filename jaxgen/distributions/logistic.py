"""Logistic distribution, parameterized by ``loc`` and ``log_scale``.

Density ``p(x) = e^{-z} / (s (1 + e^{-z})^2)`` with ``z = (x - loc) / s``; CDF
``sigmoid(z)``. The building block of (discretized) logistic likelihoods.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxgen.checks import resolve_sample_shape
from jaxgen.types import Array, PRNGKey


def logistic_log_prob(loc: Array, log_scale: Array, x: Array) -> Array:
    """log p(x) = -|z| - 2 softplus(-|z|) - log s, z = (x - loc) / s, elementwise.

    The density is symmetric in ``z``; evaluating it at ``-|z|`` keeps ``softplus`` away
    from large arguments, so neither tail loses precision.
    """
    loc, log_scale, x = jnp.asarray(loc), jnp.asarray(log_scale), jnp.asarray(x)
    abs_z = jnp.abs((x - loc) * jnp.exp(-log_scale))
    return -abs_z - 2 * jax.nn.softplus(-abs_z) - log_scale


def sample_logistic(key: PRNGKey, loc: Array, log_scale: Array,
                    shape: int | Sequence[int] | None = None) -> Array:
    """Draws ``x = loc + s * (log u - log(1 - u))``, u ~ U(0, 1) (inverse CDF).

    Args:
      key: PRNG key.
      loc, log_scale: parameters; their broadcast shape is the batch shape.
      shape: output shape containing the batch shape under broadcasting (default: it).
    """
    loc, log_scale = jnp.asarray(loc), jnp.asarray(log_scale)
    batch_shape = jnp.broadcast_shapes(loc.shape, log_scale.shape)
    shape = resolve_sample_shape(shape, batch_shape)
    dtype = jnp.result_type(loc.dtype, log_scale.dtype, jnp.float32)
    return loc + jnp.exp(log_scale) * jax.random.logistic(key, shape, dtype)


__all__ = ["logistic_log_prob", "sample_logistic"]
