"""Pictures of models: sample grids, 2D samples and densities, MCMC chain traces, learning
curves.

Everything renders with matplotlib's Agg canvas on a private ``Figure`` (no ``pyplot``
state, no ``plt.show``, no backend switching), so it runs headless, inside tests and next
to a notebook's own plots. Inputs may be numpy or JAX arrays.
"""
from __future__ import annotations

import math
import os
from typing import Callable, Sequence

import matplotlib.image
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _makedirs_for(path: str | os.PathLike) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)


def _save_figure(fig: Figure, path: str | os.PathLike, dpi: int) -> None:
    _makedirs_for(path)
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=dpi)


def to_uint8(images, num_levels: int | None = None) -> np.ndarray:
    """Maps images to uint8 intensities ``0..255``.

    Discrete levels ``0..K-1`` (``num_levels=K``) map to ``round(255 x / (K - 1))``;
    continuous images (``num_levels=None``) are taken to lie in ``[0, 1]`` and are clipped.
    """
    images = np.asarray(images)
    if num_levels is not None:
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        scaled = images.astype(np.float64) / (num_levels - 1)
    else:
        scaled = images.astype(np.float64)
    return np.round(255.0 * np.clip(scaled, 0.0, 1.0)).astype(np.uint8)


def image_grid(images, num_levels: int | None = None, ncols: int = 8, *, pad: int = 1,
               pad_value: int = 128) -> np.ndarray:
    """Tiles a batch of images into one uint8 image.

    Args:
      images: ``[N, H, W, C]`` with ``C`` in {1, 3} (or ``[N, H, W]``): level indices
        ``0..num_levels-1``, or floats in ``[0, 1]`` when ``num_levels`` is None.
      num_levels: number of discrete levels, or None for continuous images.
      ncols: images per row; rows = ``ceil(N / ncols)`` (empty cells are ``pad_value``).
      pad: pixels of border between and around the images.
      pad_value: uint8 intensity of the border.

    Returns:
      uint8 array ``[rows * (H + pad) + pad, ncols' * (W + pad) + pad, C]`` where
      ``ncols' = min(ncols, N)``.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3) or images.shape[0] == 0:
        raise ValueError("image_grid expects a non-empty [N, H, W, C] batch with C in {1, 3}, "
                         f"got shape {images.shape}")
    if ncols <= 0 or pad < 0:
        raise ValueError(f"ncols must be positive and pad non-negative, got {ncols}, {pad}")
    n, h, w, c = images.shape
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, np.uint8)
    pixels = to_uint8(images, num_levels)  # [N, H, W, C]
    for i in range(n):
        top, left = pad + (i // ncols) * (h + pad), pad + (i % ncols) * (w + pad)
        grid[top:top + h, left:left + w] = pixels[i]
    return grid


def save_image_grid(path: str | os.PathLike, images, num_levels: int | None = None,
                    ncols: int = 8, *, scale: int = 1, pad: int = 1) -> np.ndarray:
    """Writes `image_grid` as a PNG, each pixel blown up to ``scale x scale`` (nearest).

    Returns:
      The saved uint8 array ``[H', W', C]`` (the PNG has ``H' x W'`` pixels).
    """
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    grid = image_grid(images, num_levels, ncols, pad=pad)
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    _makedirs_for(path)
    if grid.shape[-1] == 1:
        matplotlib.image.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255, format="png")
    else:
        matplotlib.image.imsave(path, grid, format="png")
    return grid


def data_extent(points, margin: float = 0.1) -> tuple[float, float, float, float]:
    """``(xmin, xmax, ymin, ymax)`` around the central 99% of ``points [N, 2]``, plus a
    ``margin`` (fraction of the span) on each side."""
    points = _check_2d("points", points)
    lo, hi = np.percentile(points, 0.5, axis=0), np.percentile(points, 99.5, axis=0)
    span = np.maximum(hi - lo, 1e-6)
    lo, hi = lo - margin * span, hi + margin * span
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _check_2d(name: str, points) -> np.ndarray:
    points = np.asarray(points, np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"{name} must be [N, 2], got shape {points.shape}")
    return points


def plot_2d_samples(path: str | os.PathLike, samples, data=None, *,
                    extent: Sequence[float] | None = None, title: str | None = None,
                    dpi: int = 100) -> None:
    """Scatter plot of 2D samples ``[N, 2]``, next to the data ``[M, 2]`` when given.

    Args:
      path: PNG to write.
      samples: ``[N, 2]`` model samples.
      data: optional ``[M, 2]`` data, drawn in a second panel on the same axes limits.
      extent: ``(xmin, xmax, ymin, ymax)``; default: the central 99% of the data (or of the
        samples) plus a 10% margin.
      title: figure title.
    """
    samples = _check_2d("samples", samples)
    panels = [("samples", samples)]
    if data is not None:
        panels.insert(0, ("data", _check_2d("data", data)))
    extent = tuple(extent) if extent is not None else data_extent(panels[0][1])
    fig = Figure(figsize=(4 * len(panels), 4))
    for i, (name, points) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        alpha = float(np.clip(2000 / len(points), 0.05, 0.8))
        ax.scatter(points[:, 0], points[:, 1], s=2, alpha=alpha,
                   color="C0" if name == "data" else "C1", linewidths=0)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_aspect("equal")
        ax.set_title(f"{name} ({len(points)})")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path, dpi)


def density_grid(log_prob_fn: Callable, extent: Sequence[float], resolution: int = 200,
                 *, batch_size: int = 10_000) -> np.ndarray:
    """``log p`` on a ``resolution x resolution`` grid over ``extent``.

    Args:
      log_prob_fn: batched ``[B, 2] -> [B]`` log-density (e.g. a jitted ``model.log_prob``).
      extent: ``(xmin, xmax, ymin, ymax)``.
      resolution: points per axis (cell centres).
      batch_size: points per call of ``log_prob_fn``.

    Returns:
      ``[resolution, resolution]`` float64, row ``i`` at ``y_i`` ascending, column ``j`` at
      ``x_j`` ascending.
    """
    xmin, xmax, ymin, ymax = map(float, extent)
    if not (xmax > xmin and ymax > ymin) or resolution < 2:
        raise ValueError(f"bad extent {tuple(extent)} or resolution {resolution}")
    xs = np.linspace(xmin, xmax, resolution, dtype=np.float32)
    ys = np.linspace(ymin, ymax, resolution, dtype=np.float32)
    points = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)  # [R*R, 2]
    chunks = [np.asarray(log_prob_fn(points[i:i + batch_size]), np.float64)
              for i in range(0, len(points), batch_size)]
    return np.concatenate(chunks).reshape(resolution, resolution)


def plot_2d_density(path: str | os.PathLike, log_prob_fn: Callable, extent: Sequence[float],
                    *, resolution: int = 200, data=None, title: str | None = None,
                    dpi: int = 100) -> np.ndarray:
    """Heat map of the density ``exp(log_prob_fn(x))`` over a 2D box.

    Args:
      path: PNG to write.
      log_prob_fn: batched ``[B, 2] -> [B]`` log-density.
      extent: ``(xmin, xmax, ymin, ymax)``.
      resolution: grid points per axis.
      data: optional ``[M, 2]`` points overlaid as small dots.
      title: figure title.

    Returns:
      The ``[resolution, resolution]`` grid of log-densities that was drawn.
    """
    log_p = density_grid(log_prob_fn, extent, resolution)
    finite = np.isfinite(log_p)
    density = np.where(finite, np.exp(log_p - (log_p[finite].max() if finite.any() else 0.0)),
                       0.0)
    fig = Figure(figsize=(4.5, 4))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(density, origin="lower", extent=tuple(map(float, extent)), cmap="viridis",
                   aspect="equal", interpolation="nearest")
    if data is not None:
        data = _check_2d("data", data)
        ax.scatter(data[:, 0], data[:, 1], s=1, color="white", alpha=0.3, linewidths=0)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
    fig.colorbar(im, ax=ax, label="density / max")
    ax.set_title(title or "model density")
    fig.tight_layout()
    _save_figure(fig, path, dpi)
    return log_p


def plot_chain_trace(path: str | os.PathLike, values, *, names: Sequence[str] | None = None,
                     title: str | None = None, dpi: int = 100) -> None:
    """Trace plot of MCMC statistics over steps.

    Args:
      path: PNG to write.
      values: ``[T]`` (one chain), ``[T, K]`` (K chains of one statistic) or ``[T, K, S]``
        (S statistics, one panel each).
      names: one label per statistic (panel).
      title: figure title.
    """
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None, None]
    elif values.ndim == 2:
        values = values[:, :, None]
    if values.ndim != 3 or values.shape[0] == 0:
        raise ValueError(f"values must be [T], [T, K] or [T, K, S] with T > 0, "
                         f"got shape {np.shape(values)}")
    num_steps, num_chains, num_stats = values.shape
    if names is not None and len(names) != num_stats:
        raise ValueError(f"got {len(names)} names for {num_stats} statistics")
    fig = Figure(figsize=(6, 2.2 * num_stats))
    steps = np.arange(num_steps)
    for s in range(num_stats):
        ax = fig.add_subplot(num_stats, 1, s + 1)
        for k in range(num_chains):
            ax.plot(steps, values[:, k, s], linewidth=0.8, alpha=0.8)
        ax.set_ylabel(names[s] if names is not None else f"stat {s}")
        if s == num_stats - 1:
            ax.set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save_figure(fig, path, dpi)


def plot_curves(path: str | os.PathLike, records: Sequence[dict], *,
                metric: str = "bits_per_dim", title: str | None = None,
                dpi: int = 100) -> bool:
    """Learning curves: ``metric`` of the train and valid records against ``step``.

    Args:
      path: PNG to write.
      records: ``metrics.jsonl`` records ``{"step", "split", metric, ...}``; records without
        ``metric`` fall back to ``nll`` (then ``loss``) for their split.
      metric: what to plot (bits/dim puts train and valid in the data's units).

    Returns:
      False (and nothing written) when no record holds a value to plot.
    """
    curves = {}
    for split in ("train", "valid"):
        rows = [r for r in records if r.get("split") == split]
        for name in (metric, "nll", "loss"):
            points = [(r["step"], r[name]) for r in rows
                      if isinstance(r.get(name), (int, float)) and math.isfinite(r[name])]
            if points:
                curves[split] = (name, np.asarray(points, np.float64))
                break
    if not curves:
        return False
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot(1, 1, 1)
    for split, (name, points) in curves.items():
        ax.plot(points[:, 0], points[:, 1], marker="o" if len(points) < 30 else None,
                markersize=3, label=f"{split} {name}")
    ax.set_xlabel("step")
    ax.set_ylabel(metric if all(n == metric for n, _ in curves.values()) else "value")
    ax.legend()
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    _save_figure(fig, path, dpi)
    return True


__all__ = ["data_extent", "density_grid", "image_grid", "plot_2d_density", "plot_2d_samples",
           "plot_chain_trace", "plot_curves", "save_image_grid", "to_uint8"]
