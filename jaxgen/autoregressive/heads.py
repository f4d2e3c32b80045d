"""Per-dimension output distributions of autoregressive models ("heads").

A head turns ``P = head.num_params`` network outputs per dimension into a distribution over
that dimension's ``K`` levels. All heads are stateless, hashable (static) objects:

* `BernoulliHead` (``K = 2``, ``P = 1``): ``p(x = 1) = sigmoid(l)``.
* `CategoricalHead` (``P = K``): ``p(x = k) = softmax(l)_k``.
* `DiscretizedLogisticMixtureHead` (PixelCNN++, ``P = 3M``): levels ``k`` sit at
  ``v_k = 2k / (K - 1) - 1`` in ``[-1, 1]``, bin edges at ``v_k +- 1 / (K - 1)``;
  ``p(k) = sum_m pi_m [sigmoid((v_k + 1/(K-1) - mu_m) / s_m) - sigmoid((v_k - 1/(K-1) - mu_m) / s_m)]``
  with the first bin's lower edge at ``-inf`` and the last bin's upper edge at ``+inf``, so
  the probabilities telescope to exactly 1.

Every head gives ``level_log_probs(params) -> [..., K]``, ``log_prob(params, x) -> [...]`` and
``sample(key, params, temperature=1.0) -> int32 [...]``: with temperature ``T`` the draw is
from ``p(k)^{1/T} / sum_j p(j)^{1/T}`` (softmax of the level log-probabilities over ``T``;
``T < 1`` sharpens, ``T = 1`` is the model).

Densities over real values (Gaussian, Gaussian and logistic mixtures) live in
`jaxgen.autoregressive.continuous_heads`; `make_head` builds both kinds.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxgen.autoregressive.continuous_heads import CONTINUOUS_HEADS, make_continuous_head
from jaxgen.distributions.bernoulli import bernoulli_log_prob, sample_bernoulli
from jaxgen.distributions.categorical import categorical_log_prob, sample_inverse_cdf
from jaxgen.types import Array, PRNGKey


@dataclasses.dataclass(frozen=True)
class BernoulliHead:
    """Binary levels from one logit per dimension."""

    num_levels: int = 2
    is_continuous = False

    @property
    def num_params(self) -> int:
        return 1

    def level_log_probs(self, params: Array) -> Array:  # [..., 1] -> [..., 2]
        logit = params[..., 0]
        return jnp.stack([-jax.nn.softplus(logit), -jax.nn.softplus(-logit)], axis=-1)

    def log_prob(self, params: Array, x: Array) -> Array:  # [..., 1], [...] -> [...]
        return bernoulli_log_prob(params[..., 0], x)

    def sample(self, key: PRNGKey, params: Array, temperature=1.0) -> Array:  # -> int32 [...]
        return sample_bernoulli(key, params[..., 0] / temperature)


@dataclasses.dataclass(frozen=True)
class CategoricalHead:
    """``K`` levels from ``K`` logits per dimension."""

    num_levels: int
    is_continuous = False

    @property
    def num_params(self) -> int:
        return self.num_levels

    def level_log_probs(self, params: Array) -> Array:  # [..., K] -> [..., K]
        return jax.nn.log_softmax(params, axis=-1)

    def log_prob(self, params: Array, x: Array) -> Array:
        return categorical_log_prob(params, x.astype(jnp.int32))

    def sample(self, key: PRNGKey, params: Array, temperature=1.0) -> Array:
        return sample_inverse_cdf(key, jax.nn.softmax(params / temperature, axis=-1))


def _log_sigmoid_diff(a: Array, b: Array) -> Array:
    """``log(sigmoid(a) - sigmoid(b))`` for ``a > b``, stable in both tails.

    ``sigmoid(a) - sigmoid(b) = sigmoid(a) sigmoid(-b) (1 - e^{b - a})``.
    """
    return (jax.nn.log_sigmoid(a) + jax.nn.log_sigmoid(-b)
            + jnp.log(-jnp.expm1(jnp.minimum(b - a, -1e-12))))


@dataclasses.dataclass(frozen=True)
class DiscretizedLogisticMixtureHead:
    """Mixture of ``M`` discretized logistics over ``K`` levels (PixelCNN++, Salimans 2017).

    ``params [..., 3M]`` hold mixture logits, means ``mu`` and log-scales ``log s`` (clipped
    below at -7 as in PixelCNN++).
    """

    num_levels: int
    num_mixtures: int = 5
    is_continuous = False

    @property
    def num_params(self) -> int:
        return 3 * self.num_mixtures

    def level_log_probs(self, params: Array) -> Array:  # [..., 3M] -> [..., K]
        k = self.num_levels
        logit_pi, mu, log_s = jnp.split(params, 3, axis=-1)  # [..., M] each
        log_s = jnp.maximum(log_s, -7.0)
        centres = jnp.linspace(-1.0, 1.0, k)  # v_k, [K]
        half = 1.0 / (k - 1)
        inv_s = jnp.exp(-log_s)[..., None, :]  # [..., 1, M]
        upper = (centres[:, None] + half - mu[..., None, :]) * inv_s  # [..., K, M]
        lower = (centres[:, None] - half - mu[..., None, :]) * inv_s
        middle = _log_sigmoid_diff(upper, lower)
        first = jax.nn.log_sigmoid(upper)  # lower edge -inf
        last = jax.nn.log_sigmoid(-lower)  # upper edge +inf
        is_first = (jnp.arange(k) == 0)[:, None]
        is_last = (jnp.arange(k) == k - 1)[:, None]
        log_bin = jnp.where(is_first, first, jnp.where(is_last, last, middle))  # [..., K, M]
        log_pi = jax.nn.log_softmax(logit_pi, axis=-1)[..., None, :]
        return jax.nn.logsumexp(log_bin + log_pi, axis=-1)  # [..., K]

    def log_prob(self, params: Array, x: Array) -> Array:
        return categorical_log_prob(self.level_log_probs(params), x.astype(jnp.int32))

    def sample(self, key: PRNGKey, params: Array, temperature=1.0) -> Array:
        return sample_inverse_cdf(
            key, jax.nn.softmax(self.level_log_probs(params) / temperature, axis=-1))


HEADS = ("bernoulli", "categorical", "discretized_logistic_mixture")


def make_head(name: str, num_levels: int | None, num_mixtures: int = 5, *,
              allow_continuous: bool = False):
    """Head ``name`` in `HEADS` (``"auto"``: Bernoulli for 2 levels, else categorical), or,
    with ``allow_continuous`` (models that take real-valued data), a density over real
    values in `jaxgen.autoregressive.continuous_heads.CONTINUOUS_HEADS`, which needs
    ``num_levels=None``.

    Raises:
      ValueError: an unknown head; a continuous head with ``num_levels`` set (integer data)
        or where the model takes discrete data only; a discrete head with
        ``num_levels=None`` (real-valued data).
    """
    if name in CONTINUOUS_HEADS:
        if not allow_continuous:
            raise ValueError(f"head={name!r} is a density over real values; this model "
                             f"takes discrete levels only (heads 'auto' or {HEADS}); real-valued "
                             "data: MADE or CausalTransformer")
        if num_levels is not None:
            raise ValueError(f"head={name!r} is a density over real values but "
                             f"num_levels={num_levels} says the data are integer levels; pass "
                             f"num_levels=None for real-valued data, or a discrete head "
                             f"('auto' or {HEADS}) for levels")
        return make_continuous_head(name, num_mixtures)
    if num_levels is None and name in ("auto", *HEADS):
        raise ValueError(f"head={name!r} models discrete levels but num_levels=None says the "
                         f"data are real-valued; use a continuous head {CONTINUOUS_HEADS} for "
                         "real values, or pass num_levels for integer data")
    if name == "auto":
        name = "bernoulli" if num_levels == 2 else "categorical"
    if name == "bernoulli":
        if num_levels != 2:
            raise ValueError(f"the Bernoulli head needs 2 levels, got num_levels={num_levels}")
        return BernoulliHead()
    if name == "categorical":
        return CategoricalHead(int(num_levels))
    if name == "discretized_logistic_mixture":
        return DiscretizedLogisticMixtureHead(int(num_levels), int(num_mixtures))
    known = (*HEADS, *CONTINUOUS_HEADS) if allow_continuous else HEADS
    raise ValueError(f"head must be 'auto' or one of {known}, got {name!r}")


__all__ = ["BernoulliHead", "CategoricalHead", "DiscretizedLogisticMixtureHead", "HEADS",
           "make_head"]
