"""Convolutional conditioners for image couplings: a small ResNet (RealNVP) and Glow's CNN.

Both map ``[B, H, W, C_in] -> [B, H, W, C_out]`` (``'SAME'`` padding) and start with a
zero-initialized output convolution, so a coupling they condition starts as the identity.
"""
from __future__ import annotations

import jax
from flax import nnx

from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


class ResidualBlock(nnx.Module):
    """``h + conv3x3(relu(conv3x3(relu(h))))`` (pre-activation residual block)."""

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        self.conv1 = mp.Conv(channels, channels, (3, 3), padding="SAME", rngs=rngs)
        self.conv2 = mp.Conv(channels, channels, (3, 3), padding="SAME", rngs=rngs,
                              kernel_init=nnx.initializers.variance_scaling(
                                  0.1, "fan_in", "truncated_normal"))

    def __call__(self, h: Array) -> Array:  # [B, H, W, C] -> [B, H, W, C]
        return h + self.conv2(jax.nn.relu(self.conv1(jax.nn.relu(h))))


class ResNet(nnx.Module):
    """``conv3x3 -> num_blocks x ResidualBlock -> relu -> conv3x3 (zero init)``.

    Args:
      in_channels, hidden_channels, out_channels: channel widths.
      num_blocks: residual blocks (>= 0).
      zero_init_last: zero-initialize the output convolution.
      rngs: NNX random streams.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_blocks: int = 2, *, zero_init_last: bool = True, rngs: nnx.Rngs):
        self.conv_in = mp.Conv(in_channels, hidden_channels, (3, 3), padding="SAME",
                                rngs=rngs)
        self.blocks = nnx.List([ResidualBlock(hidden_channels, rngs=rngs)
                                for _ in range(num_blocks)])
        zeros = nnx.initializers.zeros
        self.conv_out = mp.Conv(hidden_channels, out_channels, (3, 3), padding="SAME",
                                 rngs=rngs, **(dict(kernel_init=zeros, bias_init=zeros)
                                               if zero_init_last else {}))

    def __call__(self, x: Array) -> Array:  # [B, H, W, C_in] -> [B, H, W, C_out]
        h = self.conv_in(x)
        for block in self.blocks:
            h = block(h)
        return self.conv_out(jax.nn.relu(h))


class GlowCNN(nnx.Module):
    """Glow's coupling network: ``conv3x3 -> relu -> conv1x1 -> relu -> conv3x3 (zero)``.

    Args:
      in_channels, hidden_channels, out_channels: channel widths.
      zero_init_last: zero-initialize the output convolution.
      rngs: NNX random streams.
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, *,
                 zero_init_last: bool = True, rngs: nnx.Rngs):
        self.conv1 = mp.Conv(in_channels, hidden_channels, (3, 3), padding="SAME", rngs=rngs)
        self.conv2 = mp.Conv(hidden_channels, hidden_channels, (1, 1), rngs=rngs)
        zeros = nnx.initializers.zeros
        self.conv3 = mp.Conv(hidden_channels, out_channels, (3, 3), padding="SAME",
                              rngs=rngs, **(dict(kernel_init=zeros, bias_init=zeros)
                                            if zero_init_last else {}))

    def __call__(self, x: Array) -> Array:  # [B, H, W, C_in] -> [B, H, W, C_out]
        return self.conv3(jax.nn.relu(self.conv2(jax.nn.relu(self.conv1(x)))))


__all__ = ["GlowCNN", "ResNet", "ResidualBlock"]
