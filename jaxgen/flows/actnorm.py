"""Glow's activation normalization with data-dependent initialization (Kingma & Dhariwal,
2018)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, InitFlag, num_positions


class ActNorm(Bijector):
    """Per-channel affine map (normalizing direction):

        ``y = (x + bias) * exp(log_scale)``,  ``log|det J| = H * W * sum(log_scale)``

    (``H * W`` = 1 for vectors ``[B, D]``, where each feature is a channel). Inverse:
    ``x = y * exp(-log_scale) - bias``.

    Data-dependent initialization: `jaxgen.flows.initialize` sets ``data_init = True`` on
    every ActNorm (a static Python attribute, so no traced control flow), runs the data
    through the flow once, and resets it. In that pass each ActNorm sets
    ``bias = -mean(x)``, ``log_scale = -log(std(x) + eps)`` over all axes but the channel
    axis, so its output on that batch has zero mean and unit variance per channel, and
    records ``initialized = True``. Both are ordinary trainable parameters afterwards.

    Args:
      num_channels: size of the last axis.
      eps: added to the std at initialization.
    """

    data_init = False

    def __init__(self, num_channels: int, *, eps: float = 1e-6, rngs: nnx.Rngs | None = None):
        del rngs
        self.num_channels, self.eps = int(num_channels), float(eps)
        self.bias = nnx.Param(jnp.zeros((num_channels,), jnp.float32))
        self.log_scale = nnx.Param(jnp.zeros((num_channels,), jnp.float32))
        self.initialized = InitFlag(jnp.array(False))

    def _check(self, x):
        if x.shape[-1] != self.num_channels:
            raise ValueError(f"ActNorm over {self.num_channels} channels got shape {x.shape}")

    def forward_and_log_det(self, x):  # [B, ..., C]
        self._check(x)
        if self.data_init:
            axes = tuple(range(x.ndim - 1))
            self.bias[...] = -jnp.mean(x, axis=axes)
            self.log_scale[...] = -jnp.log(jnp.std(x, axis=axes) + self.eps)
            self.initialized[...] = jnp.array(True)
        y = (x + self.bias[...]) * jnp.exp(self.log_scale[...])
        log_det = num_positions(x) * jnp.sum(self.log_scale[...])
        return y, jnp.broadcast_to(log_det, x.shape[:1])

    def inverse_and_log_det(self, y):
        self._check(y)
        x = y * jnp.exp(-self.log_scale[...]) - self.bias[...]
        log_det = -num_positions(y) * jnp.sum(self.log_scale[...])
        return x, jnp.broadcast_to(log_det, y.shape[:1])


__all__ = ["ActNorm"]


def initialize(model, batch, context=None) -> None:
    """Data-dependent initialization of every `ActNorm` in ``model`` from ``batch``.

    Call once, eagerly, before training, with the first (preprocessed) batch of data. It
    runs ``model.log_prob(batch)`` (or ``model.forward(batch)`` for a bare normalizing
    bijector) with each ActNorm's static ``data_init`` flag set, so every ActNorm sees the
    output of the already-initialized layers below it and normalizes it to zero mean, unit
    variance per channel. Stacked layers (`jaxgen.flows.repeat.Repeat`) are initialized
    one after the other inside their scan.

    Args:
      model: an NNX module containing ActNorm layers (others are left alone).
      batch: ``[B, *event_shape]`` data as the model's ``log_prob`` takes it.
      context: the batch's context, for a conditional model (``log_prob(batch, context)``).
    """
    from flax import nnx as _nnx

    actnorms = [m for _, m in _nnx.iter_modules(model) if isinstance(m, ActNorm)]
    if not actnorms:
        return
    for m in actnorms:
        m.data_init = True
    try:
        if context is not None:
            model.log_prob(jnp.asarray(batch), context=context)
        else:
            (model.log_prob if hasattr(model, "log_prob") else model.forward)(jnp.asarray(batch))
    finally:
        for m in actnorms:
            m.data_init = False


__all__ = ["ActNorm", "initialize"]
