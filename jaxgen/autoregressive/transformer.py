"""Causal transformer over the raster sequence (Image-GPT style, Chen et al., 2020).

The ``D`` levels in raster order become tokens. Input ``t`` is the embedding of token
``x_{t-1}`` (a learned start vector at ``t = 0``) plus a learned position embedding; ``L``
pre-LayerNorm blocks ``u <- u + Attn(LN(u))``, ``u <- u + MLP(LN(u))`` with causal
attention give ``theta_t(x_{<t})`` for every ``t`` in one pass (teacher forcing).
Token embeddings are a matrix product with the one-hot input, so the float relaxation used
by the Jacobian test is exact.

Conditional (``num_classes`` or ``context_features``): position 0 reads the start vector
plus the context's embedding, ``u_0 = s + E[y]`` (a learned ``[num_classes, d]`` table,
`jaxgen.nn.context.ContextProjection`; ``s + W c`` for a vector context ``c``). Every
position attends to position 0, so ``theta_t(x_{<t}, y)`` and

    log p(x | y) = sum_t log p(x_t | x_{<t}, y)

factorizes over the raster order as before (Image-GPT's class token).

Real-valued data (``num_levels=None`` and a continuous head, `jaxgen.autoregressive.
continuous_heads`): token ``x_{t-1}`` enters as ``x_{t-1} w`` (``token_embed [1, d]``, a
linear embedding of the value; the position embedding acts as its bias) and ``theta_t``
parameterizes a density on the real line, so ``log p(x)`` is a density in nats (the
readout's bias starts at the head's ``initial_bias``).

`sample` decodes with a key/value cache (`jaxgen.nn.attention.KVCache`): step ``t`` runs
the network on one token; `sample_naive` reruns the whole sequence at every step.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.autoregressive.base import ConditionalAutoregressiveModel, check_temperature
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count
from jaxgen.nn.attention import CausalSelfAttention
from jaxgen.types import Array, PRNGKey
from jaxgen.nn import mixed_precision as mp


class TransformerBlock(nnx.Module):
    """Pre-LN block: ``u + Attn(LN(u))`` then ``u + MLP(LN(u))``."""

    def __init__(self, d_model: int, num_heads: int, mlp_ratio: int, *, query_chunk: int = 0,
                 rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(d_model, rngs=rngs)
        self.attn = CausalSelfAttention(d_model, num_heads, query_chunk=query_chunk, rngs=rngs)
        self.norm2 = nnx.LayerNorm(d_model, rngs=rngs)
        self.mlp_in = mp.Linear(d_model, mlp_ratio * d_model, rngs=rngs)
        self.mlp_out = mp.Linear(mlp_ratio * d_model, d_model, rngs=rngs)

    def _mlp(self, u: Array) -> Array:
        return u + self.mlp_out(jax.nn.gelu(self.mlp_in(self.norm2(u))))

    def __call__(self, u: Array) -> Array:  # [B, T, d]
        return self._mlp(u + self.attn(self.norm1(u)))

    def decode_step(self, u_t: Array, cache, t: Array):  # [B, d]
        y, cache = self.attn.decode_step(self.norm1(u_t), cache, t)
        return self._mlp(u_t + y), cache


class CausalTransformer(ConditionalAutoregressiveModel):
    """Decoder-only transformer with learned positions over ``D`` raster tokens.

    Attributes:
      token_embed: ``nnx.Param [K, d]`` (``[1, d]`` for real values); start ``[d]``;
        positions ``[D, d]``.
      blocks: ``num_layers`` `TransformerBlock`; final LayerNorm and ``Linear(d, P)``.
      context_embed: conditional: `ContextProjection` to ``[B, d]`` (class table
        ``[num_classes, d]`` or ``[F, d]``), added to the start vector; else ``None``.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int | None, *,
                 d_model: int = 64,
                 num_heads: int = 4, num_layers: int = 2, mlp_ratio: int = 4,
                 head: str = "auto", num_mixtures: int = 5, query_chunk: int = 0,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs):
        """``query_chunk``: attention in chunks of queries (`CausalSelfAttention`; 0: off).
        ``num_classes``: class-conditional ``p(x | y)``, ``y in [0, num_classes)``;
        ``context_features``: ``F`` of a vector context ``[B, F]`` (when ``num_classes`` is
        None). Both None: unconditional (and the parameters are those of before).
        ``num_levels=None`` with ``head`` one of ``"gaussian"``, ``"gaussian_mixture"``,
        ``"logistic_mixture"`` (``num_mixtures`` components): real-valued data.

        Raises:
          ValueError: a discrete head with ``num_levels=None``, or a continuous head with
            ``num_levels`` set (`jaxgen.autoregressive.heads.make_head`).
        """
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_levels = None if num_levels is None else int(num_levels)
        self.head = make_head(head, self.num_levels, num_mixtures, allow_continuous=True)
        self.encoding = "real" if self.num_levels is None else "onehot"
        d = self.num_dims
        init = jax.nn.initializers.normal(0.02)
        width = 1 if self.num_levels is None else self.num_levels
        self.token_embed = nnx.Param(init(rngs.params(), (width, d_model)))
        self.start = nnx.Param(init(rngs.params(), (d_model,)))
        self.positions = nnx.Param(init(rngs.params(), (d, d_model)))
        self.blocks = nnx.List([TransformerBlock(d_model, num_heads, mlp_ratio,
                                                 query_chunk=query_chunk, rngs=rngs)
                                for _ in range(num_layers)])
        self.norm = nnx.LayerNorm(d_model, rngs=rngs)
        self.readout = mp.Linear(d_model, self.head.num_params, rngs=rngs)
        if self.is_continuous:  # distinct mixture components (continuous_heads.initial_bias)
            self.readout.bias[...] = jnp.asarray(self.head.initial_bias())
        # Created last, so an unconditional transformer's parameters do not change.
        self._set_context_fields(num_classes, context_features)
        self.context_embed = nnx.data(self._context_projection(d_model, rngs))

    def _start(self, context: Array | None, b: int) -> Array:
        """Position 0's input ``[b, d]``: ``s`` (unconditional) or ``s + E[y]`` / ``s + W c``
        for a checked ``context``."""
        start = jnp.broadcast_to(self.start[...], (b, self.start.shape[-1]))
        if context is None:
            return start
        return start + self.context_embed(context)

    def params_from_inputs(self, inputs: Array, context: Array | None = None) -> Array:
        """``[B, *E, K]`` one-hot (or relaxed; ``[B, *E, 1]`` real values) -> ``[B, *E, P]``
        (conditional: given ``context``, ``[B]`` labels or ``[B, F]`` vectors)."""
        b = inputs.shape[0]
        context = self.check_context(context, b)
        tokens = mp.matmul(inputs.reshape(b, self.num_dims, inputs.shape[-1]),  # B may be 0
                           self.token_embed[...])  # [B, D, d]
        start = self._start(context, b)[:, None]  # [B, 1, d]
        u = jnp.concatenate([start, tokens[:, :-1]], axis=1) + self.positions[...]  # shift
        for block in self.blocks:
            u = block(u)
        return self.readout(self.norm(u)).reshape(b, *self.event_shape, self.head.num_params)


    def sample(self, key: PRNGKey, n: int, context: Array | None = None,
               temperature=1.0) -> Array:
        """KV-cached sampling, one token per ``lax.scan`` step (from ``p(x | y)`` for a
        ``context``; class-conditional with ``None``: class ``i mod num_classes`` for sample
        ``i``); equals `sample_naive` for the same key, context and temperature.
        ``temperature`` ``T``: every conditional at softmax temperature ``T``,
        ``p_T(k) ∝ p(k)^{1/T}`` (finite, ``> 0``; ``T = 1`` is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`); a bad
            ``temperature`` or context.
        """
        n = check_count("n", n)
        temperature = check_temperature("CausalTransformer.sample", temperature)
        start = self._start(self.check_context(context, n, for_sampling=True), n)  # [n, d]
        d = self.num_dims
        keys = jax.random.split(key, d)
        caches = [block.attn.init_cache(n, d) for block in self.blocks]

        def step(carry, inputs):
            prev, caches, levels = carry
            t, key_t = inputs
            u = jnp.where(t == 0, start,
                          mp.matmul(self.encode(prev), self.token_embed[...]))
            u = u + jax.lax.dynamic_index_in_dim(self.positions[...], t, 0, False)  # [n, d]
            new_caches = []
            for block, cache in zip(self.blocks, caches):
                u, cache = block.decode_step(u, cache, t)
                new_caches.append(cache)
            value = self.head.sample(key_t, self.readout(self.norm(u)), temperature)  # [n]
            return (value, new_caches, levels.at[:, t].set(value)), None

        init = (jnp.zeros((n,), self.value_dtype), caches,
                jnp.zeros((n, d), self.value_dtype))
        (_, _, levels), _ = jax.lax.scan(step, init, (jnp.arange(d), keys))
        return levels.reshape(n, *self.event_shape)


__all__ = ["CausalTransformer", "TransformerBlock"]
