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

Sampling follows `log_prob` exactly: `sample`, `sample_naive` and `fill_naive` draw a member
``m ~ U{0..M-1}`` per sample and then its dimensions in its own ordering, ``x_{o^m_t} ~
p_m(. | x_{o^m_{<t}})`` (one forward pass per step). For one mask that is ancestral
sampling in the mask's ordering; a raster-order loop would be wrong for a random ordering
(position ``o_t``'s conditional reads positions that come later in raster order).

Prefix completion (`fill_naive` from ``start = L``) keeps the first ``L`` positions of the
model's generation order, ``S = orderings[0, :L]`` (raster positions ``< L`` for
``ordering="natural"``), and samples the rest from the ensemble's conditional

    p(x_rest | x_S) = sum_m w_m p_m(x_rest | x_S),   w_m = p_m(x_S) / sum_m' p_m'(x_S),

i.e. the member is drawn from its posterior given the prefix, then continues in its order.
``p_m(x_S)`` is the product of mask ``m``'s first ``L`` factors only when ``S`` is a prefix of
its ordering too; that holds for every ``L`` when all masks share one ordering
(``ordering="natural"``, or one mask), and `fill_naive` refuses ``0 < L < D`` otherwise.

Conditional MADE (``num_classes`` or ``context_features``) models ``p(x | c)``: the context
enters every hidden unit of the first layer and every output unit,

    h_1 = relu(x W_1 * M_1 + b_1 + E_1[c]),   theta = ... + c_out(c),

(``E[c]``: `jaxgen.nn.context.ContextProjection`, a class table or a linear map). The context
is not part of ``x``, so the masks still make ``theta_d`` depend on ``x_{o < o(d)}`` only and
``p(. | c)`` is a normalized autoregressive model for every ``c``. (The output term is
needed: the first dimension's parameters have no hidden inputs.)

Real-valued data: with ``num_levels=None`` and a continuous head (``"gaussian"``,
``"gaussian_mixture"``, ``"logistic_mixture"``; `jaxgen.autoregressive.continuous_heads`)
the inputs are the float values themselves (one input unit per dimension) and each
``theta_d`` parameterizes a density on the real line (the output bias starts at the head's
``initial_bias``: the first dimension's mixture reads biases only), so ``log p(x)`` is a
density in nats (MADE / MADE MoG as the baselines of Papamakarios et al., 2017, MAF). The
masks, orderings, ensembles, context and sampling are the same.

``dropout > 0`` drops hidden units during training only (inverted dropout, active when a
``dropout_key`` is passed, as `made_loss` does); ``log_prob`` and ``sample`` never drop.
"""
from __future__ import annotations

import math
import operator
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import ConditionalAutoregressiveModel, check_temperature
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count
from jaxgen.data.batching import context_of, inputs_of
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


class MADE(ConditionalAutoregressiveModel):
    """Masked MLP autoregressive model over ``event_shape`` with ``num_levels`` levels
    (``None``: real values under a continuous head).

    Attributes:
      orderings: ``Mask [num_masks, D]`` int, ``orderings[m, t]`` = the dimension drawn t-th.
      shares_one_ordering: static bool, every mask has ``orderings[0]`` (natural ordering,
        or one mask): then every prefix of the order can be conditioned on (`fill_naive`).
      layers: hidden `MaskedDense` layers, then the output layer (``D * P`` units).
      direct: ``None``, or the `MaskedDense` input-to-output layer ``[D * F, D * P]``
        (no bias) when ``direct_connections=True``.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int | None,
                 hidden_sizes: Sequence[int] = (500,), *, ordering: str = "natural",
                 num_masks: int = 1, head: str = "auto", num_mixtures: int = 5,
                 mask_seed: int = 0,
                 direct_connections: bool = False, dropout: float = 0.0,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs):
        """Args:
          event_shape: shape of one example, e.g. ``(28, 28, 1)``.
          num_levels: ``K`` levels per dimension (binary data: 2, scalar-encoded inputs);
            ``None`` for real-valued data (needs a continuous ``head``).
          hidden_sizes: units per hidden layer (``()``: a linear autoregressive model).
          ordering: ``"natural"`` (raster) or ``"random"`` (mask 0 too).
          num_masks: ``M`` (ordering, connectivity) pairs; ``M > 1``: ensemble `log_prob`.
          head: per-dimension output distribution (`jaxgen.autoregressive.heads.make_head`:
            ``"auto"``, a discrete head, or for ``num_levels=None`` one of
            ``"gaussian"``, ``"gaussian_mixture"``, ``"logistic_mixture"``).
          num_mixtures: ``M`` components of a mixture head.
          mask_seed: NumPy seed of the random orderings and hidden degrees.
          direct_connections: add the masked linear input-to-output term ``x A * M_A``.
          dropout: probability of dropping each hidden unit in training, in ``[0, 1)``.
          num_classes: class-conditional ``p(x | y)``, ``y in [0, num_classes)``.
          context_features: ``F`` of a vector context ``[B, F]`` (when ``num_classes`` is
            None).
          rngs: parameter keys.

        Raises:
          ValueError / TypeError: bad ``ordering``, ``num_masks``, ``hidden_sizes``,
            ``num_levels``, ``event_shape``, ``direct_connections`` or ``dropout`` (named in
            the message); a discrete head with ``num_levels=None`` or a continuous head
            with ``num_levels`` set.
        """
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
        num_masks = _check_int("num_masks", num_masks, 1)
        num_levels = None if num_levels is None else _check_int("num_levels", num_levels, 2)
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
        self.head = make_head(head, self.num_levels, num_mixtures, allow_continuous=True)
        self.encoding = ("real" if self.num_levels is None
                         else "scalar" if self.num_levels == 2 else "onehot")
        self.num_masks = num_masks
        self.hidden_sizes = hidden_sizes
        d = self.num_dims
        width = self.num_levels if self.encoding == "onehot" else 1
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
        self.shares_one_ordering = bool(np.all(np.stack(orders) == orders[0]))
        self.layers = nnx.List([MaskedDense(np.stack(ms), rngs=rngs) for ms in per_layer])
        if self.is_continuous:  # distinct mixture components (continuous_heads.initial_bias)
            self.layers[-1].bias[...] = jnp.asarray(np.tile(self.head.initial_bias(), d))
        # Created after the MLP, so the MLP's initial parameters do not depend on
        # direct_connections (the same rngs draws in the same order).
        self.direct = (MaskedDense(np.stack(direct), use_bias=False, rngs=rngs)
                       if direct_connections else None)
        # Created last, so an unconditional MADE's parameters do not change.
        self._set_context_fields(num_classes, context_features)
        hidden_proj = self._context_projection(hidden_sizes[0], rngs) if hidden_sizes else None
        self.context_hidden = nnx.data(hidden_proj)
        self.context_out = nnx.data(self._context_projection(d * p, rngs))

    @property
    def direct_connections(self) -> bool:
        return self.direct is not None

    def params_from_inputs(self, inputs: Array, mask_index: Array | int = 0,
                           dropout_key: PRNGKey | None = None, context=None) -> Array:
        """``[B, *E, F]`` -> ``[B, *E, P]`` with mask set ``mask_index`` (may be traced);
        with ``dropout_key`` (and ``dropout > 0``) hidden units are dropped (training);
        ``context``: a checked context (`check_context`) of a conditional MADE."""
        b = inputs.shape[0]
        x = inputs.reshape(b, math.prod(inputs.shape[1:]))  # [B, D * F] (explicit: B may be 0)
        h = x
        for i, layer in enumerate(self.layers[:-1]):
            pre = layer(h, mask_index)  # [B, H]
            if i == 0 and context is not None:
                pre = pre + self.context_hidden(context)
            h = jax.nn.relu(pre)  # [B, H]
            if dropout_key is not None and self.dropout > 0.0:
                keep = jax.random.bernoulli(jax.random.fold_in(dropout_key, i),
                                            1.0 - self.dropout, h.shape)  # [B, H]
                h = jnp.where(keep, h / (1.0 - self.dropout), 0.0)
        out = self.layers[-1](h, mask_index)  # [B, D * P]
        if self.direct is not None:
            out = out + self.direct(x, mask_index)  # [B, D * P]
        if context is not None:
            out = out + self.context_out(context)  # [B, D * P]
        return out.reshape(b, *self.event_shape, self.head.num_params)

    def log_prob_with_mask(self, x: Array, mask_index: Array | int,
                           dropout_key: PRNGKey | None = None, context=None) -> Array:
        """``log p_m(x)`` ``[B]`` (``log p_m(x | context)``) of one (ordering, connectivity)
        ``m`` (``dropout_key``: training-time hidden dropout, see `params_from_inputs`)."""
        x = self.check_input(x)
        return self._log_prob_checked(x, mask_index, dropout_key,
                                      self.check_context(context, x.shape[0]))

    def _log_prob_checked(self, x: Array, mask_index: Array | int,
                          dropout_key: PRNGKey | None = None, context=None) -> Array:
        params = self.params_from_inputs(self.encode(x), mask_index,
                                         dropout_key, context)  # [B, *E, P]
        # raster-order factors (the sum does not depend on their order)
        return jnp.sum(super().log_prob_per_dim(params, x), axis=-1)

    def log_prob_per_dim(self, params: Array, x: Array, mask_index: Array | int = 0) -> Array:
        """Mask ``m``'s chain-rule factors in its generation order: params ``[B, *E, P]``
        (from ``params_from_inputs(..., m)``) and levels ``[B, *E]`` -> ``[B, D]`` nats,
        column ``t`` = ``log p_m(x_{o_t} | x_{o_{<t}})`` with ``o = orderings[m]`` (the raster
        column of position ``o_t``; for ``ordering="natural"`` the raster order itself).
        Columns ``t >= L`` sum to ``log p_m(x_rest | x_S)``, the score of what a single
        mask's `fill_naive` from ``start = L`` samples."""
        per_position = super().log_prob_per_dim(params, x)  # [B, D], raster order
        return per_position[:, self.orderings[...][mask_index]]  # [B, D], generation order

    def log_prob_per_mask(self, x: Array, context=None) -> Array:
        """``log p_m(x)`` for every mask, ``[M, B]`` (a ``lax.map``: one compiled pass)."""
        x = self.check_input(x)
        context = self.check_context(context, x.shape[0])
        return jax.lax.map(lambda m: self._log_prob_checked(x, m, None, context),
                           jnp.arange(self.num_masks))  # [M, B]

    def log_prob(self, x: Array, context=None) -> Array:
        """Ensemble ``logsumexp_m log p_m(x) - log M`` (``= log p_0(x)`` for one mask):
        ``[B, *event_shape]`` int levels (float values for a continuous head) -> ``[B]``
        nats (``[0]`` for an empty batch); ``log p(x | context)`` for a conditional MADE."""
        if self.num_masks == 1:
            return self.log_prob_with_mask(x, 0, context=context)
        per_mask = self.log_prob_per_mask(x, context)  # [M, B]
        return jax.nn.logsumexp(per_mask, axis=0) - jnp.log(self.num_masks)  # [B]

    def _prefix_log_prob_per_mask(self, x_flat: Array, start: int, context=None) -> Array:
        """``log p_m(x_S)`` ``[M, n]`` for ``S = orderings[0, :start]``, a prefix of every
        mask's ordering (``shares_one_ordering``): the sum of mask ``m``'s first ``start``
        factors, an exact marginal because the factors of ``S`` read only ``S``."""
        x = x_flat.reshape(x_flat.shape[0], *self.event_shape)

        def one_mask(m):
            params = self.params_from_inputs(self.encode(x), m, None, context)  # [n, *E, P]
            return jnp.sum(self.log_prob_per_dim(params, x, m)[:, :start], axis=-1)  # [n]

        return jax.lax.map(one_mask, jnp.arange(self.num_masks))  # [M, n]

    def _ancestral(self, key: PRNGKey, x_flat: Array, start: int, component: Array,
                   context=None, temperature=1.0) -> Array:
        """Steps ``t = start .. D-1`` of sample ``b`` in member ``component[b]``'s ordering:
        ``x_{o_t} ~ p_m(. | x_{o_{<t}})``, with key ``split(key, D)[t]`` at step ``t``.

        Args:
          key: PRNG key of the steps.
          x_flat: ``[n, D]`` levels or values (`value_dtype`); the first ``start`` positions
            of each sample's ordering are kept.
          start: first step drawn (static).
          component: ``[n]`` int member of each sample.
          context: the samples' checked context (conditional MADE), or None.

        Returns:
          ``[n, *event_shape]`` of `value_dtype`.
        """
        n, d, num_masks = x_flat.shape[0], self.num_dims, self.num_masks
        p = self.head.num_params
        positions = self.orderings[...][component]  # [n, D]
        keys = jax.random.split(key, d)[start:]

        def params_of(x_flat):  # [n, D] -> [n, D, P]
            x = x_flat.reshape(n, *self.event_shape)
            if num_masks == 1:
                return self.params_from_inputs(self.encode(x), 0, None,
                                               context).reshape(n, d, p)
            # each sample's pass uses only its own mask: a step costs one pass, not M
            if context is None:
                one = lambda xi, m: self.params_from_inputs(self.encode(xi[None]), m)[0]
                return jax.vmap(one)(x, component).reshape(n, d, p)
            one = lambda xi, m, ci: self.params_from_inputs(self.encode(xi[None]), m, None,
                                                            ci[None])[0]
            return jax.vmap(one)(x, component, context).reshape(n, d, p)

        def step(x_flat, inputs):
            t, key_t = inputs
            pos = positions[:, t]  # [n]
            params_t = params_of(x_flat)[jnp.arange(n), pos]  # [n, P]
            draw = self.head.sample(key_t, params_t, temperature)
            return x_flat.at[jnp.arange(n), pos].set(draw), None

        x, _ = jax.lax.scan(step, x_flat, (jnp.arange(start, d), keys))
        return x.reshape(n, *self.event_shape)

    def fill_naive(self, key: PRNGKey, x_flat: Array, start: int = 0, context=None,
                   temperature=1.0) -> Array:
        """Prefix completion from the ensemble (module docstring): keeps the first ``start``
        positions of the generation order, ``S = orderings[0, :start]``, and draws the rest
        from ``p(x_rest | x_S) = sum_m w_m p_m(x_rest | x_S)``, ``w_m ∝ p_m(x_S)``.

        One mask: steps ``t >= start`` of ``orderings[0]`` with keys ``split(key, D)[t]``
        (the natural ordering gives the raster loop of `AutoregressiveModel.fill_naive`,
        sample for sample). ``M > 1``: ``mask_key, key = split(key)``; the member is
        ``randint(mask_key, (n,), 0, M)`` for ``start = 0`` (the draw `sample` makes, so then
        ``sample_naive(key, n) == sample(key, n)``) and ``categorical(mask_key, log w)``
        otherwise. ``start = 0`` returns ``sample_naive(key, n)`` exactly.

        Args:
          key: PRNG key.
          x_flat: ``[n, D]`` int levels (float values) in raster order (only positions
            ``S`` are read).
          start: ``L`` in ``[0, D]`` (static).
          context: conditional MADE: ``[n]`` labels or ``[n, F]`` vectors (labels default
            to ``arange(n) % num_classes``).
          temperature: softmax temperature ``T`` of every drawn step (finite, ``> 0``; the
            ensemble's member weights ``w_m`` are not tempered).

        Returns:
          ``[n, *event_shape]`` of `value_dtype`.

        Raises:
          ValueError: bad ``x_flat`` shape or ``start``; or ``M > 1`` masks with different
            orderings and ``0 < start < D`` (``S`` is not a prefix of every member's
            ordering, so ``p_m(x_S)`` is an intractable marginal).
        """
        x_flat, start = self.check_fill_input(x_flat, start)
        temperature = check_temperature("MADE.fill_naive", temperature)
        n, d, num_masks = x_flat.shape[0], self.num_dims, self.num_masks
        context = self.check_context(context, n, for_sampling=True)
        if num_masks == 1:
            return self._ancestral(key, x_flat, start, jnp.zeros((n,), jnp.int32), context,
                                   temperature)
        if 0 < start < d and not self.shares_one_ordering:
            raise ValueError(
                f"start={start}: this MADE ensemble's {num_masks} masks have different "
                "orderings, so the first start positions of mask 0's ordering are not a "
                "prefix of the others' and the ensemble's conditional given them is "
                f"intractable; use start=0 (or D={d}), one mask, or ordering='natural'")
        mask_key, key = jax.random.split(key)
        if start == 0 or start == d:
            component = jax.random.randint(mask_key, (n,), 0, num_masks)  # [n]
        else:
            log_w = self._prefix_log_prob_per_mask(x_flat, start, context)  # [M, n]
            component = jax.random.categorical(mask_key, log_w, axis=0)  # [n]
        return self._ancestral(key, x_flat, start, component, context, temperature)

    def sample_naive(self, key: PRNGKey, n: int, context=None, temperature=1.0) -> Array:
        """`fill_naive` from zeros (``start = 0``), conditioned on ``context``, at softmax
        temperature ``temperature``."""
        n = check_count("n", n)
        return self.fill_naive(key, jnp.zeros((n, self.num_dims), self.value_dtype), 0,
                               context, temperature)

    def sample(self, key: PRNGKey, n: int, context=None, temperature=1.0) -> Array:
        """Ancestral sampling from the ensemble: draw a mask ``m ~ U{0..M-1}`` per sample,
        then its dimensions in its ordering, one forward pass per step (``lax.scan``).

        With ``M > 1`` each sample's pass uses only its own mask (a ``vmap`` over samples),
        so a step costs one pass, not ``M``; the samples equal ``sample_naive(key, n)``. With
        one mask the key is split as for ``M > 1`` (``sample_naive`` does not split it):
        the same distribution, another stream.

        A conditional MADE draws from ``p(x | context)``; ``context=None`` gives class
        ``i mod num_classes`` to sample ``i``. ``temperature`` ``T`` (finite, > 0) draws
        each conditional from ``p(x_t | ...)^{1/T}`` renormalized (heads' softmax
        temperature; ``T = 1`` is the model).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`); a bad
            context.
        """
        n = check_count("n", n)
        temperature = check_temperature("MADE.sample", temperature)
        context = self.check_context(context, n, for_sampling=True)
        mask_key, key = jax.random.split(key)
        component = jax.random.randint(mask_key, (n,), 0, self.num_masks)  # [n]
        return self._ancestral(key, jnp.zeros((n, self.num_dims), self.value_dtype), 0,
                               component, context, temperature)


def made_loss(model: MADE, batch: Array, key: PRNGKey):
    """Loss for `jaxgen.training.train`: NLL under one mask drawn uniformly per step,

    ``L = -(1/B) sum_b log p_m(x_b)``, ``m ~ U{0..M-1}`` (from ``key``; always 0 for one
    mask); its expectation is the mean over masks of each mask's NLL (connectivity-agnostic
    training). With ``model.dropout > 0`` hidden units are dropped (key ``fold_in(key, 1)``).
    """
    mask_index = jax.random.randint(key, (), 0, model.num_masks)
    dropout_key = jax.random.fold_in(key, 1) if model.dropout > 0.0 else None
    loss = -jnp.mean(model.log_prob_with_mask(inputs_of(batch), mask_index, dropout_key,
                                              context=context_of(batch)))
    return loss, {"nll": loss}


connectivity_agnostic_loss = made_loss  # the name used where ``num_masks > 1``


__all__ = ["MADE", "connectivity_agnostic_loss", "made_loss"]
