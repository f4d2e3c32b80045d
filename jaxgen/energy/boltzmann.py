"""Fully visible Boltzmann machine on binary vectors (a quadratic energy).

``E(x) = -1/2 x^T J x - b^T x``, ``x in {0,1}^D``, with ``J = (W + W^T)/2`` and zero diagonal,
``p(x) = exp(-E(x)) / Z``. The full conditionals are logistic:
``p(x_i = 1 | x_-i) = sigmoid(sum_j J_ij x_j + b_i)``, which is what site-by-site Gibbs uses.
For small ``D`` (<= 30) ``Z`` is computed exactly by enumeration.

``energy`` and ``log_prob`` check the shape always and, on concrete inputs, that every
value is 0 or 1 (`jaxgen.checks.check_binary`: the quadratic energy is finite for any real
``x``); under ``jit`` the values are not checked and a non-binary ``x`` gives a finite,
meaningless number. ``sample(key, n)`` needs an integer ``n >= 1``.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import check_binary, check_count, check_temperature, is_unit_temperature
from jaxgen.energy.partition import LogPartition, logsumexp_over_states
from jaxgen.mcmc.gibbs import binary_gibbs
from jaxgen.mcmc.run import run_kernel
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


def _flat_binary(x: Array, event_shape: tuple, owner: str) -> Array:
    """``[B, *event_shape] -> [B, D]`` float32, checking the shape and (when concrete) that
    the values are 0 or 1; ``owner`` (``Model.method``) is named in the messages."""
    x_arr = jnp.asarray(x)
    if tuple(x_arr.shape[1:]) != tuple(event_shape) or x_arr.ndim != len(event_shape) + 1:
        raise ValueError(f"{owner} expects [B, {', '.join(map(str, event_shape))}], "
                         f"got shape {x_arr.shape}")
    check_binary(x, owner)
    return x_arr.reshape(x_arr.shape[0], -1).astype(jnp.float32)  # [B, D]


class FullyVisibleBM(nnx.Module):
    """Fully visible Boltzmann machine.

    Attributes:
      event_shape: shape of one example (``D = prod(event_shape)`` units).
      weights: ``nnx.Param [D, D]``; the coupling is its symmetric, zero-diagonal part.
      bias: ``nnx.Param [D]``.
      log_z: ``LogPartition`` scalar used by ``log_prob`` (0 until set, e.g. by
        ``exact_log_partition``).
      sample_sweeps: Gibbs sweeps (from uniform noise) used by ``sample``.
    """

    def __init__(self, event_shape: Sequence[int] | int, *, rngs: nnx.Rngs,
                 init_scale: float = 0.01, sample_sweeps: int = 200):
        self.event_shape = ((int(event_shape),) if isinstance(event_shape, int)
                            else tuple(int(d) for d in event_shape))
        d = 1
        for s in self.event_shape:
            d *= s
        self.num_units = d
        self.weights = nnx.Param(init_scale * jax.random.normal(rngs.params(), (d, d)))
        self.bias = nnx.Param(jnp.zeros((d,)))
        self.log_z = LogPartition(jnp.zeros(()))
        self.sample_sweeps = int(sample_sweeps)

    def coupling(self) -> Array:
        """``J = (W + W^T)/2`` with zero diagonal, ``[D, D]``."""
        w = self.weights[...]
        j = 0.5 * (w + w.T)
        return j * (1.0 - jnp.eye(self.num_units, dtype=j.dtype))

    def _energy_flat(self, x: Array) -> Array:  # [B, D] -> [B]
        return -0.5 * jnp.einsum("bi,ij,bj->b", x, self.coupling(), x) - x @ self.bias[...]

    def energy(self, x: Array) -> Array:
        """``E(x) = -1/2 x^T J x - b^T x``: ``[B, *event_shape] -> [B]`` (``x`` binary)."""
        return self._energy_flat(_flat_binary(x, self.event_shape,
                                              f"{type(self).__name__}.energy"))

    def log_prob(self, x: Array) -> Array:
        """``-E(x) - log_z``, ``[B]`` (normalized once ``log_z`` holds ``log Z``)."""
        x_flat = _flat_binary(x, self.event_shape, f"{type(self).__name__}.log_prob")
        return -self._energy_flat(x_flat) - self.log_z[...]

    def conditional_logit(self, x_flat: Array, i: Array) -> Array:
        """Log-odds of ``x_i = 1`` given the rest: ``sum_j J_ij x_j + b_i`` (``x_flat [D]``)."""
        return self.coupling()[i] @ x_flat + self.bias[...][i]

    def exact_log_partition(self, chunk_size: int = 2 ** 14) -> Array:
        """``log Z = log sum_x exp(-E(x))`` by enumerating ``2^D`` states (``D <= 30``)."""
        return logsumexp_over_states(lambda s: -self._energy_flat(s), self.num_units, chunk_size)

    def gibbs_kernel(self, temperature=1.0) -> SamplingAlgorithm:
        """Site-by-site Gibbs for one chain (positions ``[*event_shape]``) leaving
        ``p_T(x) ∝ exp(-E(x) / T)`` invariant: the log-odds of site ``i`` is
        ``(sum_j J_ij x_j + b_i) / T``."""
        coupling, bias = self.coupling(), self.bias[...]
        if is_unit_temperature(temperature):
            return binary_gibbs(conditional_logit_fn=lambda x, i: coupling[i] @ x + bias[i])
        return binary_gibbs(
            conditional_logit_fn=lambda x, i: (coupling[i] @ x + bias[i]) / temperature)

    def transition(self, key: PRNGKey, x: Array) -> Array:
        """One Gibbs sweep of every chain in a batch: ``[B, *event_shape] -> same``."""
        kernel = self.gibbs_kernel()
        keys = jax.random.split(key, x.shape[0])
        step = lambda k, xi: kernel.step(k, kernel.init(xi))[0].position
        return jax.vmap(step)(keys, x)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` draws: ``sample_sweeps`` Gibbs sweeps from uniform noise, ``[n, *E]`` int32,
        targeting ``p_T(x) ∝ exp(-E(x) / T)`` (``T < 1`` concentrates on low energies,
        ``T = 1`` is the model and the default draw bit for bit).

        Raises:
          TypeError, ValueError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        key_init, key_run = jax.random.split(key)
        x0 = jax.random.bernoulli(key_init, 0.5, (n, *self.event_shape)).astype(jnp.int32)
        kernel = self.gibbs_kernel(temperature)
        keys = jax.random.split(key_run, n)
        run = lambda k, xi: run_kernel(k, kernel, kernel.init(xi), self.sample_sweeps)[0]
        return jax.vmap(run)(keys, x0).position


__all__ = ["FullyVisibleBM"]
