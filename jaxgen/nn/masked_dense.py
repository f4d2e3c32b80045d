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
from jaxgen.nn import mixed_precision as mp


class MaskedDense(nnx.Module):
    """``y = x @ (W * masks[mask_index]) + b``.

    Attributes:
      kernel: ``nnx.Param [in, out]`` (LeCun-normal init, or zeros with ``zero_init``).
      bias: ``nnx.Param [out]`` (zeros); ``None`` when ``use_bias=False``.
      masks: ``Mask [num_masks, in, out]`` of 0/1 floats.
    """

    def __init__(self, masks: np.ndarray, *, use_bias: bool = True, zero_init: bool = False,
                 rngs: nnx.Rngs):
        """Args:
          masks: ``[in, out]`` or ``[num_masks, in, out]`` 0/1 connectivity.
          use_bias: add a bias ``b [out]``.
          zero_init: start the kernel at zero (the layer then adds nothing but ``b``); the
            parameter key is drawn either way, so later layers' inits do not shift.
          rngs: ``rngs.params()`` initializes the kernel.
        """
        masks = np.asarray(masks, np.float32)
        if masks.ndim == 2:
            masks = masks[None]
        if masks.ndim != 3:
            raise ValueError(f"masks must be [in, out] or [num_masks, in, out], got {masks.shape}")
        _, fan_in, fan_out = masks.shape
        kernel = jax.random.normal(rngs.params(), (fan_in, fan_out)) / np.sqrt(fan_in)
        self.kernel = nnx.Param(jnp.zeros_like(kernel) if zero_init else kernel)
        self.bias = nnx.Param(jnp.zeros((fan_out,))) if use_bias else None
        self.masks = Mask(jnp.asarray(masks))

    @property
    def num_masks(self) -> int:
        return int(self.masks.shape[0])

    def __call__(self, x: Array, mask_index: Array | int = 0) -> Array:
        mask = self.masks[...][mask_index]  # [in, out]
        y = mp.matmul(x, self.kernel[...] * mask)  # [..., out]
        return y if self.bias is None else y + self.bias[...]


__all__ = ["MaskedDense"]
