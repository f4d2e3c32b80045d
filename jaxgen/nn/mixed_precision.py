"""Mixed precision: matrix products and convolutions in a low dtype, everything else float32.

Inside ``with compute_dtype("bfloat16"):`` every product that goes through this module
(`dot_general`, `conv_general_dilated`, `matmul`, `einsum`, `Linear`, `Conv`: the dense and
convolutional layers of `jaxgen.nn`, the autoregressive networks and the flows'
conditioners) casts its two floating operands to bfloat16 and accumulates in float32
(``preferred_element_type=float32``), so its output is float32 again:

    y = dot(bf16(a), bf16(b)) accumulated in f32      (relative error <= 2^-8 per operand entry)

Parameters, optimizer state, activations between layers, log-determinants, log-densities and
the loss stay float32; only the operands of the heavy ops are rounded. That is the usual
"bf16 compute, f32 master weights" recipe (the parameters' gradients flow through the cast
and arrive in float32). Outside the block (the default, evaluation and sampling) nothing is
cast: the functions are `jax.lax`'s.

Only tracing reads the setting (like `jaxgen.nn.layer_scan.layer_scan_mode`): the training
loop traces its step inside the block (``train.compute_dtype``), and a jitted function
already compiled keeps its program.
"""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator

import jax
import jax.numpy as jnp
from flax import nnx
from jax.custom_derivatives import SymbolicZero

from jaxgen.types import Array

COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
_active: list = []


def active_compute_dtype():
    """The low dtype of the innermost `compute_dtype` block, or ``None`` (full precision)."""
    return _active[-1] if _active else None


@contextlib.contextmanager
def compute_dtype(dtype: str) -> Iterator[None]:
    """Programs traced within the block compute products in ``dtype`` (see the module).

    ``"float32"`` is full precision (no cast); ``"bfloat16"`` / ``"float16"`` round the
    operands of every product routed through this module and accumulate in float32.
    """
    if dtype not in COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {list(COMPUTE_DTYPES)}, got {dtype!r}")
    _active.append(None if dtype == "float32" else jnp.dtype(dtype))
    try:
        yield
    finally:
        _active.pop()


def _mixed(op, lhs, rhs) -> Array:
    """``op(lhs, rhs, preferred_element_type)`` (a bilinear product) in the active dtype.

    Without an active low dtype (or with a non-floating operand) this is
    ``op(lhs, rhs, None)``. Otherwise the primal is ``op(low(lhs), low(rhs), out)``
    accumulated in ``out``, the operands' promoted dtype; the tangent rule
    ``d op = op(low(d lhs), low(rhs)) + op(low(lhs), low(d rhs))`` computes in the low dtype
    too, so the backward products (its transposes) are low-precision as well, and forward
    mode (``jvp``, Hessian-vector products of score matching) works. Zero tangents are
    symbolic: an operand that is not differentiated costs no product.
    """
    low = active_compute_dtype()
    lhs, rhs = jnp.asarray(lhs), jnp.asarray(rhs)
    if (low is None or not jnp.issubdtype(lhs.dtype, jnp.floating)
            or not jnp.issubdtype(rhs.dtype, jnp.floating)):
        return op(lhs, rhs, None)
    out = jnp.promote_types(lhs.dtype, rhs.dtype)

    @jax.custom_jvp
    def product(a, b):
        return op(a.astype(low), b.astype(low), out)

    def product_jvp(primals, tangents):
        a, b = primals
        da, db = tangents
        a_low, b_low = a.astype(low), b.astype(low)
        y = op(a_low, b_low, out)
        dy = jnp.zeros(y.shape, out)
        if not isinstance(da, SymbolicZero):
            dy = dy + op(da.astype(low), b_low, None).astype(out)
        if not isinstance(db, SymbolicZero):
            dy = dy + op(a_low, db.astype(low), None).astype(out)
        return y, dy

    product.defjvp(product_jvp, symbolic_zeros=True)
    return product(lhs, rhs)


def dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None,
                **kwargs) -> Array:
    """`jax.lax.dot_general` with the operands in the active compute dtype and the result
    in the operands' own (promoted) dtype."""
    def op(a, b, preferred):
        return jax.lax.dot_general(a, b, dimension_numbers, precision=precision,
                                   preferred_element_type=preferred_element_type or preferred,
                                   **kwargs)
    return _mixed(op, lhs, rhs)


def conv_general_dilated(lhs, rhs, *args, preferred_element_type=None, **kwargs) -> Array:
    """`jax.lax.conv_general_dilated` with the operands in the active compute dtype."""
    def op(a, b, preferred):
        return jax.lax.conv_general_dilated(
            a, b, *args, preferred_element_type=preferred_element_type or preferred, **kwargs)
    return _mixed(op, lhs, rhs)


def matmul(a, b) -> Array:
    """``a @ b`` (`jnp.matmul` broadcasting) with the operands in the active compute dtype."""
    return _mixed(lambda x, y, p: jnp.matmul(x, y, preferred_element_type=p), a, b)


def einsum(subscripts: str, a, b) -> Array:
    """Two-operand `jnp.einsum` with the operands in the active compute dtype."""
    return _mixed(lambda x, y, p: jnp.einsum(subscripts, x, y, preferred_element_type=p),
                  a, b)


# Flax layers whose products follow the active compute dtype (same parameters, same
# initialization and call as `flax.nnx.Linear` / `flax.nnx.Conv`).
Linear = functools.partial(nnx.Linear, dot_general=dot_general)
Conv = functools.partial(nnx.Conv, conv_general_dilated=conv_general_dilated)

__all__ = ["COMPUTE_DTYPES", "Conv", "Linear", "active_compute_dtype", "compute_dtype",
           "conv_general_dilated", "dot_general", "einsum", "matmul"]
