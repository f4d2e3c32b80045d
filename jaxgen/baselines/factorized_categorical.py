"""Factorized categorical: one independent multinomial per dimension.

``p(x) = prod_d Cat(x_d; softmax(logits_d))``. The simplest discrete baseline: its exact MLE
is counting, and its training NLL equals the sum of the per-dimension empirical entropies
(`jaxgen.metrics.factorized_empirical_entropy`).
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

# check_event_batch and check_levels stay importable from here for older callers; new code
# imports them from jaxgen.checks.
from jaxgen.checks import (check_at_least, check_count, check_event_batch, check_levels,
                           check_temperature, check_training_data, is_unit_temperature)
from jaxgen.distributions.categorical import categorical_log_prob, sample_inverse_cdf
from jaxgen.types import Array, PRNGKey


class FactorizedCategorical(nnx.Module):
    """One categorical over ``num_levels`` per dimension of ``event_shape``.

    Attributes:
      event_shape: shape of one example, e.g. ``(8, 8, 1)``.
      num_levels: ``C``, levels per dimension (data are int levels ``0 .. C-1``).
      logits: ``nnx.Param [*event_shape, C]``; zeros (uniform) at init.
    """

    def __init__(self, event_shape: Sequence[int], num_levels: int, *, rngs: nnx.Rngs):
        del rngs  # deterministic init: zero logits, the uniform distribution
        check_at_least("num_levels", num_levels, 1)
        self.event_shape = tuple(int(d) for d in event_shape)
        self.num_levels = int(num_levels)
        self.logits = nnx.Param(jnp.zeros((*self.event_shape, self.num_levels)))

    @classmethod
    def from_counts(cls, data, num_levels: int, pseudocount: float = 0.0, *,
                    rngs: nnx.Rngs | None = None) -> "FactorizedCategorical":
        """Maximum likelihood by counting (additive smoothing with ``pseudocount``).

        ``p_d(v) = (n_d(v) + a) / (N + a C)``, with ``n_d(v)`` the number of examples with
        ``x_d = v``. With ``a = 0`` unseen levels get probability 0 (logit ``-inf``): that is
        the exact MLE, but such a model gives ``-inf`` log-likelihood to new data that use
        them; ``a > 0`` (e.g. 1, Laplace) is the posterior mean under a Dirichlet(a + 1) prior.

        Args:
          data: ``[N, *event_shape]`` integer levels (numpy or jax), concrete.
          num_levels: ``C``.
          pseudocount: ``a >= 0`` added to every count.
          rngs: unused (accepted for a uniform constructor signature).
        """
        check_at_least("pseudocount", pseudocount, 0)
        data = check_training_data(data, f"{cls.__name__}.from_counts")
        check_levels(data, num_levels, f"{cls.__name__}.from_counts")
        flat = data.reshape(data.shape[0], -1).astype(np.int64)  # [N, D]
        num_dims = flat.shape[1]
        counts = np.bincount((np.arange(num_dims) * num_levels + flat).ravel(),
                             minlength=num_dims * num_levels).reshape(num_dims, num_levels)
        probs = (counts + pseudocount) / (data.shape[0] + pseudocount * num_levels)
        model = cls(data.shape[1:], num_levels, rngs=rngs or nnx.Rngs(0))
        with np.errstate(divide="ignore"):
            model.logits[...] = jnp.asarray(np.log(probs).reshape(model.logits.shape),
                                            jnp.float32)
        return model

    def probs(self) -> Array:
        """``softmax(logits)``, ``[*event_shape, C]``."""
        return jax.nn.softmax(self.logits[...], axis=-1)

    def log_prob(self, x: Array) -> Array:
        """``sum_d log p_d(x_d)``: ``[B, *event_shape]`` int levels -> ``[B]`` nats.

        An empty batch ``[0, *event_shape]`` gives an empty ``[0]`` float array.

        Raises ValueError on a shape mismatch or (concrete ``x``) out-of-range levels, and
        TypeError on non-integer dtypes (floats are rejected even when integral: cast them).
        """
        x = check_event_batch(x, self.event_shape, type(self).__name__)
        check_levels(x, self.num_levels, type(self).__name__)
        log_probs = categorical_log_prob(self.logits[...], x.astype(jnp.int32))  # [B, *E]
        # explicit D, not -1: reshaping a size-0 array with -1 divides by zero
        return jnp.sum(log_probs.reshape(x.shape[0], math.prod(self.event_shape)), axis=-1)

    def tempered_probs(self, temperature=1.0) -> Array:
        """``p_T(v) = p(v)^{1/T} / sum_u p(u)^{1/T} = softmax(log p / T)`` per dimension,
        ``[*event_shape, C]`` (`probs` itself at ``T = 1``). ``T < 1`` sharpens towards each
        dimension's mode, ``T > 1`` flattens towards uniform; zero-probability levels stay
        at zero. The same rule as the autoregressive heads' tempered steps."""
        if is_unit_temperature(temperature):
            return self.probs()
        log_probs = jax.nn.log_softmax(self.logits[...], axis=-1)
        return jax.nn.softmax(log_probs / temperature, axis=-1)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``n`` draws by inverse-CDF sampling from `tempered_probs`, ``[n, *event_shape]``
        int32 (``T = 1``, the default, is the model, bit for bit).

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1`` (`check_count`);
            ``temperature`` not a finite number ``> 0``.
        """
        n = check_count("n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        return sample_inverse_cdf(key, self.tempered_probs(temperature),
                                  (n, *self.event_shape))

__all__ = ["FactorizedCategorical"]
