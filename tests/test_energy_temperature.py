"""Temperature in the energy-based samplers: draws from ``p_T ∝ exp(-E / T)``.

References are independent of the samplers: enumeration of every state in numpy (the fully
visible BM, the Bernoulli RBM's joint ``(v, h)``), the Gaussian integral over ``v`` of the
Gaussian-Bernoulli RBM's joint, and quadrature on a grid for a 1D neural energy. The TV bound
is `test_ar_enumeration`'s (Jensen + McDiarmid, false-failure probability 1e-6 per check);
moment checks allow 5 standard errors computed from the reference's own moments.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.energy import FullyVisibleBM, GaussianBernoulliRBM, MLPEnergy
from jaxgen.energy.gaussian_energy import GaussianEnergy
from tests.test_ar_enumeration import jit_method, tv_bound
from tests.testing import random_rbm

TEMPERATURE = 0.5
NUM_SAMPLES = 20_000


def binary_states(d: int) -> np.ndarray:
    return np.array(list(itertools.product((0, 1), repeat=d)), np.float64)  # [2^d, d]


def tv_to(samples, probs) -> float:
    flat = np.asarray(samples).reshape(len(samples), -1).astype(np.int64)
    index = flat @ (2 ** np.arange(flat.shape[1] - 1, -1, -1))
    counts = np.bincount(index, minlength=probs.size) / len(samples)
    return 0.5 * float(np.abs(counts - probs).sum())


def normalized(log_weights) -> np.ndarray:
    w = np.exp(log_weights - log_weights.max())
    return w / w.sum()


def _draw(model, temperature, n=NUM_SAMPLES, seed=3):
    return np.asarray(jit_method(model, lambda m, k: m.sample(k, n, temperature=temperature))(
        jax.random.key(seed)))


def test_fully_visible_bm_at_temperature_matches_enumeration():
    d = 5
    model = FullyVisibleBM((d,), rngs=nnx.Rngs(0), init_scale=1.0, sample_sweeps=30)
    model.bias[...] = jnp.asarray(np.random.RandomState(0).normal(size=d), jnp.float32)
    w = np.asarray(model.weights[...], np.float64)
    j = 0.5 * (w + w.T) * (1 - np.eye(d))
    x = binary_states(d)
    energy = -0.5 * np.einsum("si,ij,sj->s", x, j, x) - x @ np.asarray(model.bias[...])
    p_t, p_1 = normalized(-energy / TEMPERATURE), normalized(-energy)
    bound = tv_bound(p_t, NUM_SAMPLES)
    assert 0.5 * np.abs(p_t - p_1).sum() > 2 * bound  # power against ignoring T
    assert tv_to(_draw(model, TEMPERATURE), p_t) < bound


def test_bernoulli_rbm_at_temperature_matches_the_enumerated_tempered_joint():
    """``p_T(v) ∝ sum_h exp(-E(v, h) / T)``, ``E = -b.v - c.h - v W h``, both layers
    enumerated."""
    model = random_rbm(seed=1, num_visible=4, num_hidden=3, scale=1.5)
    model.sample_steps = 30
    w, b, c = (np.asarray(a, np.float64) for a in (model.weights[...],
                                                  model.visible_bias[...],
                                                  model.hidden_bias[...]))
    v, h = binary_states(4), binary_states(3)
    joint = (v @ b)[:, None] + (h @ c)[None, :] + v @ w @ h.T  # -E(v, h): [16, 8]
    log_marginal = lambda t: np.log(np.exp(joint / t).sum(1))
    p_t, p_1 = normalized(log_marginal(TEMPERATURE)), normalized(log_marginal(1.0))
    bound = tv_bound(p_t, NUM_SAMPLES)
    assert 0.5 * np.abs(p_t - p_1).sum() > 2 * bound
    assert tv_to(_draw(model, TEMPERATURE), p_t) < bound


def test_gaussian_bernoulli_rbm_at_temperature_matches_the_integrated_joint():
    """Integrating ``v`` out of ``exp(-E(v, h) / T)``, ``E = |v - b|^2 / (2 sigma^2) - c.h -
    (v / sigma).W h``: ``p_T(h) ∝ exp((c.h + (b / sigma).W h + |W h|^2 / 2) / T)`` and
    ``v | h ~ N(b + sigma W h, T sigma^2)``; the mixture's first two moments per unit."""
    model = GaussianBernoulliRBM(2, 3, rngs=nnx.Rngs(0), sample_steps=30)
    rng = np.random.RandomState(2)
    model.weights[...] = jnp.asarray(1.2 * rng.normal(size=(2, 3)), jnp.float32)
    model.visible_bias[...] = jnp.asarray(rng.normal(size=2), jnp.float32)
    model.hidden_bias[...] = jnp.asarray(rng.normal(size=3), jnp.float32)
    model.log_sigma[...] = jnp.asarray(np.log([0.7, 1.3]), jnp.float32)
    w, b, c = (np.asarray(a, np.float64) for a in (model.weights[...],
                                                  model.visible_bias[...],
                                                  model.hidden_bias[...]))
    sigma = np.array([0.7, 1.3])
    h = binary_states(3)
    a = h @ w.T  # [8, V]: W h
    samples = _draw(model, TEMPERATURE)
    for t, check in ((TEMPERATURE, True), (1.0, False)):
        p_h = normalized((h @ c + a @ (b / sigma) + 0.5 * (a ** 2).sum(1)) / t)
        mu, var = b + sigma * a, t * sigma ** 2  # [8, V], [V]
        m1 = p_h @ mu
        m2 = p_h @ (mu ** 2 + var)
        m4 = p_h @ (mu ** 4 + 6 * mu ** 2 * var + 3 * var ** 2)
        se1 = np.sqrt((m2 - m1 ** 2) / NUM_SAMPLES)
        se2 = np.sqrt((m4 - m2 ** 2) / NUM_SAMPLES)
        ok = (np.all(np.abs(samples.mean(0) - m1) < 5 * se1)
              and np.all(np.abs((samples ** 2).mean(0) - m2) < 5 * se2))
        assert ok == check, (t, samples.mean(0), m1, (samples ** 2).mean(0), m2)


def test_neural_energy_at_temperature_matches_quadrature():
    """A 1D ``MLPEnergy`` with Laplace-like tails, ``E(x) = swish(3x + 0.5) +
    swish(-3x - 0.2)``: sample moments against quadrature of ``exp(-E / T)`` on a grid
    (the moments of ``T = 1`` must fail the same check)."""
    model = MLPEnergy((1,), (2,), rngs=nnx.Rngs(0), sample_steps=150, step_size=0.01,
                      noise_scale=float(np.sqrt(0.02)))
    model.layers[0].kernel[...] = jnp.asarray([[3.0, -3.0]])
    model.layers[0].bias[...] = jnp.asarray([0.5, -0.2])
    model.head.kernel[...] = jnp.ones((2, 1))
    model.head.bias[...] = jnp.zeros((1,))
    grid = np.linspace(-8, 8, 160_001)
    swish = lambda z: z / (1 + np.exp(-z))
    energy = swish(3 * grid + 0.5) + swish(-3 * grid - 0.2)
    samples = _draw(model, TEMPERATURE, n=10_000)[:, 0]
    for t, check in ((TEMPERATURE, True), (1.0, False)):
        p = normalized(-energy / t)
        m1, m2, m4 = (p @ grid ** k for k in (1, 2, 4))
        se1, se2 = np.sqrt((m2 - m1 ** 2) / len(samples)), np.sqrt((m4 - m2 ** 2) / len(samples))
        ok = (abs(samples.mean() - m1) < 5 * se1) and (abs((samples ** 2).mean() - m2) < 5 * se2)
        assert ok == check, (t, samples.mean(), m1, (samples ** 2).mean(), m2)


def test_gaussian_energy_at_temperature_has_covariance_t_sigma():
    model = GaussianEnergy(2, rngs=nnx.Rngs(0))
    model.tril[...] = jnp.asarray([[0.0, 0.0], [0.8, 0.0]])
    model.log_diag[...] = jnp.asarray([0.3, -0.4])
    model.mean[...] = jnp.asarray([1.0, -2.0])
    samples = _draw(model, TEMPERATURE)
    cov = TEMPERATURE * np.asarray(model.covariance(), np.float64)
    np.testing.assert_allclose(samples.mean(0), [1.0, -2.0],
                               atol=5 * np.sqrt(np.diag(cov).max() / NUM_SAMPLES))
    # sample covariance entries: standard error <= sqrt((C_ii C_jj + C_ij^2) / N)
    se = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / NUM_SAMPLES)
    assert np.all(np.abs(np.cov(samples.T) - cov) < 5 * se), (np.cov(samples.T), cov)


def _ebms():
    bm = FullyVisibleBM((3,), rngs=nnx.Rngs(0), sample_sweeps=2)
    rbm = random_rbm(seed=0, num_visible=3, num_hidden=2)
    rbm.sample_steps = 2
    grbm = GaussianBernoulliRBM(2, 2, rngs=nnx.Rngs(0), sample_steps=2)
    mlp = MLPEnergy((2,), (4,), rngs=nnx.Rngs(0), sample_steps=2)
    return dict(bm=bm, rbm=rbm, grbm=grbm, mlp=mlp, gaussian=GaussianEnergy(2, rngs=nnx.Rngs(0)))


@pytest.mark.parametrize("name", ["bm", "rbm", "grbm", "mlp", "gaussian"])
def test_temperature_one_is_the_default_draw_and_bad_values_are_refused(name):
    model = _ebms()[name]
    out = jit_method(model, lambda m, k: (m.sample(k, 8), m.sample(k, 8, temperature=1.0)))(
        jax.random.key(0))
    np.testing.assert_array_equal(out[0], out[1])
    for bad in (0.0, -2.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"sample: temperature must be a finite number "
                                             rf"> 0, got {bad!r}"):
            model.sample(jax.random.key(0), 2, temperature=bad)
