"""Shared input checks (jaxgen.checks): messages name the offending shape/value; value
checks run on concrete inputs (also closure-captured ones under a trace) and skip tracers."""
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import checks
from jaxgen.autoregressive import MADE
from jaxgen.distributions import categorical_log_prob


def test_event_batch_shape():
    x = checks.check_event_batch(np.zeros((4, 2, 3), np.int32), (2, 3), "M")
    assert isinstance(x, jax.Array) and x.shape == (4, 2, 3)
    with pytest.raises(ValueError, match=r"M\.log_prob .*\[B, 2, 3\], got shape \(4, 6\)"):
        checks.check_event_batch(np.zeros((4, 6)), (2, 3), "M")
    with pytest.raises(ValueError, match=r"M\.fill .*\[B, 2\], got shape \(2,\)"):
        checks.check_event_batch(np.zeros(2), (2,), "M", method="fill")


def test_training_data_and_scalar_arguments():
    assert checks.check_training_data([[1, 2]], "fit").shape == (1, 2)
    for bad in (np.zeros((0, 3)), np.float32(1.0)):
        with pytest.raises(ValueError, match=re.escape(f"N >= 1, got shape {np.shape(bad)}")):
            checks.check_training_data(bad, "fit")
    checks.check_at_least("pseudocount", 0, 0)
    for bad in (-0.5, float("nan")):
        with pytest.raises(ValueError, match=f"pseudocount must be >= 0, got {bad}"):
            checks.check_at_least("pseudocount", bad, 0)


@pytest.mark.parametrize("x, allow_bool, error, match", [
    (np.array([0.0, 1.0]), True, TypeError, "integer level indices, got dtype float64"),
    (np.array([True, False]), False, TypeError, "got dtype bool"),
    (np.array([0, 5]), True, ValueError, r"levels in \[0, 5\), got values in \[0, 5\]"),
    (jnp.array([[-2, 1]]), True, ValueError, r"levels in \[0, 5\), got values in \[-2, 1\]"),
])
def test_levels_reject(x, allow_bool, error, match):
    with pytest.raises(error, match=match):
        checks.check_levels(x, 5, "owner", allow_bool=allow_bool)


def test_levels_accept_bool_and_empty_and_skip_tracers():
    checks.check_levels(np.array([True, False]), 2, "owner")
    checks.check_levels(np.zeros((0, 3), np.int32), 1, "owner")
    # Inside jit the argument is a tracer: no values, nothing to check, no error.
    out = jax.jit(lambda x: (checks.check_levels(x, 2, "owner"), x + 1)[1])(jnp.array([7]))
    assert int(out[0]) == 8


def test_closure_captured_concrete_levels_are_checked_under_a_trace():
    """A concrete array closed over by a traced function (lax.map, jit) is read from its host
    copy (jnp reductions on it would be tracers), so it is still checked, without raising
    ConcretizationTypeError."""
    good, bad = jnp.array([0, 2]), jnp.array([0, 3])
    for trace in (lambda f: jax.lax.map(f, jnp.arange(2)), lambda f: jax.jit(f)(0)):
        trace(lambda i: (checks.check_levels(good, 3, "owner"), i)[1])
        assert checks.concrete_min_max(good) == (0, 2)
        with pytest.raises(ValueError, match=r"got values in \[0, 3\]"):
            trace(lambda i: (checks.check_levels(bad, 3, "owner"), i)[1])


def test_concrete_min_max():
    assert checks.concrete_min_max(np.array([3, -1, 2])) == (-1, 3)
    assert checks.concrete_min_max(jnp.array([[4, 9]])) == (4, 9)
    assert checks.concrete_min_max(np.zeros(0)) is None
    seen = []
    jax.jit(lambda x: seen.append(checks.concrete_min_max(x)) or x)(jnp.ones(2))
    assert seen == [None]


def test_categorical_log_prob_eagerly_under_lax_map():
    """The range check used to raise ConcretizationTypeError here (MADE, num_masks > 1)."""
    logits = jnp.log(jnp.array([[0.25, 0.75], [0.5, 0.5]]))  # [D=2, C=2]
    x = jnp.array([[1, 0], [0, 1]])  # [B, D]
    per_mask = jax.lax.map(lambda m: categorical_log_prob(logits + 0 * m, x).sum(-1),
                           jnp.arange(3))  # [M, B]
    np.testing.assert_allclose(per_mask, np.log([[0.375, 0.125]] * 3), rtol=1e-6)


def test_made_ensemble_log_prob_is_the_mean_of_its_masks_eagerly():
    model = MADE((2, 2, 1), 3, (16,), ordering="random", num_masks=2, rngs=nnx.Rngs(0))
    x = jax.random.randint(jax.random.key(1), (5, 2, 2, 1), 0, 3)
    per_mask = np.stack([np.asarray(model.log_prob_with_mask(x, m)) for m in range(2)])
    expected = np.log(np.mean(np.exp(per_mask.astype(np.float64)), axis=0))
    np.testing.assert_allclose(model.log_prob(x), expected, rtol=1e-5)
    with pytest.raises(ValueError, match=r"levels in \[0, 3\), got values in \[0, 3\]"):
        model.log_prob(x.at[0, 0, 0, 0].set(3))


def test_floating_dtype():
    checks.check_floating_dtype(jnp.zeros(2, jnp.bfloat16), "G.log_prob")
    with pytest.raises(TypeError, match="G.log_prob expects floating data, got dtype int32"):
        checks.check_floating_dtype(np.zeros(2, np.int32), "G.log_prob")


@pytest.mark.parametrize("bad, match", [
    (np.array(1.0), r"probs must have shape \[\.\.\., C\] with C >= 1, got shape \(\)"),
    (np.zeros((3, 0)), r"C >= 1, got shape \(3, 0\)"),
    (np.array([0.5, np.inf, np.nan]), r"finite, got 2 non-finite entries \(shape \(3,\)\)"),
    (np.array([0.5, -0.25]), r"non-negative, got min -0.25 \(shape \(2,\)\)"),
    (np.array([[1.0, 0.0], [0.0, 0.0]]), r"1 rows of probs \(shape \(2, 2\)\) sum to 0"),
])
def test_probs_reject(bad, match):
    with pytest.raises(ValueError, match=match):
        checks.check_probs(bad)


def test_probs_skip_tracers_and_check_table_shape():
    jax.jit(lambda p: (checks.check_probs(p), p)[1])(jnp.array([-1.0, jnp.nan]))
    with pytest.raises(ValueError, match=r"table.prob must have shape .*got shape \(\)"):
        checks.check_table_shape(jnp.zeros(()), "table.prob")


def test_resolve_sample_shape():
    assert checks.resolve_sample_shape(None, (3,)) == (3,)
    assert checks.resolve_sample_shape(5, ()) == (5,)
    assert checks.resolve_sample_shape((4, 1, 3), (3,)) == (4, 1, 3)
    with pytest.raises(ValueError, match=r"sample shape \(4, 2\).*batch shape \(3,\)"):
        checks.resolve_sample_shape((4, 2), (3,))
