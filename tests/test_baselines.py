"""Baselines: normalization by enumeration, exact MLE vs gradient MLE, input validation."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats
from flax import nnx
from sklearn.datasets import load_digits

from jaxgen.baselines import DiagonalGaussian, FactorizedBernoulli, FactorizedCategorical
from jaxgen.metrics import factorized_empirical_entropy, mean_nll
from jaxgen.types import Distribution
from tests.testing import assert_chisquare_fit, enumerate_grid


def _digits() -> np.ndarray:
    """sklearn's 8x8 digits as ``[1797, 8, 8, 1]`` int32 levels 0..16 (bundled, no download)."""
    return load_digits().data.astype(np.int32).reshape(-1, 8, 8, 1)


def _with_random_logits(model, seed):
    model.logits[...] = 2.0 * jax.random.normal(jax.random.key(seed), model.logits.shape)
    return model


@pytest.mark.parametrize("event_shape", [(3,), (1, 3)])
def test_factorized_categorical_normalizes(event_shape):
    model = _with_random_logits(FactorizedCategorical(event_shape, 3, rngs=nnx.Rngs(0)), 0)
    grid = enumerate_grid(event_shape, 3)  # all 27 examples
    assert grid.shape == (27, *event_shape)
    np.testing.assert_allclose(jnp.exp(model.log_prob(grid)).sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model.probs().sum(-1), 1.0, rtol=1e-6)


def test_factorized_bernoulli_normalizes():
    model = _with_random_logits(FactorizedBernoulli((2, 2), rngs=nnx.Rngs(0)), 1)
    np.testing.assert_allclose(jnp.exp(model.log_prob(enumerate_grid((2, 2), 2))).sum(), 1.0,
                               rtol=1e-5)


def test_models_are_distributions():
    for model in (FactorizedCategorical((2,), 4, rngs=nnx.Rngs(0)),
                  FactorizedBernoulli((2,), rngs=nnx.Rngs(0)),
                  DiagonalGaussian((2,), rngs=nnx.Rngs(0))):
        assert isinstance(model, Distribution)
        assert model.sample(jax.random.key(0), 5).shape == (5, 2)
        assert model.log_prob(model.sample(jax.random.key(1), 5)).shape == (5,)


def test_counting_mle_by_hand():
    data = np.array([[0, 2], [0, 2], [1, 2]])
    model = FactorizedCategorical.from_counts(data, 3)
    np.testing.assert_allclose(model.probs(), [[2 / 3, 1 / 3, 0], [0, 0, 1]], atol=1e-7)
    smoothed = FactorizedCategorical.from_counts(data, 3, pseudocount=1.0)
    np.testing.assert_allclose(smoothed.probs(), [[1 / 2, 1 / 3, 1 / 6], [1 / 6, 1 / 6, 2 / 3]],
                               rtol=1e-6)
    # Unseen levels have probability 0 under the unsmoothed MLE.
    assert model.log_prob(np.array([[2, 2]]))[0] == -np.inf


def test_counting_mle_nll_is_factorized_entropy():
    data = _digits()
    model = FactorizedCategorical.from_counts(data, 17)
    assert model.event_shape == (8, 8, 1)
    np.testing.assert_allclose(mean_nll(model.log_prob(data)),
                               factorized_empirical_entropy(data), rtol=1e-5)


def test_counting_and_gradient_mle_agree():
    """Full-batch Adam on the mean NLL converges to the counting MLE (to 1e-3 in probs)."""
    data = _digits()
    counted = FactorizedCategorical.from_counts(data, 17)
    graphdef, params = nnx.split(FactorizedCategorical((8, 8, 1), 17, rngs=nnx.Rngs(0)))
    num_steps = 3000
    optimizer = optax.adam(optax.cosine_decay_schedule(0.1, num_steps))

    def loss_fn(params):
        return mean_nll(nnx.merge(graphdef, params).log_prob(data))

    @jax.jit
    def fit(params):
        def step(carry, _):
            params, opt_state = carry
            updates, opt_state = optimizer.update(jax.grad(loss_fn)(params), opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), length=num_steps)
        return params

    fitted = nnx.merge(graphdef, fit(params))
    np.testing.assert_allclose(fitted.probs(), counted.probs(), atol=1e-3)
    # The counting MLE is the optimum: gradient descent gets to it, not below it.
    nll_counted, nll_fitted = mean_nll(counted.log_prob(data)), mean_nll(fitted.log_prob(data))
    assert nll_counted <= nll_fitted < nll_counted + 1e-2


def test_factorized_categorical_samples_its_marginals():
    model = _with_random_logits(FactorizedCategorical((2,), 5, rngs=nnx.Rngs(0)), 2)
    x = model.sample(jax.random.key(3), 50_000)
    assert x.shape == (50_000, 2) and x.dtype == jnp.int32
    for d in range(2):
        assert_chisquare_fit(x[:, d], model.probs()[d])


def test_factorized_bernoulli_mle_log_prob_and_samples():
    data = np.array([[1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 0, 0]])
    model = FactorizedBernoulli.from_counts(data, pseudocount=0.5)
    p1 = (data.sum(0) + 0.5) / (4 + 1)
    np.testing.assert_allclose(model.probs(), p1, rtol=1e-6)
    expected = scipy.stats.bernoulli.logpmf(data, p1).sum(-1)
    np.testing.assert_allclose(model.log_prob(data), expected, rtol=1e-5)
    np.testing.assert_allclose(model.log_prob(data.astype(bool)), expected, rtol=1e-5)
    x = model.sample(jax.random.key(4), 50_000)
    for d in range(3):
        assert_chisquare_fit(x[:, d], [1 - p1[d], p1[d]])


def test_diagonal_gaussian_mle_and_log_prob():
    data = np.random.default_rng(5).normal([1.0, -2.0, 0.0], [0.5, 2.0, 1.0],
                                           size=(1000, 3)).astype(np.float32)
    model = DiagonalGaussian.from_moments(data)
    np.testing.assert_allclose(model.mean[...], data.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(jnp.exp(model.log_std[...]), data.std(0), rtol=1e-5)  # ddof 0
    covariance = np.diag(data.std(0) ** 2)
    expected = scipy.stats.multivariate_normal(data.mean(0), covariance).logpdf(data)
    np.testing.assert_allclose(model.log_prob(data), expected, rtol=1e-4)
    # The closed form is the MLE: the gradient of the mean NLL vanishes there.
    graphdef, params = nnx.split(model)
    grads = jax.grad(lambda p: mean_nll(nnx.merge(graphdef, p).log_prob(data)))(params)
    for g in jax.tree.leaves(grads):
        np.testing.assert_allclose(g, 0.0, atol=1e-4)
    x = model.sample(jax.random.key(6), 20_000)
    np.testing.assert_allclose(x.mean(0), data.mean(0), atol=0.05)
    np.testing.assert_allclose(x.std(0), data.std(0), rtol=0.03)


def test_log_prob_is_jittable():
    data = _digits()[:10]
    model = FactorizedCategorical.from_counts(_digits(), 17, pseudocount=1.0)
    graphdef, params = nnx.split(model)
    jitted = jax.jit(lambda p, x: nnx.merge(graphdef, p).log_prob(x))
    np.testing.assert_allclose(jitted(params, data), model.log_prob(data), rtol=1e-6)


def _categorical(event_shape, num_levels=17):
    return lambda: FactorizedCategorical(event_shape, num_levels, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("make_model, x, error, match", [
    (_categorical((8, 8, 1)), np.zeros((4, 64), np.int32),
     ValueError, r"\[B, 8, 8, 1\], got shape \(4, 64\)"),
    (_categorical((8, 8, 1)), np.zeros((4, 8, 8, 3), np.int32),
     ValueError, r"\[B, 8, 8, 1\], got shape \(4, 8, 8, 3\)"),
    (_categorical((3,)), np.zeros((3,), np.int32),
     ValueError, r"\[B, 3\], got shape \(3,\)"),
    (_categorical((3,)), np.zeros((2, 3), np.float32),
     TypeError, "integer level indices, got dtype float32"),
    (_categorical((3,)), np.array([[0, 17, 1]]),
     ValueError, r"levels in \[0, 17\), got values in \[0, 17\]"),
    (lambda: FactorizedBernoulli((2,), rngs=nnx.Rngs(0)), np.array([[0, 2]]),
     ValueError, r"levels in \[0, 2\), got values in \[0, 2\]"),
    (lambda: FactorizedBernoulli((2,), rngs=nnx.Rngs(0)), np.zeros((1, 3), np.int32),
     ValueError, r"\[B, 2\], got shape \(1, 3\)"),
    (lambda: DiagonalGaussian((2,), rngs=nnx.Rngs(0)), np.zeros((5, 2), np.int32),
     TypeError, "floating data, got dtype int32"),
    (lambda: DiagonalGaussian((2,), rngs=nnx.Rngs(0)), np.zeros((5, 2, 1), np.float32),
     ValueError, r"\[B, 2\], got shape \(5, 2, 1\)"),
])
def test_bad_inputs_raise(make_model, x, error, match):
    with pytest.raises(error, match=match):
        make_model().log_prob(x)


def test_bad_constructor_arguments_raise():
    with pytest.raises(ValueError, match="pseudocount must be >= 0, got -1"):
        FactorizedCategorical.from_counts(np.zeros((2, 3), np.int32), 4, pseudocount=-1)
    with pytest.raises(ValueError, match=r"N >= 1, got shape \(0, 3\)"):
        FactorizedCategorical.from_counts(np.zeros((0, 3), np.int32), 4)
    with pytest.raises(ValueError, match=r"got values in \[0, 4\]"):
        FactorizedCategorical.from_counts(np.array([[0, 4]]), 4)
    with pytest.raises(ValueError, match="num_levels must be >= 1, got 0"):
        FactorizedCategorical((3,), 0, rngs=nnx.Rngs(0))
