"""Exact log-partition functions by enumerating binary states in chunks.

``log Z = log sum_{s in {0,1}^n} exp(f(s))`` is accumulated chunk by chunk
(``lax.map`` over chunks of ``chunk_size`` states, each a ``logsumexp``), so memory stays
``O(chunk_size * n)`` while ``2^n`` states are visited: practical up to ``n ~ 25``.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.types import Array

MAX_ENUMERATION_BITS = 30


class LogPartition(nnx.Variable):
    """A model's ``log Z`` (exact or estimated): not an ``nnx.Param``, so never trained."""


def binary_states(start: Array, size: int, num_bits: int) -> Array:
    """States ``start .. start+size-1`` as bit vectors (bit ``i`` of the index is unit ``i``).

    Returns:
      ``[size, num_bits]`` float32 in {0, 1}.
    """
    index = start + jnp.arange(size, dtype=jnp.int32)  # [size]
    bits = (index[:, None] >> jnp.arange(num_bits, dtype=jnp.int32)[None, :]) & 1
    return bits.astype(jnp.float32)


def all_binary_states(num_bits: int) -> Array:
    """Every state of ``{0, 1}^num_bits``, ``[2^num_bits, num_bits]`` float32."""
    if not 0 < num_bits <= 24:
        raise ValueError(f"all_binary_states materializes 2^n states; n={num_bits} not in 1..24")
    return binary_states(jnp.int32(0), 2 ** num_bits, num_bits)


def logsumexp_over_states(log_fn: Callable[[Array], Array], num_bits: int,
                          chunk_size: int = 2 ** 14) -> Array:
    """``log sum_s exp(log_fn(s))`` over all ``s in {0,1}^num_bits``.

    Args:
      log_fn: ``[K, num_bits] float -> [K]`` unnormalized log-probabilities.
      num_bits: ``n`` (at most ``MAX_ENUMERATION_BITS``).
      chunk_size: states per chunk (rounded to a power of two, at most ``2^n``).

    Returns:
      Scalar ``log Z``.
    """
    if not 0 < num_bits <= MAX_ENUMERATION_BITS:
        raise ValueError(f"exact enumeration needs 1 <= num_bits <= {MAX_ENUMERATION_BITS}, "
                         f"got {num_bits} (2^{num_bits} states); use AIS instead")
    chunk_bits = min(num_bits, max(0, int(chunk_size).bit_length() - 1))
    size = 2 ** chunk_bits
    num_chunks = 2 ** (num_bits - chunk_bits)

    def chunk(c):
        return jax.nn.logsumexp(log_fn(binary_states(c * size, size, num_bits)))

    per_chunk = jax.lax.map(chunk, jnp.arange(num_chunks, dtype=jnp.int32))
    return jax.nn.logsumexp(per_chunk)


__all__ = ["LogPartition", "MAX_ENUMERATION_BITS", "binary_states", "all_binary_states",
           "logsumexp_over_states"]
