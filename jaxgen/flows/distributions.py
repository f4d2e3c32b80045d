"""Base distributions of flows and `TransformedDistribution` (a flow as a model)."""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import check_count, check_finite, check_positive
from jaxgen.distributions.logistic import logistic_log_prob
from jaxgen.flows.base import Bijector, sum_except_batch
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


class TransformedDistribution(nnx.Module):
    """The density of ``x = f(z)``, ``z ~ base``, for a bijector ``f`` (``f.forward``:
    latent -> data):

        ``log p(x) = log p_base(f^{-1}(x)) + log|det d f^{-1}(x) / dx|``.

    Args:
      base: a base distribution with ``event_shape``, ``log_prob``, ``sample``.
      bijector: the generative bijector ``f``; for flows written in the normalizing
        direction ``g`` pass ``Inverse(g)``.
      event_shape: shape of one data example (defaults to the base's).
    """

    def __init__(self, base, bijector: Bijector, event_shape: Sequence[int] | None = None):
        self.base, self.bijector = base, bijector
        self.event_shape = tuple(base.event_shape if event_shape is None else event_shape)

    def log_prob(self, x: Array) -> Array:  # [B, *event] -> [B]
        """Exact log-density of each example, in nats.

        Raises:
          ValueError: wrong shape, or a concrete input holding NaN/inf (under ``jit`` such an
            input gives NaN; wrap with `jaxgen.checks` outside the jit to catch it).
        """
        check_finite(x, f"{type(self).__name__}.log_prob")
        x = jnp.asarray(x, jnp.float32)
        _check_event(x, self.event_shape, f"{type(self).__name__}.log_prob")
        z, log_det = self.bijector.inverse_and_log_det(x)
        return self.base.log_prob(z) + log_det

    def sample(self, key: PRNGKey, n: int, temperature: float = 1.0) -> Array:
        """``n`` draws ``x = f(T z)``: ``[n, *event]``. ``temperature`` ``T < 1`` scales the
        base draws towards the mode (Glow's reduced-temperature samples).

        Raises:
          TypeError / ValueError: ``n`` not an integer >= 1, ``temperature`` negative or not
            finite.
        """
        n, temperature = _check_sample_args(type(self).__name__, n, temperature)
        return self.bijector.forward(self.base.sample(key, n, temperature))

    def sample_and_log_prob(self, key: PRNGKey, n: int) -> tuple[Array, Array]:
        """Draws and their log-densities in one pass: ``log p(x) = log p_base(z) -
        log|det df/dz|``."""
        z = self.base.sample(key, check_count(f"{type(self).__name__}.sample_and_log_prob: n", n))
        x, log_det = self.bijector.forward_and_log_det(z)
        return x, self.base.log_prob(z) - log_det


__all__ = ["BASE_DISTRIBUTIONS", "StandardLogistic", "StandardNormal",
           "TransformedDistribution"]
