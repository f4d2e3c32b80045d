"""Input checks shared by the baselines, the distributions and the autoregressive models.

Every check raises eagerly, at the boundary, with the offending shape or value in the
message: ``TypeError`` for a wrong dtype, ``ValueError`` for a wrong shape or value.

Shape and dtype checks are static and always run. Value checks (level ranges, finite and
non-negative probabilities) run only on *concrete* inputs, whose values can be read now:
NumPy arrays, Python scalars and jax arrays holding values. They skip cleanly on tracers
(inside ``jit``/``vmap``/``grad``/``lax.map``), where values do not exist yet; the functions
that use them document what a traced bad value gives instead (e.g. NaN). A concrete
``jax.Array`` captured by a function being traced (a closure under ``jit`` or ``lax.map``)
is still checked, from its host copy, since ``jnp`` reductions on it would be traced.

Under ``jit`` a bad value cannot raise. What it gives instead: an out-of-range level or a
non-binary state gives a finite but meaningless log-probability or NaN (the gather reads
past the table or the Bernoulli term is off its support), a NaN/inf input gives NaN.
`jaxgen.training.evaluate_nll` checks its data eagerly and raises on a NaN result; to check
your own jitted calls, run the check on the concrete input first, outside the jit::

    check_levels(x, model.num_levels, "my_eval")   # eager, raises with the range found
    check_finite(x, "my_eval")
    log_p = jitted_log_prob(x)

(or wrap the function with ``jax.experimental.checkify`` to carry checks through jit).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.types import Array, Shape


# ------------------------------------------------------------------------------------------
# Concreteness.


def is_concrete(x) -> bool:
    """True when ``x`` holds values (numpy/Python/committed jax array), not a tracer."""
    return not isinstance(x, jax.core.Tracer)


def concrete_min_max(x) -> tuple[int | float, int | float] | None:
    """``(min(x), max(x))`` as Python numbers when ``x`` is concrete and non-empty, else None.

    ``None`` for a tracer, an empty array, or a ``jax.Array`` not fully addressable from this
    process. On an eager ``jax.Array`` the reductions run on its device (two scalars come
    back); when a trace is active (the array was captured by a function being traced, where
    ``jnp`` operations would give tracers and reading them raises
    ``ConcretizationTypeError``) they run on its host copy instead.
    """
    if not is_concrete(x) or np.size(x) == 0:
        return None
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable:
            return None
        try:
            return jnp.min(x).item(), jnp.max(x).item()
        except jax.errors.ConcretizationTypeError:
            pass  # a trace is active: fall through to the host copy (no trace involved)
    x = np.asarray(x)
    return x.min().item(), x.max().item()


# ------------------------------------------------------------------------------------------
# Shapes.


def check_event_batch(x, event_shape: Shape, owner: str, *, method: str = "log_prob") -> Array:
    """Returns ``x`` as an array after checking it is ``[B, *event_shape]`` (statically).

    Args:
      x: array-like batch.
      event_shape: the shape of one example.
      owner: the model's name, e.g. ``type(self).__name__``.
      method: the method that received ``x`` (the message names ``owner.method``).

    Raises:
      ValueError: naming the expected and the actual shape on a rank or trailing-shape
        mismatch.
    """
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    if x.ndim != 1 + len(event_shape) or tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(f"{owner}.{method} expects a batch of shape [B, *event_shape] = "
                         f"[B, {', '.join(map(str, event_shape))}], got shape {tuple(x.shape)}")
    return x


def check_training_data(data, owner: str) -> np.ndarray:
    """Returns ``data`` as a NumPy array after checking it is ``[N, *event_shape]``, N >= 1.

    For fits on concrete data (exact MLE by counting or moments), which run in NumPy.

    Raises:
      ValueError: naming the shape when ``data`` is a scalar or holds no examples.
    """
    data = np.asarray(data)
    if data.ndim < 1 or data.shape[0] < 1:
        raise ValueError(f"{owner} needs data of shape [N, *event_shape] with N >= 1, got "
                         f"shape {data.shape}")
    return data


def check_table_shape(x: Array, name: str) -> None:
    """Checks ``x`` is ``[..., C]`` with ``C >= 1`` (a batch of tables over ``C`` levels).

    Raises:
      ValueError: naming ``name`` and the shape of ``x``.
    """
    if x.ndim < 1 or x.shape[-1] < 1:
        raise ValueError(f"{name} must have shape [..., C] with C >= 1, got shape {x.shape}")


def resolve_sample_shape(shape: int | Sequence[int] | None, batch_shape: Shape) -> Shape:
    """Output shape of a sampler whose parameters have batch shape ``batch_shape``.

    ``None`` means ``batch_shape``. An explicit shape must contain the batch shape under
    broadcasting, i.e. ``broadcast_shapes(batch_shape, shape) == shape``.

    Raises:
      ValueError: naming both shapes when they are incompatible.
    """
    if shape is None:
        return tuple(batch_shape)
    shape = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(map(int, shape))
    try:
        ok = jnp.broadcast_shapes(tuple(batch_shape), shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"sample shape {shape} is incompatible with the distribution's batch "
                         f"shape {tuple(batch_shape)}: the batch shape must broadcast to the "
                         "trailing dimensions of the sample shape")
    return shape


# ------------------------------------------------------------------------------------------
# Dtypes and values.


def check_integer_dtype(x, owner: str, *, allow_bool: bool = True) -> None:
    """Checks ``x`` has an integer (or, with ``allow_bool``, a boolean) dtype.

    Floats are rejected even when integral, so a level index is never silently truncated.

    Raises:
      TypeError: naming the dtype.
    """
    dtype = x.dtype if hasattr(x, "dtype") else jnp.asarray(x).dtype
    if jnp.issubdtype(dtype, jnp.integer) or (allow_bool and dtype == jnp.bool_):
        return
    raise TypeError(f"{owner} expects integer level indices, got dtype {dtype}; cast "
                    "integral data with x.astype(jnp.int32)")


def check_floating_dtype(x, owner: str) -> None:
    """Checks ``x`` has a floating dtype (continuous data).

    Raises:
      TypeError: naming the dtype (discrete data must be dequantized or converted first).
    """
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{owner} expects floating data, got dtype {x.dtype}; dequantize or "
                        "convert discrete data first")


def check_level_range(x, num_levels: int, owner: str) -> None:
    """Checks ``0 <= x < num_levels`` when ``x`` is concrete (see `concrete_min_max`).

    Skipped for tracers and empty arrays.

    Raises:
      ValueError: naming the allowed range and the range of values found.
    """
    bounds = concrete_min_max(x)
    if bounds is None:
        return
    low, high = int(bounds[0]), int(bounds[1])
    if low < 0 or high >= num_levels:
        raise ValueError(f"{owner} expects levels in [0, {num_levels}), got values in "
                         f"[{low}, {high}]")


def check_levels(x, num_levels: int, owner: str, *, allow_bool: bool = True) -> None:
    """Level indices: integer dtype (always) and ``0 <= x < num_levels`` (when concrete).

    Raises:
      TypeError: non-integer dtype (`check_integer_dtype`).
      ValueError: concrete values outside ``[0, num_levels)`` (`check_level_range`).
    """
    check_integer_dtype(x, owner, allow_bool=allow_bool)
    check_level_range(x, num_levels, owner)


def check_probs(probs: Array, name: str = "probs") -> None:
    """Weights of a batch of categoricals, ``[..., C]`` with ``C >= 1``.

    The shape is always checked; the values (finite, non-negative, a positive sum along the
    last axis) only when ``probs`` is concrete.

    Raises:
      ValueError: naming the shape and the first violated condition.
    """
    check_table_shape(probs, name)
    if not is_concrete(probs):
        return
    p = np.asarray(probs)
    num_bad = p.size - np.count_nonzero(np.isfinite(p))
    if num_bad:
        raise ValueError(f"{name} must be finite, got {num_bad} non-finite entries "
                         f"(shape {p.shape})")
    if np.any(p < 0):
        raise ValueError(f"{name} must be non-negative, got min {p.min()} (shape {p.shape})")
    num_zero_rows = np.count_nonzero(p.sum(-1) <= 0)
    if num_zero_rows:
        raise ValueError(f"{name} must have a positive sum along the last axis; "
                         f"{num_zero_rows} rows of {name} (shape {p.shape}) sum to 0")


def check_at_least(name: str, value, minimum) -> None:
    """Checks a scalar argument, ``value >= minimum`` (e.g. ``pseudocount >= 0``).

    Raises:
      ValueError: ``"{name} must be >= {minimum}, got {value}"``.
    """
    if not value >= minimum:  # also rejects NaN
        raise ValueError(f"{name} must be >= {minimum}, got {value}")


def check_finite(x, owner: str) -> None:
    """Checks every value of ``x`` is finite when ``x`` is concrete (no NaN, no +-inf).

    Skipped for tracers (under ``jit`` a non-finite input propagates: the result is NaN) and
    for non-floating dtypes (always finite).

    Raises:
      ValueError: naming ``owner``, the number of non-finite entries and the shape.
    """
    if not is_concrete(x):
        return
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.inexact) or x.size == 0:
        return
    num_bad = x.size - int(np.count_nonzero(np.isfinite(x)))
    if num_bad:
        raise ValueError(f"{owner} got {num_bad} non-finite value(s) (NaN or inf) in an input "
                         f"of shape {x.shape}; clean or drop them first")


def check_count(name: str, value, minimum: int = 1) -> int:
    """A count argument (``n`` samples, a batch size, a number of steps): an integer
    ``>= minimum``; returns it as ``int``.

    Raises:
      TypeError: ``value`` is not an integer (bools and floats are refused).
      ValueError: ``value < minimum``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if not (isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) == 0
                and np.issubdtype(np.asarray(value).dtype, np.integer)):
            raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} "
                            f"({type(value).__name__})")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return value


def check_positive(name: str, value) -> float:
    """A strictly positive, finite scalar (a temperature, a step size); returns ``float``.

    Raises:
      ValueError: ``"{name} must be a finite number > 0, got {value}"``.
    """
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return v


def check_temperature(who: str, temperature):
    """A sampler's temperature ``T`` (softmax temperature of autoregressive steps, energy
    scaling ``exp(-E / T)`` of energy-based samplers): a finite number ``> 0``, returned as a
    float; a traced ``T`` (a sampler under ``jit`` with ``T`` an argument) passes unchecked.

    Raises:
      ValueError: ``"{who}: temperature must be a finite number > 0, got {T}"``.
    """
    if not is_concrete(temperature):
        return temperature
    return check_positive(f"{who}: temperature", temperature)


def is_unit_temperature(temperature) -> bool:
    """Whether ``temperature`` is the concrete number 1 (samplers then skip the scaling, so
    ``T = 1`` reproduces the default draw bit for bit)."""
    return is_concrete(temperature) and float(temperature) == 1.0


__all__ = ["check_at_least", "check_count", "check_finite", "check_positive",
           "check_temperature", "is_unit_temperature", "check_event_batch", "check_floating_dtype",
           "check_integer_dtype", "check_level_range", "check_levels", "check_probs",
           "check_table_shape", "check_training_data", "concrete_min_max", "is_concrete",
           "resolve_sample_shape"]


def check_binary(x, owner: str) -> None:
    """Checks every value of ``x`` is 0 or 1 when ``x`` is concrete; any real or boolean
    dtype (binary states travel as int32 data and as float32 chains).

    Skipped for tracers (see the module docstring: under ``jit`` a non-binary input is
    used as it is, e.g. an RBM's free energy is then a finite number for a state that does
    not exist) and for empty arrays.

    Raises:
      ValueError: naming ``owner``, the number of entries outside {0, 1}, a few of them and
        the shape.
    """
    if not is_concrete(x) or np.size(x) == 0:
        return
    if isinstance(x, jax.Array):
        if not x.is_fully_addressable:
            return
        try:
            bad = int(jnp.count_nonzero((x != 0) & (x != 1)).item())
        except jax.errors.ConcretizationTypeError:  # captured under a trace: use the host copy
            bad = None
    else:
        bad = None
    if bad == 0:
        return
    arr = np.asarray(x)
    outside = arr[(arr != 0) & (arr != 1)]
    if outside.size:
        examples = ", ".join(str(v) for v in np.unique(outside)[:4].tolist())
        raise ValueError(f"{owner} expects binary values in {{0, 1}}, got {outside.size} "
                         f"value(s) outside {{0, 1}} (e.g. {examples}) in an input of shape "
                         f"{arr.shape}")


__all__ += ["check_binary"]
