"""LSTM autoregression over the flattened raster sequence.

Input at step ``t`` is the one-hot of ``x_{t-1}`` (zeros at ``t = 0``); an LSTM

    [i, f, o, g] = x_t W + h_{t-1} U + b,   c_t = s(f) c_{t-1} + s(i) tanh(g),
    h_t = s(o) tanh(c_t),   theta_t = h_t V + v

runs under ``lax.scan`` (teacher forcing in training). Sampling carries ``(h, c)`` through
the same scan, one step per position (the natural "fast" sampler; `sample_naive` reruns the
whole sequence per position and gives the same samples). `LSTMModel.step` is one position of
the recurrence, for callers that choose each next input themselves (sampling, sequential
scheduled sampling in `jaxgen.autoregressive.scheduled_sampling`).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.autoregressive.base import AutoregressiveModel, check_temperature
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count
from jaxgen.types import Array, PRNGKey
from jaxgen.nn import mixed_precision as mp


class LSTMCell(nnx.Module):
    """``(h, c), x -> (h', c')`` with fused gate weights ``[F, 4H]`` and ``[H, 4H]``."""

    def __init__(self, in_features: int, hidden_size: int, *, rngs: nnx.Rngs):
        self.input_proj = mp.Linear(in_features, 4 * hidden_size, rngs=rngs)
        self.hidden_proj = mp.Linear(hidden_size, 4 * hidden_size, use_bias=False, rngs=rngs)

    def __call__(self, state, x):
        h, c = state
        i, f, o, g = jnp.split(self.input_proj(x) + self.hidden_proj(h), 4, axis=-1)
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c)


class LSTMModel(AutoregressiveModel):
    """LSTM over ``D`` raster positions with a per-position head."""

    def __init__(self, event_shape: Sequence[int], num_levels: int, hidden_size: int = 256,
                 *, head: str = "auto", rngs: nnx.Rngs):
        self.event_shape, self.num_levels = tuple(int(s) for s in event_shape), int(num_levels)
        self.head = make_head(head, self.num_levels)
        self.encoding = "onehot"
        self.hidden_size = int(hidden_size)
        self.cell = LSTMCell(self.num_levels, self.hidden_size, rngs=rngs)
        self.readout = mp.Linear(self.hidden_size, self.head.num_params, rngs=rngs)

    def initial_state(self, batch: int) -> tuple[Array, Array]:
        """``(h, c)_0 = 0``, each ``[batch, H]``: the recurrent state before position 0."""
        zeros = jnp.zeros((batch, self.hidden_size))
        return (zeros, zeros)

    def initial_input(self, batch: int) -> Array:
        """``u_0 = 0``, ``[batch, K]``: the input at position 0 (no previous level)."""
        return jnp.zeros((batch, self.num_levels))

    def step(self, state: tuple[Array, Array], inputs: Array) -> tuple[tuple[Array, Array], Array]:
        """One position of the recurrence, for callers that choose each next input
        themselves (`sample`, sequential scheduled sampling):

            (h, c)_t = LSTM((h, c)_{t-1}, u_t),   theta_t = readout(h_t).

        Args:
          state: ``(h, c)_{t-1}``, each ``[B, H]`` (`initial_state` at ``t = 0``).
          inputs: ``u_t [B, K]``, the one-hot of the level fed for ``x_{t-1}``
            (``encode(levels)``; `initial_input` at ``t = 0``).

        Returns:
          ``((h, c)_t, theta_t)``, with ``theta_t [B, P]`` the head parameters of
          ``p(x_t | fed history)``.
        """
        state = self.cell(state, inputs)
        return state, self.readout(state[0])

    def params_from_inputs(self, inputs: Array) -> Array:
        """``[B, *E, K]`` -> ``[B, *E, P]`` (teacher forcing)."""
        b = inputs.shape[0]
        x = inputs.reshape(b, self.num_dims, inputs.shape[-1])  # [B, D, K] (B may be 0)
        shifted = jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1)

        def step(state, x_t):
            state = self.cell(state, x_t)
            return state, state[0]

        _, hs = jax.lax.scan(step, self.initial_state(b), shifted.swapaxes(0, 1))  # [D,B,H]
        return self.readout(hs.swapaxes(0, 1)).reshape(b, *self.event_shape,
                                                      self.head.num_params)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """Stateful ancestral sampling (one LSTM step per position); identical to
        `sample_naive` for the same key and temperature. ``temperature`` ``T``: every conditional at softmax temperature ``T``,
        ``p_T(k) ∝ p(k)^{1/T}`` (finite, ``> 0``; ``T = 1`` is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`); a bad
            ``temperature``.
        """
        n = check_count("n", n)
        temperature = check_temperature("LSTMModel.sample", temperature)
        d = self.num_dims
        keys = jax.random.split(key, d)

        def step(carry, inputs):
            state, x_prev = carry
            t, key_t = inputs
            state, params_t = self.step(state, x_prev)  # [n, P]
            value = self.head.sample(key_t, params_t, temperature)  # [n]
            return (state, jax.nn.one_hot(value, self.num_levels)), value

        init = (self.initial_state(n), self.initial_input(n))
        _, values = jax.lax.scan(step, init, (jnp.arange(d), keys))  # [D, n]
        return values.T.reshape(n, *self.event_shape)


__all__ = ["LSTMCell", "LSTMModel"]
