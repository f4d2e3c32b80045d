"""The context of a conditional model: checks and a learned projection.

Conditional models take one optional argument, ``context``: ``[B]`` int class labels in
``[0, num_classes)`` or ``[B, F]`` float vectors (``context_features = F``).
`check_context` validates it eagerly (shape, dtype, range; traced values skip the range
check) and supplies the sampling default, class ``i mod num_classes`` for sample ``i``
(class-balanced grids); `ContextProjection` maps it to ``[B, out_features]``: a learned
table row ``E[y]`` for labels, a linear map ``W c`` for vectors.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import check_count, check_finite, concrete_min_max
from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


def check_context(context, n: int, num_classes: int | None, context_features: int | None,
                  who: str, *, for_sampling: bool = False):
    """``context`` checked for a batch of ``n`` (labels as int32, vectors as float32).

    Args:
      context: ``None``, ``[n]`` int labels (or one int, broadcast), or ``[n, F]`` vectors.
      n: batch size.
      num_classes: classes of a class-conditional model, else ``None``.
      context_features: ``F`` of a vector-conditional model, else ``None``.
      who: names the model in error messages.
      for_sampling: ``context=None`` on a class-conditional model gives the labels
        ``arange(n) % num_classes`` instead of an error.

    Returns:
      ``None`` for an unconditional model, else the checked context.

    Raises:
      ValueError / TypeError: a context for an unconditional model, none for a conditional
        model's ``log_prob``, or the wrong shape, dtype or range.
    """
    if num_classes is None and context_features is None:
        if context is not None:
            raise ValueError(f"{who} is unconditional: pass context=None (build it with "
                             "num_classes or context_features to condition on one)")
        return None
    if context is None:
        if for_sampling and num_classes is not None:
            return jnp.arange(n, dtype=jnp.int32) % num_classes
        want = (f"[{n}] int labels in [0, {num_classes})" if num_classes is not None
                else f"[{n}, {context_features}] float vectors")
        raise ValueError(f"{who} is conditional: pass context ({want})")
    if num_classes is not None:
        if isinstance(context, (int, np.integer)) and not isinstance(context, bool):
            context = jnp.full((n,), int(context), jnp.int32)
        dtype = jnp.result_type(context)
        if dtype == jnp.bool_ or not jnp.issubdtype(dtype, jnp.integer):
            raise TypeError(f"{who}: class labels must be integers, got dtype {dtype}")
        if jnp.shape(context) != (n,):
            raise ValueError(f"{who}: expected [{n}] class labels (one per example), got "
                             f"shape {jnp.shape(context)}")
        bounds = concrete_min_max(context)  # None for a tracer (or nothing to check)
        if bounds is not None:
            lo, hi = bounds
            if lo < 0 or hi >= num_classes:
                raise ValueError(f"{who}: class labels must lie in [0, {num_classes}), "
                                 f"found min {lo} and max {hi}")
        return jnp.asarray(context, jnp.int32)
    if jnp.shape(context) != (n, context_features):
        raise ValueError(f"{who}: expected a context of shape [{n}, {context_features}], "
                         f"got {jnp.shape(context)}")
    check_finite(context, f"{who}: context")
    return jnp.asarray(context, jnp.float32)


class ContextProjection(nnx.Module):
    """``context -> [B, out_features]``: ``E[y]`` (a ``[num_classes, out]`` table) for
    labels, ``W c`` (``[F, out]``, no bias) for vectors.

    Args:
      out_features: width of the projection.
      num_classes: class-conditional (labels), or ``None``.
      context_features: ``F`` of a vector context (used when ``num_classes`` is None).
      scale: standard deviation of the initial table / weights (small: a new conditional
        model starts close to its unconditional self).
      rngs: parameter keys.
    """

    def __init__(self, out_features: int, *, num_classes: int | None = None,
                 context_features: int | None = None, scale: float = 0.01, rngs: nnx.Rngs):
        if num_classes is None and context_features is None:
            raise ValueError("ContextProjection needs num_classes or context_features")
        rows = (check_count("num_classes", num_classes) if num_classes is not None
                else check_count("context_features", context_features))
        self.is_label = num_classes is not None
        self.weight = nnx.Param(scale * jax.random.normal(rngs.params(),
                                                          (rows, int(out_features))))

    def __call__(self, context: Array) -> Array:  # [B] int or [B, F] -> [B, out]
        if self.is_label:
            return jnp.take(self.weight[...], context, axis=0)
        return mp.matmul(context, self.weight[...])


__all__ = ["ContextProjection", "check_context"]
