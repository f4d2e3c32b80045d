"""``log Z`` of a 2D energy with the mass outside the integration region bounded and reported.

``Z = int_{R^2} exp(-E(x)) dx`` is split over nested boxes that double around the data::

    B_0 = [min(data) - margin * span, max(data) + margin * span]   (per axis)
    B_k = center + 2^k (B_0 - center),  k = 1 .. K
    Z   = I(B_0) + sum_{k=1..K} I(B_k \\ B_{k-1}) + T,   T = int_{R^2 \\ B_K} exp(-E)

* Each region is integrated by the midpoint rule on an ``n x n`` grid of its own box
  (``cell_k = 2^k cell_0``: resolution follows scale), the cells of the inner box
  ``B_{k-1}`` left out; they are exactly the middle ``n/2 x n/2`` cells, since the grid of
  ``B_k`` is aligned with ``B_{k-1}``'s edges when ``n % 4 == 0``.
* Discretization error of region ``k``: ``|I_k(n) - I_k(n/2)|``, the same region on the
  grid of half the resolution (``n % 8 == 0`` keeps that grid aligned too). The midpoint
  rule's error is ``O(h^2)``, so for a smooth integrand the error of ``I_k(n)`` is about
  ``|I_k(n) - I_k(n/2)| / 3``: the stated error is conservative by ~3x.
* Doubling stops once ``K >= min_doublings`` and the last shell holds less than ``tol`` of
  the mass so far (or at ``max_doublings``: then ``converged`` is False and a
  ``RuntimeWarning`` is raised: the energy may not be normalizable).
* The tail ``T`` beyond ``B_K`` by importance sampling from a bivariate Student-t ``q``
  (``df`` degrees of freedom, an integer, 1 by default: a bivariate Cauchy; centred on
  ``B_K``, scale its half-widths): with
  ``x_i ~ q``, ``w_i = exp(-E(x_i)) 1[x_i not in B_K] / q(x_i)``, ``T ~= mean(w)`` is
  unbiased for any integrable ``exp(-E)`` (``q > 0`` everywhere), with standard error
  ``std(w) / sqrt(N)``. The heavy tail (density ``~ |x|^-(df+2)``) keeps the weights'
  variance finite for any integrand that decays faster than ``q``.
* Error of ``log Z`` by the delta method: ``sigma_logZ = sqrt((D / Z)^2 + (se_T / Z)^2 +
  r^2)``, ``D`` the summed discretization errors, ``se_T`` the tail's standard error and
  ``r = 4 eps_32 (|log Z| + 10)`` a float32 floor: energies are float32, and where the mass
  is ``E ~ -log Z + O(10)``, rounded to a relative ``eps_32 = 1.2e-7``.

Limits: quadrature can miss mass that is invisible at the grid's resolution (a spike
narrower than a cell) or a mode that sits beyond a region of negligible mass where doubling
already stopped; the Student-t tail term still covers such a far mode in expectation, but
its standard error, estimated from the same samples, can then be too small.

Everything is compiled once per ``(energy_fn, grid_size, chunk_size)`` (the data box, the
shell and the tail each have their own static shape): pass the same function object to
reuse the compilation.
"""
from __future__ import annotations

import math
import warnings
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.checks import check_count, check_finite, check_positive
from jaxgen.mcmc.run import jit
from jaxgen.types import Array, PRNGKey

METHOD = "nested_midpoint+student_t_tail"
_F32_EPS = float(np.finfo(np.float32).eps)
ROUNDOFF_FACTOR = 4.0  # float32 floor: E ~ -log Z + O(10) where the mass is, rounded to eps|E|


class LogZ2D(NamedTuple):
    """``log Z`` of a 2D energy and what it leaves out (all floats are nats or fractions of Z).

    Attributes:
      log_z: ``log(sum of the regions + tail)``.
      log_z_std_err: its error, ``sqrt((D/Z)^2 + (se_T/Z)^2 + roundoff^2)`` (delta method).
      converged: the last shell held less than ``tol`` of the mass and everything is finite.
      outside_data_box_fraction: ``1 - I(B_0) / Z``, the mass a box-only grid would drop.
      tail_fraction: ``T / Z``, the importance-sampled mass beyond the final box.
      tail_std_err: ``se_T / Z``.
      discretization_err: ``D / Z``, ``D = sum_k |I_k(n) - I_k(n/2)|``.
      roundoff_err: the float32 floor ``4 eps_32 (|log Z| + 10)``.
      last_shell_fraction: the last shell's share of the mass integrated on grids.
      log_z_data_box: ``log I(B_0)``: the data box alone (what a box-only grid reports).
      num_doublings: ``K``.
      data_box, final_box: ``[[low_x, low_y], [high_x, high_y]]`` of ``B_0`` and ``B_K``.
      num_energy_evals: points at which ``energy_fn`` was evaluated.
    """

    log_z: float
    log_z_std_err: float
    converged: bool
    outside_data_box_fraction: float
    tail_fraction: float
    tail_std_err: float
    discretization_err: float
    roundoff_err: float
    last_shell_fraction: float
    log_z_data_box: float
    num_doublings: int
    data_box: list
    final_box: list
    num_energy_evals: int

    def results(self, prefix: str = "log_z") -> dict:
        """The estimate as JSON-able ``results.json`` entries (``log_z``, ``log_z_*``)."""
        return {
            prefix: self.log_z,
            f"{prefix}_std_err": self.log_z_std_err,
            f"{prefix}_method": METHOD,
            f"{prefix}_converged": bool(self.converged),
            f"{prefix}_outside_data_box_fraction": self.outside_data_box_fraction,
            f"{prefix}_tail_fraction": self.tail_fraction,
            f"{prefix}_tail_std_err": self.tail_std_err,
            f"{prefix}_discretization_err": self.discretization_err,
            f"{prefix}_roundoff_err": self.roundoff_err,
            f"{prefix}_last_shell_fraction": self.last_shell_fraction,
            f"{prefix}_data_box_only": self.log_z_data_box,
            f"{prefix}_num_doublings": int(self.num_doublings),
            f"{prefix}_data_box": self.data_box,
            f"{prefix}_final_box": self.final_box,
            f"{prefix}_num_energy_evals": int(self.num_energy_evals),
        }


# ------------------------------------------------------------------------------------------
# Compiled pieces (static: the energy function and the grid's shape).


def _cell_indices(n: int, exclude_inner: bool) -> np.ndarray:
    """``[M, 2]`` int indices ``(i_x, i_y)`` of an ``n x n`` grid, without the middle
    ``n/2 x n/2`` cells (``n/4 <= i < 3n/4`` on both axes) when ``exclude_inner``."""
    ix, iy = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    idx = np.stack([ix.ravel(), iy.ravel()], -1)
    if exclude_inner:
        inner = np.all((idx >= n // 4) & (idx < 3 * n // 4), axis=-1)
        idx = idx[~inner]
    return idx.astype(np.float32)


def _chunked_values(value_fn: Callable[[Array], Array], pts: Array, chunk_size: int) -> Array:
    """``value_fn`` (``[C, 2] -> [C]``) over ``pts [M, 2]`` in chunks (``lax.map``):
    ``[num_chunks, C]``, padding entries ``-inf``."""
    m = pts.shape[0]
    num_chunks = -(-m // chunk_size)
    pad = num_chunks * chunk_size - m
    pts = jnp.concatenate([pts, jnp.broadcast_to(pts[:1], (pad, 2))]) if pad else pts
    valid = (jnp.arange(num_chunks * chunk_size) < m).reshape(num_chunks, chunk_size)
    values = jax.lax.map(value_fn, pts.reshape(num_chunks, chunk_size, 2))
    return jnp.where(valid, values, -jnp.inf)


def _checked_energy(energy_fn, x: Array, args: tuple = ()) -> Array:
    e = energy_fn(x, *args)
    if tuple(e.shape) != (x.shape[0],):
        raise ValueError(f"energy_fn must map [N, 2] -> [N]; for N={x.shape[0]} it returned "
                         f"shape {tuple(e.shape)}")
    return e.astype(jnp.float32)


def _grid_log_sum(energy_fn, n: int, exclude_inner: bool, chunk_size: int, low: Array,
                  cell: Array, args: tuple = ()) -> Array:
    """``log sum_cells exp(-E(midpoint))`` over the ``n x n`` grid of cell ``cell [2]`` from
    ``low [2]`` (the middle block left out when ``exclude_inner``). Two-level logsumexp
    (per chunk, then across chunks) keeps float32 rounding at ``~(C + M/C) eps``."""
    pts = low + (jnp.asarray(_cell_indices(n, exclude_inner)) + 0.5) * cell  # [M, 2]
    per_chunk = jax.nn.logsumexp(
        _chunked_values(lambda x: -_checked_energy(energy_fn, x, args), pts, chunk_size),
        axis=-1)
    return jax.nn.logsumexp(per_chunk)


def _region_log_sums(energy_fn, grid_size: int, exclude_inner: bool, chunk_size: int,
                     low: Array, cell: Array, args: tuple = ()) -> Array:
    """``[2]``: log-sums of the region on the ``grid_size`` grid and on the grid of half
    the resolution (cells ``2 * cell``), without the cell areas."""
    fine = _grid_log_sum(energy_fn, grid_size, exclude_inner, chunk_size, low, cell, args)
    coarse = _grid_log_sum(energy_fn, grid_size // 2, exclude_inner, chunk_size, low,
                           2 * cell, args)
    return jnp.stack([fine, coarse])


def _student_t_log_density(x: Array, center: Array, scale: Array, df: int) -> Array:
    """Bivariate Student-t, ``[N, 2] -> [N]``: ``log Gamma((df+2)/2) - log Gamma(df/2) -
    log(df pi) - sum log scale - (df+2)/2 log(1 + |z|^2 / df)``, ``z = (x - center) / scale``."""
    z = (x - center) / scale
    log_norm = math.lgamma((df + 2) / 2) - math.lgamma(df / 2) - math.log(df * math.pi)
    return (log_norm - jnp.sum(jnp.log(scale))
            - (df + 2) / 2 * jnp.log1p(jnp.sum(z ** 2, -1) / df))


def _tail_log_weights(energy_fn, num_samples: int, df: int, chunk_size: int, key: PRNGKey,
                      center: Array, half: Array, args: tuple = ()) -> Array:
    """``[num_samples]`` log importance weights ``-E(x) - log q(x)`` of Student-t draws
    ``x = center + half * g / sqrt(u / df)`` (``g ~ N(0, I_2)``, ``u ~ chi^2_df`` as a sum of
    ``df`` squared normals: no gamma sampler to compile), ``-inf`` for draws inside the box
    ``center +- half``."""
    normals = jax.random.normal(key, (num_samples, 2 + df))
    g = normals[:, :2]
    u = jnp.sum(normals[:, 2:] ** 2, -1, keepdims=True)  # [N, 1]
    x = center + half * g / jnp.sqrt(u / df)  # [N, 2]
    outside = jnp.any(jnp.abs(x - center) > half, axis=-1)
    neg_energy = _chunked_values(lambda xc: -_checked_energy(energy_fn, xc, args), x,
                                 chunk_size).reshape(-1)[:num_samples]
    log_w = neg_energy - _student_t_log_density(x, center, half, df)
    return jnp.where(outside, log_w, -jnp.inf)


_region_log_sums_jit = jit(_region_log_sums, static_argnums=(0, 1, 2, 3))
_tail_log_weights_jit = jit(_tail_log_weights, static_argnums=(0, 1, 2, 3))


# ------------------------------------------------------------------------------------------
# Host side: float64 bookkeeping.


def data_box(data, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """``B_0``: ``[min - margin * span, max + margin * span]`` per axis of ``data [N, 2]``
    (an axis with zero span gets half-width ``0.5 + margin``)."""
    data = np.asarray(data, np.float64)
    lo, hi = data.min(0), data.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    return lo - margin * span, hi + margin * span


def _log_mean_and_se(log_w: np.ndarray) -> tuple[float, float]:
    """``(log mean(w), log(std(w) / sqrt(N)))`` in float64 from log-weights ``[N]``
    (``-inf`` for a zero; ``+inf``/NaN weights pass through)."""
    n = log_w.size
    m = np.max(log_w)
    if not np.isfinite(m):
        return (m, m) if m > 0 or np.isnan(m) else (-np.inf, -np.inf)
    w = np.exp(log_w - m)
    mean = w.mean()
    se = w.std(ddof=1) / math.sqrt(n) if n > 1 else np.inf
    log = lambda v: math.log(v) if v > 0 else -math.inf
    return m + log(mean), m + log(se)


def log_partition_2d(energy_fn: Callable[[Array], Array], data, key: PRNGKey, *,
                     margin: float = 0.25, grid_size: int = 400, tol: float = 1e-4,
                     min_doublings: int = 2, max_doublings: int = 12,
                     num_tail_samples: int = 2 ** 16, tail_df: int = 1,
                     chunk_size: int = 8192, energy_args: tuple = ()) -> LogZ2D:
    """``log Z`` of ``exp(-energy_fn)`` on ``R^2``: nested doubling boxes by the midpoint
    rule, the tail beyond them by Student-t importance sampling (see the module docstring).

    Args:
      energy_fn: ``[N, 2] float32 (, *energy_args) -> [N]`` energies; traced (pure,
        jit-compatible). The same function object reuses the compilation.
      data: ``[N, 2]`` points whose bounding box (plus ``margin`` of its span) is ``B_0``.
      key: for the tail's importance samples.
      margin: ``B_0``'s padding, as a fraction of the data's span per axis.
      grid_size: cells per axis of every region's grid, a multiple of 8.
      tol: stop doubling when the last shell holds less than this fraction of the mass.
      min_doublings, max_doublings: bounds on the number of shells ``K``.
      num_tail_samples: Student-t draws for the tail.
      tail_df: the Student-t's degrees of freedom, an integer (1: a bivariate Cauchy).
      chunk_size: points per energy call.
      energy_args: arrays passed on as ``energy_fn(x, *energy_args)``, traced: one
        compilation serves every value (e.g. the class ``y`` of a conditional energy
        ``E(x, y)``, integrated class by class).

    Returns:
      `LogZ2D`. ``converged`` is False (and a ``RuntimeWarning`` says why) when the shells
      did not fall under ``tol`` by ``max_doublings`` or a sum is not finite.

    Raises:
      ValueError: ``data`` is not ``[N, 2]`` with ``N >= 1`` or not finite, or a setting is
        out of range (``grid_size`` not a multiple of 8, ...).
    """
    data = np.asarray(data, np.float64)
    if data.ndim != 2 or data.shape[1] != 2 or data.shape[0] < 1:
        raise ValueError(f"log_partition_2d needs data of shape [N, 2] with N >= 1, got "
                         f"shape {data.shape}")
    check_finite(data, "log_partition_2d (data)")
    grid_size = check_count("grid_size", grid_size, 8)
    if grid_size % 8:
        raise ValueError(f"grid_size must be a multiple of 8 (the inner box and the "
                         f"half-resolution grid align with the cells), got {grid_size}")
    min_doublings = check_count("min_doublings", min_doublings, 0)
    max_doublings = check_count("max_doublings", max_doublings, max(min_doublings, 1))
    num_tail_samples = check_count("num_tail_samples", num_tail_samples, 2)
    chunk_size = check_count("chunk_size", chunk_size, 1)
    tail_df = check_count("tail_df", tail_df)
    tol = check_positive("tol", tol)

    low0, high0 = data_box(data, float(margin))
    center, half0 = (low0 + high0) / 2, (high0 - low0) / 2
    with np.errstate(invalid="ignore", over="ignore"):  # a NaN is reported via `converged`
        shells = _shells(energy_fn, center, half0, grid_size, tol, min_doublings,
                         max_doublings, chunk_size, energy_args)
        half_final = half0 * 2.0 ** shells.num_doublings
        log_w = np.asarray(_tail_log_weights_jit(
            energy_fn, num_tail_samples, tail_df, chunk_size, key,
            jnp.asarray(center, jnp.float32), jnp.asarray(half_final, jnp.float32),
            energy_args),
            np.float64)  # [num_tail_samples]
        log_tail, log_tail_se = _log_mean_and_se(log_w)

        log_z = float(np.logaddexp(np.logaddexp.reduce(shells.log_fine), log_tail))
        frac = lambda log_v: float(np.exp(log_v - log_z))  # a mass as a fraction of Z
        disc = frac(np.logaddexp.reduce(shells.log_err))
        tail_se = frac(log_tail_se)
        roundoff = ROUNDOFF_FACTOR * _F32_EPS * (abs(log_z) + 10.0)
        std_err = math.sqrt(disc ** 2 + tail_se ** 2 + roundoff ** 2)
        outside = frac(np.logaddexp.reduce(np.append(shells.log_fine[1:], log_tail)))
    finite = bool(np.isfinite(log_z) and np.isfinite(std_err))
    converged = shells.converged and finite
    if not converged:
        why = (f"the last shell still held {shells.last_fraction:.3g} of the mass after "
               f"{shells.num_doublings} doublings (tol {tol:g}); the energy may not be "
               "normalizable" if finite else "a sum is not finite (NaN or overflowing "
               "energies)")
        warnings.warn(f"log_partition_2d did not converge: {why}; log Z = {log_z:.4f} "
                      f"+- {std_err:.3g} is not trustworthy", RuntimeWarning, stacklevel=2)
    return LogZ2D(
        log_z=log_z, log_z_std_err=std_err, converged=converged,
        outside_data_box_fraction=outside, tail_fraction=frac(log_tail),
        tail_std_err=tail_se, discretization_err=disc, roundoff_err=roundoff,
        last_shell_fraction=shells.last_fraction, log_z_data_box=float(shells.log_fine[0]),
        num_doublings=shells.num_doublings, data_box=[low0.tolist(), high0.tolist()],
        final_box=[(center - half_final).tolist(), (center + half_final).tolist()],
        num_energy_evals=shells.num_energy_evals + num_tail_samples)


class _Shells(NamedTuple):
    log_fine: np.ndarray  # [K + 1] log I_k(n): the data box, then each shell
    log_err: np.ndarray  # [K + 1] log |I_k(n) - I_k(n/2)|
    num_doublings: int  # K
    last_fraction: float  # I_K(n) / sum_k I_k(n)
    converged: bool  # last_fraction < tol (after min_doublings)
    num_energy_evals: int


def _shells(energy_fn, center: np.ndarray, half0: np.ndarray, grid_size: int, tol: float,
            min_doublings: int, max_doublings: int, chunk_size: int,
            energy_args: tuple = ()) -> _Shells:
    """Integrates ``B_0``, then shell after shell ``B_k \\ B_{k-1}``, until the last shell
    holds less than ``tol`` of the mass (after ``min_doublings``) or ``max_doublings``."""
    log_fine, log_err, num_evals = [], [], 0
    last_fraction, converged, k = math.inf, False, 0
    for k in range(max_doublings + 1):
        half = half0 * 2.0 ** k
        cell = 2 * half / grid_size  # [2]
        sums = np.asarray(_region_log_sums_jit(
            energy_fn, grid_size, k > 0, chunk_size, jnp.asarray(center - half, jnp.float32),
            jnp.asarray(cell, jnp.float32), energy_args), np.float64)
        num_evals += (grid_size ** 2 + (grid_size // 2) ** 2) * (3 if k else 4) // 4
        log_area = float(np.sum(np.log(cell)))
        fine, coarse = sums[0] + log_area, sums[1] + log_area + 2 * math.log(2.0)
        log_fine.append(fine)
        if np.isnan(fine) or np.isnan(coarse) or math.inf in (fine, coarse):
            log_err.append(math.nan)
            last_fraction = math.nan
            break  # NaN or overflowing energies: more shells cannot help
        high, low = max(fine, coarse), min(fine, coarse)
        log_err.append(high + math.log1p(-math.exp(low - high)) if high > low else -math.inf)
        if k == 0:
            continue
        last_fraction = float(np.exp(fine - np.logaddexp.reduce(log_fine)))
        if k >= min_doublings and last_fraction < tol:
            converged = True
            break
    return _Shells(np.asarray(log_fine), np.asarray(log_err), k, last_fraction, converged,
                   num_evals)


__all__ = ["LogZ2D", "METHOD", "data_box", "log_partition_2d"]
