"""Categorical distributions: three samplers and the log-probability.

A categorical over ``C`` outcomes is given by non-negative weights ``probs [..., C]``
(normalized internally) or by ``logits [..., C]`` (``probs = softmax(logits)``). The leading
axes are a *batch* of independent categoricals, e.g. one per pixel of a factorized model.

Costs. Sampling a joint distribution over ``D`` dimensions with ``C`` outcomes each by
treating it as one categorical needs ``C**D`` levels (a table of every possible example);
a factorized model, or an autoregressive one that samples one dimension at a time, needs
only ``D`` categoricals of ``C`` levels, ``D * C`` numbers. Per draw from one categorical:

=============================  ===============  ==================================
sampler                        setup            per draw
=============================  ===============  ==================================
`sample_inverse_cdf`           O(C) cumsum      O(log C) binary search, 1 uniform
`sample_alias` (Walker/Vose)   O(C) table       O(1): 1 uniform index + 1 coin
`sample_gumbel_max`            none             O(C): C Gumbel variates + argmax
=============================  ===============  ==================================

Sample shapes follow `jax.random.categorical`: the batch shape of the distribution is
``batch_shape = probs.shape[:-1]``; ``shape=None`` draws one sample per batch entry, and an
explicit ``shape`` is the output shape, which must end in dimensions that ``batch_shape``
broadcasts to (numpy rules). So ``probs [C]`` with ``shape=(n,)`` gives ``n`` draws, and
``probs [D, C]`` with ``shape=(n, D)`` gives ``n`` draws of a factorized ``D``-vector. Draws
are int32 level indices. Probabilities are validated eagerly (shape; non-negative, finite,
positive total per row when the array is concrete), never on traced values.

Everything here is a pure function of arrays and keys and is jit/vmap-safe, except
`build_alias_table`, a one-off NumPy setup step on concrete probabilities (see there).
"""
from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.checks import (check_levels, check_probs, check_table_shape, is_concrete,
                           resolve_sample_shape)
from jaxgen.types import Array, PRNGKey, Shape


# ----------------------------------------------------------------------------------------
# Helpers.


def _row_index(batch_shape: Shape, shape: Shape) -> Array | int:
    """For each entry of an output of ``shape``, the flat index of its distribution."""
    num_rows = math.prod(batch_shape)
    if num_rows == 1:
        return 0
    rows = jnp.arange(num_rows, dtype=jnp.int32).reshape(batch_shape)
    return jnp.broadcast_to(rows, shape)


def _as_float(x) -> Array:
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


# ----------------------------------------------------------------------------------------
# Log-probability.


def categorical_log_prob(logits: Array, x: Array) -> Array:
    """log p(x) = logits[x] - logsumexp(logits), elementwise over the batch.

    Args:
      logits: ``[..., C]`` unnormalized log-probabilities (``-inf`` marks impossible levels).
      x: integer levels in ``0 .. C-1``; ``logits.shape[:-1]`` and ``x.shape`` broadcast
        together (e.g. ``logits [D, C]`` with ``x [B, D]``), without materializing the
        broadcast ``[B, D, C]`` array.

    Returns:
      ``log p(x)`` with the broadcast shape, in nats. Out-of-range levels give NaN (checked
      eagerly, raising ValueError, when ``x`` is concrete).

    Raises:
      TypeError: non-integer (also boolean) ``x``.
      ValueError: ``logits`` not ``[..., C]``; shapes that do not broadcast; concrete ``x``
        outside ``[0, C)`` (also when called eagerly under ``lax.map``/``jit`` on an array
        the traced function closes over).
    """
    logits, x = jnp.asarray(logits), jnp.asarray(x)
    check_table_shape(logits, "logits")
    num_levels = logits.shape[-1]
    # The range is checked only on concrete x (tracers skip it); traced out-of-range levels
    # give NaN below.
    check_levels(x, num_levels, "categorical_log_prob", allow_bool=False)
    try:
        shape = jnp.broadcast_shapes(logits.shape[:-1], x.shape)
    except ValueError:
        raise ValueError(f"logits batch shape {logits.shape[:-1]} (logits {logits.shape}) does "
                         f"not broadcast with x shape {x.shape}") from None
    log_probs = jax.nn.log_softmax(logits, axis=-1).reshape(-1)  # [R * C]
    x = jnp.broadcast_to(x, shape).astype(jnp.int32)
    flat = _row_index(logits.shape[:-1], shape) * num_levels + jnp.clip(x, 0, num_levels - 1)
    out = log_probs[flat]
    return jnp.where((x >= 0) & (x < num_levels), out, jnp.nan)


# ----------------------------------------------------------------------------------------
# Inverse CDF.


def _count_leq_step(_, carry):
    """One halving step of `_count_leq`. Module-level, with every input in the carry, so
    eager calls reuse the traced and compiled loop instead of recompiling it each time."""
    table, row_start, u, n, step, count = carry
    candidate = count + step
    value = table.at[row_start + jnp.minimum(candidate, n) - 1].get(mode="promise_in_bounds")
    count = jnp.where((candidate <= n) & (value <= u), candidate, count)
    return table, row_start, u, n, step // 2, count


def _count_leq(table: Array, row_start: Array | int, u: Array, n: int) -> Array:
    """Branchless binary search: ``#{j < n : table[row_start + j] <= u}`` per entry of u.

    ``table`` is flat and each row's first ``n`` entries are sorted. Tries steps of
    ``2**(k-1), ..., 2, 1`` with ``k = bit_length(n) = ceil(log2(n + 1))``, keeping a step
    when the entry it lands on is still ``<= u``: ``k`` gathers per query, in a
    `lax.fori_loop` (unrolling it makes XLA keep ``k`` live buffers and runs slower).
    """
    num_steps = n.bit_length()
    carry = (table, jnp.asarray(row_start, jnp.int32), u, jnp.int32(n),
             jnp.int32(1 << max(num_steps - 1, 0)), jnp.zeros(u.shape, jnp.int32))
    return jax.lax.fori_loop(0, num_steps, _count_leq_step, carry)[-1]


def sample_inverse_cdf(key: PRNGKey, probs: Array,
                       shape: int | Sequence[int] | None = None) -> Array:
    """Inverse-CDF sampling: x = #{k : cdf[k] <= u}, u ~ U[0, 1).

    The unit interval is cut into ``C`` levels of lengths ``p_k`` at the cumulative sums
    ``cdf[k] = sum_{j<=k} p_j / sum_j p_j``; the level holding ``u`` is found by binary
    search (``searchsorted(cdf, u, side='right')``). Zero-probability levels are empty
    intervals and are never drawn. ``cdf`` is divided by its last entry so it ends at
    exactly 1 > u, and the index is clipped to ``C - 1`` against float round-off.

    Cost: O(C) for the cumsum, then O(log C) per draw. Precision is float32: ``u`` lies on a
    ``2**-23`` grid, so probabilities are resolved to about 1e-7 absolute; for very many
    tiny probabilities prefer `sample_alias`, whose coin is relative to one bucket.

    Args:
      key: PRNG key.
      probs: ``[..., C]`` non-negative weights (need not sum to 1).
      shape: output shape; see the module docstring (default ``probs.shape[:-1]``).

    Returns:
      int32 levels of shape ``shape``.
    """
    probs = _as_float(probs)
    check_probs(probs)
    batch_shape, num_levels = probs.shape[:-1], probs.shape[-1]
    shape = resolve_sample_shape(shape, batch_shape)
    cdf = jnp.cumsum(probs, axis=-1)
    cdf = (cdf / cdf[..., -1:]).reshape(-1)  # [R * C]
    u = jax.random.uniform(key, shape, cdf.dtype)
    row_start = _row_index(batch_shape, shape) * num_levels
    # cdf[C-1] == 1 > u, so only the first C - 1 entries need searching.
    x = _count_leq(cdf, row_start, u, num_levels - 1)
    return jnp.minimum(x, num_levels - 1)


# ----------------------------------------------------------------------------------------
# Gumbel-max.


def sample_gumbel_max(key: PRNGKey, logits: Array,
                      shape: int | Sequence[int] | None = None) -> Array:
    """Gumbel-max sampling: x = argmax_k (logits_k + g_k), g_k ~ Gumbel(0, 1) i.i.d.

    Exact for any logits (``-inf`` entries are never drawn) and needs no normalization,
    but costs O(C) random numbers and memory per draw (``shape + (C,)`` noise).

    Args:
      key: PRNG key.
      logits: ``[..., C]`` unnormalized log-probabilities.
      shape: output shape; see the module docstring (default ``logits.shape[:-1]``).

    Returns:
      int32 levels of shape ``shape``.
    """
    logits = _as_float(logits)
    check_table_shape(logits, "logits")
    shape = resolve_sample_shape(shape, logits.shape[:-1])
    noise = jax.random.gumbel(key, shape + logits.shape[-1:], logits.dtype)
    return jnp.argmax(logits + noise, axis=-1).astype(jnp.int32)


# ----------------------------------------------------------------------------------------
# Walker's alias method.


class AliasTable(NamedTuple):
    """Walker's alias table (a pytree: pass it through jit/vmap like any array).

    Bucket ``i`` of ``C`` equal buckets holds level ``i`` with probability ``prob[i]`` and
    level ``alias[i]`` otherwise, so ``p_k = (prob[k] + sum_{i: alias[i]=k} (1 - prob[i])) / C``.
    """

    prob: Array  # [..., C] float32
    alias: Array  # [..., C] int32


def _alias_row(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias construction for one row of probabilities (float64, sums to 1).

    Scale ``q = C p``. Items with ``q < 1`` ("small") are topped up by items with ``q >= 1``
    ("large"). Vose pops one small and one large per step; here the same pairing is the
    "sweep" order (Huebschle-Schneider & Sanders 2019), written with prefix sums so that it
    vectorizes: with small deficits ``d_i = 1 - q_i`` (cumulative ``D``, ``D_0 = 0``) and
    large excesses ``e_j = q_j - 1`` (cumulative ``E``),

    * small ``i`` takes its alias from the first large ``j`` with ``E_j > D_{i-1}``;
    * large ``j`` keeps ``prob = 1 - (D_{m_j} - E_j)`` where ``m_j = #{i : D_{i-1} < E_j}``
      (the overshoot of its last small), and the rest of its bucket aliases large ``j+1``;
    * the last large keeps its whole bucket.

    Both ranks come from one stable merge of the sorted sequences ``E`` and ``D_{i-1}``.
    """
    num_levels = p.size
    q = p * num_levels
    small, large = np.flatnonzero(q < 1.0), np.flatnonzero(q >= 1.0)
    deficit_cum = np.concatenate([[0.0], np.cumsum(1.0 - q[small])])  # D_0 .. D_a, sorted
    deficit_start = deficit_cum[:-1]  # D_{i-1}
    excess_cum = np.cumsum(q[large] - 1.0)  # E_j, sorted
    # Stable sort of two sorted runs is a linear merge (timsort); ties put E first.
    merged = np.argsort(np.concatenate([excess_cum, deficit_start]), kind="stable")
    rank = np.empty_like(merged)
    rank[merged] = np.arange(merged.size)
    owner = rank[large.size:] - np.arange(small.size)  # #{j : E_j <= D_{i-1}}
    filled = rank[:large.size] - np.arange(large.size)  # m_j = #{i : D_{i-1} < E_j}

    prob = np.ones(num_levels)
    alias = np.arange(num_levels)
    # Smalls: keep q_i, alias their owner. Round-off can leave a last small with no owner:
    # it is then full to within float64 error and keeps its whole bucket.
    has_owner = owner < large.size
    prob[small[has_owner]] = q[small[has_owner]]
    alias[small[has_owner]] = large[owner[has_owner]]
    # Larges: keep 1 - overshoot, alias the next large; the last one keeps everything.
    overshoot = deficit_cum[filled] - excess_cum  # D_{m_j} - E_j
    prob[large[:-1]] = np.clip(1.0 - overshoot[:-1], 0.0, 1.0)
    alias[large[:-1]] = large[1:]
    return prob, alias


def build_alias_table(probs: Array) -> AliasTable:
    """Builds Walker's alias table with Vose's algorithm in O(C) per distribution.

    Implemented in NumPy float64 on *concrete* probabilities: it is a one-off setup step
    (like building any lookup table), done eagerly before the jitted sampling, and float64
    keeps the prefix sums exact enough for large C. Batched ``probs [..., C]`` build one
    table per row (a Python loop over rows).

    Args:
      probs: ``[..., C]`` non-negative weights (need not sum to 1), concrete.

    Returns:
      `AliasTable` with ``prob [..., C]`` float32 and ``alias [..., C]`` int32.

    Raises:
      TypeError: if ``probs`` is a tracer (called inside jit/vmap/grad).
      ValueError: bad shape, negative/non-finite entries or a zero row.
    """
    if not is_concrete(probs):
        raise TypeError("build_alias_table runs in NumPy on concrete probabilities; build the "
                        "table outside jit/vmap and pass the AliasTable (a pytree) in")
    probs = np.asarray(probs, dtype=np.float64)
    check_probs(probs)
    rows = probs.reshape(-1, probs.shape[-1])
    tables = [_alias_row(row / row.sum()) for row in rows]
    prob = np.stack([t[0] for t in tables]).reshape(probs.shape)
    alias = np.stack([t[1] for t in tables]).reshape(probs.shape)
    return AliasTable(jnp.asarray(prob, jnp.float32), jnp.asarray(alias, jnp.int32))


def sample_alias(key: PRNGKey, table: AliasTable,
                 shape: int | Sequence[int] | None = None) -> Array:
    """Alias sampling: pick a bucket ``i ~ U{0..C-1}``, keep ``i`` if ``coin < prob[i]``,
    else return ``alias[i]``. O(1) per draw: one uniform index, one uniform coin, two
    gathers. Build ``table`` once with `build_alias_table`.

    Args:
      key: PRNG key.
      table: `AliasTable` with ``prob, alias [..., C]``.
      shape: output shape; see the module docstring (default ``table.prob.shape[:-1]``).

    Returns:
      int32 levels of shape ``shape``.
    """
    prob, alias = jnp.asarray(table.prob), jnp.asarray(table.alias)
    check_table_shape(prob, "table.prob")
    if alias.shape != prob.shape:
        raise ValueError(f"table.alias shape {alias.shape} != table.prob shape {prob.shape}")
    batch_shape, num_levels = prob.shape[:-1], prob.shape[-1]
    shape = resolve_sample_shape(shape, batch_shape)
    index_key, coin_key = jax.random.split(key)
    bucket = jax.random.randint(index_key, shape, 0, num_levels, dtype=jnp.int32)
    coin = jax.random.uniform(coin_key, shape, prob.dtype)
    flat = _row_index(batch_shape, shape) * num_levels + bucket
    keep = coin < prob.reshape(-1).at[flat].get(mode="promise_in_bounds")
    return jnp.where(keep, bucket, alias.reshape(-1).at[flat].get(mode="promise_in_bounds"))


__all__ = ["AliasTable", "build_alias_table", "categorical_log_prob", "sample_alias",
           "sample_gumbel_max", "sample_inverse_cdf"]
