"""Temperature in the baselines' samplers, against the exact tempered distribution.

Discrete baselines draw from ``p_T ∝ p^{1/T}`` per dimension: the reference enumerates every
joint state in numpy (float64) from the model's logits, and the empirical TV distance must
fall under `tests.test_ar_enumeration.tv_bound` (false-failure probability 1e-6); each check
first asserts that ``p_T`` is farther than twice that bound from ``p_1``, so ignoring ``T``
fails. The diagonal Gaussian scales its latent (``N(mean, (T std)^2)``): sample means and
standard deviations must lie within 5 standard errors of the closed form.
"""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.baselines import DiagonalGaussian, FactorizedBernoulli, FactorizedCategorical
from tests.test_ar_enumeration import jit_method, tv_bound

NUM_SAMPLES = 20_000


def _tempered_joint(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``[C^D]`` probabilities of every joint state (row-major, last dimension fastest) of
    independent categoricals with ``logits [D, C]`` at temperature ``T``, in float64."""
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    w = np.exp(log_p / temperature)
    p_t = w / w.sum(-1, keepdims=True)  # [D, C]
    d, c = logits.shape
    states = np.array(list(itertools.product(range(c), repeat=d)))  # [C^D, D]
    return np.prod(p_t[np.arange(d), states], axis=-1)


def _empirical_tv(samples, probs, num_levels: int) -> float:
    flat = np.asarray(samples).reshape(len(samples), -1).astype(np.int64)
    index = flat @ num_levels ** np.arange(flat.shape[1] - 1, -1, -1)
    counts = np.bincount(index, minlength=probs.size) / len(samples)
    return 0.5 * float(np.abs(counts - probs).sum())


def _categorical():
    model = FactorizedCategorical((3,), 3, rngs=nnx.Rngs(0))
    model.logits[...] = jnp.asarray([[2.0, 0.0, -1.0], [0.5, 0.0, 1.5], [-1.0, 1.0, 0.0]])
    return model


def _bernoulli():
    model = FactorizedBernoulli((4,), rngs=nnx.Rngs(0))
    model.logits[...] = jnp.asarray([1.5, -0.5, 0.8, -2.0])
    return model


def _logits_2d(model) -> np.ndarray:
    """``[D, C]`` logits of the joint reference (a Bernoulli is a categorical over (0, 1)
    with logits ``(0, l)``)."""
    logits = np.asarray(model.logits[...], np.float64)
    if isinstance(model, FactorizedBernoulli):
        return np.stack([np.zeros_like(logits), logits], -1).reshape(-1, 2)
    return logits.reshape(-1, model.num_levels)


@pytest.mark.parametrize("make_model", [_categorical, _bernoulli], ids=["categorical",
                                                                        "bernoulli"])
@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_discrete_baselines_sample_the_tempered_distribution(make_model, temperature):
    model = make_model()
    logits = _logits_2d(model)
    num_levels = logits.shape[-1]
    p_t, p_1 = _tempered_joint(logits, temperature), _tempered_joint(logits, 1.0)
    bound = tv_bound(p_t, NUM_SAMPLES)
    assert 0.5 * np.abs(p_t - p_1).sum() > 2 * bound  # power against ignoring T
    samples = model.sample(jax.random.key(1), NUM_SAMPLES, temperature=temperature)
    assert samples.dtype == jnp.int32 and samples.shape == (NUM_SAMPLES, *model.event_shape)
    assert _empirical_tv(samples, p_t, num_levels) < bound


def test_tempered_probs_never_draw_impossible_levels():
    model = FactorizedCategorical((2,), 3, rngs=nnx.Rngs(0))
    model.logits[...] = jnp.asarray([[0.0, -jnp.inf, 1.0], [-jnp.inf, 0.0, 0.0]])
    probs = np.asarray(model.tempered_probs(3.0))
    assert probs[0, 1] == 0 and probs[1, 0] == 0
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    draws = np.asarray(model.sample(jax.random.key(0), 2000, temperature=3.0))
    assert not np.any(draws[:, 0] == 1) and not np.any(draws[:, 1] == 0)


@pytest.mark.parametrize("temperature", [0.5, 1.7])
def test_diagonal_gaussian_tempered_moments(temperature):
    model = DiagonalGaussian((3,), rngs=nnx.Rngs(0))
    mean, std = np.array([1.0, -2.0, 0.5]), np.array([0.5, 2.0, 1.0])
    model.mean[...] = jnp.asarray(mean, jnp.float32)
    model.log_std[...] = jnp.asarray(np.log(std), jnp.float32)
    x = np.asarray(model.sample(jax.random.key(2), NUM_SAMPLES, temperature=temperature),
                   np.float64)
    std_t = temperature * std
    se_mean, se_std = std_t / np.sqrt(NUM_SAMPLES), std_t / np.sqrt(2 * NUM_SAMPLES)
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se_mean)
    assert np.all(np.abs(x.std(0) - std_t) < 5 * se_std)
    assert np.all(np.abs(std - std_t) > 10 * se_std)  # power against ignoring T


@pytest.mark.parametrize("make_model", [_categorical, _bernoulli,
                                        lambda: DiagonalGaussian((3,), rngs=nnx.Rngs(0))],
                         ids=["categorical", "bernoulli", "gaussian"])
def test_unit_temperature_is_the_default_draw_bit_for_bit(make_model):
    model, key = make_model(), jax.random.key(7)
    default = np.asarray(model.sample(key, 64))
    np.testing.assert_array_equal(np.asarray(model.sample(key, 64, temperature=1.0)), default)
    np.testing.assert_array_equal(np.asarray(model.sample(key, 64, temperature=1)), default)


@pytest.mark.parametrize("make_model", [_categorical, _bernoulli,
                                        lambda: DiagonalGaussian((3,), rngs=nnx.Rngs(0))],
                         ids=["categorical", "bernoulli", "gaussian"])
@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), "hot"])
def test_bad_temperature_is_named(make_model, temperature):
    model = make_model()
    with pytest.raises(ValueError, match=rf"{type(model).__name__}\.sample: temperature "
                                         r"must be a finite number > 0"):
        model.sample(jax.random.key(0), 4, temperature=temperature)


def test_temperature_may_be_traced():
    model = _bernoulli()
    draw = jit_method(model, lambda m, k, t: m.sample(k, NUM_SAMPLES, temperature=t))
    samples = draw(jax.random.key(4), jnp.float32(0.5))
    p_t = _tempered_joint(_logits_2d(model), 0.5)
    assert _empirical_tv(samples, p_t, 2) < tv_bound(p_t, NUM_SAMPLES)
