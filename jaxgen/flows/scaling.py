"""NICE's diagonal scaling layer (Dinh et al., 2014, section 3.3)."""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector


class Scaling(Bijector):
    """``y = x * exp(log_scale)``;  ``log|det J| = sum(log_scale)``.

    The last layer of NICE (data -> latent direction): additive couplings are volume
    preserving, so this diagonal scaling is where the flow changes volume; a large
    ``log_scale_i`` marks a dimension the model deems unimportant. Starts at zero.

    Args:
      event_shape: shape of one example.
      rngs: unused.
    """

    def __init__(self, event_shape: Sequence[int], *, rngs: nnx.Rngs | None = None):
        del rngs
        self.event_shape = tuple(event_shape)
        self.log_scale = nnx.Param(jnp.zeros(self.event_shape, jnp.float32))

    def forward_and_log_det(self, x):  # [B, *event]
        log_det = jnp.broadcast_to(jnp.sum(self.log_scale[...]), x.shape[:1])
        return x * jnp.exp(self.log_scale[...]), log_det

    def inverse_and_log_det(self, y):
        log_det = jnp.broadcast_to(-jnp.sum(self.log_scale[...]), y.shape[:1])
        return y * jnp.exp(-self.log_scale[...]), log_det


__all__ = ["Scaling"]
