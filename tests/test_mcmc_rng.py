"""The unrolled-Threefry ``uniform``/``normal`` give exactly jax.random's numbers."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.extend.random import threefry_2x32

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
    # a shifted range, ``u * 5 - 2`` from the same ``u``: equal up to the rounding of that
    # multiply-add (half an ulp of 5, 2.4e-7), since whether XLA contracts it into one FMA
    # depends on the program and the code generator (e.g. the tests' XLA flags)
    shifted = jax.jit(lambda k: rng.uniform(k, shape, minval=-2.0, maxval=3.0))(key)
    reference = jax.random.uniform(key, shape, minval=-2.0, maxval=3.0)
    assert shifted.dtype == reference.dtype and shifted.shape == reference.shape
    np.testing.assert_allclose(shifted, reference, rtol=0, atol=2.4e-7)
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


def test_threefry_hash_equals_jax_threefry():
    # Random123's known answers (the vectors JAX's own tests use) ...
    known = [((0x0, 0x0), (0x0, 0x0), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF,) * 2, (0xFFFFFFFF,) * 2, (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for key, count, expected in known:
        out = rng.threefry2x32(*(jnp.uint32(v) for v in key + count))
        assert tuple(int(v) for v in out) == expected, (key, count)
    # ... and jax's threefry_2x32 (the hash under jax.random) on random keys and counters;
    # it hashes the pairs (count[i], count[n + i]) of a flat [2n] count
    gen = np.random.default_rng(0)
    keys = gen.integers(0, 2 ** 32, (6, 2), dtype=np.uint32)
    x0, x1 = gen.integers(0, 2 ** 32, (2, 6, 500), dtype=np.uint32)
    ours = jax.jit(rng.threefry2x32)(keys[:, :1], keys[:, 1:], x0, x1)  # [6, 500] each
    ref = jax.vmap(threefry_2x32)(keys, np.concatenate([x0, x1], axis=1))  # [6, 1000]
    np.testing.assert_array_equal(np.concatenate(ours, axis=1), ref)


@pytest.mark.parametrize("shape", [(1,), (7,), (3, 5), (100, 784)])
def test_bits_are_jax_random_bits(shape):
    """All 32 bits, not only the 23 that ``uniform`` keeps."""
    for seed in (0, 42, 2 ** 31 + 7):
        key = jax.random.key(seed)
        ours = jax.jit(rng._bits32, static_argnums=1)(jax.random.key_data(key), shape)
        np.testing.assert_array_equal(ours, jax.random.bits(key, shape, jnp.uint32))


def test_the_unrolled_hash_is_what_runs():
    """The comparisons above test the unrolled path: a threefry key never reaches
    ``jax.random``'s ``random_bits``, other key implementations do."""
    def primitives(key):
        jaxpr = jax.make_jaxpr(lambda k: (rng.uniform(k, (3, 4)), rng.normal(k, (5,))))(key)
        return str(jaxpr)
    assert "random_bits" not in primitives(jax.random.key(0))
    assert "random_bits" not in primitives(jax.random.PRNGKey(0))
    assert "random_bits" in primitives(jax.random.key(0, impl="rbg"))


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
