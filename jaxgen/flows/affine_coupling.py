"""RealNVP's affine coupling layer (Dinh et al., 2017), with a bounded log-scale."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, sum_except_batch
from jaxgen.flows.coupling_utils import combine, conditioner_features, conditioner_params
from jaxgen.flows.masks import MASK_KINDS

SCALE_FNS = ("tanh", "sigmoid", "exp")
_LOG_SIGMOID_2 = -math.log1p(math.exp(-2.0))


def affine_coupling_forward(x, shift, log_scale):
    """``y_b = x_b * exp(log_scale) + shift``;  ``log|det J| = sum(log_scale)``."""
    return x * jnp.exp(log_scale) + shift, sum_except_batch(log_scale)


class AffineCoupling(Bijector):
    """Conditioning entries ``x_a`` pass unchanged, the others ``x_b`` are scaled and shifted:

        ``(t, r) = NN(x_a)``,  ``s = bound(r)``,  ``y_b = x_b * exp(s) + t``,  ``y_a = x_a``,
        ``log|det J| = sum(s)``.

    Inverse: ``x_b = (y_b - t(y_a)) * exp(-s(y_a))``. For the split kinds (``half``,
    ``channel``) ``x_a``/``x_b`` are slices of the last axis and the conditioner maps
    ``[B, *event[:-1], C_a] -> [B, *event[:-1], 2 C_b]``; for the masked kinds (``alternate``,
    ``checkerboard``, mask ``m``) it maps ``m * x`` (``[B, *event]``) to ``[B, *event[:-1],
    2 C]`` and ``s, t`` are multiplied by ``1 - m`` (see `jaxgen.flows.coupling_utils`;
    `conditioner_features` gives ``(C_in, C_out)``). The log-scale is bounded for stability:

    * ``"tanh"``: ``s = a * tanh(r)`` with a learned per-channel ``a`` (starts at 1, RealNVP);
    * ``"sigmoid"``: ``s = log sigmoid(r + 2) - log sigmoid(2)`` (Glow's scale, rescaled so
      ``r = 0`` is the identity; ``s < 0.127``);
    * ``"exp"``: ``s = r`` (unbounded).

    Args:
      conditioner: module ``[B, *event[:-1], C_in] -> [B, *event[:-1], 2 C_out]``: the
        shifts of the transformed entries, then their raw scales (two contiguous blocks of
        ``C_out`` channels); zero-initialized last layer => identity.
      num_channels: ``C``, size of the last event axis.
      mask_kind: one of ``jaxgen.flows.masks.MASK_KINDS``.
      parity: 0 or 1 (swaps the roles of the two groups).
      scale_fn: one of `SCALE_FNS`.

    Conditional: ``forward_and_log_det(x, context)`` with ``context [B, F]`` feeds
    ``NN(x_a, c)`` (`jaxgen.flows.coupling_utils.with_context`; the conditioner then has
    ``C_in + F`` inputs); the log-determinant is still ``sum(s)``.
    """

    def __init__(self, conditioner: nnx.Module, num_channels: int, mask_kind: str = "half",
                 parity: int = 0, scale_fn: str = "tanh"):
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {mask_kind!r}; valid kinds: {MASK_KINDS}")
        if scale_fn not in SCALE_FNS:
            raise ValueError(f"unknown scale_fn {scale_fn!r}; valid: {SCALE_FNS}")
        if parity not in (0, 1):
            raise ValueError(f"parity must be 0 or 1, got {parity}")
        self.conditioner, self.mask_kind, self.parity = conditioner, mask_kind, int(parity)
        self.scale_fn = scale_fn
        if scale_fn == "tanh":
            num_out = conditioner_features(mask_kind, num_channels, parity)[1]
            self.scale = nnx.Param(jnp.ones((num_out,), jnp.float32))

    takes_context = True

    def _shift_and_log_scale(self, x, context=None):
        x_cond, x_trans, params, trans_mask = conditioner_params(
            self.conditioner, self.mask_kind, x, self.parity, 2, blocks=True, context=context)
        shift, raw = params  # [B, *event_b] each
        if self.scale_fn == "tanh":
            log_scale = self.scale[...] * jnp.tanh(raw)
        elif self.scale_fn == "sigmoid":
            log_scale = jax.nn.log_sigmoid(raw + 2.0) - _LOG_SIGMOID_2
        else:
            log_scale = raw
        if trans_mask is not None:
            shift, log_scale = trans_mask * shift, trans_mask * log_scale
        return x_cond, x_trans, shift, log_scale

    def forward_and_log_det(self, x, context=None):  # [B, *event]; context [B, F]
        x_cond, x_trans, shift, log_scale = self._shift_and_log_scale(x, context)
        y_trans, log_det = affine_coupling_forward(x_trans, shift, log_scale)
        return combine(self.mask_kind, x_cond, y_trans, self.parity), log_det

    def inverse_and_log_det(self, y, context=None):
        y_cond, y_trans, shift, log_scale = self._shift_and_log_scale(y, context)
        x_trans = (y_trans - shift) * jnp.exp(-log_scale)
        return combine(self.mask_kind, y_cond, x_trans, self.parity), -sum_except_batch(log_scale)


__all__ = ["AffineCoupling", "SCALE_FNS", "affine_coupling_forward"]
