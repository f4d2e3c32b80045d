"""Matrix products in reduced precision: bfloat16 passes with float32 accumulation.

XLA on CPU ignores ``jax.lax.Precision`` and ``DotAlgorithmPreset`` for float32 products: it
always multiplies in float32. CPUs with AMX or AVX512-BF16 units (Intel Sapphire Rapids and
later, recent AMD) multiply bfloat16 matrices faster than float32 ones, and on GPUs and TPUs
bfloat16 is the native fast path. `matmul` exposes that trade as a choice:

* ``"float32"``: ``a @ b``, nothing changed (the default everywhere);
* ``"bf16x2"``: each float32 operand that is not declared exact is split into two bfloat16
  terms ``x = hi + lo`` (``hi = bf16(x)``, ``lo = bf16(x - hi)``: a relative error of at
  most ``2^-16``, about ``1.5e-5``, per entry; float32 rounds to ``6e-8``), the cross terms
  but ``lo @ lo`` are multiplied in bfloat16 and summed in float32. Two passes when one
  operand is exact (e.g. binary states), three otherwise;
* ``"bfloat16"``: one pass on the bfloat16-rounded operands (relative error up to ``2^-8``,
  about ``4e-3``, per entry; what "mixed precision" training uses: the parameters stay
  float32, only the product's inputs are rounded).

Only the forward product is reduced: the backward pass (``jax.custom_vjp``) computes
``g @ b^T`` and ``a^T @ g`` in float32, so gradients of a loss are those of the float32
formula evaluated at the reduced-precision forward values.

Entrywise, ``|matmul(a, b) - a @ b| <= eps * (|a| @ |b|)`` up to float32 rounding of the
sums, ``eps`` following from the operands' errors above: ``2^-16`` for ``"bf16x2"`` with an
exact ``a``, ``3 * 2^-16`` to first order for ``"bf16x2"`` (two splits and the dropped
``lo @ lo``), ``2^-8`` for ``"bfloat16"`` with an exact ``a``, ``2^-7 + 2^-16`` for
``"bfloat16"`` (``tests/test_precision.py``).

``lhs_exact=True`` declares that every entry of ``a`` is a bfloat16 number (0/1 states,
small integers): it is cast, not split. It is the caller's promise; a non-representable
``a`` is silently rounded to bfloat16.

Speed: 1.6x faster ``bf16x2`` RBM Gibbs sweeps on a CPU with AMX, slower on one without
bfloat16 units (timed: docs/PERFORMANCE_NOTES.md).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from jaxgen.types import Array

MATMUL_PRECISIONS = ("float32", "bf16x2", "bfloat16")


def check_precision(precision: str) -> str:
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(f"unknown matmul precision {precision!r}; valid: {MATMUL_PRECISIONS}")
    return precision


def split_bf16(x: Array, terms: int) -> list[Array]:
    """``terms`` bfloat16 arrays whose float32 sum approximates ``x`` (1: ``bf16(x)``;
    2: ``hi + lo`` with 16 significant bits)."""
    hi = x.astype(jnp.bfloat16)
    if terms == 1:
        return [hi]
    return [hi, (x - hi.astype(jnp.float32)).astype(jnp.bfloat16)]


def _dot(a, b):  # bf16 x bf16 -> f32, ``[..., K] x [K, N]``
    return jnp.matmul(a, b, preferred_element_type=jnp.float32)


def _split_product(a_terms, b_terms):
    """Sum of ``a_i @ b_j`` over pairs with ``i + j < max(len)``: drops ``lo @ lo`` (at most
    2^-16 of the product, the split's own error)."""
    n = max(len(a_terms), len(b_terms))
    out = None
    for i, a in enumerate(a_terms):
        for j, b in enumerate(b_terms):
            if i + j < n:
                out = _dot(a, b) if out is None else out + _dot(a, b)
    return out


def _terms(precision: str, exact: bool) -> int:
    return 1 if (exact or precision == "bfloat16") else 2


def _product(a, b_terms, precision, lhs_exact):
    """``a @ b`` from ``b``'s bfloat16 terms (``a`` split here, or cast if exact)."""
    return _split_product(split_bf16(a, _terms(precision, lhs_exact)), list(b_terms))


@partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _lowp_matmul(a, b, precision, lhs_exact):
    return _product(a, split_bf16(b, _terms(precision, False)), precision, lhs_exact)


def _lowp_fwd(a, b, precision, lhs_exact):
    return _lowp_matmul(a, b, precision, lhs_exact), (a, b)


def _lowp_bwd(precision, lhs_exact, res, g):
    # float32 products: the gradient keeps full precision (and XLA's CPU bfloat16 path is
    # fast only for the plain [M, K] x [K, N] layout, not for a^T g)
    a, b = res
    a2, g2 = a.reshape(-1, a.shape[-1]), g.reshape(-1, g.shape[-1])
    return g @ b.T, a2.T @ g2


_lowp_matmul.defvjp(_lowp_fwd, _lowp_bwd)


def prepare(b: Array, precision: str):
    """The right operand of `matmul` split once, for loops that multiply by a fixed matrix
    (a Gibbs chain's weights): ``b`` itself in float32, else the tuple of its bfloat16 terms
    (materialized: a transpose ``b = w.T`` is done here, outside the loop)."""
    check_precision(precision)
    if precision == "float32":
        return b
    return tuple(split_bf16(b.astype(jnp.float32), _terms(precision, False)))


def matmul(a: Array, b, precision: str = "float32", lhs_exact: bool = False) -> Array:
    """``a @ b`` for ``a [..., K]`` and ``b [K, N]`` (float32) in the given precision (see
    the module docstring); float32 result, differentiable in both operands.

    ``b`` may also be what `prepare` returned (a tuple of bfloat16 terms): the product is
    then computed from those terms (forward use; no float32 gradient for the terms)."""
    check_precision(precision)
    if isinstance(b, tuple):
        if precision == "float32":
            raise ValueError("matmul got bfloat16 terms of a prepared operand with precision "
                             "'float32'")
        return _product(a.astype(jnp.float32), b, precision, lhs_exact)
    if precision == "float32":
        return a @ b
    if b.ndim != 2 or a.shape[-1] != b.shape[0]:
        raise ValueError(f"matmul expects a [..., K] and b [K, N]; got {a.shape} and {b.shape}")
    return _lowp_matmul(a.astype(jnp.float32), b.astype(jnp.float32), precision,
                        bool(lhs_exact))


__all__ = ["MATMUL_PRECISIONS", "check_precision", "matmul", "prepare", "split_bf16"]
