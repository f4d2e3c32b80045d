"""MADE: Masked Autoencoder for Distribution Estimation (Germain et al., 2015).

An MLP whose weights are masked so that output ``d`` depends only on inputs that precede
``d`` in an ordering (degrees, see `jaxgen.nn.masks.made_masks`):

    h_1 = relu(x W_1 * M_1 + b_1), ..., theta = h_L V * M_V + c  [+ x A * M_A],
    log p(x) = sum_d log p(x_d | theta_d(x_{o < o(d)})).

With ``direct_connections=True`` the output also gets a masked linear autoregressive term
``x A * M_A`` straight from the inputs, ``M_A[j, d] = 1[rank(j) < rank(d)]`` (strictly lower
triangular in the ordering, one mask per ordering): a logistic autoregressive model (an
FVSBN for binary data) in parallel with the hidden layers.

Orderings: ``"natural"`` (raster) or ``"random"``. With ``num_masks > 1`` the model holds
``num_masks`` (ordering, connectivity) pairs (the first in the given ordering, the rest
random orderings if ``ordering="random"`` else the same ordering with new hidden degrees).
Training one mask per step (`connectivity_agnostic_loss`) makes one set of weights good for
all of them; at test time `log_prob` averages their probabilities (an ensemble):
``log p(x) = logsumexp_m log p_m(x) - log M``, itself a normalized distribution. The
ensemble costs ``M`` forward passes (a ``lax.map`` over the masks: one compiled pass).

``dropout > 0`` drops hidden units during training only (inverted dropout, active when a
``dropout_key`` is passed, as `made_loss` does); ``log_prob`` and ``sample`` never drop.
"""
from __future__ import annotations

import operator
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

ORDERINGS = ("natural", "random")


def _check_int(name: str, value, minimum: int) -> int:
    try:
        as_int = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} "
                        f"({type(value).__name__})") from None
    if isinstance(value, bool) or as_int < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return as_int


class MADE(AutoregressiveModel):
    """Masked MLP autoregressive model over ``event_shape`` with ``num_levels`` levels.

    Attributes:
      orderings: ``Mask [num_masks, D]`` int, ``orderings[m, t]`` = the dimension drawn t-th.
      layers: hidden `MaskedDense` layers, then the output layer (``D * P`` units).
      direct: ``None``, or the `MaskedDense` input-to-output layer ``[D * F, D * P]``
        (no bias) when ``direct_connections=True``.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int,
                 hidden_sizes: Sequence[int] = (500,), *, ordering: str = "natural",
                 num_masks: int = 1, head: str = "auto", mask_seed: int = 0,
                 direct_connections: bool = False, dropout: float = 0.0, rngs: nnx.Rngs):
        """Args:
          event_shape: shape of one example, e.g. ``(28, 28, 1)``.
          num_levels: ``K`` levels per dimension (binary data: 2, scalar-encoded inputs).
          hidden_sizes: units per hidden layer (``()``: a linear autoregressive model).
          ordering: ``"natural"`` (raster) or ``"random"`` (mask 0 too).
          num_masks: ``M`` (ordering, connectivity) pairs; ``M > 1``: ensemble `log_prob`.
          head: per-dimension output distribution (`jaxgen.autoregressive.heads`).
          mask_seed: NumPy seed of the random orderings and hidden degrees.
          direct_connections: add the masked linear input-to-output term ``x A * M_A``.
          dropout: probability of dropping each hidden unit in training, in ``[0, 1)``.
          rngs: parameter keys.

        Raises:
          ValueError / TypeError: bad ``ordering``, ``num_masks``, ``hidden_sizes``,
            ``num_levels``, ``event_shape``, ``direct_connections`` or ``dropout`` (named in
            the message).
        """
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
        num_masks = _check_int("num_masks", num_masks, 1)
        num_levels = _check_int("num_levels", num_levels, 2)
        mask_seed = _check_int("mask_seed", mask_seed, 0)
        if isinstance(hidden_sizes, (int, np.integer)):
            raise TypeError(f"hidden_sizes must be a sequence of ints, e.g. (500,), got "
                            f"{hidden_sizes!r}")
        hidden_sizes = tuple(_check_int(f"hidden_sizes[{i}]", h, 1)
                             for i, h in enumerate(hidden_sizes))
        if not isinstance(direct_connections, (bool, np.bool_)):
            raise TypeError(f"direct_connections must be a bool, got {direct_connections!r}")
        if direct_connections and not hidden_sizes:
            raise ValueError("direct_connections=True needs at least one hidden layer: with "
                             "hidden_sizes=() the model already is the linear input-to-output "
                             "autoregressive term")
        if (isinstance(dropout, (bool, np.bool_))
                or not isinstance(dropout, (int, float, np.integer, np.floating))):
            raise TypeError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.event_shape = tuple(_check_int(f"event_shape[{i}]", s, 1)
                                 for i, s in enumerate(event_shape))
        if not self.event_shape:
            raise ValueError("event_shape must have at least one axis, got ()")
        self.num_levels = num_levels
        self.head = make_head(head, self.num_levels)
        self.encoding = "scalar" if self.num_levels == 2 else "onehot"
        self.num_masks = num_masks
        self.hidden_sizes = hidden_sizes
        d = self.num_dims
        width = 1 if self.encoding == "scalar" else self.num_levels
        p = self.head.num_params
        rng = np.random.default_rng(mask_seed)
        orders, per_layer, direct = [], [[] for _ in range(len(hidden_sizes) + 1)], []
        for m in range(self.num_masks):
            order = np.arange(d) if ordering == "natural" else rng.permutation(d)
            degrees = made_degrees(order, hidden_sizes, None if m == 0 else rng)
            in_degrees, out_degrees = np.repeat(degrees[0], width), np.repeat(degrees[0], p)
            masks = made_masks(in_degrees, degrees[1:], out_degrees)
            orders.append(order)
            for layer, mask in zip(per_layer, masks):
                layer.append(mask)
            if direct_connections:  # no hidden layer: M_A[j, d] = 1[rank(d) > rank(j)]
                direct.append(made_masks(in_degrees, [], out_degrees)[0])
        self.orderings = Mask(jnp.asarray(np.stack(orders), jnp.int32))  # [M, D]
        self.layers = nnx.List([MaskedDense(np.stack(ms), rngs=rngs) for ms in per_layer])
        # Created after the MLP, so the MLP's initial parameters do not depend on
        # direct_connections (the same rngs draws in the same order).
        self.direct = (MaskedDense(np.stack(direct), use_bias=False, rngs=rngs)
                       if direct_connections else None)

    @property
    def direct_connections(self) -> bool:
        return self.direct is not None

    def params_from_inputs(self, inputs: Array, mask_index: Array | int = 0,
                           dropout_key: PRNGKey | None = None) -> Array:
        """``[B, *E, F]`` -> ``[B, *E, P]`` with mask set ``mask_index`` (may be traced);
        with ``dropout_key`` (and ``dropout > 0``) hidden units are dropped (training)."""
        b = inputs.shape[0]
        x = inputs.reshape(b, -1)  # [B, D * F]
        h = x
        for i, layer in enumerate(self.layers[:-1]):
            h = jax.nn.relu(layer(h, mask_index))  # [B, H]
            if dropout_key is not None and self.dropout > 0.0:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, i),
                                            1.0 - self.dropout, h.shape)  # [B, H]
                h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        out = self.layers[-1](h, mask_index)  # [B, D * P]
        if self.direct is not None:
            out = out + self.direct(x, mask_index)  # [B, D * P]
        return out.reshape(b, *self.event_shape, self.head.num_params)

    def log_prob_with_mask(self, x: Array, mask_index: Array | int,
                           dropout_key: PRNGKey | None = None) -> Array:
        """``log p_m(x)`` ``[B]`` of one (ordering, connectivity) ``m`` (``dropout_key``:
        training-time hidden dropout, see `params_from_inputs`)."""
        return self._log_prob_checked(self.check_input(x), mask_index, dropout_key)

    def _log_prob_checked(self, x: Array, mask_index: Array | int,
                          dropout_key: PRNGKey | None = None) -> Array:
        params = self.params_from_inputs(self.encode(x), mask_index,
                                         dropout_key)  # [B, *E, P]
        return jnp.sum(self.log_prob_per_dim(params, x), axis=-1)

    def log_prob_per_mask(self, x: Array) -> Array:
        """``log p_m(x)`` for every mask, ``[M, B]`` (a ``lax.map``: one compiled pass)."""
        x = self.check_input(x)
        return jax.lax.map(lambda m: self._log_prob_checked(x, m),
                           jnp.arange(self.num_masks))  # [M, B]

    def log_prob(self, x: Array) -> Array:
        """Ensemble ``logsumexp_m log p_m(x) - log M`` (``= log p_0(x)`` for one mask)."""
        if self.num_masks == 1:
            return self.log_prob_with_mask(x, 0)
        per_mask = self.log_prob_per_mask(x)  # [M, B]
        return jax.nn.logsumexp(per_mask, axis=0) - jnp.log(self.num_masks)  # [B]

    def sample(self, key: PRNGKey, n: int) -> Array:
        """Ancestral sampling from the ensemble: draw a mask ``m ~ U{0..M-1}`` per sample,
        then its dimensions in its ordering, one forward pass per step (``lax.scan``).

        With ``M > 1`` each sample's pass uses only its own mask (a ``vmap`` over samples),
        so a step costs one pass, not ``M``.
        """
        d, num_masks = self.num_dims, self.num_masks
        mask_key, key = jax.random.split(key)
        component = jax.random.randint(mask_key, (n,), 0, num_masks)  # [n]
        positions = self.orderings[...][component]  # [n, D]
        keys = jax.random.split(key, d)

        def params_of(x_flat):  # [n, D] -> [n, D, P]
            x = x_flat.reshape(n, *self.event_shape)
            if num_masks == 1:
                return self.params_from_inputs(self.encode(x), 0).reshape(n, d, -1)
            one = lambda xi, m: self.params_from_inputs(self.encode(xi[None]), m)[0]
            return jax.vmap(one)(x, component).reshape(n, d, -1)

        def step(x_flat, inputs):
            t, key_t = inputs
            pos = positions[:, t]  # [n]
            params_t = params_of(x_flat)[jnp.arange(n), pos]  # [n, P]
            return x_flat.at[jnp.arange(n), pos].set(self.head.sample(key_t, params_t)), None

        x, _ = jax.lax.scan(step, jnp.zeros((n, d), jnp.int32), (jnp.arange(d), keys))
        return x.reshape(n, *self.event_shape)


def made_loss(model: MADE, batch: Array, key: PRNGKey):
    """Loss for `jaxgen.training.train`: NLL under one mask drawn uniformly per step,

    ``L = -(1/B) sum_b log p_m(x_b)``, ``m ~ U{0..M-1}`` (from ``key``; always 0 for one
    mask); its expectation is the mean over masks of each mask's NLL (connectivity-agnostic
    training). With ``model.dropout > 0`` hidden units are dropped (key ``fold_in(key, 1)``).
    """
    mask_index = jax.random.randint(key, (), 0, model.num_masks)
    dropout_key = jax.random.fold_in(key, 1) if model.dropout > 0.0 else None
    loss = -jnp.mean(model.log_prob_with_mask(batch, mask_index, dropout_key))
    return loss, {"nll": loss}


connectivity_agnostic_loss = made_loss  # the name used where ``num_masks > 1``


__all__ = ["MADE", "connectivity_agnostic_loss", "made_loss"]
