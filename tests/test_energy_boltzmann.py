"""Boltzmann machines and RBMs: exact log Z by enumeration, Gibbs samples vs the exact law."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import mcmc
from jaxgen.energy import (BernoulliRBM, FullyVisibleBM, GaussianBernoulliRBM,
                           all_binary_states)
from tests.testing import random_rbm


def _fvbm(seed=0, scale=2.0):
    model = FullyVisibleBM(10, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    model.weights[...] = jnp.asarray(scale * rng.normal(size=(10, 10)), jnp.float32)
    model.bias[...] = jnp.asarray(rng.normal(size=10) - 1.0, jnp.float32)
    return model


_rbm = random_rbm  # tests/testing.py


def _state_index(x):  # [N, D] in {0,1} -> integer index (bit i = unit i)
    return (np.asarray(x).astype(np.int64) << np.arange(x.shape[-1])).sum(-1)


def _tv(samples, probs):
    counts = np.bincount(_state_index(samples), minlength=probs.size)
    return 0.5 * np.abs(counts / counts.sum() - probs).sum()


def _expected_tv_noise(probs, n):
    """E[TV] of n i.i.d. draws ~ 1/2 sum sqrt(2 p (1-p) / (pi n)) (normal approximation)."""
    return 0.5 * np.sum(np.sqrt(2 * probs * (1 - probs) / (math.pi * n)))


def test_fvbm_exact_log_partition_normalizes_and_is_symmetric():
    model = _fvbm()
    states = all_binary_states(10)
    log_z = model.exact_log_partition(chunk_size=64)  # 16 chunks
    np.testing.assert_allclose(log_z, jax.nn.logsumexp(-model.energy(states)), rtol=1e-6)
    model.log_z[...] = log_z
    np.testing.assert_allclose(jnp.sum(jnp.exp(model.log_prob(states))), 1.0, rtol=1e-5)
    j = model.coupling()
    np.testing.assert_allclose(j, j.T)
    assert np.all(np.diag(j) == 0)
    # the closed-form conditional equals the difference of log densities
    x = states[123]
    for i in (0, 4, 9):
        diff = (-model.energy(x.at[i].set(1.0)[None]) + model.energy(x.at[i].set(0.0)[None]))[0]
        np.testing.assert_allclose(model.conditional_logit(x, i), diff, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="num_bits"):
        FullyVisibleBM(40, rngs=nnx.Rngs(0)).exact_log_partition()


def test_fvbm_site_gibbs_matches_enumerated_distribution():
    model = _fvbm()
    states = all_binary_states(10)
    probs = np.asarray(jax.nn.softmax(-model.energy(states)), np.float64)
    n = 1000 * 100
    assert _expected_tv_noise(probs, n) < 0.012  # the threshold below is meaningful
    x0 = jax.random.bernoulli(jax.random.key(0), 0.5, (1000, 10)).astype(jnp.int32)
    result = mcmc.run_chains(jax.random.key(1), model.gibbs_kernel(), x0, 100, num_burnin=30,
                             thin=2)
    samples = np.asarray(result.samples).reshape(-1, 10)
    assert samples.shape[0] == n
    tv = _tv(samples, probs)
    print(f"FVBM 10 units: TV = {tv:.4f} (i.i.d. noise level {_expected_tv_noise(probs, n):.4f})")
    assert tv < 0.02
    # the generic kernel (log-odds from two log-density evaluations) targets the same law
    generic = mcmc.binary_gibbs(lambda x: -model.energy(x[None])[0])
    result = mcmc.run_chains(jax.random.key(2), generic, x0[:200], 100, num_burnin=30, thin=2)
    assert _tv(np.asarray(result.samples).reshape(-1, 10), probs) < 0.05
    # a sampler of the wrong law is caught: one sweep from uniform noise is not converged
    wrong = np.asarray(jax.random.bernoulli(jax.random.key(3), 0.5, (n, 10)))
    assert _tv(wrong, probs) > 0.3


@pytest.mark.parametrize("precision", ["float32", "bf16x2"])
def test_rbm_block_gibbs_matches_enumerated_distribution(precision):
    model = _rbm()
    model.precision = precision  # bf16x2: v W and h W^T as two bfloat16 passes
    states = all_binary_states(10)
    log_z = model.exact_log_partition()
    # summing over hidden (H=6 < V=10) and over visible must agree
    np.testing.assert_allclose(log_z, jax.nn.logsumexp(-model.free_energy(states)), rtol=1e-5)
    probs = np.asarray(jax.nn.softmax(-model.free_energy(states)), np.float64)
    n = 1000 * 100
    assert _expected_tv_noise(probs, n) < 0.012
    x0 = jax.random.bernoulli(jax.random.key(0), 0.5, (1000, 10)).astype(jnp.int32)
    result = mcmc.run_chains(jax.random.key(1), model.gibbs_kernel(), x0, 100, num_burnin=50,
                             thin=2)
    samples = np.asarray(result.samples).reshape(-1, 10)
    tv = _tv(samples, probs)
    print(f"RBM 10x6: TV = {tv:.4f} (i.i.d. noise level {_expected_tv_noise(probs, n):.4f})")
    assert tv < 0.02
    # model.sample (batched Gibbs from noise) draws from the same law
    model.sample_steps = 100
    drawn = np.asarray(model.sample(jax.random.key(5), 20000))
    assert drawn.dtype == np.int32 and drawn.shape == (20000, 10)
    assert _tv(drawn, probs) < 0.05


def test_rbm_log_partition_enumerating_hidden_or_visible_agree():
    wide = _rbm(seed=1, num_visible=5, num_hidden=12)  # V < H: enumerate the visible layer
    tall = _rbm(seed=1, num_visible=12, num_hidden=5)
    for model in (wide, tall):
        v = all_binary_states(model.num_visible)
        h = all_binary_states(model.num_hidden)
        # brute force over the joint
        joint = (v @ model.visible_bias[...])[:, None] + (h @ model.hidden_bias[...])[None] + (
            v @ model.weights[...] @ h.T)
        np.testing.assert_allclose(model.exact_log_partition(chunk_size=8),
                                   jax.nn.logsumexp(joint), rtol=1e-5)
    model = tall
    model.log_z[...] = model.exact_log_partition()
    states = all_binary_states(12).reshape(-1, 12)
    np.testing.assert_allclose(jnp.sum(jnp.exp(model.log_prob(states))), 1.0, rtol=1e-4)


def test_gaussian_bernoulli_rbm_log_partition_and_conditionals():
    model = GaussianBernoulliRBM(2, 3, rngs=nnx.Rngs(0), init_scale=0.8)
    model.visible_bias[...] = jnp.array([0.3, -0.5])
    model.log_sigma[...] = jnp.log(jnp.array([0.7, 1.3]))
    model.hidden_bias[...] = jnp.array([0.2, -0.4, 0.1])
    # numerical integration of exp(-F(v)) on a fine grid
    grid = jnp.linspace(-12, 12, 1201)
    xx, yy = jnp.meshgrid(grid, grid)
    pts = jnp.stack([xx.ravel(), yy.ravel()], -1)
    cell = float(grid[1] - grid[0]) ** 2
    numeric = jax.nn.logsumexp(-model.free_energy(pts)) + math.log(cell)
    np.testing.assert_allclose(model.exact_log_partition(), numeric, rtol=1e-4)
    # block Gibbs reproduces the mean of the exact density
    probs = jax.nn.softmax(-model.free_energy(pts))
    mean = probs @ pts
    x0 = jnp.zeros((500, 2))
    result = mcmc.run_chains(jax.random.key(0), model.gibbs_kernel(), x0, 200, num_burnin=20)
    np.testing.assert_allclose(np.asarray(result.samples).reshape(-1, 2).mean(0), mean,
                               atol=0.05)
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        model.free_energy(jnp.zeros((4, 3)))
