"""The multi-scale architecture with factor-out (RealNVP section 3.6, Glow section 3)."""
from __future__ import annotations

import jax.numpy as jnp

from jaxgen.flows.base import Bijector, apply_bijector
from jaxgen.flows.squeeze import squeeze, unsqueeze


class MultiScale(Bijector):
    """One level of a multi-scale flow, shape preserving on ``[B, H, W, C]``.

    Normalizing direction (``forward``):

        ``h = before(x)``                           ``[B, H, W, C]``
        ``h = after(squeeze(h))``                   ``[B, H/2, W/2, 4C]``
        ``z_out, h = h[..., :2C], h[..., 2C:]``     (factor out half the channels)
        ``h = inner(h)``                            (the next, coarser level)
        ``y = unsqueeze(concat(z_out, h))``         ``[B, H, W, C]``

    ``log|det J| = ld_before + ld_after + ld_inner`` (squeeze, split and the final unsqueeze
    only permute entries). The factored-out ``z_out`` leave the flow and are modelled by the
    base distribution, as is the inner level's output, so the latent is a fixed permutation
    of the ``[H, W, C]`` entries and a standard base on ``[H, W, C]`` is exactly RealNVP's /
    Glow's factorized prior. With ``split=False`` (the last level) nothing is factored out
    and ``inner`` must be ``None``.

    Args:
      before: shape-preserving bijector at ``[H, W, C]`` (RealNVP's checkerboard
        couplings), or None.
      after: shape-preserving bijector at ``[H/2, W/2, 4C]`` (RealNVP's channel couplings,
        Glow's K steps), or None.
      inner: shape-preserving bijector at ``[H/2, W/2, 2C]``, or None.
      split: factor out half the channels after squeezing.
    """

    def __init__(self, before: Bijector | None = None, after: Bijector | None = None,
                 inner: Bijector | None = None, *, split: bool = True):
        if inner is not None and not split:
            raise ValueError("MultiScale: an inner level needs split=True")
        self.before, self.after, self.inner, self.split = before, after, inner, split

    takes_context = True

    def forward_and_log_det(self, x, context=None):  # [B, H, W, C]
        if x.ndim != 4:
            raise ValueError(f"MultiScale needs images [B, H, W, C], got shape {x.shape}")
        log_det = jnp.zeros(x.shape[:1], jnp.float32)
        if self.before is not None:
            x, ld = apply_bijector(self.before, "forward_and_log_det", x, context)
            log_det += ld
        h = squeeze(x)
        if self.after is not None:
            h, ld = apply_bijector(self.after, "forward_and_log_det", h, context)
            log_det += ld
        if self.split:
            half = h.shape[-1] // 2
            z_out, h = h[..., :half], h[..., half:]
            if self.inner is not None:
                h, ld = apply_bijector(self.inner, "forward_and_log_det", h, context)
                log_det += ld
            h = jnp.concatenate([z_out, h], axis=-1)
        return unsqueeze(h), log_det

    def inverse_and_log_det(self, y, context=None):  # [B, H, W, C]
        if y.ndim != 4:
            raise ValueError(f"MultiScale needs images [B, H, W, C], got shape {y.shape}")
        log_det = jnp.zeros(y.shape[:1], jnp.float32)
        h = squeeze(y)
        if self.split:
            half = h.shape[-1] // 2
            z_out, h = h[..., :half], h[..., half:]
            if self.inner is not None:
                h, ld = apply_bijector(self.inner, "inverse_and_log_det", h, context)
                log_det += ld
            h = jnp.concatenate([z_out, h], axis=-1)
        if self.after is not None:
            h, ld = apply_bijector(self.after, "inverse_and_log_det", h, context)
            log_det += ld
        x = unsqueeze(h)
        if self.before is not None:
            x, ld = apply_bijector(self.before, "inverse_and_log_det", x, context)
            log_det += ld
        return x, log_det


__all__ = ["MultiScale"]
