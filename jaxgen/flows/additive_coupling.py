"""NICE's additive coupling layer (Dinh et al., 2014)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector
from jaxgen.flows.coupling_utils import combine, conditioner_params
from jaxgen.flows.masks import MASK_KINDS


class AdditiveCoupling(Bijector):
    """With mask ``m`` (1 = conditioning entries ``x_a``, 0 = transformed ``x_b``):

        ``y = m * x + (1 - m) * (x + t(m * x))``,  i.e.  ``y_a = x_a``, ``y_b = x_b + t(x_a)``;
        ``log|det J| = 0`` (volume preserving; the Jacobian is unit triangular).

    Inverse: ``x_b = y_b - t(y_a)``.

    Args:
      conditioner: module computing ``t``: ``[B, *event[:-1], C_a] -> [B, *event[:-1], C_b]``
        for the split kinds (``half``, ``channel``), ``[B, *event] -> [B, *event]`` for the
        masked ones (output at conditioning entries ignored); see
        `jaxgen.flows.coupling_utils.conditioner_features`. Zero-initialized last layer =>
        identity at init.
      mask_kind: one of ``jaxgen.flows.masks.MASK_KINDS``.
      parity: 0 or 1 (flips the mask).
    """

    def __init__(self, conditioner: nnx.Module, mask_kind: str = "half", parity: int = 0):
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {mask_kind!r}; valid kinds: {MASK_KINDS}")
        self.conditioner, self.mask_kind, self.parity = conditioner, mask_kind, int(parity)

    takes_context = True

    def _apply(self, x, sign: float, context=None):
        x_cond, x_trans, params, trans_mask = conditioner_params(
            self.conditioner, self.mask_kind, x, self.parity, 1, context=context)
        shift = params[..., 0] if trans_mask is None else trans_mask * params[..., 0]
        y = combine(self.mask_kind, x_cond, x_trans + sign * shift, self.parity)
        return y, jnp.zeros(x.shape[:1], jnp.float32)

    def forward_and_log_det(self, x, context=None):  # [B, *event]; context [B, F]
        return self._apply(x, 1.0, context)

    def inverse_and_log_det(self, y, context=None):
        return self._apply(y, -1.0, context)


__all__ = ["AdditiveCoupling"]
