"""Gated PixelCNN (van den Oord et al., 2016b): vertical + horizontal stacks, no blind spot.

Each layer ``l`` has a *vertical* stack, a ``(k//2 + 1) x k`` convolution over the rows
``r - k//2 .. r`` (all of them, including the current row), and a *horizontal* stack, a
``1 x (k//2 + 1)`` convolution over columns ``c - k//2 .. c`` of the current row (layer 0:
mask A, excluding the centre; later layers: mask B). The vertical pre-activation, shifted
down one row (so it only holds rows ``< r``), enters the horizontal stack through a
``1 x 1`` convolution:

    v_pre = W_v * v + V_v y,                 v' = tanh(v_pre_a) . sigmoid(v_pre_b)
    h_pre = W_h * h + U shift_down(v_pre) + V_h y,
    h' = h + W_o gate(h_pre)                 (layer 0: h' = W_o gate(h_pre), no residual)

with the optional class embedding ``V y`` (``num_classes``). Together the stacks see every
pixel above and to the left: the blind spot of `PixelCNN` is gone.

Fast sampling: at the start of row ``r`` the vertical stacks of row ``r - 1`` are computed
for all layers (from cached vertical activations of earlier rows); within the row, each
position computes only its own horizontal activations from a per-row cache. Identical
samples to `sample_naive` for the same key.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import ConditionalAutoregressiveModel, check_temperature
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count
from jaxgen.autoregressive.pixelcnn import _check_image_shape
from jaxgen.nn.gated import gated_activation
from jaxgen.nn.masked_conv import conv2d
from jaxgen.nn.masks import Mask, channel_groups, conv_mask
from jaxgen.types import Array, PRNGKey
from jaxgen.nn.layer_scan import layer_scan
from jaxgen.nn import mixed_precision as mp


def _normal(rngs, shape, fan_in):
    return nnx.Param(jax.random.normal(rngs.params(), shape) / np.sqrt(max(fan_in, 1)))


def _shift_down(x: Array) -> Array:
    """``[B, H, W, F]``: row ``r`` of the output is row ``r - 1`` of the input (row 0: 0)."""
    return jnp.pad(x, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]


class GatedPixelCNN(ConditionalAutoregressiveModel):
    """Gated PixelCNN over ``[H, W, C]`` images, optionally class-conditional.

    Attributes (``F`` hidden channels, ``L`` layers, ``q = k // 2``; entry 0 of each stacked
    array is layer 0, whose vertical/horizontal inputs have ``C`` channels, zero-padded to
    ``F`` so all layers share one stacked array):
      v_kernel ``[L, q+1, k, F, 2F]``, h_kernel ``[L, 1, q+1, F, 2F]`` (with ``h_mask``),
      v_to_h ``[L, 2F, 2F]``, h_out ``[L, F, F]`` (with ``out_mask``) and biases.
      class_embed: ``[L, 2, num_classes, 2F]`` (vertical, horizontal) when conditional.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int, *,
                 hidden_channels: int = 64, num_layers: int = 5, kernel_size: int = 5,
                 num_classes: int | None = None, head: str = "auto", num_mixtures: int = 5,
                 rngs: nnx.Rngs):
        h, w, c = _check_image_shape(event_shape, "GatedPixelCNN")
        if num_layers < 1 or kernel_size % 2 == 0:
            raise ValueError(f"need num_layers >= 1 and an odd kernel_size, got "
                             f"{num_layers}, {kernel_size}")
        f = int(hidden_channels)
        if f < c:
            raise ValueError(f"hidden_channels={f} must be >= the {c} data channels")
        self.event_shape, self.num_levels = (h, w, c), int(num_levels)
        self.head = make_head(head, self.num_levels, num_mixtures)
        self.encoding = "scalar"
        self.kernel_size, self.num_classes = int(kernel_size), num_classes
        q, L, p = kernel_size // 2, int(num_layers), self.head.num_params
        g_f = channel_groups(f, c)
        g_2f = np.concatenate([g_f, g_f])
        # Layer 0 reads the C data channels (padded with zeros to F; group = channel).
        g_in0 = np.concatenate([np.arange(c), np.full(f - c, c)])  # pad units: never seen
        h_mask = np.stack([conv_mask((1, q + 1), g_in0 if l == 0 else g_f, g_2f,
                                     "A" if l == 0 else "B", centre=(0, q)) for l in range(L)])
        self.h_mask = Mask(jnp.asarray(h_mask))
        self.out_mask = Mask(jnp.asarray(conv_mask((1, 1), g_f, g_f, "B")[0, 0]))
        self.v_kernel = _normal(rngs, (L, q + 1, kernel_size, f, 2 * f), (q + 1) * kernel_size * f)
        self.v_bias = nnx.Param(jnp.zeros((L, 2 * f)))
        self.h_kernel = _normal(rngs, (L, 1, q + 1, f, 2 * f), (q + 1) * f)
        self.h_bias = nnx.Param(jnp.zeros((L, 2 * f)))
        self.v_to_h = _normal(rngs, (L, 2 * f, 2 * f), 2 * f)
        self.h_out = _normal(rngs, (L, f, f), f)
        self.h_out_bias = nnx.Param(jnp.zeros((L, f)))
        if num_classes is not None:
            self.class_embed = nnx.Param(jnp.zeros((L, 2, int(num_classes), 2 * f)))
        g_out = np.repeat(np.arange(c), p)
        self.hidden_kernel = _normal(rngs, (f, f), f)
        self.hidden_mask = Mask(jnp.asarray(conv_mask((1, 1), g_f, g_f, "B")[0, 0]))
        self.hidden_bias = nnx.Param(jnp.zeros((f,)))
        self.out_kernel = _normal(rngs, (f, c * p), f)
        self.out_kernel_mask = Mask(jnp.asarray(conv_mask((1, 1), g_f, g_out, "B")[0, 0]))
        self.out_bias = nnx.Param(jnp.zeros((c * p,)))

    # ---------------------------------------------------------------------------------
    def _layers(self, labels: Array | None, batch: int, for_sampling: bool = False):
        """Stacked per-layer weights (masked) and class terms ``[L, 2, B, 2F]``
        (``labels``: the context, checked by `jaxgen.nn.context.check_context`)."""
        num_layers, f2 = self.v_bias.shape
        labels = self.check_context(labels, batch, for_sampling=for_sampling)
        if labels is None:
            cond = jnp.zeros((num_layers, 2, batch, f2))
        else:
            cond = self.class_embed[...][:, :, labels]  # [L, 2, B, 2F]
        return (self.v_kernel[...], self.v_bias[...], self.h_kernel[...] * self.h_mask[...],
                self.h_bias[...], self.v_to_h[...], self.h_out[...] * self.out_mask[...],
                self.h_out_bias[...], cond)

    def _pad_input(self, x: Array) -> Array:
        """``[..., C] -> [..., F]`` (zeros in the extra channels; layer 0's input)."""
        f = self.h_out_bias.shape[-1]
        return jnp.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, f - x.shape[-1])])

    def _output(self, act: Array) -> Array:
        """``[..., F]`` -> ``[..., C*P]``."""
        hid = jax.nn.relu(mp.matmul(jax.nn.relu(act),
                                    self.hidden_kernel[...] * self.hidden_mask[...])
                          + self.hidden_bias[...])
        return mp.matmul(hid, self.out_kernel[...] * self.out_kernel_mask[...]) + self.out_bias[...]

    def params_from_inputs(self, inputs: Array, context: Array | None = None) -> Array:
        """``[B, H, W, C, 1]`` -> ``[B, H, W, C, P]`` (one parallel pass)."""
        b, (h, w, c) = inputs.shape[0], self.event_shape
        q, k = self.kernel_size // 2, self.kernel_size
        x = self._pad_input(inputs[..., 0])  # [B, H, W, F]
        layers = self._layers(context, b)

        def layer(carry, weights):
            v, hs, is_first = carry
            vk, vb, hk, hb, v2h, hout, hout_b, cond = weights
            v_pre = conv2d(v, vk, vb, ((q, 0), (q, q))) + cond[0][:, None, None]  # [B,H,W,2F]
            h_pre = (conv2d(hs, hk, hb, ((0, 0), (q, 0))) + mp.matmul(_shift_down(v_pre), v2h)
                     + cond[1][:, None, None])
            h_new = mp.matmul(gated_activation(h_pre), hout) + hout_b  # [B, H, W, F]
            hs = jnp.where(is_first, h_new, hs + h_new)
            return (gated_activation(v_pre), hs, False), None

        (_, hs, _), _ = layer_scan(layer, (x, x, True), layers)
        return self._output(hs).reshape(b, h, w, c, self.head.num_params)  # B may be 0


    def sample(self, key: PRNGKey, n: int, context: Array | None = None,
               temperature=1.0) -> Array:
        """Fast sampling with vertical row caches and a horizontal per-row cache (from
        ``p(x | y)`` for class labels ``context [n]``; ``None``: class ``i mod
        num_classes`` for sample ``i``); identical to `sample_naive` for the same key,
        context and temperature. ``temperature`` ``T``: every conditional at softmax temperature ``T``,
        ``p_T(k) ∝ p(k)^{1/T}`` (finite, ``> 0``; ``T = 1`` is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`); a bad
            ``temperature`` or context.
        """
        n = check_count("n", n)
        temperature = check_temperature("GatedPixelCNN.sample", temperature)
        (h, w, c), d = self.event_shape, self.num_dims
        q, k = self.kernel_size // 2, self.kernel_size
        num_layers, f2 = self.v_bias.shape
        f = f2 // 2
        vk, vb, hk, hb, v2h, hout, hout_b, cond = self._layers(context, n, for_sampling=True)
        keys = jax.random.split(key, d).reshape(h, w * c)
        # Vertical inputs of each layer (layer 0: the encoded image), padded q rows on top
        # and q columns on each side; unknown pixels are encoded as level 0, like the naive
        # sampler (they are never read before being written).
        v_in = jnp.zeros((num_layers, n, h + q, w + 2 * q, f))
        v_in = v_in.at[0, :, q:, q:q + w].set(self._pad_input(jnp.full((n, h, w, c), -1.0)))
        levels = jnp.zeros((n, h, w * c), jnp.int32)

        def vertical_row(v_in, r):
            """Vertical pre-activations of row r (all layers); writes layer outputs."""
            def layer(v_in, l):
                band = jax.lax.dynamic_slice(v_in, (l, 0, r, 0, 0),
                                             (1, n, q + 1, w + 2 * q, f))[0]
                v_pre = conv2d(band, vk[l], vb[l], ((0, 0), (0, 0)))[:, 0] + cond[l, 0][:, None]
                v_out = gated_activation(v_pre)  # [n, W, F]
                nxt = jnp.minimum(l + 1, num_layers - 1)
                updated = jax.lax.dynamic_update_slice(
                    v_in, v_out[None, :, None], (nxt, 0, r + q, q, 0))
                v_in = jnp.where(l + 1 < num_layers, updated, v_in)
                return v_in, v_pre  # [n, W, 2F]
            return jax.lax.scan(layer, v_in, jnp.arange(num_layers))

        def row_step(carry, inputs):
            v_in, levels = carry
            r, row_keys = inputs
            # Vertical features entering row r: those of row r - 1 (zeros for row 0).
            v_in, v_prev = vertical_row(v_in, jnp.maximum(r - 1, 0))  # [L, n, W, 2F]
            v_shift = jnp.einsum("lnwi,lio->lnwo", jnp.where(r > 0, v_prev, 0.0), v2h)  # U v
            x_row = jnp.zeros((n, w + q, f)).at[:, q:].set(
                self._pad_input(jnp.full((n, w, c), -1.0)))
            h_cache = jnp.zeros((num_layers, n, w + q, f))  # h inputs of layers 1..L-1

            def pos_step(carry, inputs):
                x_row, h_cache, row_levels = carry
                j, key_j = inputs
                col, ch = j // c, j % c

                def layer(carry, l):
                    hs, h_cache = carry
                    patch = jnp.where(  # inputs at columns col - q .. col: [n, q+1, F]
                        l == 0, jax.lax.dynamic_slice(x_row, (0, col, 0), (n, q + 1, f)),
                        jax.lax.dynamic_slice(h_cache, (l, 0, col, 0), (1, n, q + 1, f))[0])
                    h_pre = (jnp.einsum("bjc,jco->bo", patch, hk[l, 0]) + hb[l]
                             + jax.lax.dynamic_index_in_dim(v_shift[l], col, 1, False)
                             + cond[l, 1])
                    h_new = gated_activation(h_pre) @ hout[l] + hout_b[l]
                    hs = jnp.where(l == 0, h_new, hs + h_new)  # [n, F]
                    # hs is layer l + 1's horizontal input at this column; the last
                    # layer has no successor, so its output must not overwrite the cache.
                    nxt = jnp.minimum(l + 1, num_layers - 1)
                    updated = jax.lax.dynamic_update_slice(h_cache, hs[None, :, None],
                                                           (nxt, 0, col + q, 0))
                    h_cache = jnp.where(l + 1 < num_layers, updated, h_cache)
                    return (hs, h_cache), None

                (hs, h_cache), _ = jax.lax.scan(layer, (jnp.zeros((n, f)), h_cache),
                                                jnp.arange(num_layers))
                out = self._output(hs).reshape(n, c, -1)  # [n, C, P]
                value = self.head.sample(key_j, jax.lax.dynamic_index_in_dim(out, ch, 1, False),
                                         temperature)
                enc = 2.0 * value.astype(jnp.float32) / (self.num_levels - 1) - 1.0
                x_row = jax.lax.dynamic_update_slice(x_row, enc[:, None, None], (0, col + q, ch))
                return (x_row, h_cache, row_levels.at[:, j].set(value)), None

            (x_row, _, row_levels), _ = jax.lax.scan(
                pos_step, (x_row, h_cache, jnp.zeros((n, w * c), jnp.int32)),
                (jnp.arange(w * c), row_keys))
            v_in = jax.lax.dynamic_update_slice(v_in, x_row[None, :, None, q:],
                                                (0, 0, r + q, q, 0))
            return (v_in, levels.at[:, r].set(row_levels)), None

        (_, levels), _ = jax.lax.scan(row_step, (v_in, levels), (jnp.arange(h), keys))
        return levels.reshape(n, h, w, c)


__all__ = ["GatedPixelCNN"]
