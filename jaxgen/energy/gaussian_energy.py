"""A Gaussian energy with closed-form ``log Z``: the reference model for estimators.

``E(x) = 1/2 ||L^T (x - mu)||^2`` with ``L`` lower triangular with positive diagonal
(``exp`` of a free diagonal), precision ``P = L L^T``, covariance ``P^-1``::

    log Z = (D / 2) log(2 pi) - sum_i log L_ii

It also carries ``learned_log_z``, an ``nnx.Param`` scalar that noise-contrastive
estimation fits (`jaxgen.energy.estimators.nce_loss`); its distance to the closed form
above is how well NCE learned the normalizer.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import check_count, check_finite, check_temperature, is_unit_temperature
from jaxgen.energy.partition import LogPartition
from jaxgen.types import Array, PRNGKey


class GaussianEnergy(nnx.Module):
    """``exp(-E(x))`` a Gaussian on vectors ``[D]``.

    Attributes:
      mean ``[D]``; tril ``[D, D]`` (strict lower part used), log_diag ``[D]``;
      learned_log_z ``[]`` (``nnx.Param``); log_z (``LogPartition``, used by ``log_prob``).
    """

    def __init__(self, event_shape: Sequence[int] | int, *, rngs: nnx.Rngs):
        shape = (int(event_shape),) if isinstance(event_shape, int) else tuple(event_shape)
        if len(shape) != 1:
            raise ValueError(f"GaussianEnergy models vectors [D], got event_shape {shape}")
        self.event_shape = shape
        d = shape[0]
        del rngs
        self.mean = nnx.Param(jnp.zeros((d,)))
        self.tril = nnx.Param(jnp.zeros((d, d)))
        self.log_diag = nnx.Param(jnp.zeros((d,)))
        self.learned_log_z = nnx.Param(jnp.zeros(()))
        self.log_z = LogPartition(jnp.zeros(()))

    def cholesky(self) -> Array:
        """``L`` ``[D, D]``: strict lower part of ``tril`` plus ``diag(exp(log_diag))``."""
        return jnp.tril(self.tril[...], -1) + jnp.diag(jnp.exp(self.log_diag[...]))

    def precision(self) -> Array:
        chol = self.cholesky()
        return chol @ chol.T

    def covariance(self) -> Array:
        return jnp.linalg.inv(self.precision())

    def energy(self, x: Array) -> Array:
        """``[B, D] -> [B]``."""
        check_finite(x, "GaussianEnergy.energy")
        x = jnp.asarray(x, jnp.float32)
        if x.ndim != 2 or x.shape[1:] != self.event_shape:
            raise ValueError(f"GaussianEnergy.energy expects [B, {self.event_shape[0]}], got "
                             f"shape {x.shape}")
        z = (x - self.mean[...]) @ self.cholesky()  # [B, D]: L^T (x - mu) per row
        return 0.5 * jnp.sum(z ** 2, axis=-1)

    def log_prob(self, x: Array) -> Array:
        return -self.energy(x) - self.log_z[...]

    def exact_log_partition(self) -> Array:
        return 0.5 * self.event_shape[0] * math.log(2 * math.pi) - jnp.sum(self.log_diag[...])

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``mu + sqrt(T) L^-T z``, ``z ~ N(0, I)``: ``[n, D]``, exact draws from
        ``exp(-E(x) / T)``, the Gaussian with covariance ``T (L L^T)^{-1}``.

        Raises:
          TypeError, ValueError: ``n`` not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count("GaussianEnergy.sample: n", n)
        temperature = check_temperature("GaussianEnergy.sample", temperature)
        z = jax.random.normal(key, (n, self.event_shape[0]))
        if not is_unit_temperature(temperature):
            z = jnp.sqrt(temperature) * z
        x = jax.scipy.linalg.solve_triangular(self.cholesky().T, z.T, lower=False).T
        return self.mean[...] + x


__all__ = ["GaussianEnergy"]
