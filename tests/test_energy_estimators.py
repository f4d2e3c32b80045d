"""Score matching and NCE on a Gaussian energy against closed forms: the fitted mean and
covariance (sample moments; for DSM the moments of the noised data) and, for NCE, the
learned log Z against the Gaussian's exact one."""
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxgen.energy.estimators import GaussianNoise, ssm_loss
from jaxgen.energy.gaussian_energy import GaussianEnergy
from jaxgen.energy.objectives import (DenoisingScoreMatching, NoiseContrastiveEstimation,
                                      SlicedScoreMatching)

MEAN = np.array([1.0, -2.0], np.float32)
COV = np.array([[2.0, 0.8], [0.8, 0.5]], np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.multivariate_normal(MEAN, COV, size=4000).astype(np.float32)


def _fit(objective, data, num_steps, lr, seed=0):
    """Full-batch Adam on ``objective.loss`` (one compiled ``lax.scan``)."""
    model = GaussianEnergy(2, rngs=nnx.Rngs(seed))
    graphdef, params = nnx.split(model)
    extra = objective.init(model, data, jax.random.key(seed))
    optimizer = optax.adam(lr)
    batch = jnp.asarray(data)

    def step(carry, key):
        params, opt_state = carry
        loss_fn = lambda p: objective.loss(nnx.merge(graphdef, p), batch, key, extra)[0]
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    keys = jax.random.split(jax.random.key(seed + 1), num_steps)
    (params, _), losses = jax.jit(lambda c: jax.lax.scan(step, c, keys))(
        (params, optimizer.init(params)))
    return nnx.merge(graphdef, params), np.asarray(losses)


def _moments(data):
    return data.mean(0), np.cov(data, rowvar=False)


def test_sliced_score_matching_recovers_mean_and_covariance(data):
    model, losses = _fit(SlicedScoreMatching(num_projections=4), data, 800, 0.05)
    mean, cov = _moments(data)
    print("SSM:", np.asarray(model.mean[...]), np.asarray(model.covariance()))
    np.testing.assert_allclose(model.mean[...], mean, atol=0.03)
    np.testing.assert_allclose(model.covariance(), cov, atol=0.05)
    assert losses[-1] < losses[0]
    # the Hutchinson trace is unbiased: at the fit, E_v[v^T J v] = tr J = -tr P exactly
    _, metrics = ssm_loss(model, data[:64], jax.random.key(3), num_projections=4000)
    np.testing.assert_allclose(metrics["ssm_trace"], -np.trace(model.precision()), rtol=0.05)


def test_denoising_score_matching_fits_the_noised_data(data):
    sigma = 0.3
    model, _ = _fit(DenoisingScoreMatching(noise_std=sigma), data, 800, 0.05)
    mean, cov = _moments(data)
    # the minimizer is the noised data's law: N(mean, cov + sigma^2 I) (closed form)
    np.testing.assert_allclose(model.mean[...], mean, atol=0.03)
    np.testing.assert_allclose(model.covariance(), cov + sigma ** 2 * np.eye(2), atol=0.06)
    assert abs(float(model.covariance()[1, 1]) - cov[1, 1]) > 0.05  # the bias is visible


def test_nce_recovers_the_gaussian_and_its_log_partition(data):
    objective = NoiseContrastiveEstimation(noise_ratio=2.0, noise_scale=1.5)
    model, _ = _fit(objective, data, 1000, 0.05)
    mean, cov = _moments(data)
    np.testing.assert_allclose(model.mean[...], mean, atol=0.05)
    np.testing.assert_allclose(model.covariance(), cov, atol=0.08)
    learned, exact = float(model.learned_log_z[...]), float(model.exact_log_partition())
    print(f"NCE: learned log Z {learned:.4f}, exact log Z of the fitted energy {exact:.4f}")
    assert abs(learned - exact) < 0.05
    # finalize: log Z in closed form, NCE's normalizer next to it
    new, results = objective.finalize(model, types.SimpleNamespace(train=data),
                                      jax.random.key(0))
    assert results["log_z_method"] == "exact"
    np.testing.assert_allclose(results["log_z"], exact, rtol=1e-6)
    np.testing.assert_allclose(results["nce_learned_log_z"], learned, rtol=1e-6)
    np.testing.assert_allclose(np.mean(np.asarray(new.log_prob(jnp.asarray(data)))),
                               -0.5 * np.linalg.slogdet(2 * np.pi * np.e * cov)[1], atol=0.02)


def test_noise_model_and_estimator_arguments_are_checked():
    noise = GaussianNoise.fit(np.random.default_rng(1).normal(size=(5000, 2)) * [1.0, 3.0])
    x = noise.sample(jax.random.key(0), 4)
    cov = noise.scale_tril @ noise.scale_tril.T
    expected = jax.scipy.stats.multivariate_normal.logpdf(x, noise.mean, cov)
    np.testing.assert_allclose(noise.log_prob(x), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="finite"):
        GaussianNoise.fit(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="dsm_noise_std"):
        DenoisingScoreMatching(noise_std=0.0)
    with pytest.raises(ValueError, match="ssm_projections"):
        SlicedScoreMatching(num_projections=0)
    with pytest.raises(ValueError, match="nce_noise_ratio"):
        NoiseContrastiveEstimation(noise_ratio=-1.0)
    with pytest.raises(ValueError, match=r"\[B, 2\]"):
        GaussianEnergy(2, rngs=nnx.Rngs(0)).energy(jnp.zeros((3, 4)))
