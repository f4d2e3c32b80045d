"""Diagonal Gaussian: ``p(x) = prod_d N(x_d; mean_d, exp(log_std_d)^2)``."""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import (check_count, check_event_batch, check_finite, check_floating_dtype,
                           check_temperature, check_training_data, is_unit_temperature)
from jaxgen.distributions.gaussian import gaussian_log_prob, sample_gaussian
from jaxgen.types import Array, PRNGKey


class DiagonalGaussian(nnx.Module):
    """Gaussian with a diagonal covariance over continuous data.

    Attributes:
      event_shape: shape of one example.
      mean, log_std: ``nnx.Param [*event_shape]``; zeros (standard normal) at init.
    """

    def __init__(self, event_shape: Sequence[int], *, rngs: nnx.Rngs):
        del rngs  # deterministic init
        self.event_shape = tuple(int(d) for d in event_shape)
        self.mean = nnx.Param(jnp.zeros(self.event_shape))
        self.log_std = nnx.Param(jnp.zeros(self.event_shape))

    @classmethod
    def from_moments(cls, data, *, min_std: float = 1e-6,
                     rngs: nnx.Rngs | None = None) -> "DiagonalGaussian":
        """Maximum likelihood: ``mean = E[x]``, ``std = sqrt(E[(x - mean)^2])`` (ddof 0).

        ``min_std`` floors the std of (near-)constant dimensions, whose MLE density is
        infinite. Statistics are computed in float64.
        """
        data = check_training_data(data, f"{cls.__name__}.from_moments")
        check_finite(data, f"{cls.__name__}.from_moments")
        data = data.astype(np.float64)
        model = cls(data.shape[1:], rngs=rngs or nnx.Rngs(0))
        model.mean[...] = jnp.asarray(data.mean(axis=0), jnp.float32)
        model.log_std[...] = jnp.asarray(np.log(np.maximum(data.std(axis=0), min_std)),
                                         jnp.float32)
        return model

    def log_prob(self, x: Array) -> Array:
        """``[B, *event_shape]`` floats -> ``[B]`` log density in nats.

        Raises TypeError for non-floating data (discrete data must be dequantized first) and
        ValueError for concrete NaN/inf entries.
        """
        x = check_event_batch(x, self.event_shape, type(self).__name__)
        check_floating_dtype(x, f"{type(self).__name__}.log_prob")
        check_finite(x, f"{type(self).__name__}.log_prob")
        log_probs = gaussian_log_prob(self.mean[...], self.log_std[...], x)  # [B, *E]
        return jnp.sum(log_probs.reshape(x.shape[0], -1), axis=-1)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` draws ``mean + T exp(log_std) * eps``, ``[n, *event_shape]`` float32.

        ``temperature`` ``T`` scales the latent ``eps ~ N(0, I)`` as a flow's base draw does
        (`jaxgen.flows.distributions`; this model is the affine flow
        ``x = mean + std * z``): the draws are ``N(mean, (T std)^2)``, i.e. density
        ``∝ p(x)^{1/T^2}``. ``T = 1``, the default, is the model, bit for bit.

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        log_std = self.log_std[...]
        if not is_unit_temperature(temperature):
            log_std = log_std + jnp.log(temperature)
        return sample_gaussian(key, self.mean[...], log_std, (n, *self.event_shape))

__all__ = ["DiagonalGaussian"]
