"""A dense layer with a fixed connectivity mask (MADE's building block).

``y = x @ (W * M) + b``. The layer may hold a stack of ``num_masks`` masks ``[M, in, out]``
(connectivity-agnostic training / test-time ensembles); ``mask_index`` picks one, and may be
a traced integer (chosen per training step from a key).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.nn.masks import Mask
from jaxgen.types import Array


class MaskedDense(nnx.Module):
    """``y = x @ (W * masks[mask_index]) + b``.

    Attributes:
      kernel: ``nnx.Param [in, out]`` (LeCun-normal init).
      bias: ``nnx.Param [out]`` (zeros).
      masks: ``Mask [num_masks, in, out]`` of 0/1 floats.
    """

    def __init__(self, masks: np.ndarray, *, rngs: nnx.Rngs):
        masks = np.asarray(masks, np.float32)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3:
            raise ValueError(f"masks must be [in, out] or [num_masks, in, out], got {masks.shape}")
        _, fan_in, fan_out = masks.shape
        self.kernel = nnx.Param(jax.random.normal(rngs.params(), (fan_in, fan_out))
                                / np.sqrt(fan_in))
        self.bias = nnx.Param(jnp.zeros((fan_out,)))
        self.masks = Mask(jnp.asarray(masks))

    def __call__(self, x: Array, mask_index: Array | int = 0) -> Array:
        mask = self.masks[...][mask_index]  # [in, out]
        return x @ (self.kernel[...] * mask) + self.bias[...]  # [..., out]


__all__ = ["MaskedDense"]
