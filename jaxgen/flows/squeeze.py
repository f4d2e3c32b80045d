"""Squeeze (space-to-depth) of RealNVP/Glow multi-scale flows, and its inverse."""
from __future__ import annotations

import jax.numpy as jnp

from jaxgen.flows.base import Bijector


def squeeze(x, factor: int = 2):
    """``[B, H, W, C] -> [B, H/f, W/f, f*f*C]``: each ``f x f`` block becomes channels."""
    b, h, w, c = x.shape
    if h % factor or w % factor:
        raise ValueError(f"squeeze by {factor} needs H and W divisible by it, got {x.shape}")
    x = x.reshape(b, h // factor, factor, w // factor, factor, c)
    x = x.transpose(0, 1, 3, 2, 4, 5)  # [B, H/f, W/f, f, f, C]
    return x.reshape(b, h // factor, w // factor, factor * factor * c)


def unsqueeze(y, factor: int = 2):
    """Inverse of `squeeze`: ``[B, H, W, f*f*C] -> [B, f*H, f*W, C]``."""
    b, h, w, c = y.shape
    if c % (factor * factor):
        raise ValueError(f"unsqueeze by {factor} needs C divisible by {factor ** 2}, "
                         f"got {y.shape}")
    c_out = c // (factor * factor)
    y = y.reshape(b, h, w, factor, factor, c_out).transpose(0, 1, 3, 2, 4, 5)
    return y.reshape(b, h * factor, w * factor, c_out)


class Squeeze(Bijector):
    """Space-to-depth: ``[B, H, W, C] -> [B, H/2, W/2, 4C]``;  ``log|det J| = 0``.

    A permutation of the entries, so it trades spatial size for channels at no volume cost;
    inverse: depth-to-space.

    Args:
      factor: block size ``f`` (2 in RealNVP and Glow).
    """

    def __init__(self, factor: int = 2):
        self.factor = int(factor)

    def forward_and_log_det(self, x):  # [B, H, W, C]
        if x.ndim != 4:
            raise ValueError(f"Squeeze needs images [B, H, W, C], got shape {x.shape}")
        return squeeze(x, self.factor), jnp.zeros(x.shape[:1], jnp.float32)

    def inverse_and_log_det(self, y):  # [B, H/f, W/f, f*f*C]
        if y.ndim != 4:
            raise ValueError(f"Squeeze needs images [B, H, W, C], got shape {y.shape}")
        return unsqueeze(y, self.factor), jnp.zeros(y.shape[:1], jnp.float32)


__all__ = ["Squeeze", "squeeze", "unsqueeze"]
