"""Rational-quadratic spline coupling (neural spline flows, Durkan et al., 2019)."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, sum_except_batch
from jaxgen.flows.coupling_utils import combine, conditioner_params
from jaxgen.flows.masks import MASK_KINDS


def _knots(raw, bound: float, min_size: float):
    """``raw [..., K]`` -> knot positions ``[..., K + 1]`` from ``-bound`` to ``bound`` and
    bin sizes ``[..., K]`` (softmax, each at least ``min_size`` of the interval)."""
    k = raw.shape[-1]
    sizes = min_size + (1 - min_size * k) * jax.nn.softmax(raw, axis=-1)
    knots = jnp.concatenate([jnp.zeros(raw.shape[:-1] + (1,)), jnp.cumsum(sizes, -1)], -1)
    knots = 2 * bound * knots - bound
    knots = knots.at[..., 0].set(-bound).at[..., -1].set(bound)
    return knots, knots[..., 1:] - knots[..., :-1]


def rational_quadratic_spline(x, raw_widths, raw_heights, raw_derivatives, *, bound: float,
                              inverse: bool = False, min_bin_width: float = 1e-3,
                              min_bin_height: float = 1e-3, min_derivative: float = 1e-3):
    """Monotone rational-quadratic spline on ``[-bound, bound]``, identity outside.

    ``K`` bins with knots ``(x_k, y_k)`` and derivatives ``d_k`` (``d_0 = d_K = 1`` so the
    linear tails join smoothly). In bin ``k`` with ``xi = (x - x_k) / w_k``,
    ``s_k = h_k / w_k``:

        ``y = y_k + h_k [s_k xi^2 + d_k xi (1 - xi)] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]``
        ``dy/dx = s_k^2 [d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2]
                  / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]^2``.

    The inverse solves the quadratic ``a xi^2 + b xi + c = 0`` by the stable root
    ``xi = 2c / (-b - sqrt(b^2 - 4ac))``. Zero raw parameters give the identity
    (equal bins, unit derivatives).

    Args:
      x: ``[...]`` inputs.
      raw_widths, raw_heights: ``[..., K]`` unnormalized bin sizes.
      raw_derivatives: ``[..., K - 1]`` unconstrained interior derivatives.
      bound: half-width of the spline's interval.
      inverse: evaluate the inverse map.

    Returns:
      ``(y [...], log|dy/dx| [...])`` elementwise (for ``inverse``, ``log|dx/dy|``).
    """
    inside = (x > -bound) & (x < bound)
    xc = jnp.clip(x, -bound, bound)
    knots_x, widths = _knots(raw_widths, bound, min_bin_width)
    knots_y, heights = _knots(raw_heights, bound, min_bin_height)
    # softplus(raw + c) with min_d + softplus(c) = 1, so raw = 0 means derivative 1.
    offset = math.log(math.expm1(1 - min_derivative))
    inner_d = min_derivative + jax.nn.softplus(raw_derivatives + offset)
    ones = jnp.ones(inner_d.shape[:-1] + (1,))
    derivs = jnp.concatenate([ones, inner_d, ones], -1)  # [..., K + 1]

    knots_in = knots_y if inverse else knots_x
    idx = jnp.sum(xc[..., None] >= knots_in[..., 1:-1], axis=-1)[..., None]  # [..., 1]
    take = lambda a: jnp.take_along_axis(a, idx, axis=-1)[..., 0]
    x_k, w_k, y_k, h_k = take(knots_x), take(widths), take(knots_y), take(heights)
    d_k, d_k1 = take(derivs[..., :-1]), take(derivs[..., 1:])
    s_k = h_k / w_k
    curv = d_k1 + d_k - 2 * s_k

    if inverse:
        dy = xc - y_k
        a = h_k * (s_k - d_k) + dy * curv
        b = h_k * d_k - dy * curv
        c = -s_k * dy
        disc = jnp.maximum(b * b - 4 * a * c, 0.0)
        xi = jnp.clip(2 * c / (-b - jnp.sqrt(disc)), 0.0, 1.0)
        out = xi * w_k + x_k
    else:
        xi = (xc - x_k) / w_k
        out = y_k + h_k * (s_k * xi ** 2 + d_k * xi * (1 - xi)) / (s_k + curv * xi * (1 - xi))
    one_minus = 1 - xi
    denom = s_k + curv * xi * one_minus
    log_deriv = (2 * jnp.log(s_k) + jnp.log(d_k1 * xi ** 2 + 2 * s_k * xi * one_minus
                                             + d_k * one_minus ** 2) - 2 * jnp.log(denom))
    if inverse:
        log_deriv = -log_deriv
    return jnp.where(inside, out, x), jnp.where(inside, log_deriv, 0.0)


class SplineCoupling(Bijector):
    """Coupling whose transformed entries go through a rational-quadratic spline:

        ``y_a = x_a``,  ``y_b = RQS(x_b; theta(x_a))``,  ``log|det J| = sum_b log RQS'(x_b)``

    with ``K`` bins on ``[-bound, bound]`` and the identity outside (linear tails).

    Args:
      conditioner: module ``[B, *event[:-1], C_in] -> [B, *event[:-1], C_out (3K - 1)]`` (per
        transformed entry: K widths, K heights, K - 1 derivatives; split kinds see only the
        conditioning slice, masked kinds ``m * x``, see
        `jaxgen.flows.coupling_utils.conditioner_features`); zero-initialized last layer =>
        identity.
      num_bins: ``K``.
      bound: the spline's interval half-width.
      mask_kind: one of ``jaxgen.flows.masks.MASK_KINDS``.
      parity: 0 or 1 (flips the mask).
    """

    def __init__(self, conditioner: nnx.Module, num_bins: int = 8, bound: float = 3.0,
                 mask_kind: str = "half", parity: int = 0):
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {mask_kind!r}; valid kinds: {MASK_KINDS}")
        if num_bins < 2:
            raise ValueError(f"num_bins must be >= 2, got {num_bins}")
        self.conditioner, self.mask_kind, self.parity = conditioner, mask_kind, int(parity)
        self.num_bins, self.bound = int(num_bins), float(bound)

    @staticmethod
    def params_per_entry(num_bins: int) -> int:
        return 3 * num_bins - 1

    takes_context = True

    def _apply(self, x, inverse: bool, context=None):
        k = self.num_bins
        x_cond, x_trans, params, trans_mask = conditioner_params(
            self.conditioner, self.mask_kind, x, self.parity, 3 * k - 1, context=context)
        y, log_deriv = rational_quadratic_spline(
            x_trans, params[..., :k], params[..., k:2 * k], params[..., 2 * k:],
            bound=self.bound, inverse=inverse)
        if trans_mask is not None:  # masked kinds: conditioning entries pass unchanged
            keep = trans_mask == 0
            y, log_deriv = jnp.where(keep, x_trans, y), jnp.where(keep, 0.0, log_deriv)
        return combine(self.mask_kind, x_cond, y, self.parity), sum_except_batch(log_deriv)

    def forward_and_log_det(self, x, context=None):  # [B, *event]; context [B, F]
        return self._apply(x, inverse=False, context=context)

    def inverse_and_log_det(self, y, context=None):
        return self._apply(y, inverse=True, context=context)


__all__ = ["SplineCoupling", "rational_quadratic_spline"]
