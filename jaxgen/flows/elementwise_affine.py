"""Elementwise affine bijector with a learned shift and log-scale per event entry."""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, sum_except_batch


class ElementwiseAffine(Bijector):
    """``y = x * exp(log_scale) + shift``;  ``log|det J| = sum(log_scale)``.

    ``shift`` and ``log_scale`` have the event shape (both start at zero: the identity).

    Args:
      event_shape: shape of one example, e.g. ``(D,)`` or ``(H, W, C)``.
      rngs: unused (kept for a uniform constructor signature).
    """

    def __init__(self, event_shape: Sequence[int], *, rngs: nnx.Rngs | None = None):
        del rngs
        self.event_shape = tuple(event_shape)
        self.shift = nnx.Param(jnp.zeros(self.event_shape, jnp.float32))
        self.log_scale = nnx.Param(jnp.zeros(self.event_shape, jnp.float32))

    def _log_det(self, batch_size):  # [B]
        return jnp.broadcast_to(jnp.sum(self.log_scale[...]), (batch_size,))

    def forward_and_log_det(self, x):  # [B, *event]
        y = x * jnp.exp(self.log_scale[...]) + self.shift[...]
        return y, self._log_det(x.shape[0])

    def inverse_and_log_det(self, y):
        x = (y - self.shift[...]) * jnp.exp(-self.log_scale[...])
        return x, -self._log_det(y.shape[0])


__all__ = ["ElementwiseAffine"]
