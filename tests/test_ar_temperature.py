"""Softmax temperature in every autoregressive sampler, against the enumerated tempered
sequential process of a tiny model (the models and the TV bound of `test_ar_enumeration`).

At temperature ``T`` step ``t`` draws from ``p_T(k | x_{<t}) = softmax(log p(k | x_{<t}) / T)``,
so a sampler draws ``q_T(x) = prod_t p_T(x_t | x_{<t})`` (the product over positions does not
depend on the generation order; an ensemble of MADE masks is the mixture over members of
each member's ``q_T``). The reference ``q_T`` over all 81 states comes from ONE teacher-forced
pass (`params_from_inputs` on every state, then the head's level log-probabilities), a code
path separate from the samplers' sequential scans and caches.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.autoregressive import MADE
from tests.test_ar_enumeration import (EVENT, LEVELS, MODELS, NUM_DIMS, enumerated,
                                       jit_method, total_variation, tv_bound)
from tests.testing import enumerate_grid

TEMPERATURE = 0.5
NUM_SAMPLES = 20_000
FAST = ("pixelcnn", "gated_pixelcnn", "lstm", "transformer", "nade")  # cached samplers
NAMES = sorted(name for name in MODELS if name != "made_masks_random")  # random masks:
# the same sampler code path as made_masks_natural and made_random


def tempered_reference(model, temperature: float) -> np.ndarray:
    """``q_T`` over the 81 states, float64, from one teacher-forced pass per member."""
    grid = jnp.asarray(enumerate_grid(EVENT, LEVELS))
    masks = model.num_masks if isinstance(model, MADE) else 1

    def levels(m, g):  # [M, 81, D, K] level log-probabilities per member
        if isinstance(m, MADE):
            params = [m.params_from_inputs(m.encode(g), i) for i in range(masks)]
        else:
            params = [m.params_from_inputs(m.encode(g))]
        return jnp.stack([m.head.level_log_probs(p).reshape(len(g), NUM_DIMS, LEVELS)
                          for p in params])

    log_p = np.asarray(jit_method(model, levels)(grid), np.float64)  # [M, 81, D, K]
    tempered = log_p / temperature
    tempered -= np.log(np.exp(tempered).sum(-1, keepdims=True))  # per-step renormalization
    flat = np.asarray(grid).reshape(len(grid), NUM_DIMS)
    chosen = np.take_along_axis(tempered, flat[None, :, :, None], -1)[..., 0]  # [M, 81, D]
    return np.exp(chosen.sum(-1)).mean(0)  # [81]


@pytest.mark.parametrize("name", NAMES)
def test_tempered_sampler_matches_the_enumerated_tempered_process(name):
    model, probs = enumerated(name)
    reference = tempered_reference(model, TEMPERATURE)
    assert abs(reference.sum() - 1.0) < 1e-9
    np.testing.assert_allclose(tempered_reference(model, 1.0), probs, rtol=1e-4, atol=1e-7)
    bound = tv_bound(reference, NUM_SAMPLES)
    # power: a sampler that ignored T (drawing p) would be more than 2 bounds away
    assert 0.5 * np.abs(reference - probs).sum() > 2 * bound
    fn = lambda m, k: m.sample(k, NUM_SAMPLES, temperature=TEMPERATURE)
    samples = np.asarray(jit_method(model, fn)(jax.random.key(5)))
    tv = total_variation(samples, reference)
    assert tv < bound, (name, tv, bound)


@pytest.mark.parametrize("name", NAMES)
def test_temperature_one_is_the_default_draw_and_fast_equals_naive(name):
    model, _ = enumerated(name)

    def draws(m, k):
        out = dict(default=m.sample(k, 64), one=m.sample(k, 64, temperature=1.0),
                   fill=m.fill_naive(k, jnp.zeros((64, NUM_DIMS), jnp.int32), 0,
                                     temperature=0.3))
        out["naive_cold"] = m.sample_naive(k, 64, temperature=0.3)
        if name in FAST:
            out["fast_cold"] = m.sample(k, 64, temperature=0.3)
        return out

    out = jit_method(model, draws)(jax.random.key(6))
    np.testing.assert_array_equal(out["one"], out["default"])
    np.testing.assert_array_equal(out["fill"], out["naive_cold"])
    if name in FAST:  # the cached samplers replay sample_naive's keys at any temperature
        np.testing.assert_array_equal(out["fast_cold"], out["naive_cold"])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "hot"])
def test_bad_temperature_is_refused_naming_the_value(bad):
    for name in ("pixelcnn", "lstm", "nade", "made", "gated_pixelcnn", "transformer"):
        model, _ = enumerated(name)
        with pytest.raises(ValueError, match=r"temperature must be a finite number > 0, "
                                             rf"got {bad!r}"):
            model.sample(jax.random.key(0), 2, temperature=bad)
