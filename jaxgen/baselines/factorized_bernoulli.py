"""Factorized Bernoulli: one independent coin per dimension.

``p(x) = prod_d p_d^{x_d} (1 - p_d)^{1 - x_d}``, with ``p_d = sigmoid(logits_d)``.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import (check_at_least, check_count, check_event_batch, check_levels,
                           check_temperature, check_training_data, is_unit_temperature)
from jaxgen.distributions.bernoulli import bernoulli_log_prob, sample_bernoulli
from jaxgen.types import Array, PRNGKey


class FactorizedBernoulli(nnx.Module):
    """Independent Bernoulli per dimension of binary data.

    Attributes:
      event_shape: shape of one example.
      logits: ``nnx.Param [*event_shape]`` log-odds of ``x_d = 1``; zeros (p = 1/2) at init.
    """

    def __init__(self, event_shape: Sequence[int], *, rngs: nnx.Rngs):
        del rngs  # deterministic init
        self.event_shape = tuple(int(d) for d in event_shape)
        self.logits = nnx.Param(jnp.zeros(self.event_shape))

    @classmethod
    def from_counts(cls, data, pseudocount: float = 0.0, *,
                    rngs: nnx.Rngs | None = None) -> "FactorizedBernoulli":
        """Maximum likelihood: ``p_d = (n_d + a) / (N + 2a)``, ``n_d = #{x_d = 1}``.

        With ``a = 0`` a dimension that is constant in ``data`` gets logit ``+-inf``.
        """
        check_at_least("pseudocount", pseudocount, 0)
        data = check_training_data(data, f"{cls.__name__}.from_counts")
        check_levels(data, 2, f"{cls.__name__}.from_counts")
        p = (data.sum(axis=0) + pseudocount) / (data.shape[0] + 2 * pseudocount)
        model = cls(data.shape[1:], rngs=rngs or nnx.Rngs(0))
        with np.errstate(divide="ignore"):
            model.logits[...] = jnp.asarray(np.log(p) - np.log1p(-p), jnp.float32)
        return model

    def probs(self) -> Array:
        """``p(x_d = 1) = sigmoid(logits)``, ``[*event_shape]``."""
        return jax.nn.sigmoid(self.logits[...])

    def log_prob(self, x: Array) -> Array:
        """``[B, *event_shape]`` values in {0, 1} (bool or integer) -> ``[B]`` nats."""
        x = check_event_batch(x, self.event_shape, type(self).__name__)
        check_levels(x, 2, type(self).__name__)
        log_probs = bernoulli_log_prob(self.logits[...], x)  # [B, *E]
        return jnp.sum(log_probs.reshape(x.shape[0], -1), axis=-1)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` draws, ``[n, *event_shape]`` int32 in {0, 1}, at temperature ``T``:
        ``p_T(1) = p^{1/T} / (p^{1/T} + (1 - p)^{1/T}) = sigmoid(logits / T)`` per dimension
        (the categorical rule ``softmax(log p / T)`` on two levels; ``T = 1``, the default,
        is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        logits = self.logits[...]
        if not is_unit_temperature(temperature):
            logits = logits / temperature
        return sample_bernoulli(key, logits, (n, *self.event_shape))

__all__ = ["FactorizedBernoulli"]
