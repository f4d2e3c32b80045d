"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015).

An MLP whose weights are masked so that output ``d`` depends only on inputs that precede
``d`` in an ordering (degrees, see `jaxgen.nn.masks.made_masks`):

    h_1 = relu(x W_1 * M_1 + b_1), ..., theta = h_L V * M_V + c,
    log p(x) = sum_d log p(x_d | theta_d(x_{o < o(d)})).

Orderings: ``"natural"`` (raster) or ``"random"``. With ``num_masks > 1`` the model holds
``num_masks`` (ordering, connectivity) pairs (the first in the given ordering, the rest
random orderings if ``ordering="random"`` else the same ordering with new hidden degrees).
Training one mask per step (`connectivity_agnostic_loss`) makes one set of weights good for
all of them; at test time `log_prob` averages their probabilities (an ensemble):
``log p(x) = logsumexp_m log p_m(x) - log M``, itself a normalized distribution.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.heads import make_head
from jaxgen.nn.masked_dense import MaskedDense
from jaxgen.nn.masks import Mask, made_degrees, made_masks
from jaxgen.types import Array, PRNGKey


class MADE(AutoregressiveModel):
    """Masked MLP autoregressive model over ``event_shape`` with ``num_levels`` levels.

    Attributes:
      orderings: ``Mask [num_masks, D]`` int, ``orderings[m, t]`` = the dimension drawn t-th.
      layers: hidden `MaskedDense` layers, then the output layer (``D * P`` units).
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int,
                 hidden_sizes: Sequence[int] = (500,), *, ordering: str = "natural",
                 num_masks: int = 1, head: str = "auto", mask_seed: int = 0, rngs: nnx.Rngs):
        if ordering not in ("natural", "random"):
            raise ValueError(f"ordering must be 'natural' or 'random', got {ordering!r}")
        if num_masks < 1:
            raise ValueError(f"num_masks must be >= 1, got {num_masks}")
        self.event_shape = tuple(int(s) for s in event_shape)
        self.num_levels = int(num_levels)
        self.head = make_head(head, self.num_levels)
        self.encoding = "scalar" if self.num_levels == 2 else "onehot"
        self.num_masks = int(num_masks)
        d = self.num_dims
        width = 1 if self.encoding == "scalar" else self.num_levels
        p = self.head.num_params
        rng = np.random.default_rng(mask_seed)
        orders, per_layer = [], [[] for _ in range(len(hidden_sizes) + 1)]
        for m in range(self.num_masks):
            order = np.arange(d) if ordering == "natural" else rng.permutation(d)
            degrees = made_degrees(order, hidden_sizes, None if m == 0 else rng)
            masks = made_masks(np.repeat(degrees[0], width), degrees[1:],
                               np.repeat(degrees[0], p))
            orders.append(order)
            for layer, mask in zip(per_layer, masks):
                layer.append(mask)
        self.orderings = Mask(jnp.asarray(np.stack(orders), jnp.int32))  # [M, D]
        self.layers = nnx.List([MaskedDense(np.stack(ms), rngs=rngs) for ms in per_layer])

    def params_from_inputs(self, inputs: Array, mask_index: Array | int = 0) -> Array:
        """``[B, *E, F]`` -> ``[B, *E, P]`` with mask set ``mask_index``."""
        b = inputs.shape[0]
        h = inputs.reshape(b, -1)  # [B, D * F]
        for layer in self.layers[:-1]:
            h = jax.nn.relu(layer(h, mask_index))  # [B, H]
        out = self.layers[-1](h, mask_index)  # [B, D * P]
        return out.reshape(b, *self.event_shape, self.head.num_params)

    def log_prob_with_mask(self, x: Array, mask_index: Array | int) -> Array:
        """``log p_m(x)`` ``[B]`` of one (ordering, connectivity) ``m``."""
        x = self.check_input(x)
        params = self.params_from_inputs(self.encode(x), mask_index)
        return jnp.sum(self.head.log_prob(params, x).reshape(x.shape[0], -1), axis=-1)

    def log_prob(self, x: Array) -> Array:
        """Ensemble ``logsumexp_m log p_m(x) - log M`` (``= log p_0(x)`` for one mask)."""
        if self.num_masks == 1:
            return self.log_prob_with_mask(x, 0)
        per_mask = jnp.stack([self.log_prob_with_mask(x, m) for m in range(self.num_masks)])
        return jax.nn.logsumexp(per_mask, axis=0) - jnp.log(self.num_masks)  # [B]

    def sample(self, key: PRNGKey, n: int) -> Array:
        """Ancestral sampling from the ensemble: draw a mask ``m ~ U{0..M-1}`` per sample,
        then its dimensions in its ordering, one full forward pass per step (``lax.scan``)."""
        d, num_masks = self.num_dims, self.num_masks
        mask_key, key = jax.random.split(key)
        component = jax.random.randint(mask_key, (n,), 0, num_masks)  # [n]
        positions = self.orderings[...][component]  # [n, D]
        keys = jax.random.split(key, d)

        def step(x_flat, inputs):
            t, key_t = inputs
            x = x_flat.reshape(n, *self.event_shape)
            params = jnp.stack([self.params_from_inputs(self.encode(x), m).reshape(n, d, -1)
                                for m in range(num_masks)])  # [M, n, D, P]
            params = params[component, jnp.arange(n)]  # [n, D, P]
            pos = positions[:, t]  # [n]
            params_t = params[jnp.arange(n), pos]  # [n, P]
            return x_flat.at[jnp.arange(n), pos].set(self.head.sample(key_t, params_t)), None

        x, _ = jax.lax.scan(step, jnp.zeros((n, d), jnp.int32), (jnp.arange(d), keys))
        return x.reshape(n, *self.event_shape)


def connectivity_agnostic_loss(model: MADE, batch: Array, key: PRNGKey):
    """Loss for `jaxgen.training.train`: NLL under one mask drawn uniformly per step."""
    mask_index = jax.random.randint(key, (), 0, model.num_masks)
    loss = -jnp.mean(model.log_prob_with_mask(batch, mask_index))
    return loss, {"nll": loss}


__all__ = ["MADE", "connectivity_agnostic_loss"]
