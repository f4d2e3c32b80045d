"""Bernoulli distribution parameterized by logits (log-odds)."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxgen.checks import resolve_sample_shape
from jaxgen.types import Array, PRNGKey


def bernoulli_log_prob(logits: Array, x: Array) -> Array:
    """log p(x) = x * l - softplus(l) = -softplus(-(2x - 1) * l), elementwise, x in {0, 1}.

    The second form never subtracts large numbers: ``log sigmoid(l) = -softplus(-l)`` for
    ``x = 1`` and ``log(1 - sigmoid(l)) = -softplus(l)`` for ``x = 0``, accurate for any
    finite logit (also ``|l| >> 1``, where ``log(sigmoid(l))`` would underflow to -inf).

    Args:
      logits: log-odds ``l = log(p / (1 - p))``, broadcasting with ``x``.
      x: values in {0, 1} (bool, integer or float).

    Returns:
      ``log p(x)`` in nats, the broadcast shape of ``logits`` and ``x``.
    """
    logits = jnp.asarray(logits)
    sign = 2 * jnp.asarray(x).astype(logits.dtype) - 1
    return -jax.nn.softplus(-sign * logits)


def sample_bernoulli(key: PRNGKey, logits: Array,
                     shape: int | Sequence[int] | None = None) -> Array:
    """Draws ``x = 1[u < sigmoid(l)]``, u ~ U[0, 1), as int32.

    Args:
      key: PRNG key.
      logits: log-odds, any shape (the batch shape).
      shape: output shape, containing ``logits.shape`` under broadcasting (default
        ``logits.shape``).

    Returns:
      int32 array of 0/1 of shape ``shape``.
    """
    probs = jax.nn.sigmoid(jnp.asarray(logits))  # floating for any input dtype
    shape = resolve_sample_shape(shape, probs.shape)
    u = jax.random.uniform(key, shape, probs.dtype)
    return (u < probs).astype(jnp.int32)


__all__ = ["bernoulli_log_prob", "sample_bernoulli"]
