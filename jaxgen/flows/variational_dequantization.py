"""Variational dequantization (Ho et al., 2019, Flow++): a learned noise distribution
``q(u | x)`` in place of uniform noise.

A density ``p(y)`` on ``[0, 1)^D`` (a flow with a `Logit` first layer) defines a model of
discrete levels ``x in {0, ..., K-1}^D`` through the cells ``y = (x + u) / K``,
``u in [0, 1)^D`` (Jacobian ``dy/du = K^-D``):

    ``P(x) = int_{[0,1)^D} p((x + u) / K) K^-D du
           = E_{u ~ q(.|x)}[p((x + u) / K) K^-D / q(u | x)]``.

Jensen's inequality gives the variational bound (uniform ``q`` is the special case
``log q = 0`` of `jaxgen.data.preprocessing`)

    ``-log P(x) <= E_q[-log p((x + u) / K) + log q(u | x)] + D log K``,

and ``S`` samples ``u_1..u_S ~ q(.|x)`` the tighter importance-weighted bound (Burda et
al., 2016), ``E[-log (1/S) sum_s w_s]`` with ``w_s = p((x + u_s) / K) K^-D / q(u_s | x)``,
which decreases in ``S`` towards ``-log P(x)``.

Where ``q`` lives: `VariationallyDequantized` is one ``nnx.Module`` holding the density and
the dequantizer, a model of the *integer* data: ``log_prob(x_int, key=...)`` is the
(single-sample, ``num_samples=1``) bound or the importance-weighted estimate
(``num_samples=S``), in nats of the discrete data (``D log K`` included). Both parts train
jointly by maximum likelihood on that bound, and checkpoints, the EMA and ``load_run`` see
one parameter tree, as for any other model.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import check_count, check_levels
from jaxgen.data.preprocessing import dequantize, quantize
from jaxgen.flows.affine_coupling import AffineCoupling
from jaxgen.flows.base import chain_in_order
from jaxgen.flows.distributions import StandardLogistic
from jaxgen.flows.sigmoid import Sigmoid
from jaxgen.nn import mixed_precision as mp
from jaxgen.nn.mlp import MLP
from jaxgen.nn.resnet import GlowCNN
from jaxgen.types import Array, PRNGKey


# NumPy, not jnp: importing this module must not start a JAX backend (jax.distributed).
_U_MIN = float(np.finfo(np.float32).tiny)  # smallest normal float32 > 0
_U_MAX = float(np.nextafter(np.float32(1), np.float32(0)))  # 1 - 2^-24


class ConditionalDequantizer(nnx.Module):
    """``q(u | x)``, a conditional flow on ``u in (0, 1)^D`` given the levels ``x``.

    Generative direction: ``eps ~ Logistic(0, 1)^D``, ``z = f_L o ... o f_1(eps; h(x))``
    (affine couplings, `AffineCoupling`, whose conditioners read the embedding ``h(x)``),
    ``u = sigmoid(z)``. Change of variables:

        ``log q(u | x) = log p_logistic(eps) - sum_l log|det df_l| - sum log sigmoid'(z)``,

    with ``log sigmoid'(z) = -softplus(z) - softplus(-z)``. Every coupling's conditioner
    starts at zero (identity), and ``sigmoid`` is the logistic CDF, so a new dequantizer is
    *exactly* uniform: ``u ~ U(0, 1)^D`` and ``log q = 0``.

    The embedding ``h(x)`` reads ``2 x / (K - 1) - 1``: for images ``[H, W, C]`` two 3x3
    convolutions give a spatial context ``[B, H, W, F]`` and the couplings alternate
    checkerboard masks (conditioners: `GlowCNN`); for vectors ``[D]`` (``D >= 2``) an MLP
    gives ``[B, F]`` and the couplings alternate the ``alternate`` mask (conditioners: `MLP`).

    Args:
      event_shape: ``(H, W, C)`` or ``(D,)`` with ``D >= 2``.
      num_levels: ``K >= 2``.
      num_couplings: ``L >= 1`` couplings (alternating parities).
      hidden_channels: width of the embedding and of the conditioners.
      context_features: ``F``, width of the embedding.
      rngs: parameter keys.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int, *, num_couplings: int = 4,
                 hidden_channels: int = 32, context_features: int = 16, rngs: nnx.Rngs):
        event_shape = tuple(int(s) for s in event_shape)
        self.num_levels = check_count("num_levels", num_levels)
        if self.num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        num_couplings = check_count("num_couplings", num_couplings)
        hidden = check_count("hidden_channels", hidden_channels)
        f = check_count("context_features", context_features)
        self.event_shape = event_shape
        if len(event_shape) == 3:
            c = event_shape[-1]
            self.embed_in = mp.Conv(c, hidden, (3, 3), padding="SAME", rngs=rngs)
            self.embed_out = mp.Conv(hidden, f, (3, 3), padding="SAME", rngs=rngs)
            couplings = [AffineCoupling(GlowCNN(c + f, hidden, 2 * c, rngs=rngs), c,
                                        "checkerboard", i % 2) for i in range(num_couplings)]
        elif len(event_shape) == 1 and event_shape[0] >= 2:
            d = event_shape[0]
            self.embed_in = mp.Linear(d, hidden, rngs=rngs)
            self.embed_out = mp.Linear(hidden, f, rngs=rngs)
            couplings = [AffineCoupling(MLP(d + f, hidden, 2 * d, 2, rngs=rngs), d,
                                        "alternate", i % 2) for i in range(num_couplings)]
        else:
            raise ValueError(f"ConditionalDequantizer needs an image event (H, W, C) or a "
                             f"vector event (D,) with D >= 2, got {event_shape}")
        self.base = StandardLogistic(event_shape)
        # Generative direction: eps -> z (the couplings, in order), then z -> u = sigmoid(z).
        self.couplings = chain_in_order(couplings)
        self.sigmoid = Sigmoid()

    def embed(self, x_int: Array) -> Array:
        """``h(x)``: ``[B, H, W, C] -> [B, H, W, F]`` or ``[B, D] -> [B, F]``."""
        x = 2.0 * jnp.asarray(x_int, jnp.float32) / (self.num_levels - 1) - 1.0
        return self.embed_out(jax.nn.relu(self.embed_in(x)))

    def _check(self, x_int, who):
        if tuple(jnp.shape(x_int)[1:]) != self.event_shape:
            raise ValueError(f"{who} expects [B, *{self.event_shape}], got shape "
                             f"{jnp.shape(x_int)}")
        check_levels(x_int, self.num_levels, who, allow_bool=False)

    def forward_and_log_det(self, eps: Array, embedding: Array) -> tuple[Array, Array]:
        """``eps [B, *event] -> (u [B, *event], log|det du/deps| [B])`` given ``h(x)``."""
        z, log_det_z = self.couplings.forward_and_log_det(eps, context=embedding)
        u, log_det_u = self.sigmoid.forward_and_log_det(z)
        return u, log_det_z + log_det_u

    def log_prob_logit(self, z: Array, x_int: Array) -> Array:
        """``log q_z(z | x)``, the density of ``z = logit(u)``: ``[B]``
        (``log p_logistic(eps) + log|det deps/dz|``, ``eps`` the couplings' inverse)."""
        self._check(x_int, f"{type(self).__name__}.log_prob_logit")
        eps, log_det = self.couplings.inverse_and_log_det(jnp.asarray(z, jnp.float32),
                                                          context=self.embed(x_int))
        return self.base.log_prob(eps) + log_det

    def sample_and_log_prob(self, key: PRNGKey, x_int: Array, *, num_samples: int = 1,
                            embedding: Array | None = None) -> tuple[Array, Array]:
        """Draws ``u ~ q(. | x)`` by reparameterization (differentiable in the parameters).

        Args:
          key: PRNG key.
          x_int: ``[B, *event]`` integer levels.
          num_samples: ``S``, draws per example.
          embedding: ``h(x)`` if already computed (``[B, ...]``).

        Returns:
          ``(u [S, B, *event] in (0, 1), log q(u | x) [S, B])``; ``u`` is clipped to the
          float32 values strictly inside ``(0, 1)``.
        """
        who = f"{type(self).__name__}.sample_and_log_prob"
        self._check(x_int, who)
        s = check_count(f"{who}: num_samples", num_samples)
        b = jnp.shape(x_int)[0]
        h = self.embed(x_int) if embedding is None else embedding
        h = jnp.broadcast_to(h[None], (s,) + h.shape).reshape((s * b,) + h.shape[1:])
        eps = jax.random.logistic(key, (s * b,) + self.event_shape, jnp.float32)
        u, log_det = self.forward_and_log_det(eps, h)
        log_q = self.base.log_prob(eps) - log_det
        # sigmoid(z) saturates to 0 or 1 in float32 for |z| > ~17 (~88 towards 0): keep u
        # strictly inside (0, 1) (a change of < 6e-8; log q is that of the exact u).
        u = jnp.clip(u, _U_MIN, _U_MAX)
        return u.reshape((s, b) + self.event_shape), log_q.reshape((s, b))

    def log_prob(self, u: Array, x_int: Array) -> Array:
        """``log q(u | x)`` of given noise ``u [B, *event]`` in ``(0, 1)``: ``[B]``
        (``z = logit(u)``, ``log q(u | x) = log q_z(z | x) + log|det dz/du|``). In float32
        ``u`` resolves ``logit(u)`` only up to ``|z| ~ 17``; `log_prob_logit` has no limit."""
        who = f"{type(self).__name__}.log_prob"
        if jnp.shape(u) != jnp.shape(x_int):
            raise ValueError(f"{who}: u must be shaped like x {jnp.shape(x_int)}, got "
                             f"{jnp.shape(u)}")
        z, log_det = self.sigmoid.inverse_and_log_det(jnp.asarray(u, jnp.float32))
        return self.log_prob_logit(z, x_int) + log_det


class VariationallyDequantized(nnx.Module):
    """A model of discrete levels from a density on ``[0, 1)^D`` and a learned dequantizer.

    ``log_prob(x, key=k)`` with ``S = num_samples`` draws ``u_s ~ q(. | x)`` and returns

        ``log w_s = log p((x + u_s) / K) - log q(u_s | x) - D log K``,
        ``S = 1``: ``log w_1`` (an unbiased estimate of the variational lower bound),
        ``S > 1``: ``logsumexp_s(log w_s) - log S`` (the importance-weighted estimate),

    in nats of the discrete data, so ``-log_prob`` is the training loss and the reported
    NLL with no ``D log K`` offset to add (`jaxgen.data.preprocessing.Preprocessing` with
    ``dequantize="variational"`` has ``nll_offset_nats = 0``). ``y = (x + u) / K`` is formed
    by `jaxgen.data.preprocessing.dequantize` (kept strictly inside the cell) with the
    gradient ``dy/du = 1 / K``.

    Randomness is explicit: the training objective and evaluation pass ``key``
    (``log_prob_takes_key``; `jaxgen.data.batching.log_prob_of`). Without a key the
    estimate uses ``jax.random.key(0)``: deterministic, still a valid (single draw) estimate.

    Args:
      density: a model of ``y in [0, 1)^D`` with ``event_shape`` and ``log_prob(y[,
        context])`` (a flow whose first layer is `Logit`), and ``sample(key, n, ...)``.
      dequantizer: a `ConditionalDequantizer` of the same event shape.
      num_levels: ``K``.
      num_samples: ``S``; `with_num_samples` gives a copy with another ``S``.
    """

    log_prob_takes_key = True

    def __init__(self, density: nnx.Module, dequantizer: ConditionalDequantizer,
                 num_levels: int, *, num_samples: int = 1):
        self.event_shape = tuple(density.event_shape)
        if tuple(dequantizer.event_shape) != self.event_shape:
            raise ValueError(f"dequantizer event shape {dequantizer.event_shape} differs from "
                             f"the density's {self.event_shape}")
        self.num_levels = check_count("num_levels", num_levels)
        if dequantizer.num_levels != self.num_levels:
            raise ValueError(f"dequantizer has num_levels={dequantizer.num_levels}, the model "
                             f"{num_levels}")
        self.num_samples = check_count("num_samples", num_samples)
        self.density, self.dequantizer = density, dequantizer

    @property
    def log_volume(self) -> float:
        """``-D log K``: log-volume of one cell in ``y`` space."""
        return -math.prod(self.event_shape) * math.log(self.num_levels)

    def with_num_samples(self, num_samples: int) -> "VariationallyDequantized":
        """A copy (own Variables, same values) whose ``log_prob`` uses ``num_samples``."""
        model = nnx.clone(self)
        model.num_samples = check_count("num_samples", num_samples)
        return model

    def log_weights(self, x: Array, key: PRNGKey, context=None) -> Array:
        """``log w_s [S, B]`` of ``x [B, *event]`` (integer levels), ``S = num_samples``."""
        who = f"{type(self).__name__}.log_prob"
        if tuple(jnp.shape(x)[1:]) != self.event_shape:
            raise ValueError(f"{who} expects [B, *{self.event_shape}], got shape {jnp.shape(x)}")
        check_levels(x, self.num_levels, who, allow_bool=False)
        s, b = self.num_samples, jnp.shape(x)[0]
        u, log_q = self.dequantizer.sample_and_log_prob(key, x, num_samples=s)  # [S, B, ...]
        x_s = jnp.broadcast_to(jnp.asarray(x)[None], u.shape)
        u_fixed = jax.lax.stop_gradient(u)
        y = dequantize(x_s, u_fixed, self.num_levels) + (u - u_fixed) / self.num_levels
        y = y.reshape((s * b,) + self.event_shape)
        if context is None:
            log_p = self.density.log_prob(y)
        else:
            c = jnp.broadcast_to(jnp.asarray(context)[None], (s,) + jnp.shape(context))
            log_p = self.density.log_prob(y, context=c.reshape((s * b,) + jnp.shape(context)[1:]))
        return log_p.reshape((s, b)) - log_q + self.log_volume

    def log_prob(self, x: Array, context=None, *, key: PRNGKey | None = None) -> Array:
        """``[B, *event]`` integer levels -> ``[B]``: the single-sample variational bound
        (``num_samples=1``) or the importance-weighted estimate of ``log P(x)`` in nats.

        Raises:
          TypeError: non-integer ``x``. ValueError: wrong shape, levels outside ``[0, K)``.
        """
        key = jax.random.key(0) if key is None else key
        log_w = self.log_weights(x, key, context)
        if self.num_samples == 1:
            return log_w[0]
        return jax.nn.logsumexp(log_w, axis=0) - math.log(self.num_samples)

    def sample(self, key: PRNGKey, n: int, context=None, **kwargs) -> Array:
        """``[n, *event]`` int32 levels ``floor(K y)``, ``y ~ p`` (``kwargs``, e.g.
        ``temperature``, go to the density's ``sample``)."""
        if context is not None:
            kwargs["context"] = context
        return quantize(self.density.sample(key, n, **kwargs), self.num_levels)


__all__ = ["ConditionalDequantizer", "VariationallyDequantized"]
