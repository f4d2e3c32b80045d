"""Restricted Boltzmann machines: Bernoulli-Bernoulli and Gaussian-Bernoulli.

Bernoulli-Bernoulli, ``v in {0,1}^V``, ``h in {0,1}^H``::

    E(v, h) = -b^T v - c^T h - v^T W h
    F(v)    = -log sum_h exp(-E(v, h)) = -b^T v - sum_j softplus(c_j + (v^T W)_j)
    p(h_j = 1 | v) = sigmoid(c_j + (v^T W)_j),   p(v_i = 1 | h) = sigmoid(b_i + (W h)_i)

Gaussian-Bernoulli (real ``v``, per-unit ``sigma_i = exp(log_sigma_i)``)::

    E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - (v / sigma)^T W h
    F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + ((v / sigma)^T W)_j)
    p(h_j = 1 | v) = sigmoid(c_j + ((v/sigma)^T W)_j),  v | h ~ N(b + sigma * (W h), sigma^2)

``log_prob(v) = -F(v) - log_z`` where ``log_z`` is set by ``exact_log_partition`` (small
models: the smaller layer is enumerated, the other summed/integrated analytically) or by AIS.

Input checks (`jaxgen.checks`): ``log_prob``, ``free_energy`` and ``energy`` check the shape
always and, on concrete inputs, the values: a Bernoulli RBM's visibles must be 0 or 1
(``F(v)`` is a finite number for any real ``v``, so a 2, a -1 or a 0.5 would otherwise get a
"log-probability"), a Gaussian-Bernoulli RBM's must be finite. Under ``jit`` the values are
not known and are not checked: a non-binary state gives a finite, meaningless number, a NaN
gives NaN. ``sample(key, n)`` needs an integer ``n >= 1``.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import (check_binary, check_count, check_finite, check_temperature,
                           is_unit_temperature)
from jaxgen.energy.partition import LogPartition, logsumexp_over_states
from jaxgen.mcmc import rng
from jaxgen.mcmc.gibbs import block_gibbs
from jaxgen.nn.precision import check_precision, matmul, prepare
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


def _shape_tuple(event_shape) -> tuple[int, ...]:
    return (int(event_shape),) if isinstance(event_shape, int) else tuple(int(d) for d in event_shape)


class _RBM(nnx.Module):
    """Shared parts: parameters, block Gibbs, sampling. Subclasses define the visible layer."""

    def __init__(self, event_shape, num_hidden: int, *, rngs: nnx.Rngs, init_scale: float,
                 sample_steps: int, precision: str = "float32"):
        self.event_shape = _shape_tuple(event_shape)
        self.num_visible = math.prod(self.event_shape)
        self.num_hidden = int(num_hidden)
        if self.num_hidden < 1:
            raise ValueError(f"num_hidden must be >= 1, got {num_hidden}")
        self.weights = nnx.Param(
            init_scale * jax.random.normal(rngs.params(), (self.num_visible, self.num_hidden)))
        self.visible_bias = nnx.Param(jnp.zeros((self.num_visible,)))
        self.hidden_bias = nnx.Param(jnp.zeros((self.num_hidden,)))
        self.log_z = LogPartition(jnp.zeros(()))
        self.sample_steps = int(sample_steps)
        self.precision = check_precision(precision)

    # -- shapes --------------------------------------------------------------------------
    def flatten(self, v: Array) -> Array:
        """``[B, *event_shape] -> [B, V]`` float32, checking the shape."""
        v = jnp.asarray(v)
        if v.ndim != len(self.event_shape) + 1 or tuple(v.shape[1:]) != self.event_shape:
            raise ValueError(f"{type(self).__name__} expects [B, "
                             f"{', '.join(map(str, self.event_shape))}], got shape {v.shape}")
        return v.reshape(v.shape[0], -1).astype(jnp.float32)

    def visible_input(self, v: Array, method: str) -> Array:
        """``flatten(v)`` after the values check of the visible layer (`check_visible`),
        for the public methods that take data; ``method`` is named in the message."""
        v_flat = self.flatten(v)
        self.check_visible(v, f"{type(self).__name__}.{method}")
        return v_flat

    def unflatten(self, v: Array) -> Array:
        return v.reshape(v.shape[0], *self.event_shape)

    # -- energies ------------------------------------------------------------------------
    def free_energy_flat(self, v_flat: Array) -> Array:
        """``F(v)``, ``[B, V] -> [B]`` (see ``free_energy_and_hidden_logits``)."""
        return self.free_energy_and_hidden_logits(v_flat)[0]

    def free_energy(self, v: Array) -> Array:
        """``F(v)``, ``[B, *event_shape] -> [B]`` (values checked when concrete)."""
        return self.free_energy_flat(self.visible_input(v, "free_energy"))

    def energy(self, v: Array) -> Array:
        """The energy-based-model interface: ``E(v) = F(v)``, the visible marginal's energy."""
        return self.free_energy_flat(self.visible_input(v, "energy"))

    def log_prob(self, v: Array) -> Array:
        """``-F(v) - log_z``, ``[B]`` nats (normalized once ``log_z`` holds ``log Z``)."""
        return -self.free_energy_flat(self.visible_input(v, "log_prob")) - self.log_z[...]

    # -- Gibbs ---------------------------------------------------------------------------
    def weight_operands(self):
        """``(for v W, for h W^T)``: the weights as the two conditionals' products use them,
        computed once (`jaxgen.nn.precision.prepare`: float32 ``W, W^T`` or their bfloat16
        terms). Loops over a fixed model (``sample``, Gibbs benchmarks) pass them as
        ``operands`` so the split and transpose stay out of the loop."""
        w = self.weights[...]
        return prepare(w, self.precision), prepare(w.T, self.precision)

    def sample_hidden(self, key: PRNGKey, v_flat: Array, operands=None) -> Array:
        """``h ~ p(h | v)``: ``[B, V] -> [B, H]`` float32 in {0, 1}."""
        return self.sample_hidden_from_logits(key, self.hidden_logits(v_flat, operands))

    def sample_hidden_from_logits(self, key: PRNGKey, logits: Array) -> Array:
        """``h_j ~ Bernoulli(sigmoid(logits_j))``, ``logits = hidden_logits(v)`` computed
        elsewhere (e.g. by ``free_energy_and_hidden_logits``): ``[B, H]`` float32 in {0, 1}."""
        return rng.bernoulli_from_probs(key, jax.nn.sigmoid(logits))

    def gibbs_step(self, key: PRNGKey, v_flat: Array, operands=None) -> tuple[Array, Array]:
        """One block Gibbs step of a batch: ``h ~ p(h|v)``, ``v' ~ p(v|h)``; ``[B, V]``
        (``operands``: ``weight_operands()`` computed outside a loop, optional)."""
        key_h, key_v = jax.random.split(key)
        h = self.sample_hidden(key_h, v_flat, operands)
        return self.sample_visible(key_v, h, operands), h

    def transition(self, key: PRNGKey, v: Array) -> Array:
        """One block Gibbs step of every chain: ``[B, *event_shape] -> same`` (same dtype)."""
        new, _ = self.gibbs_step(key, self.flatten(v))
        return self.unflatten(new).astype(jnp.asarray(v).dtype)

    def gibbs_kernel(self) -> SamplingAlgorithm:
        """Block Gibbs ``SamplingAlgorithm`` for ONE chain (positions ``[*event_shape]``)."""
        return block_gibbs(
            lambda k, v: self.sample_hidden(k, self.flatten(v[None]))[0],
            lambda k, h: self.unflatten(self.sample_visible(k, h[None]))[0])

    def tempered_gibbs_step(self, key: PRNGKey, v_flat: Array, temperature,
                            operands=None) -> Array:
        """One block Gibbs step of the joint at temperature ``T``,
        ``p_T(v, h) ∝ exp(-E(v, h) / T)``: ``h ~ p_T(h | v)``, ``v' ~ p_T(v | h)``
        (`sample_visible_tempered`), ``[B, V] -> [B, V]``. ``T = 1`` is `gibbs_step`."""
        if is_unit_temperature(temperature):
            return self.gibbs_step(key, v_flat, operands)[0]
        key_h, key_v = jax.random.split(key)
        h = self.sample_hidden_from_logits(key_h,
                                           self.hidden_logits(v_flat, operands) / temperature)
        return self.sample_visible_tempered(key_v, h, temperature, operands)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` draws after ``sample_steps`` block Gibbs steps from ``p(v | h=0)`` noise.

        ``temperature`` ``T`` scales the joint energy: the chains target
        ``p_T(v, h) ∝ exp(-E(v, h) / T)`` and return its visible marginal
        ``p_T(v) ∝ sum_h exp(-E(v, h) / T)``, the distribution block Gibbs can sample exactly
        (both conditionals stay factorized). For ``T != 1`` this is NOT
        ``exp(-F(v) / T)`` with the free energy ``F`` at ``T = 1``: summing out ``h`` after
        scaling gives ``softplus(x / T)`` terms where ``F / T`` has ``softplus(x) / T``.
        ``T = 1`` is the model and the default draw bit for bit.

        Raises:
          TypeError, ValueError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        key_init, key_run = jax.random.split(key)
        operands = self.weight_operands()
        v = self.sample_visible(key_init, jnp.zeros((n, self.num_hidden)), operands)

        def body(v, k):
            return self.tempered_gibbs_step(k, v, temperature, operands), None

        v, _ = jax.lax.scan(body, v, jax.random.split(key_run, self.sample_steps))
        return self.unflatten(self.output(v))


class BernoulliRBM(_RBM):
    """Bernoulli-Bernoulli RBM on binary data.

    ``precision`` (`jaxgen.nn.precision`): ``"float32"`` (default), ``"bf16x2"`` (the two
    matrix products of the model, ``v W`` and ``h W^T``, as two bfloat16 passes over
    ``W = hi + lo``: weights to a relative ``1.5e-5``, states exact; faster Gibbs sweeps on
    a CPU with bfloat16 units, slower on one without) or ``"bfloat16"`` (one pass,
    weights rounded to ``4e-3``). Gradients are float32 either way. The states must be
    binary (they are cast to bfloat16 unchecked).

    Attributes:
      weights ``[V, H]``, visible_bias ``[V]``, hidden_bias ``[H]`` (``nnx.Param``);
      log_z (``LogPartition``); event_shape; num_visible; num_hidden; sample_steps.
    """

    def __init__(self, event_shape: Sequence[int] | int, num_hidden: int, *, rngs: nnx.Rngs,
                 init_scale: float = 0.01, sample_steps: int = 1000,
                 precision: str = "float32"):
        super().__init__(event_shape, num_hidden, rngs=rngs, init_scale=init_scale,
                         sample_steps=sample_steps, precision=precision)

    def check_visible(self, v, owner: str) -> None:
        """Concrete visibles must be 0 or 1 (`jaxgen.checks.check_binary`)."""
        check_binary(v, owner)

    def hidden_logits(self, v_flat: Array, operands=None) -> Array:
        """``c + v^T W``: ``[B, V] -> [B, H]`` (``v`` binary: exact in bfloat16)."""
        w = self.weights[...] if operands is None else operands[0]
        return matmul(v_flat, w, self.precision, lhs_exact=True) + self.hidden_bias[...]

    def visible_logits(self, h: Array, operands=None) -> Array:
        """``b + W h``: ``[B, H] -> [B, V]`` (``h`` binary: exact in bfloat16)."""
        wt = self.weights[...].T if operands is None else operands[1]
        return matmul(h, wt, self.precision, lhs_exact=True) + self.visible_bias[...]

    def sample_visible(self, key: PRNGKey, h: Array, operands=None) -> Array:
        """``v ~ p(v | h)``, ``[B, H] -> [B, V]`` float32 in {0, 1}."""
        logits = self.visible_logits(h, operands)
        return rng.bernoulli_from_probs(key, jax.nn.sigmoid(logits))

    def sample_visible_tempered(self, key: PRNGKey, h: Array, temperature,
                                operands=None) -> Array:
        """``v ~ p_T(v | h)``: ``v_i ~ Bernoulli(sigmoid((b + W h)_i / T))``, ``[B, V]``."""
        logits = self.visible_logits(h, operands) / temperature
        return rng.bernoulli_from_probs(key, jax.nn.sigmoid(logits))

    def output(self, v_flat: Array) -> Array:
        return v_flat.astype(jnp.int32)

    def free_energy_and_hidden_logits(self, v_flat: Array) -> tuple[Array, Array]:
        """``(F(v) [B], c + v^T W [B, H])``: ``F = -b^T v - sum_j softplus(logits_j)``."""
        logits = self.hidden_logits(v_flat)
        # -(v b), not (-v) b: XLA would materialize the negated [B, V] array
        free = -(v_flat @ self.visible_bias[...]) - jnp.sum(jax.nn.softplus(logits), axis=-1)
        return free, logits

    def hidden_free_energy(self, h: Array) -> Array:
        """``F(h) = -c^T h - sum_i softplus(b_i + (W h)_i)`` (visible summed out): ``[B]``."""
        return -(h @ self.hidden_bias[...]) - jnp.sum(jax.nn.softplus(self.visible_logits(h)),
                                                      axis=-1)

    def exact_log_partition(self, chunk_size: int = 2 ** 12) -> Array:
        """``log Z`` enumerating the smaller layer (``min(V, H) <= 30``), the other analytic:
        ``log Z = log sum_h exp(-F(h))`` if ``H <= V``, else ``log sum_v exp(-F(v))``."""
        if self.num_hidden <= self.num_visible:
            return logsumexp_over_states(lambda h: -self.hidden_free_energy(h), self.num_hidden,
                                         chunk_size)
        return logsumexp_over_states(lambda v: -self.free_energy_flat(v), self.num_visible,
                                     chunk_size)

    # -- tempering -------------------------------------------------------------------------
    def tempered_log_marginal(self, v_flat: Array, beta: Array, base_logits=None) -> Array:
        """``log pi_beta(v)`` up to a constant in ``beta``, for the tempered joint
        ``pi_beta(v, h) ∝ exp(-beta E(v, h) + (1 - beta) a^T v)`` (``a`` = ``base_logits``
        ``[V]``, 0 by default: at ``beta = 0`` the visibles are independent
        ``Bernoulli(sigmoid(a))``, the data's base rates when ``a`` is their log-odds)::

            log pi_beta(v) = (beta b + (1 - beta) a)^T v + sum_j softplus(beta (c + v^T W)_j)

        ``[B, V] -> [B]``; at ``beta = 1`` this is ``-F(v)``."""
        visible = beta * self.visible_bias[...]
        if base_logits is not None:
            visible = visible + (1.0 - beta) * jnp.asarray(base_logits, jnp.float32)
        hidden = beta * (v_flat @ self.weights[...] + self.hidden_bias[...])
        return v_flat @ visible + jnp.sum(jax.nn.softplus(hidden), axis=-1)

    def tempered_gibbs_kernel(self, beta: Array, base_logits=None) -> SamplingAlgorithm:
        """Block Gibbs for ONE chain (positions ``[*event_shape]`` int32) leaving
        ``pi_beta`` of `tempered_log_marginal` invariant:
        ``p(h_j = 1 | v) = sigmoid(beta (c + v^T W)_j)``,
        ``p(v_i = 1 | h) = sigmoid(beta (b + W h)_i + (1 - beta) a_i)``."""
        w = self.weights[...]
        base = 0.0 if base_logits is None else jnp.asarray(base_logits, jnp.float32)

        def sample_hidden(key, v):
            logits = beta * (self.flatten(v[None])[0] @ w + self.hidden_bias[...])
            return rng.bernoulli_from_probs(key, jax.nn.sigmoid(logits))

        def sample_visible(key, h):
            # h W^T, not W h: batched over chains the logits then come out [N, V], the
            # layout of the visible states (W h gives [V, N] and a transpose per sweep)
            logits = beta * (h @ w.T + self.visible_bias[...]) + (1.0 - beta) * base
            v = rng.bernoulli_from_probs(key, jax.nn.sigmoid(logits))
            return v.reshape(self.event_shape).astype(jnp.int32)

        return block_gibbs(sample_hidden, sample_visible)

    def tempering(self, base_logits=None):
        """``(kernel_fn, tempered_logdensity_fn)`` for
        `jaxgen.mcmc.tempering.parallel_tempering` (one chain, positions
        ``[*event_shape]``)."""
        return (lambda beta: self.tempered_gibbs_kernel(beta, base_logits),
                lambda v, beta: self.tempered_log_marginal(
                    self.flatten(v[None]), beta, base_logits)[0])


class GaussianBernoulliRBM(_RBM):
    """Gaussian-Bernoulli RBM on real vectors.

    Attributes:
      weights ``[V, H]``, visible_bias ``[V]``, hidden_bias ``[H]``, log_sigma ``[V]``
      (``nnx.Param``; ``log_sigma`` is frozen at its init unless ``learn_sigma``); log_z.
    """

    def __init__(self, event_shape: Sequence[int] | int, num_hidden: int, *, rngs: nnx.Rngs,
                 init_scale: float = 0.01, sample_steps: int = 1000, learn_sigma: bool = True,
                 sigma: float = 1.0, precision: str = "float32"):
        super().__init__(event_shape, num_hidden, rngs=rngs, init_scale=init_scale,
                         sample_steps=sample_steps, precision=precision)
        init = jnp.full((self.num_visible,), math.log(sigma))
        self.log_sigma = nnx.Param(init) if learn_sigma else nnx.Variable(init)

    def sigma(self) -> Array:
        return jnp.exp(self.log_sigma[...])

    def check_visible(self, v, owner: str) -> None:
        """Concrete visibles must be finite (`jaxgen.checks.check_finite`)."""
        check_finite(v, owner)

    def hidden_logits(self, v_flat: Array, operands=None) -> Array:
        """``c + (v / sigma)^T W``: ``[B, V] -> [B, H]``."""
        w = self.weights[...] if operands is None else operands[0]
        return matmul(v_flat / self.sigma(), w, self.precision) + self.hidden_bias[...]

    def visible_mean(self, h: Array, operands=None) -> Array:
        """``E[v | h] = b + sigma * (W h)``: ``[B, H] -> [B, V]``."""
        wt = self.weights[...].T if operands is None else operands[1]
        return self.visible_bias[...] + self.sigma() * matmul(h, wt, self.precision,
                                                              lhs_exact=True)

    def sample_visible(self, key: PRNGKey, h: Array, operands=None) -> Array:
        """``v ~ N(b + sigma (W h), sigma^2)``: ``[B, H] -> [B, V]``."""
        mean = self.visible_mean(h, operands)
        return mean + self.sigma() * rng.normal(key, mean.shape)

    def sample_visible_tempered(self, key: PRNGKey, h: Array, temperature,
                                operands=None) -> Array:
        """``v ~ p_T(v | h) = N(b + sigma (W h), T sigma^2)``: the Gaussian energy
        ``(v - b)^2 / (2 sigma^2) - (v / sigma)^T W h`` over ``T`` keeps its mean and scales
        its variance by ``T``. ``[B, H] -> [B, V]``."""
        mean = self.visible_mean(h, operands)
        return mean + jnp.sqrt(temperature) * self.sigma() * rng.normal(key, mean.shape)

    def output(self, v_flat: Array) -> Array:
        return v_flat

    def free_energy_and_hidden_logits(self, v_flat: Array) -> tuple[Array, Array]:
        """``(F(v) [B], logits [B, H])``: ``F = sum_i (v_i - b_i)^2/(2 sigma_i^2) -
        sum_j softplus(logits_j)``, ``logits = c + (v/sigma)^T W``."""
        quad = 0.5 * jnp.sum(((v_flat - self.visible_bias[...]) / self.sigma()) ** 2, axis=-1)
        logits = self.hidden_logits(v_flat)
        return quad - jnp.sum(jax.nn.softplus(logits), axis=-1), logits

    def hidden_free_energy(self, h: Array) -> Array:
        """``-log int exp(-E(v, h)) dv = -c^T h - (b/sigma)^T a - |a|^2/2 - sum_i log(sqrt(2 pi)
        sigma_i)`` with ``a = W h``: ``[B, H] -> [B]``."""
        a = h @ self.weights[...].T  # [B, V]
        log_norm = jnp.sum(0.5 * math.log(2 * math.pi) + self.log_sigma[...])
        return -(h @ self.hidden_bias[...] + a @ (self.visible_bias[...] / self.sigma())
                 + 0.5 * jnp.sum(a ** 2, axis=-1) + log_norm)

    def exact_log_partition(self, chunk_size: int = 2 ** 12) -> Array:
        """``log Z = log sum_h exp(-F(h))``, the visible layer integrated in closed form
        (``H <= 30``)."""
        return logsumexp_over_states(lambda h: -self.hidden_free_energy(h), self.num_hidden,
                                     chunk_size)


__all__ = ["BernoulliRBM", "GaussianBernoulliRBM"]
