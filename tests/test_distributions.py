"""Samplers against exact distributions; log-probabilities against scipy/numpy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from jaxgen.distributions import (AliasTable, bernoulli_log_prob, build_alias_table,
                                  categorical_log_prob, gaussian_log_prob, kl_diag_gaussian,
                                  logistic_log_prob, sample_alias, sample_bernoulli,
                                  sample_gaussian, sample_gumbel_max, sample_inverse_cdf,
                                  sample_logistic)
from tests.testing import assert_chisquare_fit, assert_histograms_agree


def _dirichlet_with_zeros(seed, num_levels, num_zeros, alpha=0.5):
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(num_levels, alpha))
    p[rng.choice(num_levels, num_zeros, replace=False)] = 0.0
    return p / p.sum()


# Compilation dominates the run time of these tests (each new shape compiles the RNG), so
# they reuse few shapes: NUM_DRAWS single draws, C in {1, 6, 17, 256}, BATCH_SHAPE batches.
NUM_DRAWS = 100_000
DISTRIBUTIONS = {
    "zeros_at_ends_and_inside": np.array([0.0, 0.5, 0.0, 0.2, 0.3, 0.0]),
    "point_mass": np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
    "single_level": np.array([1.0]),
    "skewed17": _dirichlet_with_zeros(0, 17, 5, alpha=0.3),
    "random256": _dirichlet_with_zeros(1, 256, 20, alpha=2.0),
}

# Each sampler as f(key, probs, shape); the alias table is built outside, as intended.
SAMPLERS = {
    "inverse_cdf": sample_inverse_cdf,
    "gumbel_max": lambda key, p, shape=None: sample_gumbel_max(key, jnp.log(jnp.asarray(p)), shape),
    "alias": lambda key, p, shape=None: sample_alias(key, build_alias_table(p), shape),
}


@pytest.mark.parametrize("dist", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_sampler_chisquare(sampler, dist):
    probs = DISTRIBUTIONS[dist]
    x = SAMPLERS[sampler](jax.random.key(0), probs, (NUM_DRAWS,))
    assert x.shape == (NUM_DRAWS,) and x.dtype == jnp.int32
    assert_chisquare_fit(x, probs)


def test_samplers_reject_a_wrong_distribution():
    """The goodness-of-fit test has power: draws from p do not fit a nearby q."""
    p = DISTRIBUTIONS["skewed17"]
    q = 0.97 * p + 0.03 * DISTRIBUTIONS["skewed17"][::-1]
    with pytest.raises(AssertionError):
        assert_chisquare_fit(sample_inverse_cdf(jax.random.key(0), q, (NUM_DRAWS,)), p)


def _alias_reconstruction(table: AliasTable) -> np.ndarray:
    """p_k = (prob[k] + sum_{i: alias[i] = k} (1 - prob[i])) / C."""
    prob, alias = np.asarray(table.prob, np.float64), np.asarray(table.alias)
    mass = prob.copy()
    np.add.at(mass, alias, 1.0 - prob)
    return mass / prob.size


ALIAS_CASES = dict(DISTRIBUTIONS, uniform4=np.ones(4), two_leading_zeros=np.array([0, 0, 1, 3.0]),
                   huge_range=np.array([1e-9, 1.0, 1e-9, 1e-3]),
                   big_random=np.random.default_rng(3).random(50_000) ** 8)


@pytest.mark.parametrize("dist", sorted(ALIAS_CASES))
def test_alias_table_is_exact(dist):
    probs = ALIAS_CASES[dist]
    probs = probs / probs.sum()
    table = build_alias_table(probs)
    assert table.prob.dtype == jnp.float32 and table.alias.dtype == jnp.int32
    assert np.all((table.prob >= 0) & (table.prob <= 1))
    assert np.all((table.alias >= 0) & (table.alias < probs.size))
    # float32 storage of prob: each level's mass is exact to ~1e-7 of one bucket (1/C).
    np.testing.assert_allclose(_alias_reconstruction(table), probs, rtol=1e-5,
                               atol=1e-7 / probs.size)


def test_alias_and_inverse_cdf_agree_on_a_million_draws():
    probs = DISTRIBUTIONS["skewed17"]
    draws = jax.jit(lambda key, table, p: (sample_alias(key, table, (1_000_000,)),
                                           sample_inverse_cdf(key, p, (1_000_000,))))
    x_alias, x_cdf = draws(jax.random.key(1), build_alias_table(probs), probs)
    assert_histograms_agree(x_alias, x_cdf, probs.size, num_sigma=5.0)
    x_gumbel = sample_gumbel_max(jax.random.key(2), jnp.log(probs), (NUM_DRAWS,))
    assert_histograms_agree(x_gumbel, x_cdf, probs.size, num_sigma=5.0)


BATCH_PROBS = np.array([[0.1, 0.0, 0.5, 0.3, 0.0, 0.1],
                        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                        [0.2, 0.2, 0.2, 0.2, 0.2, 0.0]])  # [3, 6]
BATCH_SHAPE = (20_000, 3)  # 20k draws of each of the 3 distributions


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_batched_probs_sample_each_row(sampler):
    x = SAMPLERS[sampler](jax.random.key(4), BATCH_PROBS, BATCH_SHAPE)
    assert x.shape == BATCH_SHAPE
    for row in range(3):
        assert_chisquare_fit(x[:, row], BATCH_PROBS[row])
    # A size-1 batch axis broadcasts against the sample shape.
    x = SAMPLERS[sampler](jax.random.key(5), BATCH_PROBS[:1], BATCH_SHAPE)
    for column in range(3):
        assert_chisquare_fit(x[:, column], BATCH_PROBS[0])
    # Default shape: one draw per distribution (shape inference only: nothing to compile).
    default = jax.eval_shape(lambda k: SAMPLERS[sampler](k, BATCH_PROBS), jax.random.key(6))
    assert default.shape == (3,)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_incompatible_sample_shape_raises(sampler):
    with pytest.raises(ValueError, match=r"sample shape \(10, 4\).*batch shape \(3,\)"):
        SAMPLERS[sampler](jax.random.key(0), BATCH_PROBS, (10, 4))


# Samplers as pure functions of (key, params), for the jit/vmap tests.
PURE_SAMPLERS = {
    "inverse_cdf": (sample_inverse_cdf, lambda p: p),
    "gumbel_max": (sample_gumbel_max, lambda p: jnp.log(jnp.asarray(p))),
    "alias": (sample_alias, build_alias_table),
}


@pytest.mark.parametrize("sampler", sorted(PURE_SAMPLERS))
def test_jit_and_vmap_match_eager(sampler):
    sample_fn, make_params = PURE_SAMPLERS[sampler]
    key = jax.random.key(7)
    params = make_params(BATCH_PROBS)

    @jax.jit  # one compilation for both transformed versions
    def transformed(key, params):
        # vmap over the distributions: each row becomes its own unbatched distribution.
        by_row = jax.vmap(lambda p: sample_fn(key, p, (NUM_DRAWS,)))(params)
        return sample_fn(key, params, BATCH_SHAPE), by_row

    jitted, by_row = transformed(key, params)
    np.testing.assert_array_equal(jitted, sample_fn(key, params, BATCH_SHAPE))
    np.testing.assert_array_equal(
        by_row, [sample_fn(key, make_params(p), (NUM_DRAWS,)) for p in BATCH_PROBS])


def test_vmap_over_keys_matches_loop():
    keys = jax.random.split(jax.random.key(8), 3)
    by_key = jax.jit(jax.vmap(lambda k: sample_inverse_cdf(k, BATCH_PROBS, BATCH_SHAPE)))(keys)
    np.testing.assert_array_equal(by_key,
                                  [sample_inverse_cdf(k, BATCH_PROBS, BATCH_SHAPE) for k in keys])


@pytest.mark.parametrize("bad, match", [
    (np.array([0.5, -0.1, 0.6]), "non-negative"),
    (np.array([0.5, np.nan]), "finite"),
    (np.array([[0.5, 0.5], [0.0, 0.0]]), "positive sum"),
    (np.array(1.0), r"shape \[\.\.\., C\]"),
    (np.zeros((3, 0)), r"C >= 1, got shape \(3, 0\)"),
])
def test_invalid_probs_raise(bad, match):
    for sample_fn in (sample_inverse_cdf,
                      lambda key, p, shape: sample_alias(key, build_alias_table(p), shape)):
        with pytest.raises(ValueError, match=match):
            sample_fn(jax.random.key(0), bad, None)


def test_alias_table_needs_concrete_probs():
    with pytest.raises(TypeError, match="outside jit"):
        jax.jit(build_alias_table)(jnp.ones(3))


def test_categorical_log_prob():
    rng = np.random.default_rng(8)
    logits = rng.normal(size=(4, 6)).astype(np.float32)  # [D, C]
    x = rng.integers(0, 6, size=(5, 4)).astype(np.int32)  # [B, D]
    expected = np.take_along_axis(
        logits - scipy.special.logsumexp(logits, -1, keepdims=True), x.T, axis=1).T
    np.testing.assert_allclose(categorical_log_prob(logits, x), expected, rtol=1e-5)
    # Normalized: the probabilities of all levels sum to 1.
    all_levels = np.arange(6)[:, None].repeat(4, 1)  # [C, D]
    np.testing.assert_allclose(jnp.exp(categorical_log_prob(logits, all_levels)).sum(0), 1.0,
                               rtol=1e-5)
    # -inf logits are impossible levels; gradient is one_hot(x) - softmax.
    assert categorical_log_prob(np.array([0.0, -np.inf]), np.array(1)) == -np.inf
    grad = jax.grad(lambda l: categorical_log_prob(l, jnp.array(2)))(jnp.asarray(logits[0]))
    np.testing.assert_allclose(grad, np.eye(6)[2] - scipy.special.softmax(logits[0]), atol=1e-6)


def test_categorical_log_prob_bad_levels():
    logits = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"levels in \[0, 3\), got values in \[0, 3\]"):
        categorical_log_prob(logits, np.array([[0, 3]]))
    with pytest.raises(TypeError, match="float32"):
        categorical_log_prob(logits, np.array([[0.0, 1.0]], np.float32))
    with pytest.raises(ValueError, match=r"\(2,\).*\(1, 4\)"):
        categorical_log_prob(logits, np.zeros((1, 4), np.int32))
    # Traced out-of-range levels cannot raise: they give NaN, never a wrong number.
    out = jax.jit(categorical_log_prob)(logits, jnp.array([[-1, 3]]))
    assert np.all(np.isnan(out))


def test_bernoulli_log_prob_is_stable_and_exact():
    logits = np.array([-100.0, -20.0, -1.5, 0.0, 2.0, 20.0, 100.0], np.float32)
    for x in (0, 1):
        got = bernoulli_log_prob(logits, np.full(logits.shape, x))
        expected = scipy.special.log_expit((1.0 if x else -1.0) * logits.astype(np.float64))
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-37)  # float32 subnormals


def test_bernoulli_sampler_frequencies():
    logits = np.array([-2.0, 0.0, 1.0, 5.0], np.float32)
    x = sample_bernoulli(jax.random.key(9), logits, (100_000, 4))
    assert x.shape == (100_000, 4) and x.dtype == jnp.int32
    p1 = scipy.special.expit(logits)
    for d in range(4):
        assert_chisquare_fit(x[:, d], [1 - p1[d], p1[d]])


def test_gaussian_log_prob_and_sampler():
    mean, log_std = np.array([0.0, 1.5, -2.0]), np.array([0.0, -1.0, 0.7])
    x = np.random.default_rng(10).normal(size=(7, 3))
    np.testing.assert_allclose(gaussian_log_prob(mean, log_std, x),
                               scipy.stats.norm.logpdf(x, mean, np.exp(log_std)), rtol=1e-5)
    draws = np.asarray(sample_gaussian(jax.random.key(11), mean, log_std, (50_000, 3)))
    for d in range(3):
        p = scipy.stats.kstest(draws[:, d], "norm", args=(mean[d], np.exp(log_std[d]))).pvalue
        assert p > 1e-3, (d, p)


def test_kl_diag_gaussian_matches_numerical_integration():
    mean_p, log_std_p, mean_q, log_std_q = 0.3, -0.4, -1.0, 0.5
    p = scipy.stats.norm(mean_p, np.exp(log_std_p))
    q = scipy.stats.norm(mean_q, np.exp(log_std_q))
    expected = scipy.integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)),
                                    -20, 20)[0]
    got = kl_diag_gaussian(mean_p, log_std_p, mean_q, log_std_q, event_ndims=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Diagonal: the KL sums over the event axis; KL(p || p) = 0.
    kl = kl_diag_gaussian(np.array([mean_p, 0.0]), np.array([log_std_p, 0.0]),
                          np.array([mean_q, 0.0]), np.array([log_std_q, 0.0]))
    np.testing.assert_allclose(kl, expected, rtol=1e-5)
    assert kl_diag_gaussian(np.ones(3), np.ones(3), np.ones(3), np.ones(3)) == 0.0


def test_logistic_log_prob_and_sampler():
    loc, log_scale = np.float32(0.5), np.float32(-0.3)
    x = np.array([-60.0, -3.0, 0.0, 0.5, 2.0, 60.0], np.float32)
    np.testing.assert_allclose(logistic_log_prob(loc, log_scale, x),
                               scipy.stats.logistic.logpdf(x, loc, np.exp(log_scale)), rtol=1e-5)
    draws = np.asarray(sample_logistic(jax.random.key(12), loc, log_scale, (50_000,)))
    p = scipy.stats.kstest(draws, "logistic", args=(loc, np.exp(log_scale))).pvalue
    assert p > 1e-3, p
