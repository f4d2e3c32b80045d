"""Connectivity masks for autoregressive networks.

Three kinds of mask, all built in NumPy on static shapes (they are constants):

* `made_masks`: MADE's degree masks for a masked MLP. Each unit ``k`` of layer ``l`` gets a
  degree ``m_l(k)``; inputs get their rank in the ordering, ``m_0(d) in {1..D}``. A hidden
  weight ``j -> k`` is kept iff ``m_l(k) >= m_{l-1}(j)``, an output weight ``j -> d`` iff
  ``m_0(d) > m_L(j)``, so output ``d`` depends only on inputs of smaller rank.
* `conv_mask`: PixelCNN's masks for a ``kh x kw`` kernel. Taps strictly before the centre in
  raster order are kept; the centre tap connects channel group ``g_in -> g_out`` iff
  ``g_in < g_out`` (mask "A", the first layer: a pixel never sees itself) or
  ``g_in <= g_out`` (mask "B", later layers); later taps are zero.
* `causal_mask`: ``[T, T]`` lower-triangular attention mask (``t`` attends to ``s <= t``).

Channel groups implement per-channel masking for colour images: with ``C`` data channels,
the ``n`` feature units are split into ``C`` contiguous groups, unit ``u`` in group
``u * C // n``; group ``c`` may see data channels ``< c`` of the current pixel (R -> G -> B).
"""
from __future__ import annotations

import numpy as np
from flax import nnx


class Mask(nnx.Variable):
    """A constant 0/1 mask stored on a module (not a trainable ``nnx.Param``)."""


def channel_groups(num_units: int, num_channels: int) -> np.ndarray:
    """Group of each unit: ``u * C // n`` (``C`` contiguous groups), int array ``[n]``."""
    if num_units % num_channels:
        raise ValueError(f"num_units={num_units} must be divisible by the number of data "
                         f"channels {num_channels} for per-channel masking")
    return np.arange(num_units) * num_channels // num_units


def conv_mask(kernel_size: tuple[int, int], in_groups: np.ndarray, out_groups: np.ndarray,
              mask_type: str, centre: tuple[int, int] | None = None) -> np.ndarray:
    """PixelCNN mask of shape ``[kh, kw, in, out]`` (float32 0/1).

    Args:
      kernel_size: ``(kh, kw)``.
      in_groups: ``[in]`` channel group of each input unit.
      out_groups: ``[out]`` channel group of each output unit.
      mask_type: ``"A"`` (centre: ``g_in < g_out``) or ``"B"`` (centre: ``g_in <= g_out``).
      centre: the tap aligned with the output pixel (default ``(kh // 2, kw // 2)``).
    """
    if mask_type not in ("A", "B"):
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    kh, kw = kernel_size
    ci, cj = (kh // 2, kw // 2) if centre is None else centre
    rows, cols = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    before = (rows < ci) | ((rows == ci) & (cols < cj))  # [kh, kw]
    gi, go = np.asarray(in_groups)[:, None], np.asarray(out_groups)[None, :]
    centre_ok = (gi < go) if mask_type == "A" else (gi <= go)  # [in, out]
    mask = np.broadcast_to(before[:, :, None, None], (kh, kw, gi.size, go.size)).copy()
    mask[ci, cj] = centre_ok
    return mask.astype(np.float32)


def made_degrees(ordering: np.ndarray, hidden_sizes, rng: np.random.Generator | None
                 ) -> list[np.ndarray]:
    """Degrees of the input (rank in ``ordering``, 1-based) and hidden layers.

    Hidden degrees are drawn uniformly from ``[min degree of the layer below, D - 1]``
    (``rng``), or assigned cyclically (deterministic) when ``rng`` is None.
    """
    num_dims = ordering.size
    degrees = [np.empty(num_dims, np.int64)]
    degrees[0][ordering] = np.arange(1, num_dims + 1)  # dim ordering[t] has rank t + 1
    for size in hidden_sizes:
        low = min(int(degrees[-1].min()), num_dims - 1)
        if rng is None:
            deg = low + (np.arange(size) * max(num_dims - low, 1)) // size  # evenly spread
        else:
            deg = rng.integers(low, num_dims, size=size)
        degrees.append(deg)
    return degrees


def made_masks(input_degrees: np.ndarray, hidden_degrees: list[np.ndarray],
               output_degrees: np.ndarray) -> list[np.ndarray]:
    """MADE masks ``[in, out]`` for each layer given unit degrees.

    Hidden layers: ``M[j, k] = 1[m_l(k) >= m_{l-1}(j)]``; output layer:
    ``M[j, d] = 1[m_out(d) > m_L(j)]``. ``input_degrees`` may repeat a dimension's degree
    (one-hot inputs), as may ``output_degrees`` (several parameters per dimension).
    """
    masks, below = [], input_degrees
    for deg in hidden_degrees:
        masks.append((deg[None, :] >= below[:, None]).astype(np.float32))
        below = deg
    masks.append((output_degrees[None, :] > below[:, None]).astype(np.float32))
    return masks


def causal_mask(length: int) -> np.ndarray:
    """``[T, T]`` boolean, ``mask[t, s] = s <= t``."""
    return np.tril(np.ones((length, length), bool))


__all__ = ["Mask", "causal_mask", "channel_groups", "conv_mask", "made_degrees", "made_masks"]
