"""PixelRNN (van den Oord et al., 2016): Row LSTM and Diagonal BiLSTM.

Both start with a mask-A ``k0 x k0`` convolution (features at a pixel see only earlier
pixels) and end with two ``1 x 1`` mask-B convolutions to the head parameters; in between,
``L`` residual LSTM layers. LSTM gates: ``[i, f, o, g] = K_is * x + K_ss * h_prev``,
``c = s(f) c_prev + s(i) tanh(g)``, ``h = s(o) tanh(c)``.

* `RowLSTM`: one ``lax.scan`` step per row. Input-to-state is a ``1 x k`` mask-B
  convolution along the row; state-to-state a 1D ``k = 3`` convolution over the previous
  row's hidden state. Its receptive field is a triangle above the pixel.
* `DiagonalBiLSTM`: the feature map is *skewed* (row ``r`` shifted right by ``r``) so that a
  ``d x d`` image becomes ``d x (2d - 1)``; one scan step per skewed column processes a
  diagonal, with a ``2 x 1`` state-to-state convolution (the states at ``(r, c-1)`` and
  ``(r-1, c)``). The left-to-right direction sees the whole quadrant above-left. The
  right-to-left direction runs on the mirrored image and is shifted down one row before the
  two are added, so it contributes only rows above (never the future). Because of that
  shift the right-to-left direction may also read the encoded pixel itself; without this
  the last pixel of the previous row would stay unseen from the start of the next row.
  Result: every earlier pixel is in the receptive field (tested by the Jacobian).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.heads import make_head
from jaxgen.autoregressive.pixelcnn import _check_image_shape
from jaxgen.nn.masked_conv import MaskedConv2d
from jaxgen.nn.masks import channel_groups, conv_mask
from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


def _lstm_update(gates: Array, c_prev: Array):
    i, f, o, g = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f + 1.0) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def skew(x: Array) -> Array:
    """``[B, H, W, F] -> [B, H, W + H - 1, F]``, ``out[:, r, j] = x[:, r, j - r]`` (else 0)."""
    h, w = x.shape[1], x.shape[2]
    idx = jnp.arange(w + h - 1)[None, :] - jnp.arange(h)[:, None]  # [H, W+H-1]
    valid = (idx >= 0) & (idx < w)
    out = jnp.take_along_axis(x, jnp.clip(idx, 0, w - 1)[None, :, :, None], axis=2)
    return jnp.where(valid[None, :, :, None], out, 0.0)


def unskew(x: Array, width: int) -> Array:
    """Inverse of `skew`: ``[B, H, W + H - 1, F] -> [B, H, W, F]``."""
    h = x.shape[1]
    idx = jnp.arange(width)[None, :] + jnp.arange(h)[:, None]  # [H, W]
    return jnp.take_along_axis(x, idx[None, :, :, None], axis=2)


class _PixelRNNBase(AutoregressiveModel):
    def _init_io(self, event_shape, num_levels, hidden_channels, first_kernel_size, head,
                 num_mixtures, rngs):
        h, w, c = _check_image_shape(event_shape, type(self).__name__)
        self.event_shape, self.num_levels = (h, w, c), int(num_levels)
        self.head = make_head(head, self.num_levels, num_mixtures)
        self.encoding = "scalar"
        f, p = int(hidden_channels), self.head.num_params
        self.g_f = channel_groups(f, c)
        self.input_conv = MaskedConv2d(
            conv_mask((first_kernel_size,) * 2, np.arange(c), self.g_f, "A"), rngs=rngs)
        self.hidden_out = MaskedConv2d(conv_mask((1, 1), self.g_f, self.g_f, "B"), rngs=rngs)
        self.output = MaskedConv2d(
            conv_mask((1, 1), self.g_f, np.repeat(np.arange(c), p), "B"), rngs=rngs)
        return f

    def _readout(self, act: Array) -> Array:
        b, (h, w, c) = act.shape[0], self.event_shape
        out = self.output(jax.nn.relu(self.hidden_out(jax.nn.relu(act))))
        return out.reshape(b, h, w, c, self.head.num_params)  # explicit: B may be 0


class RowLSTM(_PixelRNNBase):
    """Row LSTM: ``L`` residual row-by-row LSTM layers (``lax.scan`` over rows)."""

    def __init__(self, event_shape: Sequence[int], num_levels: int, *,
                 hidden_channels: int = 32, num_layers: int = 2, first_kernel_size: int = 7,
                 kernel_size: int = 3, head: str = "auto", num_mixtures: int = 5,
                 rngs: nnx.Rngs):
        f = self._init_io(event_shape, num_levels, hidden_channels, first_kernel_size, head,
                          num_mixtures, rngs)
        g4 = np.tile(self.g_f, 4)
        self.input_to_state = nnx.List([
            MaskedConv2d(conv_mask((1, kernel_size), self.g_f, g4, "B"), rngs=rngs)
            for _ in range(num_layers)])
        self.state_to_state = nnx.List([
            nnx.Param(jax.random.normal(rngs.params(), (1, kernel_size, f, 4 * f))
                      / np.sqrt(kernel_size * f)) for _ in range(num_layers)])

    def params_from_inputs(self, inputs: Array) -> Array:
        act = self.input_conv(inputs[..., 0])  # [B, H, W, F]
        b, _, w, f = act.shape
        for is_conv, ss_kernel in zip(self.input_to_state, self.state_to_state):
            gates_in = is_conv(act).swapaxes(0, 1)  # [H, B, W, 4F]
            kernel = ss_kernel[...]
            pad = kernel.shape[1] // 2

            def row(state, g_row):
                h_prev, c_prev = state  # [B, W, F]
                ss = _row_conv(h_prev, kernel, pad)  # [B, W, 4F]
                h_new, c_new = _lstm_update(g_row + ss, c_prev)
                return (h_new, c_new), h_new

            zeros = jnp.zeros((b, w, f))
            _, hs = jax.lax.scan(row, (zeros, zeros), gates_in)
            act = act + hs.swapaxes(0, 1)
        return self._readout(act)


def _row_conv(h: Array, kernel: Array, pad: int) -> Array:
    """The ``1 x k`` state-to-state convolution of one row as one matmul on shifted copies.

    ``y[b, x, o] = sum_{j < k, c} h_pad[b, x + j, c] K[0, j, c, o]`` with ``h_pad`` ``h``
    zero-padded by ``pad`` on both sides of the width: ``[B, W, F] -> [B, W, O]``. The same
    numbers as ``conv2d(h[:, None], K, 0, ((0, 0), (pad, pad)))[:, 0]``, but it runs inside
    the row ``lax.scan``, where XLA:CPU differentiates a convolution ~60x more slowly than a
    matmul (timed on one Row LSTM layer: docs/AR_BENCHMARKS.md, RowLSTM)."""
    w, k = h.shape[1], kernel.shape[1]
    padded = jnp.pad(h, ((0, 0), (pad, pad), (0, 0)))  # [B, W + 2 pad, F]
    windows = jnp.concatenate([padded[:, j:j + w] for j in range(k)], axis=-1)  # [B, W, kF]
    return mp.matmul(windows, kernel[0].reshape(k * kernel.shape[2], kernel.shape[3]))


class DiagonalBiLSTM(_PixelRNNBase):
    """Diagonal BiLSTM: skewed diagonal scans in two directions (see module docstring)."""

    def __init__(self, event_shape: Sequence[int], num_levels: int, *,
                 hidden_channels: int = 32, num_layers: int = 2, first_kernel_size: int = 7,
                 head: str = "auto", num_mixtures: int = 5, rngs: nnx.Rngs):
        f = self._init_io(event_shape, num_levels, hidden_channels, first_kernel_size, head,
                          num_mixtures, rngs)
        c = self.event_shape[-1]
        g4 = np.tile(self.g_f, 4)
        self.ltr_input = nnx.List([MaskedConv2d(conv_mask((1, 1), self.g_f, g4, "B"),
                                                rngs=rngs) for _ in range(num_layers)])
        # Right-to-left: unmasked 1x1 over [features, encoded pixel] (shifted down later).
        self.rtl_input = nnx.List([mp.Linear(f + c, 4 * f, rngs=rngs)
                                   for _ in range(num_layers)])
        init = lambda: nnx.Param(jax.random.normal(rngs.params(), (2, f, 4 * f)) / np.sqrt(2 * f))
        self.ltr_state = nnx.List([init() for _ in range(num_layers)])
        self.rtl_state = nnx.List([init() for _ in range(num_layers)])

    @staticmethod
    def _diagonal_lstm(gates_in: Array, kernel: Array) -> Array:
        """Left-to-right diagonal LSTM on ``[B, H, W, 4F]`` input gates -> ``[B, H, W, F]``.

        State at ``(r, c)`` = f(input at (r, c), states at (r, c-1) and (r-1, c)).
        """
        b, h, w, f4 = gates_in.shape
        f = f4 // 4
        skewed = skew(gates_in).swapaxes(0, 2)  # [W+H-1, H, B, 4F]
        idx = jnp.arange(w + h - 1)[:, None] - jnp.arange(h)[None, :]
        valid = ((idx >= 0) & (idx < w))[:, :, None, None]  # [W+H-1, H, 1, 1]

        def column(state, inputs):
            g_col, ok = inputs
            h_prev, c_prev = state  # [H, B, F]
            above = jnp.pad(h_prev, ((1, 0), (0, 0), (0, 0)))[:-1]  # state of row r - 1
            gates = g_col + mp.matmul(h_prev, kernel[0]) + mp.matmul(above, kernel[1])
            h_new, c_new = _lstm_update(gates, c_prev)
            h_new, c_new = jnp.where(ok, h_new, 0.0), jnp.where(ok, c_new, 0.0)
            return (h_new, c_new), h_new

        zeros = jnp.zeros((h, b, f))
        # jax.checkpoint on the step: the backward pass recomputes each column's gates from
        # the saved carry instead of keeping the [H, B, 4F] gate activations of every step
        _, hs = jax.lax.scan(jax.checkpoint(column), (zeros, zeros), (skewed, valid))
        return unskew(hs.swapaxes(0, 2), w)

    def params_from_inputs(self, inputs: Array) -> Array:
        x = inputs[..., 0]  # [B, H, W, C]
        act = self.input_conv(x)  # [B, H, W, F]
        for ltr_in, rtl_in, ltr_k, rtl_k in zip(self.ltr_input, self.rtl_input,
                                                self.ltr_state, self.rtl_state):
            ltr = self._diagonal_lstm(ltr_in(act), ltr_k[...])
            rtl_gates = rtl_in(jnp.concatenate([act, x], axis=-1))[:, :, ::-1]
            rtl = self._diagonal_lstm(rtl_gates, rtl_k[...])[:, :, ::-1]
            rtl = jnp.pad(rtl, ((0, 0), (1, 0), (0, 0), (0, 0)))[:, :-1]  # shift down a row
            act = act + ltr + rtl
        return self._readout(act)


__all__ = ["DiagonalBiLSTM", "RowLSTM", "skew", "unskew"]
