"""Batch normalization as a bijector (RealNVP, Dinh et al., 2017, section 3.7)."""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, num_positions


class BatchNorm(Bijector):
    """Per-channel (last axis) normalization, normalizing direction:

        ``y = (x - mu) / sqrt(var + eps) * exp(log_gamma) + beta``,
        ``log|det J| = H * W * sum_c [log_gamma_c - 0.5 log(var_c + eps)]``.

    In training mode (``use_running_average=False``; ``model.train()``) ``mu, var`` are the
    batch's statistics (treated as constants in the Jacobian, as in RealNVP) and the running
    averages ``r <- momentum * r + (1 - momentum) * batch`` are updated (``nnx.BatchStat``,
    threaded through the training loop as non-trainable state). In evaluation mode (the
    default; ``model.eval()``) the running averages are used, and the layer is an exact,
    fixed affine bijector. ``inverse`` always uses the running averages.

    Args:
      num_channels: size of the last axis.
      momentum: of the running averages.
      eps: variance floor.
      use_running_average: evaluation mode (True) or training mode (False).
    """

    def __init__(self, num_channels: int, *, momentum: float = 0.9, eps: float = 1e-4,
                 use_running_average: bool = True, rngs: nnx.Rngs | None = None):
        del rngs
        self.num_channels, self.momentum, self.eps = int(num_channels), float(momentum), float(eps)
        self.use_running_average = use_running_average
        self.log_gamma = nnx.Param(jnp.zeros((num_channels,), jnp.float32))
        self.beta = nnx.Param(jnp.zeros((num_channels,), jnp.float32))
        self.running_mean = nnx.BatchStat(jnp.zeros((num_channels,), jnp.float32))
        self.running_var = nnx.BatchStat(jnp.ones((num_channels,), jnp.float32))

    def _check(self, x):
        if x.shape[-1] != self.num_channels:
            raise ValueError(f"BatchNorm over {self.num_channels} channels got shape {x.shape}")

    def forward_and_log_det(self, x):  # [B, ..., C]
        self._check(x)
        if self.use_running_average:
            mean, var = self.running_mean[...], self.running_var[...]
        else:
            axes = tuple(range(x.ndim - 1))
            mean, var = jnp.mean(x, axis=axes), jnp.var(x, axis=axes)
            m = self.momentum
            self.running_mean[...] = m * self.running_mean[...] + (1 - m) * mean
            self.running_var[...] = m * self.running_var[...] + (1 - m) * var
        log_scale = self.log_gamma[...] - 0.5 * jnp.log(var + self.eps)  # [C]
        y = (x - mean) * jnp.exp(log_scale) + self.beta[...]
        return y, jnp.broadcast_to(num_positions(x) * jnp.sum(log_scale), x.shape[:1])

    def inverse_and_log_det(self, y):
        self._check(y)
        mean, var = self.running_mean[...], self.running_var[...]
        log_scale = self.log_gamma[...] - 0.5 * jnp.log(var + self.eps)
        x = (y - self.beta[...]) * jnp.exp(-log_scale) + mean
        return x, jnp.broadcast_to(-num_positions(y) * jnp.sum(log_scale), y.shape[:1])


__all__ = ["BatchNorm"]
