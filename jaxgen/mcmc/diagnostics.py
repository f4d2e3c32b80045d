"""Chain diagnostics: acceptance rate, effective sample size, split R-hat (numpy, post hoc).

Samples are ``[C, S, *P]`` (chains, draws, parameter shape); ESS and R-hat are returned per
parameter, shape ``[*P]``.
"""
from __future__ import annotations

import numpy as np

from jaxgen.types import Array


def _as_chains(samples) -> tuple[np.ndarray, tuple]:
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError(f"samples must be [C, S, *P] (chains, draws, ...), got shape {x.shape}")
    if x.shape[1] < 4:
        raise ValueError(f"need at least 4 draws per chain, got shape {x.shape}")
    return x.reshape(x.shape[0], x.shape[1], -1), x.shape[2:]  # [C, S, K]


def acceptance_rate(info) -> float:
    """Mean of ``info.acceptance_rate`` over chains and steps (MH kernels)."""
    return float(np.mean(np.asarray(info.acceptance_rate)))


def autocorrelation(samples) -> np.ndarray:
    """Per-chain autocorrelation ``rho_c(t) = acov_c(t) / acov_c(0)`` by FFT.

    Args:
      samples: ``[C, S, *P]``.

    Returns:
      ``[C, S, *P]`` (lag on axis 1).
    """
    x, shape = _as_chains(samples)
    acov = _autocovariance(x)
    rho = acov / np.where(acov[:, :1] > 0, acov[:, :1], 1.0)
    return rho.reshape(x.shape[:2] + shape)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """``acov(t) = (1/S) sum_s (x_s - m)(x_{s+t} - m)``, ``x [C, S, K]``."""
    num_draws = x.shape[1]
    centered = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * num_draws - 1).bit_length()
    f = np.fft.rfft(centered, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :num_draws] / num_draws


def effective_sample_size(samples) -> np.ndarray:
    """Multi-chain ESS (Geyer's initial monotone sequence, as in Stan).

    With the within-chain variance ``W``, the pooled estimate
    ``var+ = (S-1)/S W + B/S`` and ``rho_t = 1 - (W - mean_c acov_c(t)) / var+``, the
    pairs ``P_k = rho_{2k} + rho_{2k+1}`` are summed up to the first negative one (made
    monotone); ``ESS = C S / (-1 + 2 sum_k P_k)``.

    Args:
      samples: ``[C, S, *P]``.

    Returns:
      ``[*P]`` effective sample sizes (of the ``C S`` draws).
    """
    x, shape = _as_chains(samples)
    num_chains, num_draws, _ = x.shape
    acov = _autocovariance(x)  # [C, S, K]
    chain_var = acov[:, 0] * num_draws / (num_draws - 1.0)  # [C, K]
    within = chain_var.mean(axis=0)  # [K]
    var_plus = within * (num_draws - 1.0) / num_draws
    if num_chains > 1:
        var_plus = var_plus + x.mean(axis=1).var(axis=0, ddof=1)
    var_plus = np.where(var_plus > 0, var_plus, 1.0)
    rho = 1.0 - (within - acov.mean(axis=0)) / var_plus  # [S, K]
    num_pairs = num_draws // 2
    pairs = rho[: 2 * num_pairs].reshape(num_pairs, 2, -1).sum(axis=1)  # [S/2, K]
    positive = np.cumprod(pairs > 0, axis=0).astype(bool)
    monotone = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)
    tau = -1.0 + 2.0 * np.sum(np.where(positive, monotone, 0.0), axis=0)
    tau = np.maximum(tau, 1.0 / np.log10(num_chains * num_draws))
    ess = num_chains * num_draws / tau
    return ess.reshape(shape)


def split_rhat(samples) -> np.ndarray:
    """Split R-hat (Gelman et al., BDA3): chains cut in halves, then
    ``R = sqrt(((n-1)/n W + B/n) / W)`` with within/between variances ``W``, ``B``.

    Args:
      samples: ``[C, S, *P]`` (``S >= 4``).

    Returns:
      ``[*P]``; values near 1 (< 1.01) indicate mixing.
    """
    x, shape = _as_chains(samples)
    half = x.shape[1] // 2
    halves = np.concatenate([x[:, :half], x[:, x.shape[1] - half:]], axis=0)  # [2C, n, K]
    n = halves.shape[1]
    within = halves.var(axis=1, ddof=1).mean(axis=0)
    between = n * halves.mean(axis=1).var(axis=0, ddof=1)
    var_hat = (n - 1.0) / n * within + between / n
    return np.sqrt(var_hat / np.where(within > 0, within, 1.0)).reshape(shape)


def summary(samples, info=None) -> dict:
    """``{"min_ess", "mean_ess", "max_rhat"[, "acceptance_rate"]}`` of a chain run."""
    ess, rhat = effective_sample_size(samples), split_rhat(samples)
    out = dict(min_ess=float(np.min(ess)), mean_ess=float(np.mean(ess)),
               max_rhat=float(np.max(rhat)))
    if info is not None and hasattr(info, "acceptance_rate"):
        out["acceptance_rate"] = acceptance_rate(info)
    return out


__all__ = ["acceptance_rate", "autocorrelation", "effective_sample_size", "split_rhat",
           "summary"]
