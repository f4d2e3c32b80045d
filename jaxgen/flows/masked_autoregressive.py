"""Masked autoregressive bijectors (MAF, Papamakarios et al. 2017; IAF, Kingma et al. 2016).

A MADE conditioner (masked MLP, `jaxgen.nn.masks.made_masks`) gives every dimension ``i``
parameters ``theta_i(x_{<i})`` that depend only on the dimensions before it in an ordering.
In the normalizing direction (data ``x`` -> latent ``z``, as every flow here is written)

    affine:  ``z_i = (x_i - mu_i) * exp(-s_i)``,   ``log|det dz/dx| = -sum_i s_i``;
    spline:  ``z_i = RQS(x_i; theta_i)``,           ``log|det| = sum_i log RQS'(x_i)``,

with ``(mu_i, s_i) = theta_i(x_{<i})`` (``s = a tanh(r)``, ``a`` learned per dimension,
starting at 1, as RealNVP bounds its scales). The Jacobian is triangular, so the
log-determinant is a sum of the diagonal.

* ``forward_and_log_det(x)`` (density direction) is **one pass**: all ``theta_i`` come from
  the known ``x``.
* ``inverse_and_log_det(z)`` is **sequential**: ``x_i`` needs ``x_{<i}``. It runs as one
  ``lax.scan`` of ``D`` conditioner passes, the fixed-point iteration
  ``x <- T^{-1}(z; theta(x))`` from ``x = 0``: after ``t`` passes the first ``t`` dimensions
  of the ordering are exact (dimension ``o_t`` reads only ``x_{o_{<t}}``), so ``D`` passes
  give the exact inverse.

MAF puts this layer in the normalizing chain: density in one pass, sampling sequential.
IAF puts ``Inverse`` of it there: sampling in one pass, density sequential.

Conditional (``num_classes`` / ``context_features``): the context is projected onto the
first hidden layer's units (`jaxgen.nn.context.ContextProjection`) and the output units;
it is not an input dimension, so the triangular structure holds for every context.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import check_count
from jaxgen.flows.base import Bijector
from jaxgen.flows.spline_coupling import rational_quadratic_spline
from jaxgen.nn.context import ContextProjection
from jaxgen.nn.masked_dense import MaskedDense
from jaxgen.nn.masks import Mask, made_degrees, made_masks
from jaxgen.types import Array

TRANSFORMS = ("affine", "spline")


class MaskedAutoregressive(Bijector):
    """An autoregressive transform of vectors ``[B, D]`` over a MADE conditioner.

    Args:
      num_dims: ``D``.
      hidden_sizes: the conditioner's hidden layers.
      transform: ``"affine"`` or ``"spline"`` (rational-quadratic, ``num_bins`` bins on
        ``[-bound, bound]``, identity outside).
      ordering: ``"natural"``, ``"reversed"`` or a permutation of ``range(D)`` (stacked
        layers usually alternate, so every dimension conditions on every other one).
      num_bins, bound: the spline.
      num_classes, context_features: a conditional transform (module docstring).
      rngs: parameter keys. The output layer starts at zero: a new layer is the identity.
    """

    takes_context = True

    def __init__(self, num_dims: int, hidden_sizes: Sequence[int] = (64, 64), *,
                 transform: str = "affine", ordering="natural", num_bins: int = 8,
                 bound: float = 4.0, num_classes: int | None = None,
                 context_features: int | None = None, rngs: nnx.Rngs):
        if transform not in TRANSFORMS:
            raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
        d = check_count("num_dims", num_dims)
        if d < 2:
            raise ValueError(f"a masked autoregressive transform needs num_dims >= 2, got {d}")
        hidden_sizes = tuple(check_count(f"hidden_sizes[{i}]", h)
                             for i, h in enumerate(hidden_sizes))
        if not hidden_sizes:
            raise ValueError("hidden_sizes must hold at least one layer")
        if isinstance(ordering, str):
            if ordering not in ("natural", "reversed"):
                raise ValueError(f"ordering must be 'natural', 'reversed' or a permutation, "
                                 f"got {ordering!r}")
            order = np.arange(d) if ordering == "natural" else np.arange(d)[::-1]
        else:
            order = np.asarray(ordering)
            if sorted(order.tolist()) != list(range(d)):
                raise ValueError(f"ordering must be a permutation of range({d}), got {order}")
        self.num_dims, self.transform = d, transform
        self.num_bins, self.bound = int(num_bins), float(bound)
        if transform == "spline" and self.num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        p = 2 if transform == "affine" else 3 * self.num_bins - 1
        self.num_params = p
        degrees = made_degrees(order, hidden_sizes, None)
        out_degrees = np.tile(degrees[0], p)  # [P * D]: parameter j of dim i at j * D + i
        masks = made_masks(degrees[0], degrees[1:], out_degrees)
        self.ordering = Mask(jnp.asarray(order, jnp.int32))
        self.layers = nnx.List([MaskedDense(m, rngs=rngs) for m in masks[:-1]])
        self.out = MaskedDense(masks[-1], zero_init=True, rngs=rngs)
        if transform == "affine":
            self.scale = nnx.Param(jnp.ones((d,), jnp.float32))
        proj_h = proj_o = None
        if num_classes is not None or context_features is not None:
            ctx = dict(num_classes=num_classes,
                       context_features=None if num_classes is not None else context_features,
                       rngs=rngs)
            proj_h = ContextProjection(hidden_sizes[0], **ctx)
            proj_o = ContextProjection(p * d, **ctx)
        self.context_hidden, self.context_out = nnx.data(proj_h), nnx.data(proj_o)

    def _params(self, x: Array, context=None) -> Array:
        """``[B, D]`` -> ``[B, D, P]``: ``theta_i(x_{<i})`` for every ``i``."""
        h = x
        for i, layer in enumerate(self.layers):
            pre = layer(h)
            if i == 0 and context is not None and self.context_hidden is not None:
                pre = pre + self.context_hidden(context)
            h = jax.nn.relu(pre)
        out = self.out(h)  # [B, P * D]
        if context is not None and self.context_out is not None:
            out = out + self.context_out(context)
        return jnp.swapaxes(out.reshape(x.shape[0], self.num_params, self.num_dims), 1, 2)

    def _transform(self, x: Array, params: Array, inverse: bool) -> tuple[Array, Array]:
        """Elementwise ``z = T(x; theta)`` (or ``T^{-1}``) and its log-derivative ``[B, D]``."""
        if self.transform == "affine":
            mu, raw = params[..., 0], params[..., 1]
            s = self.scale[...] * jnp.tanh(raw)
            if inverse:
                return x * jnp.exp(s) + mu, s
            return (x - mu) * jnp.exp(-s), -s
        k = self.num_bins
        return rational_quadratic_spline(x, params[..., :k], params[..., k:2 * k],
                                         params[..., 2 * k:], bound=self.bound,
                                         inverse=inverse)

    def _check(self, x, context):
        if x.ndim != 2 or x.shape[1] != self.num_dims:
            raise ValueError(f"MaskedAutoregressive expects [B, {self.num_dims}], got shape "
                             f"{x.shape}")
        if (context is not None) and self.context_hidden is None:
            raise ValueError("this MaskedAutoregressive layer is unconditional: pass "
                             "context=None")

    def forward_and_log_det(self, x, context=None):
        """Density direction, one pass: ``z = T(x; theta(x))``, ``log|det dz/dx|``."""
        self._check(x, context)
        z, log_d = self._transform(x, self._params(x, context), inverse=False)
        return z, jnp.sum(log_d, axis=-1)

    def inverse_and_log_det(self, z, context=None):
        """Sampling direction, sequential: ``D`` passes in one ``lax.scan`` (module
        docstring); returns ``x`` and ``log|det dx/dz|``."""
        self._check(z, context)

        def step(x, _):
            x_new, _ = self._transform(z, self._params(x, context), inverse=True)
            return x_new, None

        # D - 1 passes make the first D - 1 dimensions of the ordering exact; the last pass
        # (outside the scan) makes the last one exact and gives the log-determinant, whose
        # theta_i read only those exact x_{<i}.
        x, _ = jax.lax.scan(step, jnp.zeros_like(z), None, length=self.num_dims - 1)
        x, log_d = self._transform(z, self._params(x, context), inverse=True)
        return x, jnp.sum(log_d, axis=-1)


__all__ = ["MaskedAutoregressive", "TRANSFORMS"]
