"""Base distributions of flows and `TransformedDistribution` (a flow as a model)."""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import check_count, check_finite, check_positive
from jaxgen.distributions.logistic import logistic_log_prob
from jaxgen.flows.base import Bijector, apply_bijector, sum_except_batch
from jaxgen.nn.context import check_context
from jaxgen.types import Array, PRNGKey

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _check_event(x, event_shape, who):
    if tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(f"{who} expects [B, *{tuple(event_shape)}], got shape {x.shape}")


def _check_sample_args(who, n, temperature):
    """``n >= 1`` an integer and ``temperature >= 0`` finite (``0``: every draw is the mode
    ``f(0)``; a traced temperature, under ``jit``, is passed through unchecked)."""
    n = check_count(f"{who}.sample: n", n)
    if isinstance(temperature, jax.core.Tracer) or temperature == 0:
        return n, temperature
    return n, check_positive(f"{who}.sample: temperature", temperature)


class StandardNormal(nnx.Module):
    """``N(0, I)`` on ``event_shape``: ``log p(z) = -|z|^2 / 2 - (D / 2) log(2 pi)``."""

    def __init__(self, event_shape: Sequence[int]):
        self.event_shape = tuple(event_shape)

    def log_prob(self, z: Array) -> Array:  # [B, *event] -> [B]
        _check_event(z, self.event_shape, "StandardNormal.log_prob")
        return sum_except_batch(-0.5 * jnp.square(z) - _HALF_LOG_2PI)

    def sample(self, key: PRNGKey, n: int, temperature: float = 1.0) -> Array:
        """``z = temperature * eps``, ``eps ~ N(0, I)``: ``[n, *event]``."""
        n, temperature = _check_sample_args(type(self).__name__, n, temperature)
        return temperature * jax.random.normal(key, (n,) + self.event_shape, jnp.float32)


class StandardLogistic(nnx.Module):
    """Standard logistic on each entry (NICE's prior):
    ``log p(z) = -sum[softplus(z) + softplus(-z)]``."""

    def __init__(self, event_shape: Sequence[int]):
        self.event_shape = tuple(event_shape)

    def log_prob(self, z: Array) -> Array:  # [B, *event] -> [B]
        _check_event(z, self.event_shape, "StandardLogistic.log_prob")
        return sum_except_batch(logistic_log_prob(0.0, 0.0, z))

    def sample(self, key: PRNGKey, n: int, temperature: float = 1.0) -> Array:
        """``z = temperature * (log u - log(1 - u))``: ``[n, *event]``."""
        n, temperature = _check_sample_args(type(self).__name__, n, temperature)
        return temperature * jax.random.logistic(key, (n,) + self.event_shape, jnp.float32)


BASE_DISTRIBUTIONS = {"normal": StandardNormal, "logistic": StandardLogistic}


def context_width(num_classes: int | None, context_features: int | None) -> int | None:
    """Width ``F`` of the context the couplings read: ``None`` (unconditional), the vector
    context's ``context_features``, or the class embedding's (``context_features``, default
    16)."""
    if num_classes is None:
        return None if context_features is None else check_count("context_features",
                                                                 context_features)
    check_count("num_classes", num_classes)
    return 16 if context_features is None else check_count("context_features",
                                                           context_features)


class TransformedDistribution(nnx.Module):
    """The density of ``x = f(z)``, ``z ~ base``, for a bijector ``f`` (``f.forward``:
    latent -> data):

        ``log p(x) = log p_base(f^{-1}(x)) + log|det d f^{-1}(x) / dx|``.

    Conditional flows (``num_classes`` or ``context_features``) model ``p(x | c)``: every
    coupling's conditioner reads the context ``e(c) [B, F]``, a learned embedding of the
    class label (``num_classes``) or the given vector itself (``context_features`` only);
    for each ``c`` the map ``x -> z`` is a bijection, so ``p(. | c)`` is normalized.

    Args:
      base: a base distribution with ``event_shape``, ``log_prob``, ``sample``.
      bijector: the generative bijector ``f``; for flows written in the normalizing
        direction ``g`` pass ``Inverse(g)``.
      event_shape: shape of one data example (defaults to the base's).
      num_classes: class-conditional: contexts are int labels in ``[0, num_classes)``.
      context_features: ``F`` (the embedding's width with ``num_classes``; else the width
        of a vector context ``[B, F]``).
      rngs: initializes the class embedding.
    """

    def __init__(self, base, bijector: Bijector, event_shape: Sequence[int] | None = None, *,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs | None = None):
        self.base, self.bijector = base, bijector
        self.event_shape = tuple(base.event_shape if event_shape is None else event_shape)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.context_features = context_width(num_classes, context_features)
        embed = None
        if self.num_classes is not None:
            if rngs is None:
                raise ValueError("a class-conditional flow needs rngs for its class embedding")
            embed = nnx.Embed(self.num_classes, self.context_features, rngs=rngs)
        self.context_embed = nnx.data(embed)

    @property
    def is_conditional(self) -> bool:
        return self.context_features is not None

    def embed_context(self, context, n: int, *, for_sampling: bool = False) -> Array | None:
        """The couplings' context ``[n, F]`` from labels ``[n]`` or vectors ``[n, F]``.

        For sampling, ``context=None`` on a class-conditional flow draws class ``i mod
        num_classes`` for sample ``i`` (class-balanced grids); a scalar label is broadcast.

        Raises:
          ValueError / TypeError: a context for an unconditional flow, none for a
            conditional one's ``log_prob``, or the wrong shape / dtype / range.
        """
        context = check_context(context, n, self.num_classes,
                                None if self.num_classes is not None else self.context_features,
                                type(self).__name__, for_sampling=for_sampling)
        if context is None or self.context_embed is None:
            return context
        return self.context_embed(context)  # [n, F]

    def log_prob(self, x: Array, context=None) -> Array:  # [B, *event] -> [B]
        """Exact log-density of each example, in nats (``log p(x | context)`` for a
        conditional flow).

        Raises:
          ValueError: wrong shape, or a concrete input holding NaN/inf (under ``jit`` such an
            input gives NaN; wrap with `jaxgen.checks` outside the jit to catch it); a bad
            context (`embed_context`).
        """
        check_finite(x, f"{type(self).__name__}.log_prob")
        x = jnp.asarray(x, jnp.float32)
        _check_event(x, self.event_shape, f"{type(self).__name__}.log_prob")
        c = self.embed_context(context, x.shape[0])
        z, log_det = apply_bijector(self.bijector, "inverse_and_log_det", x, c)
        return self.base.log_prob(z) + log_det

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Shape of one latent ``z`` (the base's event shape): ``(D,)`` for flows on vectors
        and flattened images (NICE, vector RealNVP, MAF / IAF), ``(H, W, C)`` for
        multi-scale flows (multi-scale RealNVP, Glow on images)."""
        return tuple(self.base.event_shape)

    def encode(self, x: Array, context=None) -> Array:
        """The latent of each example, ``z = f^{-1}(x)``: ``[B, *event] -> [B, *latent_shape]``.

        For multi-scale flows the latent is the whole ``[B, H, W, C]`` array the base
        distribution scores: every level's factored-out half and the last level's output,
        each written back at the positions its entries came from (`MultiScale`'s fixed
        permutation), so nothing the flow factored out is dropped and `decode` takes it
        back as is. ``decode(encode(x)) == x`` up to float32 rounding; a model with
        BatchNorm should be in eval mode (``model.eval()``: its inverse always uses the
        running averages, its training-mode forward the batch's statistics).

        Raises:
          ValueError: wrong shape, or a concrete input holding NaN/inf; a bad context
            (`embed_context`).
        """
        who = f"{type(self).__name__}.encode"
        check_finite(x, who)
        x = jnp.asarray(x, jnp.float32)
        _check_event(x, self.event_shape, who)
        c = self.embed_context(context, x.shape[0])
        return apply_bijector(self.bijector, "inverse_and_log_det", x, c)[0]

    def decode(self, z: Array, context=None) -> Array:
        """The example of each latent, ``x = f(z)``: ``[B, *latent_shape] -> [B, *event]``
        (the inverse of `encode`; ``sample(key, n, T)`` is ``decode(base.sample(key, n,
        T))``). A conditional flow needs the context as in `log_prob` (labels ``[B]`` or
        vectors ``[B, F]``; ``None`` gives class ``i mod num_classes`` to latent ``i``).

        Raises:
          ValueError: ``z`` not ``[B, *latent_shape]``, or a concrete ``z`` holding NaN/inf;
            a bad context.
        """
        who = f"{type(self).__name__}.decode"
        check_finite(z, who)
        z = jnp.asarray(z, jnp.float32)
        _check_event(z, self.latent_shape, who)
        c = self.embed_context(context, z.shape[0], for_sampling=True)
        return apply_bijector(self.bijector, "forward_and_log_det", z, c)[0]

    def sample(self, key: PRNGKey, n: int, temperature: float = 1.0, context=None) -> Array:
        """``n`` draws ``x = f(T z)``: ``[n, *event]`` (``decode(base.sample(key, n, T))``).
        ``temperature`` ``T < 1`` scales the base draws towards the mode (Glow's
        reduced-temperature samples); ``T = 0`` gives the mode ``f(0)``. A conditional flow
        draws from ``p(x | context)`` (see `embed_context` for ``context=None``).

        Raises:
          TypeError / ValueError: ``n`` not an integer >= 1, ``temperature`` negative or not
            finite, a bad context.
        """
        n, temperature = _check_sample_args(type(self).__name__, n, temperature)
        c = self.embed_context(context, n, for_sampling=True)
        z = self.base.sample(key, n, temperature)
        return apply_bijector(self.bijector, "forward_and_log_det", z, c)[0]

    def sample_and_log_prob(self, key: PRNGKey, n: int, context=None) -> tuple[Array, Array]:
        """Draws and their log-densities in one pass: ``log p(x) = log p_base(z) -
        log|det df/dz|``."""
        n = check_count(f"{type(self).__name__}.sample_and_log_prob: n", n)
        c = self.embed_context(context, n, for_sampling=True)
        z = self.base.sample(key, n)
        x, log_det = apply_bijector(self.bijector, "forward_and_log_det", z, c)
        return x, self.base.log_prob(z) - log_det


__all__ = ["context_width", "BASE_DISTRIBUTIONS", "StandardLogistic", "StandardNormal",
           "TransformedDistribution"]
