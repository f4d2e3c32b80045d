"""Sigmoid bijector ``R -> (0, 1)``, optionally squeezed into ``(alpha, 1 - alpha)``."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxgen.flows.base import Bijector, sum_except_batch


class Sigmoid(Bijector):
    """``y = (sigmoid(x) - alpha) / (1 - 2 alpha)``, the inverse of `Logit`.

    Elementwise ``dy/dx = sigmoid(x) (1 - sigmoid(x)) / (1 - 2 alpha)``, so

        ``log|det J| = -sum[softplus(x) + softplus(-x) + log(1 - 2 alpha)]``

    (``log sigmoid(x) = -softplus(-x)``, ``log(1 - sigmoid(x)) = -softplus(x)``). With
    ``alpha > 0`` the map is onto ``(-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha))``,
    which covers ``[0, 1]``: the generative end of a flow on dequantized data.

    Args:
      alpha: in ``[0, 0.5)``.
    """

    def __init__(self, alpha: float = 0.0):
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def forward_and_log_det(self, x):  # [B, *event]
        a = self.alpha
        y = (jax.nn.sigmoid(x) - a) / (1 - 2 * a)
        log_det = -(jax.nn.softplus(x) + jax.nn.softplus(-x) + jnp.log1p(-2 * a))
        return y, sum_except_batch(log_det)

    def inverse_and_log_det(self, y):
        a = self.alpha
        p = a + (1 - 2 * a) * y
        x = jnp.log(p) - jnp.log1p(-p)
        log_det = jnp.log1p(-2 * a) - jnp.log(p) - jnp.log1p(-p)
        return x, sum_except_batch(log_det)


__all__ = ["Sigmoid"]
