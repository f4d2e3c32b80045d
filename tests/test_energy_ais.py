"""AIS against exact log Z: a 784x16 RBM (hidden layer enumerated), a Gaussian-Bernoulli
RBM, and a 2D energy normalized on a grid."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import mcmc
from jaxgen.energy import BernoulliRBM, GaussianBernoulliRBM
from jaxgen.energy.ais import (base_rate_logits, fvbm_ais, geometric_path_ais, log_mean_exp_with_error,
                               rbm_ais, temperature_schedule)
from jaxgen.mcmc.run import jit


def _mnist_like_rbm(seed=0):
    """784x16 RBM with structured weights: each hidden unit prefers a random blob."""
    rng = np.random.default_rng(seed)
    model = BernoulliRBM((28, 28, 1), 16, rngs=nnx.Rngs(seed))
    yy, xx = np.mgrid[:28, :28]
    w = np.zeros((784, 16))
    for j in range(16):
        cy, cx = rng.uniform(6, 22, size=2)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 20.0).ravel()
        w[:, j] = 4.0 * blob - 0.3 * blob.mean() + 0.1 * rng.normal(size=784)
    model.weights[...] = jnp.asarray(w, jnp.float32)
    model.visible_bias[...] = jnp.asarray(rng.normal(-2.0, 0.5, size=784), jnp.float32)
    model.hidden_bias[...] = jnp.asarray(rng.normal(-1.0, 0.5, size=16), jnp.float32)
    return model


def test_temperature_schedules_are_increasing_from_0_to_1():
    for kind in ("linear", "sigmoid", "piecewise"):
        betas = temperature_schedule(1000, kind)
        assert betas[0] == 0 and betas[-1] == 1 and np.all(np.diff(betas) >= 0), kind
        assert len(betas) == 1000
    with pytest.raises(ValueError, match="kind"):
        temperature_schedule(10, "cubic")


def test_log_mean_exp_with_error():
    lw = jnp.log(jnp.array([1.0, 2.0, 3.0, 4.0]))
    log_mean, se, ess = log_mean_exp_with_error(lw)
    np.testing.assert_allclose(log_mean, math.log(2.5), rtol=1e-6)
    np.testing.assert_allclose(se, np.std([1, 2, 3, 4], ddof=1) / (2 * 2.5), rtol=1e-5)
    np.testing.assert_allclose(ess, 100 / 30, rtol=1e-5)


def test_ais_matches_exact_log_z_of_784x16_rbm():
    model = _mnist_like_rbm()
    exact = float(model.exact_log_partition())
    # base rates of samples of the model itself stand in for the data's base rates
    model.sample_steps = 200
    base = base_rate_logits(np.asarray(model.sample(jax.random.key(0), 500)))
    run = jit(lambda key: rbm_ais(key, model, temperature_schedule(3000, "sigmoid"), 100,
                                  base_visible_logits=base))
    result = run(jax.random.key(1))
    err = float(result.log_z) - exact
    print(f"784x16 RBM: exact log Z {exact:.3f}, AIS {float(result.log_z):.3f} "
          f"+- {float(result.log_z_std_err):.3f} (ESS {float(result.ess):.1f} of 100)")
    assert abs(err) < 0.1
    assert 0 < float(result.log_z_std_err) < 0.1
    # too few temperatures is visibly worse: AIS is biased low (a stochastic lower bound)
    short = jit(lambda key: rbm_ais(key, model, temperature_schedule(10, "linear"), 100))(
        jax.random.key(1))
    print(f"  10 temperatures from a uniform base: {float(short.log_z):.3f}")
    assert float(short.log_z) < exact - 0.5


def test_ais_gaussian_bernoulli_rbm():
    model = GaussianBernoulliRBM(20, 8, rngs=nnx.Rngs(3), init_scale=0.5)
    exact = float(model.exact_log_partition())
    result = jit(lambda key: rbm_ais(key, model, temperature_schedule(500), 200))(
        jax.random.key(0))
    assert abs(float(result.log_z) - exact) < 0.05, (float(result.log_z), exact)


def test_geometric_path_ais_on_a_2d_energy():
    """A two-component mixture energy; exact log Z from a grid."""
    def energy(x):  # [2] -> scalar
        a = -0.5 * jnp.sum((x - jnp.array([1.5, 0.0])) ** 2) / 0.3
        b = -0.5 * jnp.sum((x + jnp.array([1.5, 0.0])) ** 2) / 0.3
        return -jnp.logaddexp(a, b + 1.0) - 2.0

    grid = jnp.linspace(-6, 6, 601)
    xx, yy = jnp.meshgrid(grid, grid)
    pts = jnp.stack([xx.ravel(), yy.ravel()], -1)
    exact = float(jax.nn.logsumexp(-jax.vmap(energy)(pts)) + 2 * math.log(grid[1] - grid[0]))
    run = jit(lambda key: geometric_path_ais(
        key, energy, jnp.zeros(2), jnp.full((2,), 2.0), lambda f: mcmc.mala(f, 0.1),
        temperature_schedule(300), 500, steps_per_temp=2))
    result = run(jax.random.key(0))
    assert abs(float(result.log_z) - exact) < 0.05, (float(result.log_z), exact)


def test_fvbm_ais_matches_exact_log_z():
    from jaxgen.energy import FullyVisibleBM
    model = FullyVisibleBM(16, rngs=nnx.Rngs(0), init_scale=0.6)
    model.bias[...] = jnp.asarray(np.random.default_rng(0).normal(size=16) - 0.5, jnp.float32)
    exact = float(model.exact_log_partition())
    result = jit(lambda key: fvbm_ais(key, model, temperature_schedule(300), 200))(
        jax.random.key(0))
    assert abs(float(result.log_z) - exact) < 0.05, (float(result.log_z), exact)
