"""``jax.random.uniform`` / ``normal``, bit for bit, with the Threefry hash unrolled.

Why: on CPU, JAX lowers the ``threefry2x32`` hash (20 rounds of ``x0 += x1;
x1 = rotl(x1, r) ^ x0`` with a key injection every 4 rounds) as a ``fori_loop`` over its 5
groups of rounds, so XLA writes and re-reads the ``[*shape]`` uint32 arrays 5 times and
cannot fuse the hash with what consumes it. Written as plain ``jnp`` ops (the same maths,
unrolled), the hash fuses into one elementwise loop with its consumer (e.g. the
``u < sigmoid(logits)`` of a Bernoulli draw).
Speed: 3x faster uniforms for an RBM Gibbs sweep on CPU (timed: docs/PERFORMANCE_NOTES.md).

The outputs are IDENTICAL to ``jax.random.uniform(key, shape)`` /
``jax.random.normal(key, shape)`` (``tests/test_mcmc_rng.py``): same key, same numbers, so
swapping them in changes no random stream (for a ``[minval, maxval)`` other than ``[0, 1)``
under jit; evaluated eagerly, op by op, ``u * (max - min) + min`` is not fused into an FMA
as in jax.random's own jitted function and may differ in the last bit). This holds for what
JAX does by default:

* a typed ``threefry2x32`` key (``jax.random.key(seed)``) or a raw ``uint32[2]`` key when
  that is the default implementation;
* ``jax_threefry_partitionable`` on (JAX's default): element ``i`` of the flattened output
  is ``t0 ^ t1`` with ``(t0, t1) = threefry2x32(key, (i >> 32, i & 0xffffffff))``;
* float32 output, fewer than ``2^32`` elements.

Anything else (``impl="rbg"``, ``"philox4x32"`` ... keys, other dtypes, the non-partitionable
mode) is handed to ``jax.random`` unchanged, so any typed key works and the key
implementation stays the user's choice.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.types import Array, PRNGKey

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def threefry2x32(k0: Array, k1: Array, x0: Array, x1: Array) -> tuple[Array, Array]:
    """Threefry-2x32 (20 rounds) of the counter ``(x0, x1)`` under the key ``(k0, k1)``.

    ``ks = (k0, k1, k0 ^ k1 ^ 0x1BD11BDA)``; ``x += (ks0, ks1)``; then 5 groups of 4 rounds
    ``x0 += x1; x1 = rotl(x1, r) ^ x0`` (rotations alternate ``(13, 15, 26, 6)`` /
    ``(17, 29, 16, 24)``), group ``g`` ending with ``x += (ks[g+1], ks[g+2] + g + 1)``
    (indices mod 3). All uint32, broadcasting.
    """
    ks = (k0, k1, k0 ^ k1 ^ _PARITY)
    x0 = x0 + ks[0]
    x1 = x1 + ks[1]
    for group in range(5):
        for r in _ROTATIONS[group % 2]:
            x0 = x0 + x1
            x1 = ((x1 << np.uint32(r)) | (x1 >> np.uint32(32 - r))) ^ x0
        x0 = x0 + ks[(group + 1) % 3]
        x1 = x1 + ks[(group + 2) % 3] + np.uint32(group + 1)
    return x0, x1


def _threefry_key_data(key: PRNGKey) -> Array | None:
    """The ``uint32[2]`` of a scalar threefry key whose bits this module reproduces, or None."""
    if not jax.config.jax_threefry_partitionable:
        return None
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        if key.shape != () or str(jax.random.key_impl(key)) != "threefry2x32":
            return None
        return jax.random.key_data(key)
    if (key.dtype == jnp.uint32 and key.shape == (2,)
            and jax.config.jax_default_prng_impl == "threefry2x32"):
        return key
    return None


def _bits32(key_data: Array, shape: tuple[int, ...]) -> Array:
    """``jax.random.bits(key, shape)`` (uint32) of a threefry key, partitionable mode."""
    count = jax.lax.iota(jnp.uint32, math.prod(shape)).reshape(shape)  # flat index < 2^32
    t0, t1 = threefry2x32(key_data[0], key_data[1], jnp.zeros_like(count), count)
    return t0 ^ t1


def _fast(key: PRNGKey, shape, dtype) -> tuple[Array | None, tuple[int, ...]]:
    """``(key data or None, shape)``: None when ``jax.random`` must do the draw."""
    shape = tuple(int(d) for d in shape)
    if jnp.dtype(dtype) != jnp.float32 or math.prod(shape) >= 2 ** 32:
        return None, shape
    key = key if isinstance(key, jax.Array) else jnp.asarray(key)
    return _threefry_key_data(key), shape


def _unit_floats(bits: Array) -> Array:
    """uint32 bits -> float32 in ``[0, 1)``: the 23 high bits as the mantissa of ``[1, 2)``."""
    return jax.lax.bitcast_convert_type((bits >> np.uint32(9)) | np.uint32(0x3F800000),
                                        jnp.float32) - np.float32(1.0)


def uniform(key: PRNGKey, shape=(), dtype=jnp.float32, minval=0.0, maxval=1.0) -> Array:
    """``jax.random.uniform(key, shape, dtype, minval, maxval)``, the same numbers."""
    key_data, shape = _fast(key, shape, dtype)
    if key_data is None:
        return jax.random.uniform(key, shape, dtype, minval, maxval)
    minval = jnp.asarray(minval, jnp.float32)
    maxval = jnp.asarray(maxval, jnp.float32)
    floats = _unit_floats(_bits32(key_data, shape))
    return jnp.maximum(minval, floats * (maxval - minval) + minval)


def normal(key: PRNGKey, shape=(), dtype=jnp.float32) -> Array:
    """``jax.random.normal(key, shape, dtype)``: ``sqrt(2) erfinv(u)``, ``u ~ U[-1+, 1)``."""
    key_data, shape = _fast(key, shape, dtype)
    if key_data is None:
        return jax.random.normal(key, shape, dtype)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0), dtype=np.float32)
    u = uniform(key, shape, jnp.float32, lo, np.float32(1.0))
    return np.float32(np.sqrt(2)) * jax.lax.erf_inv(u)


def bernoulli_from_probs(key: PRNGKey, probs: Array) -> Array:
    """``(uniform(key, probs.shape) < probs)`` as float32 in {0, 1}: ``P(1) = probs``."""
    return (uniform(key, probs.shape) < probs).astype(jnp.float32)


__all__ = ["threefry2x32", "uniform", "normal", "bernoulli_from_probs"]
