"""RealNVP's affine coupling layer (Dinh et al., 2017), with a bounded log-scale."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, sum_except_batch
from jaxgen.flows.coupling_utils import mask_for, split_params
from jaxgen.flows.masks import MASK_KINDS

SCALE_FNS = ("tanh", "sigmoid", "exp")
_LOG_SIGMOID_2 = -math.log1p(math.exp(-2.0))


def affine_coupling_forward(x, shift, log_scale):
    """``y_b = x_b * exp(log_scale) + shift``;  ``log|det J| = sum(log_scale)``."""
    return x * jnp.exp(log_scale) + shift, sum_except_batch(log_scale)


class AffineCoupling(Bijector):
    """With mask ``m`` (1 = conditioning ``x_a``, 0 = transformed ``x_b``):

        ``(t, r) = NN(m * x)``,  ``s = (1 - m) * bound(r)``,  ``t <- (1 - m) * t``,
        ``y = x * exp(s) + t``  (so ``y_a = x_a``),  ``log|det J| = sum(s)``.

    Inverse: ``x = (y - t(y_a)) * exp(-s(y_a))``. The log-scale is bounded for stability:

    * ``"tanh"``: ``s = a * tanh(r)`` with a learned per-channel ``a`` (starts at 1, RealNVP);
    * ``"sigmoid"``: ``s = log sigmoid(r + 2) - log sigmoid(2)`` (Glow's scale, rescaled so
      ``r = 0`` is the identity; ``s < 0.127``);
    * ``"exp"``: ``s = r`` (unbounded).

    Args:
      conditioner: module ``[B, *event] -> [B, *event[:-1], 2 C]`` (shift, raw scale per
        entry, interleaved as ``[..., C, 2]``); zero-initialized last layer => identity.
      num_channels: ``C``, size of the last event axis (for the ``tanh`` scale ``a``).
      mask_kind: one of ``jaxgen.flows.masks.MASK_KINDS``.
      parity: 0 or 1 (flips the mask).
      scale_fn: one of `SCALE_FNS`.
    """

    def __init__(self, conditioner: nnx.Module, num_channels: int, mask_kind: str = "half",
                 parity: int = 0, scale_fn: str = "tanh"):
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {mask_kind!r}; valid kinds: {MASK_KINDS}")
        if scale_fn not in SCALE_FNS:
            raise ValueError(f"unknown scale_fn {scale_fn!r}; valid: {SCALE_FNS}")
        self.conditioner, self.mask_kind, self.parity = conditioner, mask_kind, int(parity)
        self.scale_fn = scale_fn
        if scale_fn == "tanh":
            self.scale = nnx.Param(jnp.ones((num_channels,), jnp.float32))

    def _shift_and_log_scale(self, x):
        mask = mask_for(self.mask_kind, x, self.parity)  # [*event]
        params = split_params(self.conditioner(x * mask), x.shape[1:], 2)  # [B, *event, 2]
        shift, raw = params[..., 0], params[..., 1]
        if self.scale_fn == "tanh":
            log_scale = self.scale[...] * jnp.tanh(raw)
        elif self.scale_fn == "sigmoid":
            log_scale = jax.nn.log_sigmoid(raw + 2.0) - _LOG_SIGMOID_2
        else:
            log_scale = raw
        return (1.0 - mask) * shift, (1.0 - mask) * log_scale

    def forward_and_log_det(self, x):  # [B, *event]
        shift, log_scale = self._shift_and_log_scale(x)
        return affine_coupling_forward(x, shift, log_scale)

    def inverse_and_log_det(self, y):
        shift, log_scale = self._shift_and_log_scale(y)
        return (y - shift) * jnp.exp(-log_scale), -sum_except_batch(log_scale)


__all__ = ["AffineCoupling", "SCALE_FNS", "affine_coupling_forward"]
