"""PixelCNN (van den Oord et al., 2016): a stack of masked convolutions.

The first layer is a ``k0 x k0`` convolution with mask "A" (a pixel does not see itself),
followed by ``L`` residual blocks ``h <- h + conv_B(relu(h))`` with ``k x k`` mask-"B"
kernels and two ``1 x 1`` mask-B output layers. The receptive field grows by ``k // 2`` per
layer up and to the left/right, but it never reaches the region up-right of the pixel that
the masked kernel's right half cannot propagate into: the *blind spot* (see
`GatedPixelCNN`). Colour images use per-channel masks (``R -> G -> B``, see
`jaxgen.nn.masks`). Blocks share one stacked parameter array and run under ``lax.scan``.

Sampling: `sample_naive` runs a full forward pass per position; `sample` (fast) caches every
layer's activations and, at each position, computes only that pixel's activations in each
layer from the cached ones (every masked tap points to an earlier or the current pixel), so
a step costs ``O(L k^2 F^2)`` instead of ``O(L H W k^2 F^2)``. Both use the same keys and
return identical samples.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import AutoregressiveModel, check_temperature
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count
from jaxgen.nn.masked_conv import MaskedConv2d, conv2d
from jaxgen.nn.masks import Mask, channel_groups, conv_mask
from jaxgen.types import Array, PRNGKey
from jaxgen.nn.layer_scan import layer_scan


def _check_image_shape(event_shape, owner: str) -> tuple[int, int, int]:
    if len(event_shape) != 3:
        raise ValueError(f"{owner} needs image event_shape (H, W, C), got {tuple(event_shape)}")
    return tuple(int(s) for s in event_shape)


class PixelCNN(AutoregressiveModel):
    """Masked-convolution autoregressive model over ``[H, W, C]`` images.

    Attributes:
      input_conv: mask-A `MaskedConv2d` ``C -> F``.
      block_kernels: ``nnx.Param [L, k, k, F, F]``; block_biases ``[L, F]``; block_mask
        ``Mask [k, k, F, F]`` (mask B).
      hidden_out, output: ``1 x 1`` mask-B convs ``F -> F -> C * P``.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int, *,
                 hidden_channels: int = 64, num_layers: int = 5, first_kernel_size: int = 7,
                 kernel_size: int = 3, head: str = "auto", num_mixtures: int = 5,
                 rngs: nnx.Rngs):
        h, w, c = _check_image_shape(event_shape, "PixelCNN")
        if num_layers < 1 or kernel_size % 2 == 0 or first_kernel_size % 2 == 0:
            raise ValueError(f"need num_layers >= 1 and odd kernel sizes, got {num_layers}, "
                             f"{first_kernel_size}, {kernel_size}")
        self.event_shape, self.num_levels = (h, w, c), int(num_levels)
        self.head = make_head(head, self.num_levels, num_mixtures)
        self.encoding = "scalar"
        f, p = hidden_channels, self.head.num_params
        g_in, g_f = np.arange(c), channel_groups(f, c)
        g_out = np.repeat(np.arange(c), p)  # outputs laid out [C, P]
        self.input_conv = MaskedConv2d(
            conv_mask((first_kernel_size,) * 2, g_in, g_f, "A"), rngs=rngs)
        mask_b = conv_mask((kernel_size,) * 2, g_f, g_f, "B")
        scale = 1.0 / np.sqrt(mask_b.sum(axis=(0, 1, 2)).mean())
        self.block_kernels = nnx.Param(jax.random.normal(
            rngs.params(), (num_layers, *mask_b.shape)) * scale)
        self.block_biases = nnx.Param(jnp.zeros((num_layers, f)))
        self.block_mask = Mask(jnp.asarray(mask_b))
        self.hidden_out = MaskedConv2d(conv_mask((1, 1), g_f, g_f, "B"), rngs=rngs)
        self.output = MaskedConv2d(conv_mask((1, 1), g_f, g_out, "B"), rngs=rngs)
        self.kernel_size = int(kernel_size)

    def _block_padding(self):
        q = self.kernel_size // 2
        return ((q, q), (q, q))

    def params_from_inputs(self, inputs: Array) -> Array:
        """``[B, H, W, C, 1]`` scaled inputs -> ``[B, H, W, C, P]`` head parameters."""
        b, (h, w, c) = inputs.shape[0], self.event_shape
        x = inputs[..., 0]  # [B, H, W, C]
        act = self.input_conv(x)  # [B, H, W, F]
        mask = self.block_mask[...]

        def block(act, layer):
            kernel, bias = layer
            return act + conv2d(jax.nn.relu(act), kernel * mask, bias,
                                self._block_padding()), None

        act, _ = layer_scan(block, act, (self.block_kernels[...], self.block_biases[...]))
        out = self.output(jax.nn.relu(self.hidden_out(jax.nn.relu(act))))  # [B, H, W, C*P]
        return out.reshape(b, h, w, c, self.head.num_params)  # explicit: B may be 0

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """Fast (cached) ancestral sampling; identical to `sample_naive` for the same key
        and temperature. ``temperature`` ``T``: every conditional at softmax temperature ``T``,
        ``p_T(k) ∝ p(k)^{1/T}`` (finite, ``> 0``; ``T = 1`` is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`);
            a bad ``temperature``.
        """
        n = check_count("n", n)
        temperature = check_temperature("PixelCNN.sample", temperature)
        (h, w, c), d = self.event_shape, self.num_dims
        q0, q = self.input_conv.padding[0][0], self.kernel_size // 2
        f = self.block_biases.shape[-1]
        num_layers = self.block_biases.shape[0]
        kernels = self.block_kernels[...] * self.block_mask[...]  # [L, k, k, F, F]
        biases = self.block_biases[...]
        k_in, b_in = self.input_conv.masked_kernel(), self.input_conv.bias[...]
        k_hid = self.hidden_out.masked_kernel()[0, 0]  # [F, F]
        k_out = self.output.masked_kernel()[0, 0]  # [F, C*P]
        keys = jax.random.split(key, d)
        # Padded input (encoded) and per-layer relu(activation) caches; pads stay zero.
        x_pad = jnp.pad(jnp.full((n, h, w, c), -1.0), ((0, 0), (q0, q0), (q0, q0), (0, 0)))
        cache = jnp.zeros((num_layers, n, h + 2 * q, w + 2 * q, f))  # [L, n, H+2q, W+2q, F]
        levels = jnp.zeros((n, d), jnp.int32)
        ksz = self.kernel_size

        def step(carry, inputs):
            x_pad, cache, levels = carry
            t, key_t = inputs
            pixel, ch = t // c, t % c
            r, col = pixel // w, pixel % w
            patch = jax.lax.dynamic_slice(x_pad, (0, r, col, 0), (n, 2 * q0 + 1, 2 * q0 + 1, c))
            act = jnp.einsum("bijc,ijco->bo", patch, k_in) + b_in  # [n, F]

            def layer(carry, l):
                act, cache = carry
                cache = jax.lax.dynamic_update_slice(
                    cache, jax.nn.relu(act)[None, :, None, None, :], (l, 0, r + q, col + q, 0))
                patch = jax.lax.dynamic_slice(cache, (l, 0, r, col, 0), (1, n, ksz, ksz, f))[0]
                act = act + jnp.einsum("bijc,ijco->bo", patch, kernels[l]) + biases[l]
                return (act, cache), None

            (act, cache), _ = jax.lax.scan(layer, (act, cache), jnp.arange(num_layers))
            hid = jax.nn.relu(jax.nn.relu(act) @ k_hid + self.hidden_out.bias[...])
            out = (hid @ k_out + self.output.bias[...]).reshape(n, c, -1)  # [n, C, P]
            params_t = jax.lax.dynamic_index_in_dim(out, ch, 1, False)  # [n, P]
            value = self.head.sample(key_t, params_t, temperature)  # [n]
            enc = 2.0 * value.astype(jnp.float32) / (self.num_levels - 1) - 1.0
            x_pad = jax.lax.dynamic_update_slice(x_pad, enc[:, None, None, None],
                                                 (0, r + q0, col + q0, ch))
            return (x_pad, cache, levels.at[:, t].set(value)), None

        (_, _, levels), _ = jax.lax.scan(step, (x_pad, cache, levels), (jnp.arange(d), keys))
        return levels.reshape(n, h, w, c)


__all__ = ["PixelCNN"]
