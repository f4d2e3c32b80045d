"""NICE's additive coupling layer (Dinh et al., 2014)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector
from jaxgen.flows.coupling_utils import mask_for, split_params
from jaxgen.flows.masks import MASK_KINDS


class AdditiveCoupling(Bijector):
    """With mask ``m`` (1 = conditioning entries ``x_a``, 0 = transformed ``x_b``):

        ``y = m * x + (1 - m) * (x + t(m * x))``,  i.e.  ``y_a = x_a``, ``y_b = x_b + t(x_a)``;
        ``log|det J| = 0`` (volume preserving; the Jacobian is unit triangular).

    Inverse: ``x_b = y_b - t(y_a)``.

    Args:
      conditioner: module ``[B, *event] -> [B, *event]`` computing ``t`` (its output at
        conditioning entries is ignored); zero-initialized last layer => identity at init.
      mask_kind: one of ``jaxgen.flows.masks.MASK_KINDS``.
      parity: 0 or 1 (flips the mask).
    """

    def __init__(self, conditioner: nnx.Module, mask_kind: str = "half", parity: int = 0):
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {mask_kind!r}; valid kinds: {MASK_KINDS}")
        self.conditioner, self.mask_kind, self.parity = conditioner, mask_kind, int(parity)

    def _shift(self, x):
        mask = mask_for(self.mask_kind, x, self.parity)  # [*event]
        shift = split_params(self.conditioner(x * mask), x.shape[1:], 1)[..., 0]
        return (1.0 - mask) * shift

    def forward_and_log_det(self, x):  # [B, *event]
        return x + self._shift(x), jnp.zeros(x.shape[:1], jnp.float32)

    def inverse_and_log_det(self, y):
        return y - self._shift(y), jnp.zeros(y.shape[:1], jnp.float32)


__all__ = ["AdditiveCoupling"]
