"""Causal multi-head self-attention with a key/value cache for incremental decoding.

``Attn(Q, K, V)_t = sum_{s <= t} softmax_s(q_t . k_s / sqrt(d_h)) v_s`` per head. The full
form processes a whole sequence in one pass (teacher forcing); `decode_step` processes one
position ``t`` given cached keys/values of positions ``< t`` and writes its own, so a
length-``T`` sample costs ``O(T^2 d)`` instead of ``O(T^3 d)``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


class KVCache(NamedTuple):
    """Keys and values of the positions decoded so far, ``[B, heads, T, d_head]`` each."""

    keys: Array
    values: Array


def _causal_attention(q: Array, k: Array, v: Array, first: Array | int = 0) -> Array:
    """Queries at positions ``first, first + 1, ...`` (``q [B, h, c, dh]``) attend to the
    keys/values ``[B, h, T, dh]`` at positions ``<=`` their own: ``[B, h, c, dh]``."""
    scores = mp.einsum("bhtd,bhsd->bhts", q, k) / np.sqrt(q.shape[-1])  # [B, h, c, T]
    causal = (first + jnp.arange(q.shape[2]))[:, None] >= jnp.arange(k.shape[2])[None, :]
    weights = jax.nn.softmax(jnp.where(causal, scores, -jnp.inf), axis=-1)
    return mp.einsum("bhts,bhsd->bhtd", weights, v)


class CausalSelfAttention(nnx.Module):
    """Multi-head causal self-attention.

    ``query_chunk`` (0: off) computes the full pass in chunks of that many queries, one
    ``lax.scan`` step each, rematerialized in the backward pass (``jax.checkpoint``): the
    ``[B, h, T, T]`` scores and weights never exist at once, only ``[B, h, chunk, T]``
    pieces, for one more forward pass of attention compute. Results equal the unchunked
    pass up to float rounding; ``T`` must be a multiple of ``query_chunk``.

    Attributes:
      qkv: ``mp.Linear(d_model, 3 d_model)``; out: ``mp.Linear(d_model, d_model)``.
      num_heads: number of heads ``h``; ``d_head = d_model / h``; query_chunk.
    """

    def __init__(self, d_model: int, num_heads: int, *, query_chunk: int = 0,
                 rngs: nnx.Rngs):
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} must be divisible by num_heads={num_heads}")
        if int(query_chunk) < 0:
            raise ValueError(f"query_chunk must be >= 0 (0: off), got {query_chunk}")
        self.query_chunk = int(query_chunk)
        self.num_heads = num_heads
        self.d_head = d_model // num_heads
        self.qkv = mp.Linear(d_model, 3 * d_model, rngs=rngs)
        self.out = mp.Linear(d_model, d_model, rngs=rngs)

    def _split_heads(self, x: Array) -> Array:  # [B, T, d] -> [B, h, T, dh]
        b, t, _ = x.shape
        return x.reshape(b, t, self.num_heads, self.d_head).transpose(0, 2, 1, 3)

    def __call__(self, x: Array) -> Array:
        """``[B, T, d] -> [B, T, d]``; position ``t`` attends to ``s <= t``."""
        b, t, d = x.shape
        q, k, v = map(self._split_heads, jnp.split(self.qkv(x), 3, axis=-1))  # [B, h, T, dh]
        c = self.query_chunk
        if not c or c >= t:
            y = _causal_attention(q, k, v)  # [B, h, T, dh]
        else:
            if t % c:
                raise ValueError(f"sequence length {t} is not a multiple of query_chunk={c}")
            chunks = q.reshape(b, self.num_heads, t // c, c, self.d_head)
            chunks = chunks.transpose(2, 0, 1, 3, 4)  # [t/c, B, h, c, dh]
            attend = jax.checkpoint(lambda q_i, first: _causal_attention(q_i, k, v, first))
            _, y = jax.lax.scan(lambda _, xs: (None, attend(*xs)), None,
                                (chunks, jnp.arange(t // c) * c))  # [t/c, B, h, c, dh]
            y = y.transpose(1, 2, 0, 3, 4).reshape(b, self.num_heads, t, self.d_head)
        return self.out(y.transpose(0, 2, 1, 3).reshape(b, t, d))

    def init_cache(self, batch_size: int, length: int, dtype=jnp.float32) -> KVCache:
        shape = (batch_size, self.num_heads, length, self.d_head)
        return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))

    def decode_step(self, x_t: Array, cache: KVCache, t: Array) -> tuple[Array, KVCache]:
        """One position: ``x_t [B, d]`` at index ``t`` -> ``(y_t [B, d], updated cache)``."""
        b, d = x_t.shape
        q, k, v = jnp.split(self.qkv(x_t), 3, axis=-1)  # [B, d] each
        q, k, v = (a.reshape(b, self.num_heads, 1, self.d_head) for a in (q, k, v))
        keys = jax.lax.dynamic_update_slice(cache.keys, k, (0, 0, t, 0))  # [B, h, T, dh]
        values = jax.lax.dynamic_update_slice(cache.values, v, (0, 0, t, 0))
        y = _causal_attention(q, keys, values, first=t).reshape(b, d)  # sees positions <= t
        return self.out(y), KVCache(keys, values)


__all__ = ["CausalSelfAttention", "KVCache"]
