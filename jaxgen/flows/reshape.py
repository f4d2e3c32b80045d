"""Reshape of the event (e.g. flatten ``[8, 8, 1]`` images into 64-vectors)."""
from __future__ import annotations

import math
from typing import Sequence

import jax.numpy as jnp

from jaxgen.flows.base import Bijector


class Reshape(Bijector):
    """``y = reshape(x, [B, *out_shape])``;  ``log|det J| = 0`` (a relabelling).

    Args:
      in_shape: event shape of ``x``.
      out_shape: event shape of ``y`` (same number of entries).
    """

    def __init__(self, in_shape: Sequence[int], out_shape: Sequence[int]):
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        if math.prod(self.in_shape) != math.prod(self.out_shape):
            raise ValueError(f"cannot reshape events {self.in_shape} into {self.out_shape}")

    def _reshape(self, x, from_shape, to_shape):
        if tuple(x.shape[1:]) != from_shape:
            raise ValueError(f"Reshape expected [B, *{from_shape}], got shape {x.shape}")
        return x.reshape(x.shape[:1] + to_shape), jnp.zeros(x.shape[:1], jnp.float32)

    def forward_and_log_det(self, x):
        return self._reshape(x, self.in_shape, self.out_shape)

    def inverse_and_log_det(self, y):
        return self._reshape(y, self.out_shape, self.in_shape)


__all__ = ["Reshape"]
