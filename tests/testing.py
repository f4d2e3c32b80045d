"""Shared asserts for statistical tests: goodness of fit, histogram agreement, enumeration."""
from __future__ import annotations

import itertools

import numpy as np
import scipy.stats


def histogram(samples, num_levels: int) -> np.ndarray:
    """Counts of each level ``0 .. num_levels-1`` in integer ``samples`` (any shape)."""
    samples = np.asarray(samples).ravel()
    assert np.issubdtype(samples.dtype, np.integer), samples.dtype
    assert samples.min() >= 0 and samples.max() < num_levels, (samples.min(), samples.max())
    return np.bincount(samples, minlength=num_levels)


def total_variation(p, q) -> float:
    """``TV(p, q) = 1/2 sum_k |p_k - q_k|`` of two probability vectors."""
    return 0.5 * float(np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def assert_chisquare_fit(samples, probs, *, min_p_value: float = 1e-3) -> float:
    """Pearson chi-square goodness of fit of integer ``samples`` to ``probs [C]``.

    Levels with zero probability must never be drawn (checked exactly); the test runs on
    the others. Returns the p-value, asserted ``> min_p_value``.
    """
    probs = np.asarray(probs, np.float64)
    probs = probs / probs.sum()
    counts = histogram(samples, probs.size)
    zero = probs == 0
    drawn_impossible = np.flatnonzero(zero & (counts > 0))
    assert drawn_impossible.size == 0, f"drew zero-probability levels {drawn_impossible}"
    if (~zero).sum() < 2:  # a point mass: nothing to test beyond the support
        return 1.0
    expected = counts.sum() * probs[~zero]
    p_value = scipy.stats.chisquare(counts[~zero], expected).pvalue
    assert p_value > min_p_value, f"chi-square p-value {p_value:.3g} (counts {counts[:20]}...)"
    return p_value


def assert_histograms_agree(samples_a, samples_b, num_levels: int, *,
                            num_sigma: float = 5.0) -> float:
    """Two samplers agree in distribution, cell by cell, within sampling error.

    For each level, ``|f_a - f_b| < num_sigma * sqrt(f (1 - f) (1/n_a + 1/n_b))`` with the
    pooled frequency ``f`` (the two-sample binomial standard error). Returns the largest
    ``|f_a - f_b| / sigma``.
    """
    count_a, count_b = histogram(samples_a, num_levels), histogram(samples_b, num_levels)
    n_a, n_b = count_a.sum(), count_b.sum()
    pooled = (count_a + count_b) / (n_a + n_b)
    sigma = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    diff = np.abs(count_a / n_a - count_b / n_b)
    z = np.where(sigma > 0, diff / np.where(sigma > 0, sigma, 1.0), 0.0)
    assert z.max() < num_sigma, f"max |diff| = {z.max():.2f} sigma at level {z.argmax()}"
    return float(z.max())


def enumerate_grid(event_shape, num_levels: int) -> np.ndarray:
    """Every array of ``event_shape`` with entries in ``0 .. num_levels-1``:
    ``[num_levels ** prod(event_shape), *event_shape]`` int32."""
    num_dims = int(np.prod(event_shape))
    grid = np.array(list(itertools.product(range(num_levels), repeat=num_dims)), np.int32)
    return grid.reshape(-1, *event_shape)


def random_rbm(seed: int = 0, num_visible: int = 10, num_hidden: int = 6, scale: float = 1.5):
    """A small `BernoulliRBM` with strong random couplings (``scale * N(0, 1)``), visible
    biases ``N(-1, 1)`` and hidden biases ``N(0, 1)``: multimodal enough to test samplers
    against its enumerated distribution."""
    import jax.numpy as jnp
    from flax import nnx

    from jaxgen.energy import BernoulliRBM

    model = BernoulliRBM(num_visible, num_hidden, rngs=nnx.Rngs(seed))
    rng = np.random.default_rng(seed)
    model.weights[...] = jnp.asarray(scale * rng.normal(size=(num_visible, num_hidden)),
                                     jnp.float32)
    model.visible_bias[...] = jnp.asarray(rng.normal(size=num_visible) - 1.0, jnp.float32)
    model.hidden_bias[...] = jnp.asarray(rng.normal(size=num_hidden), jnp.float32)
    return model
