"""The unrolled-Threefry ``uniform``/``normal`` give exactly jax.random's numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.mcmc import rng

SHAPES = [(), (7,), (3, 5), (100, 784), (2, 3, 4)]


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))


@pytest.mark.parametrize("shape", SHAPES)
def test_uniform_and_normal_are_bit_identical_to_jax_random(shape):
    key = jax.random.key(42)
    _same(jax.jit(rng.uniform, static_argnums=1)(key, shape), jax.random.uniform(key, shape))
    _same(jax.jit(rng.normal, static_argnums=1)(key, shape), jax.random.normal(key, shape))
    # a shifted range: identical under jit (eagerly, op by op, ``u * 5 - 2`` is not fused
    # into one FMA as it is inside jax.random's own jitted uniform: last-bit differences)
    shifted = jax.jit(lambda k: rng.uniform(k, shape, minval=-2.0, maxval=3.0))
    _same(shifted(key), jax.random.uniform(key, shape, minval=-2.0, maxval=3.0))
    # eager (no jit) and the legacy raw uint32[2] key
    raw = jax.random.PRNGKey(3)
    _same(rng.uniform(raw, shape), jax.random.uniform(raw, shape))
    _same(rng.normal(raw, shape), jax.random.normal(raw, shape))


def test_vmapped_keys_and_bernoulli_draws_match_jax_random():
    keys = jax.random.split(jax.random.key(0), 6)
    probs = jax.random.uniform(jax.random.key(1), (6, 40))
    _same(jax.vmap(lambda k: rng.normal(k, (3, 4)))(keys),
          jax.vmap(lambda k: jax.random.normal(k, (3, 4)))(keys))
    ours = jax.jit(jax.vmap(rng.bernoulli_from_probs))(keys, probs)
    ref = jax.vmap(lambda k, p: (jax.random.uniform(k, p.shape) < p).astype(jnp.float32))(
        keys, probs)
    _same(ours, ref)
    # a wrong hash (one rotation changed) would be caught
    assert not np.array_equal(np.asarray(rng.threefry2x32(*[jnp.uint32(1)] * 4)),
                              np.asarray(rng.threefry2x32(*[jnp.uint32(1)] * 3,
                                                          jnp.uint32(2))))


@pytest.mark.parametrize("impl", ["rbg", "unsafe_rbg", "philox4x32"])
def test_other_key_implementations_fall_back_to_jax_random(impl):
    key = jax.random.key(5, impl=impl)
    _same(rng.uniform(key, (4, 9)), jax.random.uniform(key, (4, 9)))
    _same(rng.normal(key, (4, 9)), jax.random.normal(key, (4, 9)))
    # float16 and non-partitionable threefry also fall back
    key = jax.random.key(5)
    _same(rng.normal(key, (8,), jnp.float16), jax.random.normal(key, (8,), jnp.float16))
    with jax.threefry_partitionable(False):
        _same(rng.uniform(key, (4, 9)), jax.random.uniform(key, (4, 9)))
