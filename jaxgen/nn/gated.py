"""Gated activation unit (WaveNet / Gated PixelCNN).

``y = tanh(a) * sigmoid(b)`` where ``[a, b]`` are the two halves of the last axis.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.types import Array


def gated_activation(x: Array) -> Array:
    """``[..., 2F] -> [..., F]``: ``tanh(x[..., :F]) * sigmoid(x[..., F:])``."""
    if x.shape[-1] % 2:
        raise ValueError(f"gated_activation needs an even last axis, got shape {x.shape}")
    a, b = jnp.split(x, 2, axis=-1)
    return jnp.tanh(a) * jax.nn.sigmoid(b)


__all__ = ["gated_activation"]
