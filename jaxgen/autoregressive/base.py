"""What every autoregressive model shares: input checks, log-likelihood, naive sampling.

An autoregressive model over ``D = prod(event_shape)`` dimensions in raster order (for
images ``[H, W, C]``: rows, then columns, then channels) factorizes

    log p(x) = sum_{i < D} log p(x_i | x_{<i}),

with ``p(x_i | x_{<i})`` given by a head (`jaxgen.autoregressive.heads`) from network outputs
``theta_i(x_{<i})``. A subclass implements ``encode(x)`` (int levels -> a float relaxation of
the input, e.g. one-hot or scaled values) and ``params_from_inputs(inputs)`` (one parallel
pass, teacher forcing: ``theta_i`` for every ``i`` at once). The Jacobian of
``params_from_inputs`` is how tests prove the autoregressive property.

Generation order. Every model here generates in raster order except `MADE` with
``ordering="random"``, which draws position ``o_t`` at step ``t`` (``o`` a permutation) and
factorizes ``log p(x) = sum_t log p(x_{o_t} | x_{o_{<t}})``; it overrides `fill_naive` and
`log_prob_per_dim` to follow its order. "Step ``t``" and "the first ``L`` positions" below
always mean the generation order (raster for the others).
"""
from __future__ import annotations

import math
import operator

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.autoregressive.continuous_heads import CONTINUOUS_HEADS, is_continuous_head
from jaxgen.checks import (check_count, check_event_batch, check_finite, check_levels,
                           check_temperature)
from jaxgen.nn.context import ContextProjection, check_context
from jaxgen.types import Array, PRNGKey


def encode_levels(x: Array, num_levels: int, encoding: str) -> Array:
    """``[B, *E]`` int levels -> float ``[B, *E, F]``.

    ``"onehot"``: ``F = K``; ``"scalar"``: ``F = 1``, ``2 x / (K - 1) - 1`` in ``[-1, 1]``;
    ``"real"`` (real-valued data, ``num_levels=None``): ``F = 1``, the value itself.
    """
    if encoding == "real":
        return x.astype(jnp.float32)[..., None]
    if encoding == "onehot":
        return jax.nn.one_hot(x, num_levels, dtype=jnp.float32)
    if encoding == "scalar":
        return (2.0 * x.astype(jnp.float32) / (num_levels - 1) - 1.0)[..., None]
    raise ValueError(f"encoding must be 'onehot', 'scalar' or 'real', got {encoding!r}")


class AutoregressiveModel(nnx.Module):
    """Base class; subclasses set ``event_shape``, ``num_levels``, ``head``, ``encoding``.

    A model whose head is a density over real values (`is_continuous`, ``num_levels=None``,
    ``encoding="real"``; `jaxgen.autoregressive.continuous_heads`) takes float data: the
    same chain rule with densities, ``log p(x) = sum_i log p(x_i | x_{<i})`` in nats of a
    density, and samples are float32.
    """

    event_shape: tuple[int, ...]
    num_levels: int | None
    encoding: str = "scalar"

    @property
    def num_dims(self) -> int:
        return math.prod(self.event_shape)

    @property
    def is_continuous(self) -> bool:
        """Whether the head is a density over real values (float data and samples)."""
        return is_continuous_head(self.head)

    @property
    def value_dtype(self):
        """dtype of the data and samples: float32 for a continuous head, else int32."""
        return jnp.float32 if self.is_continuous else jnp.int32

    def encode(self, x: Array) -> Array:
        """``[B, *E]`` int levels -> ``[B, *E, F]`` float inputs of `params_from_inputs`."""
        return encode_levels(x, self.num_levels, self.encoding)

    def params_from_inputs(self, inputs: Array) -> Array:
        """``[B, *E, F]`` -> head parameters ``[B, *E, P]`` (one teacher-forced pass)."""
        raise NotImplementedError

    def check_input(self, x) -> Array:
        """``x`` ``[B, *event_shape]``: int levels in ``[0, K)`` (discrete head), returned
        as int32, or finite floats (continuous head), returned as float32.

        Raises:
          ValueError: wrong shape; levels out of range; non-finite real values.
          TypeError: float data for a discrete head or integer data for a continuous one
            (the message names the head and the dtype).
        """
        owner = type(self).__name__
        x = check_event_batch(x, self.event_shape, owner)
        if self.is_continuous:
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise TypeError(
                    f"{owner} with the continuous head {type(self.head).__name__} models "
                    f"real values and expects floating data, got dtype {x.dtype}; for integer "
                    "levels use a discrete head (head='auto') with num_levels, or dequantize "
                    "them to floats first")
            check_finite(x, owner)
            return x.astype(jnp.float32)
        if jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(
                f"{owner} expects integer level indices, got dtype {x.dtype}; cast integral "
                f"data with x.astype(jnp.int32). Its head {type(self.head).__name__} models "
                f"discrete levels: for real-valued data build it with num_levels=None and a "
                f"continuous head {CONTINUOUS_HEADS}")
        check_levels(x, self.num_levels, owner)
        return x.astype(jnp.int32)

    def log_prob_per_dim(self, params: Array, x: Array) -> Array:
        """The chain rule's factors, one column per generation step: params ``[B, *E, P]``
        (from `params_from_inputs`) and levels ``[B, *E]`` -> ``[B, D]`` nats, column ``t``
        = ``log p(x_{o_t} | x_{o_{<t}})`` (raster models: ``o_t = t``). Summing columns
        ``t >= L`` scores what `fill_naive` from ``start = L`` samples."""
        return self.head.log_prob(params, x).reshape(x.shape[0], self.num_dims)

    def log_prob(self, x: Array) -> Array:
        """``sum_i log p(x_i | x_{<i})``: ``[B, *event_shape]`` int levels -> ``[B]`` nats.

        An empty batch ``[0, *event_shape]`` gives an empty ``[0]`` float array."""
        x = self.check_input(x)
        params = self.params_from_inputs(self.encode(x))  # [B, *E, P]
        return jnp.sum(self.log_prob_per_dim(params, x), axis=-1)

    def check_fill_input(self, x_flat, start) -> tuple[Array, int]:
        """`fill_naive`'s arguments: ``x_flat`` must be ``[n, D]``, ``start`` a (static)
        int in ``[0, D]``; returns ``(x_flat as value_dtype, start)``.

        Raises:
          ValueError: naming the shape of ``x_flat`` or the value of ``start``.
          TypeError: ``start`` is not an int.
        """
        d = self.num_dims
        x_flat = jnp.asarray(x_flat)
        if x_flat.ndim != 2 or x_flat.shape[1] != d:
            raise ValueError(f"{type(self).__name__}.fill_naive expects x_flat of shape "
                             f"[n, D] = [n, {d}], got shape {tuple(x_flat.shape)}")
        if isinstance(start, bool):
            raise TypeError(f"start must be an int in [0, D] = [0, {d}], got {start!r}")
        try:
            start = operator.index(start)
        except TypeError:
            raise TypeError(f"start must be an int in [0, D] = [0, {d}], got {start!r} "
                            f"({type(start).__name__})") from None
        if not 0 <= start <= d:
            raise ValueError(f"start must be in [0, D] = [0, {d}], got {start}")
        return x_flat.astype(self.value_dtype), start

    def fill_naive(self, key: PRNGKey, x_flat: Array, start: int = 0,
                   temperature=1.0, *, context=None) -> Array:
        """Prefix completion: keeps the first ``start`` positions of the generation order
        and draws the rest from the model's conditional given them,

            s_{o_t} = x_{o_t} for t < start,   s_{o_t} ~ p(. | s_{o_{<t}}) for t >= start,

        each step at softmax temperature ``T``: ``p_T(k) = p(k)^{1/T} / sum_j p(j)^{1/T}``
        (the heads' ``sample``; ``T = 1`` is the model, the same draws bit for bit).

        one full `params_from_inputs` pass per step (a ``lax.scan``). For a raster model
        ``o_t = t``: positions ``< start`` are kept. Levels of ``x_flat`` outside the prefix
        are never read. Step ``t`` uses the key ``split(key, D)[t]`` whatever ``start`` is,
        so ``start = 0`` returns ``sample_naive(key, n)`` exactly.

        Args:
          key: PRNG key.
          x_flat: ``[n, D]`` int levels, flat in raster order (only the prefix is read).
          start: ``L`` in ``[0, D]`` (static); 0 samples from scratch, ``D`` copies.
          temperature: ``T``, finite and ``> 0``.
          context: a conditional model's context for the ``n`` rows (passed on as
            ``params_from_inputs(inputs, context)``); ``None`` for an unconditional model.

        Returns:
          ``[n, *event_shape]`` of `value_dtype` (int32 levels or float32 values).
        """
        x_flat, start = self.check_fill_input(x_flat, start)
        temperature = check_temperature(f"{type(self).__name__}.fill_naive", temperature)
        n, d, p = x_flat.shape[0], self.num_dims, self.head.num_params
        keys = jax.random.split(key, d)[start:]

        def step(x_flat, inputs):  # x_flat [n, D]
            i, key_i = inputs
            inputs = self.encode(x_flat.reshape(n, *self.event_shape))
            params = (self.params_from_inputs(inputs) if context is None
                      else self.params_from_inputs(inputs, context))
            params_i = jax.lax.dynamic_index_in_dim(params.reshape(n, d, p), i, 1, False)
            draw = self.head.sample(key_i, params_i, temperature)  # [n, P] -> [n]
            return x_flat.at[:, i].set(draw), None

        x, _ = jax.lax.scan(step, x_flat, (jnp.arange(start, d), keys))
        return x.reshape(n, *self.event_shape)

    def sample_naive(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """Ancestral sampling from ``p(x)``, one full forward pass per step (`fill_naive`
        from zeros, ``start = 0``). Step ``t`` is drawn with key ``split(key, D)[t]``; fast
        samplers use the same keys, so they return identical samples. ``temperature``
        ``T``: every conditional at softmax temperature ``T`` (`fill_naive`).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`);
            ``temperature`` not a finite number ``> 0``.
        """
        n = check_count("n", n)
        return self.fill_naive(key, jnp.zeros((n, self.num_dims), self.value_dtype), 0,
                               temperature)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` samples ``[n, *event_shape]`` int32 (naive unless a subclass is faster),
        each conditional ``p(x_t | x_{<t})`` drawn at softmax temperature ``T``:
        ``p_T(k) ∝ p(k)^{1/T}`` (``T < 1`` sharpens, ``T = 1`` is the model and gives the
        same draws as the default bit for bit). The product of tempered conditionals is not
        ``p(x)^{1/T}`` renormalized (the per-step normalizers depend on the prefix).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`);
            ``temperature`` not a finite number ``> 0``.
        """
        return self.sample_naive(key, n, temperature)


class ConditionalAutoregressiveModel(AutoregressiveModel):
    """An autoregressive model that may condition on a context: ``p(x | y)``.

    Subclasses set ``num_classes`` (class labels) and/or ``context_features`` (vectors),
    both ``None`` for an unconditional model (`_set_context_fields`; `_context_projection`
    builds a projection of the context onto a layer's units), and define ``params_from_inputs(inputs,
    context)`` taking the checked context (`check_context`). ``log_prob(x, context)`` and
    ``sample_naive(key, n, context, temperature)`` follow; with ``context=None`` a
    class-conditional model samples class ``i mod num_classes`` for sample ``i``, and an
    unconditional model refuses any context.
    """

    num_classes: int | None = None
    context_features: int | None = None

    @property
    def is_conditional(self) -> bool:
        return self.num_classes is not None or self.context_features is not None

    def _set_context_fields(self, num_classes: int | None,
                            context_features: int | None) -> None:
        """Sets the validated ``num_classes`` / ``context_features`` (a class count wins
        over a vector width; both None: unconditional)."""
        self.num_classes = None if num_classes is None else check_count("num_classes",
                                                                        num_classes)
        self.context_features = (None if num_classes is not None or context_features is None
                                 else check_count("context_features", context_features))

    def _context_projection(self, width: int, rngs) -> ContextProjection | None:
        """The context's projection onto ``width`` units
        (`jaxgen.nn.context.ContextProjection`), None for an unconditional model. Created
        after every other parameter, so an unconditional model's parameters do not depend
        on it."""
        if not self.is_conditional:
            return None
        return ContextProjection(width, num_classes=self.num_classes,
                                 context_features=self.context_features, rngs=rngs)

    def check_context(self, context, n: int, *, for_sampling: bool = False):
        """The checked context of a batch of ``n`` (`jaxgen.nn.context.check_context`)."""
        return check_context(context, n, self.num_classes, self.context_features,
                             type(self).__name__, for_sampling=for_sampling)

    def log_prob(self, x: Array, context: Array | None = None) -> Array:
        """``[B, *E]`` int levels (and ``context`` if conditional: ``log p(x | y)``) ->
        ``[B]`` nats."""
        x = self.check_input(x)
        params = self.params_from_inputs(self.encode(x), context)
        return jnp.sum(self.log_prob_per_dim(params, x), axis=-1)

    def sample_naive(self, key: PRNGKey, n: int, context: Array | None = None,
                     temperature=1.0) -> Array:
        """One full forward pass per position (`fill_naive` from zeros); conditional:
        ``context=None`` draws class ``i mod num_classes`` for sample ``i``;
        ``temperature``: softmax temperature of every step."""
        n = check_count("n", n)
        context = self.check_context(context, n, for_sampling=True)  # raises if unconditional
        return self.fill_naive(key, jnp.zeros((n, self.num_dims), self.value_dtype), 0,
                               temperature, context=context)


__all__ = ["AutoregressiveModel", "ConditionalAutoregressiveModel", "check_temperature",
           "encode_levels"]
