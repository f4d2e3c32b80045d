"""Likelihood metrics: NLL in nats, bits per dimension, entropies and KL divergences.

All log-likelihoods in jaxgen are natural-log (nats) per example; `bits_per_dim` converts.
"""
from __future__ import annotations

import math
from typing import Protocol

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import xlogy

from jaxgen.distributions.gaussian import kl_diag_gaussian
from jaxgen.types import Array, PRNGKey


def mean_nll(log_probs: Array) -> Array:
    """Mean negative log-likelihood in nats: ``-mean(log_probs)`` over a ``[B]`` batch."""
    return -jnp.mean(jnp.asarray(log_probs))


def bits_per_dim(nll_nats, num_dims: int, *, num_levels: int | None = None,
                 data_scale_log_det=0.0):
    """Converts a per-example NLL in nats to bits per dimension of the *discrete* data.

    ``bits/dim = nll_discrete / (num_dims * ln 2)`` with

        nll_discrete = nll_nats - data_scale_log_det + num_dims * ln(num_levels).

    Why. Let ``x in {0, ..., K-1}^D`` be discrete data and ``y = (x + u) / K`` with
    ``u ~ U[0, 1)^D`` its dequantized version in ``[0, 1]^D``. A density ``p(y)`` defines a
    discrete model ``P(x) = int_{cell(x)} p(y) dy`` over cells of volume ``K^-D``, and by
    Jensen ``-log P(x) <= E_u[-log p((x + u) / K)] + D log K``. Equivalently, the density
    of the unscaled ``x + u`` is ``p(y) K^-D``. So a continuous NLL measured on data scaled
    to ``[0, 1]`` from ``K`` levels becomes a (bound on the) discrete NLL by adding
    ``D log K``; pass ``num_levels=K``. Without it (``None``), ``nll_nats`` is taken to be
    discrete already (e.g. from a categorical model) or a density on the scale wanted.

    If the model saw a further transform ``z = f(y)`` of the ``[0, 1]`` data (e.g.
    ``z = 2y - 1``, or a logit transform), change of variables gives
    ``log p_y(y) = log p_z(f(y)) + log|det df/dy|``; pass that per-example log-determinant
    as ``data_scale_log_det`` (``D log 2`` for ``2y - 1``) and it is subtracted.

    Works on Python floats, numpy and jax arrays (also traced).

    Args:
      nll_nats: negative log-likelihood per example, in nats (scalar or array).
      num_dims: ``D``, the number of dimensions per example.
      num_levels: ``K``, the number of discrete levels the data were scaled from.
      data_scale_log_det: ``log|det df/dy|`` of any preprocessing after scaling to [0, 1].

    Returns:
      Bits per dimension, same type/shape as ``nll_nats``.
    """
    if num_dims < 1:
        raise ValueError(f"num_dims must be >= 1, got {num_dims}")
    if num_levels is not None and num_levels < 1:
        raise ValueError(f"num_levels must be >= 1 or None, got {num_levels}")
    nll = nll_nats - data_scale_log_det
    if num_levels is not None:
        nll = nll + num_dims * math.log(num_levels)
    return nll / (num_dims * math.log(2.0))


def _entropy_of_counts(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-np.sum(p * np.log(p)))


def _as_examples(data) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim < 1 or data.shape[0] < 1:
        raise ValueError(f"data must be [N, ...] with N >= 1 examples, got shape {data.shape}")
    return data.reshape(data.shape[0], -1)  # [N, D]


def empirical_entropy(data) -> float:
    """Entropy in nats of the empirical distribution over whole examples.

    ``H = -sum_x p(x) log p(x)`` with ``p(x) = count(x) / N`` over the distinct examples
    (rows of ``data [N, ...]``, compared exactly). A model that memorizes the training set
    puts ``p(x)`` on each distinct example, so ``H`` is the floor of the achievable mean
    training NLL; it is at most ``log N`` (reached when all examples differ).
    """
    _, counts = np.unique(_as_examples(data), axis=0, return_counts=True)
    return _entropy_of_counts(counts)


def factorized_empirical_entropy(data, *, per_dim: bool = False):
    """Sum over dimensions of the entropies of the empirical marginals, in nats.

    ``sum_d H(x_d)`` with ``H(x_d) = -sum_v p_d(v) log p_d(v)``. This is exactly the mean
    training NLL of the counting MLE of a factorized categorical (one multinomial per
    dimension), the best any factorized model can do on ``data``; it upper-bounds
    `empirical_entropy`.

    Args:
      data: ``[N, ...]`` discrete examples.
      per_dim: return the ``[...]`` array of per-dimension entropies instead of the sum.
    """
    data = np.asarray(data)
    flat = _as_examples(data)
    entropies = np.array([_entropy_of_counts(np.unique(column, return_counts=True)[1])
                          for column in flat.T])
    return entropies.reshape(data.shape[1:]) if per_dim else float(entropies.sum())


def kl_categorical(p: Array, q: Array) -> Array:
    """KL(p || q) = sum_k p_k (log p_k - log q_k) over the last axis, exactly.

    Uses ``0 log 0 = 0``: levels with ``p_k = 0`` contribute nothing; ``q_k = 0 < p_k`` gives
    ``+inf``. ``p`` and ``q`` are normalized probabilities ``[..., C]``.
    """
    p, q = jnp.asarray(p), jnp.asarray(q)
    if p.shape[-1:] != q.shape[-1:]:
        raise ValueError(f"p and q need the same number of levels, got shapes {p.shape} "
                         f"and {q.shape}")
    return jnp.sum(xlogy(p, p) - xlogy(p, q), axis=-1)


class _LogProbAndSample(Protocol):
    def log_prob(self, x: Array) -> Array: ...

    def sample(self, key: PRNGKey, n: int) -> Array: ...


def kl_monte_carlo(key: PRNGKey, p: _LogProbAndSample, q: _LogProbAndSample,
                   num_samples: int) -> tuple[Array, Array]:
    """Monte Carlo KL(p || q) = E_{x~p}[log p(x) - log q(x)] with its standard error.

    With ``x_i ~ p`` i.i.d. and ``r_i = log p(x_i) - log q(x_i)``, the estimate
    ``mean(r)`` is unbiased and, by the law of large numbers and the CLT, has standard error
    ``std(r) / sqrt(n)`` (``std`` with ``ddof=1``). Works for any ``p, q`` with
    ``log_prob(x) -> [n]`` and ``sample(key, n)`` (e.g. every jaxgen model).

    Returns:
      ``(estimate, standard_error)``, scalars in nats.
    """
    if num_samples < 2:
        raise ValueError(f"num_samples must be >= 2 for a standard error, got {num_samples}")
    x = p.sample(key, num_samples)
    log_ratio = p.log_prob(x) - q.log_prob(x)  # [n]
    return jnp.mean(log_ratio), jnp.std(log_ratio, ddof=1) / math.sqrt(num_samples)


__all__ = ["bits_per_dim", "empirical_entropy", "factorized_empirical_entropy",
           "kl_categorical", "kl_diag_gaussian", "kl_monte_carlo", "mean_nll"]
