"""What every autoregressive model shares: input checks, log-likelihood, naive sampling.

An autoregressive model over ``D = prod(event_shape)`` dimensions in raster order (for
images ``[H, W, C]``: rows, then columns, then channels) factorizes

    log p(x) = sum_{i < D} log p(x_i | x_{<i}),

with ``p(x_i | x_{<i})`` given by a head (`jaxgen.autoregressive.heads`) from network outputs
``theta_i(x_{<i})``. A subclass implements ``encode(x)`` (int levels -> a float relaxation of
the input, e.g. one-hot or scaled values) and ``params_from_inputs(inputs)`` (one parallel
pass, teacher forcing: ``theta_i`` for every ``i`` at once). The Jacobian of
``params_from_inputs`` is how tests prove the autoregressive property.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.baselines.factorized_categorical import check_event_batch, check_levels
from jaxgen.types import Array, PRNGKey


def encode_levels(x: Array, num_levels: int, encoding: str) -> Array:
    """``[B, *E]`` int levels -> float ``[B, *E, F]``.

    ``"onehot"``: ``F = K``; ``"scalar"``: ``F = 1``, ``2 x / (K - 1) - 1`` in ``[-1, 1]``.
    """
    if encoding == "onehot":
        return jax.nn.one_hot(x, num_levels, dtype=jnp.float32)
    if encoding == "scalar":
        return (2.0 * x.astype(jnp.float32) / (num_levels - 1) - 1.0)[..., None]
    raise ValueError(f"encoding must be 'onehot' or 'scalar', got {encoding!r}")


class AutoregressiveModel(nnx.Module):
    """Base class; subclasses set ``event_shape``, ``num_levels``, ``head``, ``encoding``."""

    event_shape: tuple[int, ...]
    num_levels: int
    encoding: str = "scalar"

    @property
    def num_dims(self) -> int:
        return math.prod(self.event_shape)

    def encode(self, x: Array) -> Array:
        """``[B, *E]`` int levels -> ``[B, *E, F]`` float inputs of `params_from_inputs`."""
        return encode_levels(x, self.num_levels, self.encoding)

    def params_from_inputs(self, inputs: Array) -> Array:
        """``[B, *E, F]`` -> head parameters ``[B, *E, P]`` (one teacher-forced pass)."""
        raise NotImplementedError

    def check_input(self, x) -> Array:
        x = check_event_batch(x, self.event_shape, type(self).__name__)
        check_levels(x, self.num_levels, type(self).__name__)
        return x.astype(jnp.int32)

    def log_prob_per_dim(self, params: Array, x: Array) -> Array:
        """``log p(x_i | theta_i)`` per raster position: params ``[B, *E, P]`` (from
        `params_from_inputs`) and levels ``[B, *E]`` -> ``[B, D]`` nats."""
        return self.head.log_prob(params, x).reshape(x.shape[0], -1)

    def log_prob(self, x: Array) -> Array:
        """``sum_i log p(x_i | x_{<i})``: ``[B, *event_shape]`` int levels -> ``[B]`` nats."""
        x = self.check_input(x)
        params = self.params_from_inputs(self.encode(x))  # [B, *E, P]
        return jnp.sum(self.log_prob_per_dim(params, x), axis=-1)

    def fill_naive(self, key: PRNGKey, x_flat: Array, start: int = 0) -> Array:
        """Keeps positions ``< start`` of ``x_flat [n, D]`` (int levels) and draws positions
        ``start .. D-1`` in raster order, ``x_i ~ p(. | x_{<i})``, one full forward pass per
        position (a ``lax.scan``). Position ``i`` uses the key ``split(key, D)[i]`` whatever
        ``start`` is. Returns ``[n, *event_shape]`` int32."""
        n, d = x_flat.shape[0], self.num_dims
        keys = jax.random.split(key, d)[start:]

        def step(x_flat, inputs):  # x_flat [n, D]
            i, key_i = inputs
            params = self.params_from_inputs(self.encode(x_flat.reshape(n, *self.event_shape)))
            params_i = jax.lax.dynamic_index_in_dim(params.reshape(n, d, -1), i, 1, False)
            return x_flat.at[:, i].set(self.head.sample(key_i, params_i)), None  # [n, P] -> [n]

        x, _ = jax.lax.scan(step, x_flat.astype(jnp.int32), (jnp.arange(start, d), keys))
        return x.reshape(n, *self.event_shape)

    def sample_naive(self, key: PRNGKey, n: int) -> Array:
        """Ancestral sampling with one full forward pass per position (`fill_naive` from
        zeros). Position ``i`` (raster order) is drawn with key ``split(key, D)[i]``; fast
        samplers use the same keys, so they return identical samples.
        """
        return self.fill_naive(key, jnp.zeros((n, self.num_dims), jnp.int32))

    def sample(self, key: PRNGKey, n: int) -> Array:
        """``n`` samples ``[n, *event_shape]`` int32 (naive unless a subclass is faster)."""
        return self.sample_naive(key, n)


__all__ = ["AutoregressiveModel", "encode_levels"]
