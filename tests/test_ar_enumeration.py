"""Every autoregressive sampler against the enumerated distribution of a tiny model.

Each model lives on ``2 x 2 x 1`` images with 3 levels (``K = 81`` states) and has its
parameters perturbed with a fixed seed so that ``p(x)`` is far from uniform. ``exp(log_prob)``
over all 81 states is the independent reference (it must sum to 1). Then

* ``sample``, ``sample_naive`` and ``fill_naive`` from ``start = 0`` must each draw from
  ``p(x)``;
* ``fill_naive`` from ``start = L`` (the first ``L`` positions of the model's generation
  order kept at fixed levels ``v``) must draw the rest from the enumerated conditional
  ``p(x_rest | x_prefix = v) = p(x) 1[x_prefix = v] / sum_x' p(x') 1[x'_prefix = v]``.

Bound on the total variation (TV) of ``N`` i.i.d. draws from ``p`` on states ``k``:
``E[TV] = 1/2 sum_k E|p^_k - p_k| <= 1/2 sum_k sqrt(p_k (1 - p_k) / N)`` (Jensen), and TV is
a function of the draws with bounded differences ``1/N`` (moving one draw moves TV by at
most ``1/N``), so McDiarmid gives ``P(TV > E[TV] + t) <= exp(-2 N t^2)``. With
``t = sqrt(log(1/delta) / (2 N))`` and ``delta = 1e-6`` a correct sampler fails a check with
probability below ``1e-6``. Both terms come from the enumerated ``p`` and ``N`` only. At
``N = 20000`` on 81 states the bound is 0.026-0.043. The bugs this guards against (MADE's
``sample_naive``/``fill_naive`` in raster order whatever the ordering, and from mask 0 alone
for an ensemble) were at TV 0.30-0.47 (``sample_naive``) and 0.18-0.97 (``fill_naive``).
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.autoregressive import (MADE, NADE, CausalTransformer, DiagonalBiLSTM,
                                   GatedPixelCNN, LSTMModel, PixelCNN, RowLSTM, complete,
                                   continuation_log_prob)
from jaxgen.baselines.factorized_categorical import FactorizedCategorical
from tests.testing import enumerate_grid

EVENT, LEVELS = (2, 2, 1), 3
NUM_DIMS = 4
PREFIX_LEN = 2
NUM_SAMPLES = 20_000
DELTA = 1e-6  # per-check false-failure probability of a correct sampler (McDiarmid)


def _rngs():
    return nnx.Rngs(0)


# name -> builder. Tiny networks; the MADE variants cover every ordering/mask case.
MODELS = {
    "made": lambda: MADE(EVENT, LEVELS, (16,), rngs=_rngs()),
    "made_direct": lambda: MADE(EVENT, LEVELS, (16,), direct_connections=True, rngs=_rngs()),
    "made_random": lambda: MADE(EVENT, LEVELS, (16,), ordering="random", mask_seed=2,
                                rngs=_rngs()),
    "made_masks_natural": lambda: MADE(EVENT, LEVELS, (16,), num_masks=3, rngs=_rngs()),
    "made_masks_random": lambda: MADE(EVENT, LEVELS, (16,), ordering="random", num_masks=3,
                                      mask_seed=2, rngs=_rngs()),
    "nade": lambda: NADE(EVENT, LEVELS, hidden_size=8, rngs=_rngs()),
    "lstm": lambda: LSTMModel(EVENT, LEVELS, hidden_size=8, rngs=_rngs()),
    "pixelcnn": lambda: PixelCNN(EVENT, LEVELS, hidden_channels=4, num_layers=1,
                                 first_kernel_size=3, rngs=_rngs()),
    "gated_pixelcnn": lambda: GatedPixelCNN(EVENT, LEVELS, hidden_channels=4, num_layers=2,
                                            kernel_size=3, rngs=_rngs()),
    "row_lstm": lambda: RowLSTM(EVENT, LEVELS, hidden_channels=4, num_layers=1,
                                first_kernel_size=3, rngs=_rngs()),
    "diagonal_bilstm": lambda: DiagonalBiLSTM(EVENT, LEVELS, hidden_channels=4, num_layers=1,
                                              first_kernel_size=3, rngs=_rngs()),
    "transformer": lambda: CausalTransformer(EVENT, LEVELS, d_model=8, num_heads=2,
                                             num_layers=1, rngs=_rngs()),
}
# Prefix sets that are a prefix of every mask's ordering only at L in {0, D}: the
# mixture's conditional given another prefix is intractable, and fill_naive refuses it.
NO_CONDITIONAL = ("made_masks_random",)


def peaked(model, scale: float = 1.0, seed: int = 0):
    """``model`` with ``scale * N(0, 1)`` added to every parameter (fixed seed): far from
    uniform, and (for ensembles) members that disagree."""
    rng = np.random.RandomState(seed)
    nnx.update(model, jax.tree.map(
        lambda p: p + scale * rng.standard_normal(p.shape).astype(np.float32),
        nnx.state(model, nnx.Param)))
    return model


def jit_method(model, fn):
    """``fn(model, *args)`` under one ``jax.jit``; arrays are passed as ``args``."""
    graphdef, state = nnx.split(model)
    return functools.partial(jax.jit(lambda st, *a: fn(nnx.merge(graphdef, st), *a)), state)


def state_index(x) -> np.ndarray:
    """``[N, *EVENT]`` levels -> ``[N]`` row of `enumerate_grid` (base-K digits, raster)."""
    flat = np.asarray(x).reshape(len(x), -1)
    return flat @ LEVELS ** np.arange(NUM_DIMS - 1, -1, -1)


def total_variation(samples, probs) -> float:
    """TV between the empirical distribution of ``samples`` and ``probs [K]``."""
    counts = np.bincount(state_index(samples), minlength=probs.size) / len(samples)
    return 0.5 * float(np.abs(counts - probs).sum())


def tv_bound(probs, n: int, delta: float = DELTA) -> float:
    """``1/2 sum_k sqrt(p_k (1 - p_k) / n) + sqrt(log(1/delta) / (2 n))`` (module docstring)."""
    return (0.5 * float(np.sqrt(probs * (1.0 - probs) / n).sum())
            + float(np.sqrt(np.log(1.0 / delta) / (2.0 * n))))


def generation_order(model) -> np.ndarray:
    """``[D]``: the raster position drawn at each step (MADE: mask 0's ordering)."""
    if isinstance(model, MADE):
        return np.asarray(model.orderings[...][0])
    return np.arange(NUM_DIMS)


@functools.lru_cache(maxsize=None)
def enumerated(name: str):
    """``(model, probs [81])`` with ``probs = exp(log_prob)`` of every state (float64)."""
    model = peaked(MODELS[name]())
    grid = jnp.asarray(enumerate_grid(EVENT, LEVELS))
    probs = np.exp(np.asarray(jit_method(model, lambda m, g: m.log_prob(g))(grid), np.float64))
    return model, probs


def prefix_case(model):
    """A fixed prefix: positions ``S`` (the first `PREFIX_LEN` of the generation order),
    levels ``v = (1, 2)``, and ``x_flat [N, D]`` holding ``v`` at ``S`` and random levels
    elsewhere (which `fill_naive` must ignore)."""
    positions = generation_order(model)[:PREFIX_LEN]
    values = np.array([1, 2])
    x_flat = np.random.RandomState(1).randint(0, LEVELS, (NUM_SAMPLES, NUM_DIMS))
    x_flat[:, positions] = values
    return positions, values, jnp.asarray(x_flat, jnp.int32)


def conditional(probs, positions, values) -> np.ndarray:
    """``p(x | x_S = v)`` over the 81 states (zero where ``x_S != v``)."""
    grid = enumerate_grid(EVENT, LEVELS).reshape(-1, NUM_DIMS)
    keep = np.all(grid[:, positions] == values, axis=1)
    cond = np.where(keep, probs, 0.0)
    return cond / cond.sum()


SAMPLERS = ("sample", "sample_naive", "fill_naive_0", "fill_naive_prefix")
CASES = [(name, sampler) for name in sorted(MODELS) for sampler in SAMPLERS
         if not (sampler == "fill_naive_prefix" and name in NO_CONDITIONAL)]


@functools.lru_cache(maxsize=None)
def draws(name: str, sampler: str) -> tuple[np.ndarray, np.ndarray]:
    """``(samples [N, *EVENT], reference probs [81])`` of one sampler of model ``name``
    (one ``jit`` each; all with the key 11). ``fill_naive_0`` starts from random levels
    (which it must ignore), ``fill_naive_prefix`` from `prefix_case` (reference: the
    enumerated conditional)."""
    model, probs = enumerated(name)
    positions, values, x_flat = prefix_case(model)
    fn = {"sample": lambda m, k, x: m.sample(k, NUM_SAMPLES),
          "sample_naive": lambda m, k, x: m.sample_naive(k, NUM_SAMPLES),
          "fill_naive_0": lambda m, k, x: m.fill_naive(k, x, 0),
          "fill_naive_prefix": lambda m, k, x: m.fill_naive(k, x, PREFIX_LEN)}[sampler]
    samples = np.asarray(jit_method(model, fn)(jax.random.key(11), x_flat))
    if sampler == "fill_naive_prefix":
        probs = conditional(probs, positions, values)
    return samples, probs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_enumerated_distribution_is_normalized_and_far_from_uniform(name):
    _, probs = enumerated(name)
    assert abs(probs.sum() - 1.0) < 1e-5, probs.sum()
    assert probs.max() > 5 / probs.size, "not far from uniform: the sampler test would be weak"


@pytest.mark.parametrize("name,sampler", CASES)
def test_sampler_matches_the_enumerated_distribution(name, sampler):
    samples, ref = draws(name, sampler)
    assert samples.shape == (NUM_SAMPLES, *EVENT) and samples.dtype == np.int32
    tv, bound = total_variation(samples, ref), tv_bound(ref, NUM_SAMPLES)
    assert tv < bound, (name, sampler, tv, bound)
    if sampler == "fill_naive_0":  # ignores its input and replays sample_naive's keys
        np.testing.assert_array_equal(samples, draws(name, "sample_naive")[0])
    if sampler == "sample_naive" and name.startswith("made_masks"):  # documented: M > 1
        np.testing.assert_array_equal(samples, draws(name, "sample")[0])
    if sampler == "fill_naive_prefix":  # the prefix is kept as given
        positions, values, _ = prefix_case(enumerated(name)[0])
        kept = samples.reshape(NUM_SAMPLES, -1)[:, positions]
        np.testing.assert_array_equal(kept, np.broadcast_to(values, kept.shape))


def test_made_random_ordering_is_not_raster():
    """The random-ordering cases really test a non-raster order (whose first two positions
    are not raster positions 0, 1, so a raster-order prefix would be the wrong one)."""
    for name in ("made_random", "made_masks_random"):
        order = generation_order(enumerated(name)[0])
        assert set(order[:PREFIX_LEN]) != set(range(PREFIX_LEN)), (name, order)


def test_ensemble_conditional_weights_members_by_their_prefix_probability():
    """For a natural-order ensemble, ``p(rest | prefix) = sum_m w_m p_m(rest | prefix)`` with
    ``w_m ∝ p_m(prefix)``, not ``1/M``. The sampler test tells the two apart: a sampler of
    the uniform-weight mixture ``q`` has empirical TV to the right conditional ``p`` at least
    ``TV(p, q) - TV(emp, q) > TV(p, q) - bound``, above the bound when ``TV(p, q) > 2 bound``
    (and mask 0 alone, the member the old code used, is further off still)."""
    model, probs = enumerated("made_masks_natural")
    positions, values, _ = prefix_case(model)
    grid = jnp.asarray(enumerate_grid(EVENT, LEVELS))
    per_mask = np.exp(np.asarray(jit_method(model, lambda m, g: m.log_prob_per_mask(g))(grid),
                                 np.float64))  # [M, 81]
    uniform_weights = np.mean([conditional(p, positions, values) for p in per_mask], axis=0)
    right = conditional(probs, positions, values)
    bound = tv_bound(right, NUM_SAMPLES)
    for wrong in (uniform_weights, conditional(per_mask[0], positions, values)):
        gap = 0.5 * np.abs(right - wrong).sum()
        assert gap > 2 * bound, (gap, bound)


def test_fill_naive_refuses_an_intractable_ensemble_prefix():
    """Masks with different orderings: a prefix of mask 0's order is not a prefix of the
    others', whose marginal of it is not available in closed form."""
    model, _ = enumerated("made_masks_random")
    x = jnp.zeros((2, NUM_DIMS), jnp.int32)
    with pytest.raises(ValueError, match="start"):
        model.fill_naive(jax.random.key(0), x, PREFIX_LEN)
    with pytest.raises(ValueError, match="start"):
        complete(model, jax.random.key(0), x.reshape(2, *EVENT), PREFIX_LEN)


@pytest.mark.parametrize("start,error", [(-1, ValueError), (NUM_DIMS + 1, ValueError),
                                         (1.5, TypeError)])
def test_fill_naive_rejects_a_start_outside_the_sequence(start, error):
    for model in (MODELS["made"](), MODELS["lstm"]()):
        with pytest.raises(error, match=r"start must be .*\[0, 4\]"):
            model.fill_naive(jax.random.key(0), jnp.zeros((2, NUM_DIMS), jnp.int32), start)
    with pytest.raises(ValueError, match=r"\[n, 4\]"):
        model.fill_naive(jax.random.key(0), jnp.zeros((2, NUM_DIMS + 1), jnp.int32), 0)


@pytest.mark.parametrize("name", ["made_random", "made_masks_natural", "pixelcnn"])
def test_continuation_log_prob_scores_the_generation_order_continuation(name):
    """`continuation_log_prob(x, L)` is the log of the enumerated conditional
    ``p(x_rest | x_S)`` with ``S`` the first ``L`` positions of the generation order (what
    `complete` samples), for all 81 states: for a random-ordering MADE its generation steps,
    for an ensemble the mixture's conditional (not mask 0's)."""
    model, probs = enumerated(name)
    positions = generation_order(model)[:PREFIX_LEN]
    grid = enumerate_grid(EVENT, LEVELS)
    flat = grid.reshape(len(grid), -1)
    prefix_id = flat[:, positions] @ LEVELS ** np.arange(PREFIX_LEN)  # [81]
    prefix_prob = np.bincount(prefix_id, weights=probs)[prefix_id]  # p(x_S) per state
    got = jit_method(model, lambda m, g: continuation_log_prob(m, g, PREFIX_LEN))(
        jnp.asarray(grid))
    np.testing.assert_allclose(np.asarray(got), np.log(probs / prefix_prob), atol=2e-5)


def test_complete_keeps_the_generation_order_prefix_for_a_random_ordering():
    """`complete` (prefix completion) keeps the first L positions in the model's order."""
    model, _ = enumerated("made_random")
    positions, values, x_flat = prefix_case(model)
    x = x_flat[:64].reshape(64, *EVENT)
    fn = jit_method(model, lambda m, k, x: (complete(m, k, x, PREFIX_LEN), complete(m, k, x, 0),
                                            m.sample_naive(k, 64)))
    completed, from_scratch, naive = fn(jax.random.key(2), x)
    out = np.asarray(completed).reshape(64, -1)
    np.testing.assert_array_equal(out[:, positions], np.broadcast_to(values, (64, 2)))
    np.testing.assert_array_equal(np.asarray(from_scratch), np.asarray(naive))


# ------------------------------------------------------------------------------------------
# Eager ensemble log_prob, empty batches, sample counts.


def test_made_ensemble_log_prob_runs_eagerly_and_matches_jit():
    model = peaked(MADE(EVENT, LEVELS, (16,), ordering="random", num_masks=3, mask_seed=2,
                        rngs=_rngs()))
    x = jnp.asarray(enumerate_grid(EVENT, LEVELS)[:7])
    eager = model.log_prob(x)  # concrete input, no jit: the level check reads values
    jitted = jit_method(model, lambda m, x: m.log_prob(x))(x)
    assert eager.shape == (7,)
    np.testing.assert_allclose(np.asarray(eager), np.asarray(jitted), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="levels in"):
        model.log_prob(jnp.full((2, *EVENT), LEVELS, jnp.int32))


EMPTY_MODELS = dict(MODELS, factorized_categorical=lambda: FactorizedCategorical(
    EVENT, LEVELS, rngs=_rngs()))


@pytest.mark.parametrize("name", sorted(EMPTY_MODELS))
def test_log_prob_of_an_empty_batch_is_empty(name):
    """``[0, *event_shape]`` -> ``[0]`` floats (it raised ZeroDivisionError: a ``reshape`` to
    ``(0, -1)``). Under ``jit``, which traces the same shape logic as eager mode, faster."""
    model = EMPTY_MODELS[name]()
    out = jit_method(model, lambda m, x: m.log_prob(x))(jnp.zeros((0, *EVENT), jnp.int32))
    assert out.shape == (0,) and jnp.issubdtype(out.dtype, jnp.floating)


def test_log_prob_of_an_empty_image_batch_is_empty():
    """The reported case: ``[0, 8, 8, 1]``."""
    for model in (FactorizedCategorical((8, 8, 1), 2, rngs=_rngs()),
                  MADE((8, 8, 1), 2, (8,), rngs=_rngs()),
                  PixelCNN((8, 8, 1), 2, hidden_channels=4, num_layers=1, rngs=_rngs())):
        out = jit_method(model, lambda m, x: m.log_prob(x))(jnp.zeros((0, 8, 8, 1), jnp.int32))
        assert out.shape == (0,), type(model).__name__


COUNT_CASES = [(name, method) for name in sorted(EMPTY_MODELS)
               for method in ("sample", "sample_naive")
               if not (name == "factorized_categorical" and method == "sample_naive")]


@pytest.mark.parametrize("name,method", COUNT_CASES)
def test_bad_sample_counts_raise_clear_errors(name, method):
    fn = getattr(EMPTY_MODELS[name](), method)
    key = jax.random.key(0)
    for bad in (0, -3):
        with pytest.raises(ValueError, match=r"n must be an integer >= 1, got " + str(bad)):
            fn(key, bad)
    for bad in (2.5, "4", True):
        with pytest.raises(TypeError, match=r"n must be an integer >= 1"):
            fn(key, bad)
