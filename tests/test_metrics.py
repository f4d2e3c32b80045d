"""Metrics against hand computations and exact answers."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from jaxgen.baselines import DiagonalGaussian, FactorizedCategorical
from jaxgen.metrics import (bits_per_dim, empirical_entropy, factorized_empirical_entropy,
                            kl_categorical, kl_diag_gaussian, kl_monte_carlo, mean_nll)


def test_mean_nll_and_plain_bits_per_dim():
    assert mean_nll(jnp.array([-1.0, -3.0])) == 2.0
    # D ln 2 nats over D dims is one bit per dim; arrays and traced values work too.
    assert bits_per_dim(4 * math.log(2), 4) == pytest.approx(1.0)
    np.testing.assert_allclose(jax.jit(lambda n: bits_per_dim(n, 2))(jnp.array([2 * math.log(2)])),
                               [1.0], rtol=1e-6)


def test_bits_per_dim_dequantization_correction():
    """A histogram density on [0, 1]^D built from a discrete model P reports P's bits/dim.

    The density ``p(y) = K^D P(floor(K y))`` on data ``y = (x + u) / K`` has NLL
    ``-log P(x) - D log K``; `bits_per_dim` with ``num_levels=K`` must add ``D log K`` back.
    A further map ``z = 2y - 1`` (density ``p(y) / 2^D``) is undone by
    ``data_scale_log_det = D log 2``.
    """
    num_levels, num_dims = 17, 64
    rng = np.random.default_rng(0)
    x = rng.integers(0, num_levels, size=(500, num_dims))
    model = FactorizedCategorical.from_counts(x, num_levels, pseudocount=1.0)
    nll_discrete = float(mean_nll(model.log_prob(x)))
    y = (x + rng.random(x.shape)) / num_levels  # dequantized, in [0, 1)
    cells = np.floor(y * num_levels).astype(np.int32)  # == x
    nll_y = float(mean_nll(model.log_prob(cells) + num_dims * math.log(num_levels)))
    nll_z = nll_y + num_dims * math.log(2.0)  # density of z = 2y - 1 is p(y) / 2^D

    expected = nll_discrete / (num_dims * math.log(2))
    assert nll_y < nll_discrete  # a density on [0, 1] looks better than it is ...
    assert bits_per_dim(nll_y, num_dims, num_levels=num_levels) == pytest.approx(expected,
                                                                                 rel=1e-6)
    assert bits_per_dim(nll_z, num_dims, num_levels=num_levels,
                        data_scale_log_det=num_dims * math.log(2.0)) == pytest.approx(expected,
                                                                                      rel=1e-6)
    # Without the correction the number is off by exactly log2(K) bits per dim.
    assert bits_per_dim(nll_y, num_dims) == pytest.approx(expected - math.log2(num_levels),
                                                          abs=1e-5)
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(1.0, 0)


def test_empirical_entropy_by_hand():
    data = np.array([[0, 1], [0, 1], [1, 0], [2, 2]])
    # Examples: (0,1) twice, (1,0), (2,2): p = 1/2, 1/4, 1/4 -> H = 1.5 ln 2.
    assert empirical_entropy(data) == pytest.approx(1.5 * math.log(2))
    # Marginals: dim 0 = {0: 2, 1: 1, 2: 1}, dim 1 = {1: 2, 0: 1, 2: 1}: 1.5 ln 2 each.
    assert factorized_empirical_entropy(data) == pytest.approx(3 * math.log(2))
    np.testing.assert_allclose(factorized_empirical_entropy(data, per_dim=True),
                               [1.5 * math.log(2)] * 2)
    # Whole examples compared over all trailing axes; all distinct -> log N.
    images = np.arange(5 * 2 * 2).reshape(5, 2, 2, 1)
    assert empirical_entropy(images) == pytest.approx(math.log(5))
    assert factorized_empirical_entropy(images, per_dim=True).shape == (2, 2, 1)
    with pytest.raises(ValueError, match=r"got shape \(0, 3\)"):
        empirical_entropy(np.zeros((0, 3)))


def test_kl_categorical_exact():
    p, q = np.array([0.5, 0.25, 0.25, 0.0]), np.array([0.25, 0.25, 0.25, 0.25])
    # 0.5 ln 2 + 0 + 0 + 0 (0 log 0 = 0).
    assert kl_categorical(p, q) == pytest.approx(0.5 * math.log(2))
    rng = np.random.default_rng(1)
    p, q = rng.dirichlet(np.ones(6), size=3), rng.dirichlet(np.ones(6), size=3)
    np.testing.assert_allclose(kl_categorical(p, q), scipy.stats.entropy(p, q, axis=-1), rtol=1e-5)
    assert kl_categorical(np.array([0.5, 0.5]), np.array([1.0, 0.0])) == np.inf
    with pytest.raises(ValueError, match=r"\(3,\) and \(4,\)"):
        kl_categorical(np.ones(3) / 3, np.ones(4) / 4)


def _random_factorized_categorical(seed, event_shape, num_levels):
    model = FactorizedCategorical(event_shape, num_levels, rngs=nnx.Rngs(0))
    model.logits[...] = 1.5 * jax.random.normal(jax.random.key(seed), model.logits.shape)
    return model


def test_kl_monte_carlo_matches_exact_categorical():
    p = _random_factorized_categorical(0, (3,), 5)
    q = _random_factorized_categorical(1, (3,), 5)
    exact = float(kl_categorical(p.probs(), q.probs()).sum())  # independent dims: KLs add
    estimate, stderr = kl_monte_carlo(jax.random.key(2), p, q, 20_000)
    assert 0 < stderr < 0.05 * exact
    assert abs(float(estimate) - exact) < 3 * float(stderr), (estimate, stderr, exact)


def test_kl_monte_carlo_matches_closed_form_gaussian():
    p, q = DiagonalGaussian((4,), rngs=nnx.Rngs(0)), DiagonalGaussian((4,), rngs=nnx.Rngs(0))
    p.mean[...], p.log_std[...] = jnp.array([0.0, 1.0, -1.0, 0.5]), jnp.array([0.0, -0.5, 0.3, 0.1])
    q.mean[...], q.log_std[...] = jnp.array([0.5, 0.0, -1.0, 0.0]), jnp.array([0.2, 0.0, 0.0, -0.3])
    exact = float(kl_diag_gaussian(p.mean[...], p.log_std[...], q.mean[...], q.log_std[...]))
    estimate, stderr = kl_monte_carlo(jax.random.key(3), p, q, 20_000)
    assert 0 < stderr < 0.05 * exact
    assert abs(float(estimate) - exact) < 3 * float(stderr), (estimate, stderr, exact)
    # The standard error is std/sqrt(n): 4x the samples, half the error.
    _, stderr_4n = kl_monte_carlo(jax.random.key(4), p, q, 80_000)
    assert float(stderr_4n) == pytest.approx(float(stderr) / 2, rel=0.05)
