"""Energy models check their inputs at the boundary: binary models reject values outside
{0, 1}, real-valued ones reject NaN/inf, samplers reject n < 1; messages name the model,
the method, what was expected and what was found. Under jit nothing is checked."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import checks
from jaxgen.energy import (BernoulliRBM, ConvEnergy, FullyVisibleBM, GaussianBernoulliRBM,
                           MLPEnergy)

BINARY_MODELS = {
    "BernoulliRBM": lambda: BernoulliRBM(4, 3, rngs=nnx.Rngs(0), init_scale=0.5,
                                         sample_steps=2),
    "FullyVisibleBM": lambda: FullyVisibleBM(4, rngs=nnx.Rngs(0), init_scale=0.5,
                                             sample_sweeps=2),
}
REAL_MODELS = {
    "GaussianBernoulliRBM": (lambda: GaussianBernoulliRBM(4, 3, rngs=nnx.Rngs(0),
                                                          sample_steps=2), (4,)),
    "MLPEnergy": (lambda: MLPEnergy((4,), (8,), rngs=nnx.Rngs(0), sample_steps=2), (4,)),
    "ConvEnergy": (lambda: ConvEnergy((4, 4, 1), (2, 2), rngs=nnx.Rngs(0), sample_steps=2),
                   (4, 4, 1)),
}
GOOD = np.array([[0, 1, 1, 0], [1, 1, 0, 0]], np.int32)


@pytest.mark.parametrize("name,method", [("BernoulliRBM", "log_prob"),
                                         ("BernoulliRBM", "energy"),
                                         ("BernoulliRBM", "free_energy"),
                                         ("FullyVisibleBM", "log_prob"),
                                         ("FullyVisibleBM", "energy")])
@pytest.mark.parametrize("bad,found", [(2, "2.0"), (-1, "-1.0"), (0.5, "0.5"), (np.nan, "nan")])
def test_binary_models_reject_non_binary_values(name, method, bad, found):
    model = BINARY_MODELS[name]()
    x = GOOD.astype(np.float32)
    x[1, 2] = bad
    with pytest.raises(ValueError, match=rf"{name}\.{method} expects binary values in "
                                         rf"\{{0, 1\}}, got 1 value\(s\) outside \{{0, 1\}} "
                                         rf"\(e\.g\. {found}\) in an input of shape \(2, 4\)"):
        getattr(model, method)(x)
    with pytest.raises(ValueError, match=rf"{name}\.{method} expects binary"):
        getattr(model, method)(jnp.asarray(x))  # an eager jax array too


@pytest.mark.parametrize("name", sorted(BINARY_MODELS))
def test_binary_models_take_binary_ints_bools_and_floats(name):
    model = BINARY_MODELS[name]()
    ref = np.asarray(model.log_prob(GOOD))
    assert np.all(np.isfinite(ref))
    for x in (GOOD.astype(bool), GOOD.astype(np.float32), jnp.asarray(GOOD)):
        np.testing.assert_allclose(model.log_prob(x), ref, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY_MODELS))
def test_under_jit_values_are_not_checked(name):
    """A traced input has no values yet: the check is skipped and a non-binary state gets a
    finite, meaningless number (documented in the model's module)."""
    model = BINARY_MODELS[name]()
    graphdef, state = nnx.split(model)
    log_prob = jax.jit(lambda st, x: nnx.merge(graphdef, st).log_prob(x))
    assert np.all(np.isfinite(log_prob(state, jnp.full((1, 4), 2.0))))


@pytest.mark.parametrize("name", sorted(REAL_MODELS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_real_valued_energies_reject_non_finite_values(name, bad):
    build, event_shape = REAL_MODELS[name]
    model = build()
    x = np.random.default_rng(0).normal(size=(3, *event_shape)).astype(np.float32)
    assert np.all(np.isfinite(model.log_prob(x)))  # real values, 2 or -1 included, are fine
    x.reshape(3, -1)[1, 0] = bad
    for method in ("log_prob", "energy"):
        with pytest.raises(ValueError, match=rf"{name}\.{method} got 1 non-finite value\(s\) "
                                             rf"\(NaN or inf\) in an input of shape "
                                             rf"\(3, {', '.join(map(str, event_shape))}\)"):
            getattr(model, method)(x)


@pytest.mark.parametrize("name", sorted(BINARY_MODELS) + sorted(REAL_MODELS))
def test_sample_count_is_checked(name):
    model = BINARY_MODELS[name]() if name in BINARY_MODELS else REAL_MODELS[name][0]()
    for n in (0, -3):
        with pytest.raises(ValueError, match=rf"{name}\.sample: n must be an integer >= 1, "
                                             rf"got {n}"):
            model.sample(jax.random.key(0), n)
    with pytest.raises(TypeError, match=rf"{name}\.sample: n must be an integer >= 1, "
                                        r"got 2\.0 \(float\)"):
        model.sample(jax.random.key(0), 2.0)


def test_shape_errors_name_the_method():
    with pytest.raises(ValueError, match=r"MLPEnergy\.log_prob expects \[B, 4\], got shape "
                                         r"\(3, 5\)"):
        REAL_MODELS["MLPEnergy"][0]().log_prob(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"FullyVisibleBM\.energy expects \[B, 4\], got shape "
                                         r"\(2, 3\)"):
        BINARY_MODELS["FullyVisibleBM"]().energy(np.zeros((2, 3), np.int32))


def test_check_binary():
    checks.check_binary(np.array([[0, 1], [1, 1]]), "M")
    checks.check_binary(np.zeros((0, 3)), "M")  # empty: nothing to check
    with pytest.raises(ValueError, match=r"M expects binary values in \{0, 1\}, got 3 "
                                         r"value\(s\) outside \{0, 1\} \(e\.g\. -1\.0, 0\.5, "
                                         r"2\.0\) in an input of shape \(2, 3\)"):
        checks.check_binary(np.array([[0, 2, 0.5], [1, -1, 1]]), "M")

    @jax.jit
    def traced(x):
        checks.check_binary(x, "M")  # a tracer: skipped
        return x.sum()

    assert float(traced(jnp.full((2,), 3.0))) == 6.0
    captured = jnp.array([0.0, 3.0])
    with pytest.raises(ValueError, match=r"e\.g\. 3\.0"):
        jax.jit(lambda: (checks.check_binary(captured, "M"), captured.sum())[1])()
