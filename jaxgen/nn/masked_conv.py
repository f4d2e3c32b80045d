"""Masked 2D convolution (PixelCNN), full-image and single-pixel forms.

``y = conv(x, K * M) + b`` with a SAME-size output: the input is padded so that kernel tap
``centre`` lines up with the output pixel. `MaskedConv2d.at` evaluates the same layer at one
pixel from a cached, padded input map: the basis of cached ("fast") sampling, which
recomputes only the activations a new pixel changes.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.nn.masks import Mask
from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


def conv_padding(kernel_size: tuple[int, int], centre: tuple[int, int]):
    """``((top, bottom), (left, right))`` so that tap ``centre`` aligns with the output."""
    (kh, kw), (ci, cj) = kernel_size, centre
    return ((ci, kh - 1 - ci), (cj, kw - 1 - cj))


def conv2d(x: Array, kernel: Array, bias: Array, padding) -> Array:
    """``[B, H, W, I] -> [B, H', W', O]`` cross-correlation with explicit padding."""
    y = mp.conv_general_dilated(x, kernel, (1, 1), padding,
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


def conv2d_at(padded: Array, row: Array, col: Array, kernel: Array, bias: Array) -> Array:
    """The conv output at pixel ``(row, col)`` of a pre-padded input ``[B, H+ph, W+pw, I]``.

    ``y[b, o] = sum_{i, j, c} padded[b, row + i, col + j, c] K[i, j, c, o] + bias[o]``.
    """
    kh, kw, fan_in, _ = kernel.shape
    patch = jax.lax.dynamic_slice(padded, (0, row, col, 0),
                                  (padded.shape[0], kh, kw, fan_in))  # [B, kh, kw, I]
    return mp.einsum("bijc,ijco->bo", patch, kernel) + bias  # [B, O]


class MaskedConv2d(nnx.Module):
    """Conv layer whose kernel is multiplied by a fixed mask (see `jaxgen.nn.masks`).

    Attributes:
      kernel: ``nnx.Param [kh, kw, in, out]``; bias ``[out]``; mask ``Mask [kh, kw, in, out]``.
      padding: static padding aligning tap ``centre`` with the output pixel.
    """

    def __init__(self, mask: np.ndarray, *, centre: tuple[int, int] | None = None,
                 rngs: nnx.Rngs):
        mask = np.asarray(mask, np.float32)
        kh, kw, fan_in, fan_out = mask.shape
        centre = (kh // 2, kw // 2) if centre is None else tuple(centre)
        scale = 1.0 / np.sqrt(max(mask.sum(axis=(0, 1, 2)).mean(), 1.0))  # unmasked fan-in
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), mask.shape) * scale)
        self.bias = nnx.Param(jnp.zeros((fan_out,)))
        self.mask = Mask(jnp.asarray(mask))
        self.padding = conv_padding((kh, kw), centre)

    def masked_kernel(self) -> Array:
        return self.kernel[...] * self.mask[...]

    def __call__(self, x: Array) -> Array:  # [B, H, W, I] -> [B, H, W, O]
        return conv2d(x, self.masked_kernel(), self.bias[...], self.padding)

    def pad(self, x: Array) -> Array:
        """Zero-pads ``[B, H, W, I]`` as `__call__` does (for `at`)."""
        return jnp.pad(x, ((0, 0), *self.padding, (0, 0)))

    def at(self, padded: Array, row: Array, col: Array) -> Array:
        """Output ``[B, O]`` at ``(row, col)`` from the padded input (see `conv2d_at`)."""
        return conv2d_at(padded, row, col, self.masked_kernel(), self.bias[...])


__all__ = ["MaskedConv2d", "conv2d", "conv2d_at", "conv_padding"]
