"""Per-dimension densities over real values for autoregressive models ("continuous heads").

The real-valued counterparts of `jaxgen.autoregressive.heads`: a head turns ``P =
head.num_params`` network outputs per dimension into a density on the real line.

* `GaussianHead` (``P = 2``: mean ``mu``, log-scale ``log s``):
  ``p(x) = N(x; mu, s^2)``.
* `GaussianMixtureHead` (``P = 3M``: logits ``l``, means ``mu``, log-scales ``log s``):
  ``p(x) = sum_m pi_m N(x; mu_m, s_m^2)``, ``pi = softmax(l)``.
* `LogisticMixtureHead` (``P = 3M``, same layout): ``p(x) = sum_m pi_m Logistic(x; mu_m,
  s_m)``, ``Logistic(x; mu, s) = e^{-z} / (s (1 + e^{-z})^2)``, ``z = (x - mu) / s``
  (continuous, not discretized: PixelCNN++'s discretized version is
  `jaxgen.autoregressive.heads.DiscretizedLogisticMixtureHead`).

Log-scales are clamped to ``[LOG_SCALE_MIN, LOG_SCALE_MAX] = [-7, 7]`` before use (scales
``9.1e-4 .. 1.1e3``): the lower bound caps a component's density at ``1 / (sqrt(2 pi)
e^{-7}) ~ 440`` so a component cannot collapse onto one training point (the likelihood would
go to infinity), the upper bound keeps ``exp`` finite. The clamp is part of the density: every
parameter value gives a normalized density (the clamped one), so ``log_prob`` stays exact.

Every head gives ``log_prob(params, x) -> [...]`` for float ``x``, ``cdf(params, x) ->
[...]`` and ``sample(key, params, temperature=1.0) -> float32 [...]``. Temperature ``T``
(finite, ``> 0``) scales every scale by ``sqrt(T)`` (variance by ``T``): for the Gaussian
that is exactly ``p(x)^{1/T}`` renormalized, the discrete heads' definition. A mixture's
``p^{1/T}`` has no closed form; the mixtures draw from ``pi_m^{1/T}`` renormalized
(logits ``l / T``) and then the component with its scale times ``sqrt(T)``: ``T = 1`` is the
model, ``T -> 0`` concentrates on the heaviest component's centre, ``T < 1`` sharpens.

``initial_bias()`` ``[P]`` is the bias a model's output layer starts from: zeros, except
the mixtures' means at the standard normal quantiles ``Phi^{-1}((m + 1/2) / M)``. Where the
network's output does not depend on its input (the first dimension of a MADE reads only
biases) components that start equal get equal gradients and stay equal forever: a mixture
would train as one component.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import jax.scipy.stats.norm as jnorm
import numpy as np
import scipy.special

from jaxgen.checks import check_temperature
from jaxgen.distributions.gaussian import gaussian_log_prob
from jaxgen.distributions.logistic import logistic_log_prob
from jaxgen.types import Array, PRNGKey

LOG_SCALE_MIN = -7.0
LOG_SCALE_MAX = 7.0


def clamp_log_scale(log_scale: Array) -> Array:
    """``clip(log s, LOG_SCALE_MIN, LOG_SCALE_MAX)`` (module docstring: why)."""
    return jnp.clip(log_scale, LOG_SCALE_MIN, LOG_SCALE_MAX)


def _as_float(x: Array) -> Array:
    return jnp.asarray(x).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class GaussianHead:
    """``N(mu, s^2)`` from ``params [..., 2] = (mu, log s)``."""

    is_continuous = True

    @property
    def num_params(self) -> int:
        return 2

    def _split(self, params: Array) -> tuple[Array, Array]:
        return params[..., 0], clamp_log_scale(params[..., 1])

    def initial_bias(self) -> np.ndarray:  # [2]
        """Zeros: ``N(0, 1)`` where the network's output is zero."""
        return np.zeros((2,), np.float32)

    def log_prob(self, params: Array, x: Array) -> Array:  # [..., 2], [...] -> [...]
        """``-z^2 / 2 - log s - log(2 pi) / 2``, ``z = (x - mu) / s``."""
        mu, log_s = self._split(params)
        return gaussian_log_prob(mu, log_s, _as_float(x))

    def cdf(self, params: Array, x: Array) -> Array:  # -> [...]
        """``Phi((x - mu) / s)``."""
        mu, log_s = self._split(params)
        return jnorm.cdf((_as_float(x) - mu) * jnp.exp(-log_s))

    def sample(self, key: PRNGKey, params: Array, temperature=1.0) -> Array:  # -> f32 [...]
        """``x = mu + sqrt(T) s eps``, ``eps ~ N(0, 1)``: ``p(x)^{1/T}`` renormalized."""
        temperature = check_temperature("GaussianHead.sample", temperature)
        mu, log_s = self._split(params)
        eps = jax.random.normal(key, mu.shape, jnp.float32)
        return mu + jnp.sqrt(temperature) * jnp.exp(log_s) * eps


@dataclasses.dataclass(frozen=True)
class _MixtureHead:
    """``sum_m pi_m f((x - mu_m) / s_m) / s_m`` from ``params [..., 3M] = (l, mu, log s)``."""

    num_mixtures: int = 5
    is_continuous = True

    def __post_init__(self):
        if isinstance(self.num_mixtures, bool) or int(self.num_mixtures) != self.num_mixtures \
                or self.num_mixtures < 1:
            raise ValueError(f"num_mixtures must be an int >= 1, got {self.num_mixtures!r}")

    @property
    def num_params(self) -> int:
        return 3 * self.num_mixtures

    def _split(self, params: Array) -> tuple[Array, Array, Array]:
        logits, mu, log_s = jnp.split(params, 3, axis=-1)  # [..., M] each
        return logits, mu, clamp_log_scale(log_s)

    def initial_bias(self) -> np.ndarray:  # [3M]
        """Equal weights, unit scales, means ``Phi^{-1}((m + 1/2) / M)`` (distinct, so the
        components can separate; module docstring)."""
        m = self.num_mixtures
        means = scipy.special.ndtri((np.arange(m) + 0.5) / m)
        return np.concatenate([np.zeros(m), means, np.zeros(m)]).astype(np.float32)

    def _component_log_prob(self, mu: Array, log_s: Array, x: Array) -> Array:
        raise NotImplementedError

    def _component_cdf(self, z: Array) -> Array:
        raise NotImplementedError

    def _standard_draw(self, key: PRNGKey, shape) -> Array:
        raise NotImplementedError

    def log_prob(self, params: Array, x: Array) -> Array:  # [..., 3M], [...] -> [...]
        """``logsumexp_m (log pi_m + log f_m(x))``."""
        logits, mu, log_s = self._split(params)
        log_f = self._component_log_prob(mu, log_s, _as_float(x)[..., None])  # [..., M]
        return jax.nn.logsumexp(jax.nn.log_softmax(logits, axis=-1) + log_f, axis=-1)

    def cdf(self, params: Array, x: Array) -> Array:  # -> [...]
        """``sum_m pi_m F((x - mu_m) / s_m)``."""
        logits, mu, log_s = self._split(params)
        z = (_as_float(x)[..., None] - mu) * jnp.exp(-log_s)  # [..., M]
        return jnp.sum(jax.nn.softmax(logits, axis=-1) * self._component_cdf(z), axis=-1)

    def sample(self, key: PRNGKey, params: Array, temperature=1.0) -> Array:  # -> f32 [...]
        """Component ``m ~ softmax(l / T)``, then ``x = mu_m + sqrt(T) s_m eps``, ``eps``
        standard (module docstring: what ``T`` means for a mixture)."""
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        logits, mu, log_s = self._split(params)
        component_key, noise_key = jax.random.split(key)
        m = jax.random.categorical(component_key, logits / temperature, axis=-1)  # [...]
        pick = lambda a: jnp.take_along_axis(a, m[..., None], axis=-1)[..., 0]  # noqa: E731
        eps = self._standard_draw(noise_key, m.shape)
        return pick(mu) + jnp.sqrt(temperature) * jnp.exp(pick(log_s)) * eps


@dataclasses.dataclass(frozen=True)
class GaussianMixtureHead(_MixtureHead):
    """Mixture of ``M`` Gaussians per dimension."""

    def _component_log_prob(self, mu, log_s, x):
        return gaussian_log_prob(mu, log_s, x)

    def _component_cdf(self, z):
        return jnorm.cdf(z)

    def _standard_draw(self, key, shape):
        return jax.random.normal(key, shape, jnp.float32)


@dataclasses.dataclass(frozen=True)
class LogisticMixtureHead(_MixtureHead):
    """Mixture of ``M`` (continuous) logistics per dimension."""

    def _component_log_prob(self, mu, log_s, x):
        return logistic_log_prob(mu, log_s, x)

    def _component_cdf(self, z):
        return jax.nn.sigmoid(z)

    def _standard_draw(self, key, shape):
        return jax.random.logistic(key, shape, jnp.float32)


CONTINUOUS_HEADS = ("gaussian", "gaussian_mixture", "logistic_mixture")


def make_continuous_head(name: str, num_mixtures: int = 5):
    """Head ``name`` in `CONTINUOUS_HEADS` (``num_mixtures``: ``M`` of the mixtures)."""
    if name == "gaussian":
        return GaussianHead()
    if name == "gaussian_mixture":
        return GaussianMixtureHead(int(num_mixtures))
    if name == "logistic_mixture":
        return LogisticMixtureHead(int(num_mixtures))
    raise ValueError(f"continuous head must be one of {CONTINUOUS_HEADS}, got {name!r}")


def is_continuous_head(head) -> bool:
    """Whether ``head`` is a density over real values (else: over discrete levels)."""
    return bool(getattr(head, "is_continuous", False))


__all__ = ["CONTINUOUS_HEADS", "GaussianHead", "GaussianMixtureHead", "LOG_SCALE_MAX",
           "LOG_SCALE_MIN", "LogisticMixtureHead", "clamp_log_scale", "is_continuous_head",
           "make_continuous_head"]
