"""Class-conditional neural energies ``E(x, y)``: per-class normalization, conditional
chains, per-class replay buffers, context validation, and a run through the experiments
pipeline.

References are independent of the code under test: a plain midpoint sum on a wide box in
numpy (float64) for ``int exp(-E(x, y)) dx``, and the closed-form moments of a Gaussian
energy ``|x - mu_y|^2 / (2 s^2)`` for the conditional chains (MALA leaves it invariant, so
sample means lie within a few standard errors ``s / sqrt(n)`` of ``mu_y``).
"""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.data import Dataset, load_dataset
from jaxgen.data.batching import Labeled
from jaxgen.energy.neural import MLPEnergy, _NeuralEnergy
from jaxgen.energy.objectives import LangevinReplay, NeuralLogZ
from jaxgen.energy.replay_buffer import push_replay, sample_replay
from tests.test_ar_enumeration import jit_method

NUM_CLASSES = 3


class _ConfinedMLPEnergy(MLPEnergy):
    """A conditional MLP energy plus ``|x|^2 / 2``: normalizable for any parameters (the
    swish MLP grows at most linearly), so ``Z(y)`` exists at initialization."""

    def _energy(self, x, context=None):
        return super()._energy(x, context) + 0.5 * jnp.sum(x ** 2, -1)


class _ClassGaussianEnergy(_NeuralEnergy):
    """``E(x, y) = |x - mu_y|^2 / (2 s^2)``: ``p(x | y) = N(mu_y, s^2 I)``."""

    def __init__(self, means, scale, **sampling):
        self._init_common((2,), num_classes=len(means), noise_low=-4.0, noise_high=4.0,
                          **sampling)
        self.means = nnx.Variable(jnp.asarray(means, jnp.float32))  # [K, 2]
        self.scale = float(scale)

    def _energy(self, x, context=None):
        mu = self.means[...][context]  # [B, 2]
        return 0.5 * jnp.sum((x - mu) ** 2, -1) / self.scale ** 2


def _confined(seed=0):
    model = _ConfinedMLPEnergy((2,), (16,), rngs=nnx.Rngs(seed), num_classes=NUM_CLASSES)
    # classes far apart, so a log Z shared between them would be wrong
    model.class_embedding.weight[...] = 2.0 * jax.random.normal(
        jax.random.key(seed + 1), model.class_embedding.weight.shape)
    return model


def _grid_mass(model, y: int, half_width=9.0, n=600) -> float:
    """``sum exp(log p(x | y)) dA`` on an ``n x n`` midpoint grid of ``[-w, w]^2``."""
    cell = 2 * half_width / n
    ticks = -half_width + (np.arange(n) + 0.5) * cell
    pts = np.stack(np.meshgrid(ticks, ticks), -1).reshape(-1, 2).astype(np.float32)
    log_p = jit_method(model, lambda m, x, c: m.log_prob(x, context=c))(
        jnp.asarray(pts), jnp.full((len(pts),), y, jnp.int32))
    return float(np.exp(np.asarray(log_p, np.float64)).sum() * cell ** 2)


def test_each_class_density_integrates_to_one():
    model = _confined()
    rng = np.random.default_rng(0)
    data = Dataset("blob", rng.normal(size=(64, 2)).astype(np.float32),
                   rng.normal(size=(8, 2)).astype(np.float32),
                   rng.normal(size=(8, 2)).astype(np.float32), num_levels=None)
    normalized, results = NeuralLogZ(grid_size=64, log_z_tail_samples=4096)(
        model, data, jax.random.key(0))
    log_z = np.asarray(normalized.log_z[...])
    assert log_z.shape == (NUM_CLASSES,) and len(results["log_z"]) == NUM_CLASSES
    assert results["log_z_converged"]
    assert np.ptp(log_z) > 0.5, log_z  # power: one shared log Z would miss by > 0.5 nats
    for y in range(NUM_CLASSES):
        assert abs(_grid_mass(normalized, y) - 1.0) < 5e-3, y
    np.testing.assert_array_equal(np.asarray(model.log_z[...]), 0.0)  # argument unchanged


MEANS = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
SCALE = 0.5


def _gaussian_chains():
    return _ClassGaussianEnergy(MEANS, SCALE, sample_steps=150, step_size=0.05,
                                noise_scale=math.sqrt(2 * 0.05))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_conditional_samples_sit_at_their_class_mean(temperature):
    model, n = _gaussian_chains(), 1200
    labels = np.repeat(np.arange(NUM_CLASSES), n // NUM_CLASSES)
    x = np.asarray(jit_method(model, lambda m, k, c: m.sample(k, n, temperature, context=c))(
        jax.random.key(0), jnp.asarray(labels)), np.float64)
    std = SCALE * math.sqrt(temperature)  # exp(-E / T): N(mu_y, T s^2 I)
    per_class = n // NUM_CLASSES
    for y in range(NUM_CLASSES):
        xy = x[labels == y]
        assert np.all(np.abs(xy.mean(0) - MEANS[y]) < 5 * std / math.sqrt(per_class)), y
        assert np.all(np.abs(xy.std(0) - std) < 0.15 * std), (y, xy.std(0))


def test_default_sampling_context_cycles_through_the_classes():
    model = _gaussian_chains()
    x = np.asarray(jit_method(model, lambda m, k: m.sample(k, 300))(jax.random.key(1)))
    nearest = np.argmin(((x[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, np.arange(300) % NUM_CLASSES)


def test_per_class_replay_buffer_keeps_chains_with_their_class():
    k, m = NUM_CLASSES, 5
    buffer = jnp.arange(k)[:, None, None] * jnp.ones((k, m, 2))  # entry value = its class
    labels = jnp.asarray([2, 0, 1, 2, 2, 0])
    noise_fn = lambda key, n: jnp.full((n, 2), 99.0)  # never drawn at reinit_prob 0
    starts, idx = sample_replay(jax.random.key(0), buffer, 6, 0.0, noise_fn, labels)
    np.testing.assert_array_equal(starts[:, 0], labels)
    assert int(idx.max()) < m
    new = push_replay(buffer, idx, -1.0 - starts, labels)
    np.testing.assert_array_equal(new[labels, idx][:, 0], -1.0 - labels)
    assert int(jnp.sum(new != buffer)) == 2 * len({(int(a), int(b))
                                                  for a, b in zip(labels, idx)})
    objective = LangevinReplay(buffer_size=10)
    extra = objective.init(_confined(), np.zeros((4, 2), np.float32), jax.random.key(0))
    assert extra["buffer"].shape == (NUM_CLASSES, 4, 2)  # ceil(10 / 3) per class


def test_langevin_negatives_run_on_the_batch_labels():
    """With all chains fresh (reinit_prob 1) and long runs, each negative lands at its own
    label's mean: the chains were run on ``E(., y_b)``."""
    from jaxgen.energy.losses import langevin_replay_loss
    model = _gaussian_chains()
    labels = jnp.asarray(np.arange(90) % NUM_CLASSES)
    batch = Labeled(jnp.asarray(MEANS, jnp.float32)[labels], labels)
    buffer = jnp.zeros((NUM_CLASSES, 8, 2))
    _, (_, extra) = langevin_replay_loss(200, 1.0, 0.0, None)(
        model, batch, jax.random.key(0), {"buffer": buffer})
    written = np.asarray(extra["buffer"]).reshape(NUM_CLASSES, -1, 2)
    for y in range(NUM_CLASSES):
        rows = written[y][np.any(written[y] != 0, axis=-1)]
        assert len(rows) > 0
        assert np.all(np.linalg.norm(rows - MEANS[y], axis=-1) < 5 * SCALE), y


@pytest.mark.parametrize("method, call", [
    ("log_prob", lambda m, c: m.log_prob(jnp.zeros((4, 2)), context=c)),
    ("energy", lambda m, c: m.energy(jnp.zeros((4, 2)), context=c)),
    ("sample", lambda m, c: m.sample(jax.random.key(0), 4, context=c)),
])
@pytest.mark.parametrize("context, error, message", [
    (jnp.asarray([0, 1, 2, 3]), ValueError, r"class labels must lie in \[0, 3\), found min 0 "
                                            r"and max 3"),
    (jnp.asarray([0, -1, 2, 1]), ValueError, r"class labels must lie in \[0, 3\), found "
                                             r"min -1"),
    (jnp.asarray([0, 1, 2]), ValueError, r"expected \[4\] class labels .* got "
                                         r"shape \(3,\)"),
    (jnp.zeros((4, 1), jnp.int32), ValueError, r"expected \[4\] class labels"),
    (jnp.asarray([0.0, 1.0, 2.0, 0.0]), TypeError, "class labels must be integers, got "
                                                   "dtype float32"),
])
def test_bad_context_is_named(method, call, context, error, message):
    model = _confined()
    with pytest.raises(error, match=rf"_ConfinedMLPEnergy\.{method}: {message}"):
        call(model, context)


def test_missing_or_unwanted_context_is_named():
    with pytest.raises(ValueError, match=r"log_prob is conditional: pass context \(\[4\] int "
                                         r"labels in \[0, 3\)\)"):
        _confined().log_prob(jnp.zeros((4, 2)))
    plain = MLPEnergy((2,), (8,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="MLPEnergy.energy is unconditional"):
        plain.energy(jnp.zeros((4, 2)), context=jnp.zeros(4, jnp.int32))
    with pytest.raises(ValueError, match="at least one width"):
        MLPEnergy((2,), (), rngs=nnx.Rngs(0), num_classes=3)


def test_8gaussians_labels_are_the_mixture_components():
    plain = load_dataset({"name": "toy2d", "toy_name": "8gaussians", "num_train": 400,
                          "num_valid": 10, "num_test": 10})
    data = load_dataset({"name": "toy2d", "toy_name": "8gaussians", "num_train": 400,
                         "num_valid": 10, "num_test": 10, "conditional": True})
    np.testing.assert_array_equal(data.train, plain.train)  # the same draws
    assert data.num_classes == 8 and data.train_labels.dtype == np.int32
    angles = np.arange(8) * np.pi / 4
    centers = 4 / math.sqrt(2) * np.stack([np.cos(angles), np.sin(angles)], -1)
    nearest = np.argmin(((data.train[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    assert np.mean(nearest == data.train_labels) > 0.97  # std 0.35 vs centre spacing 2.2
    with pytest.raises(ValueError, match="toy2d density 'moons' has no class labels"):
        load_dataset({"name": "toy2d", "toy_name": "moons", "conditional": True})


def test_dsm_scores_each_example_at_its_own_label():
    """DSM of ``p(x | y) = N(mu_y, s^2 I)`` on its own data. At the true labels the residual
    ``sigma s(x~) + eps = -(sigma / s^2)(x - mu_y) + (1 - r) eps``, ``r = sigma^2 / s^2``, has
    ``E|.|^2 = D (r + (1 - r)^2)``; with every label moved to the next class the score points
    at a mean ``d ~ 3-4`` away, adding ``(sigma d / s^2)^2 / 2 ~ 1.2`` nats."""
    from jaxgen.energy.estimators import dsm_loss
    model, n, sigma = _gaussian_chains(), 600, 0.1
    labels = jnp.asarray(np.arange(n) % NUM_CLASSES)
    x = jnp.asarray(MEANS, jnp.float32)[labels] + SCALE * jax.random.normal(
        jax.random.key(0), (n, 2))
    right, _ = dsm_loss(model, Labeled(x, labels), jax.random.key(1), sigma)
    wrong, _ = dsm_loss(model, Labeled(x, (labels + 1) % NUM_CLASSES), jax.random.key(1),
                        sigma)
    r = sigma ** 2 / SCALE ** 2
    expected = 0.5 * 2 * (r + (1 - r) ** 2)
    assert abs(float(right) - expected) < 0.15  # ~4 standard errors (chi^2_2 / 2 per example)
    assert float(wrong) > expected + 0.8


@pytest.mark.parametrize("estimator", ["langevin", "nce"])
def test_conditional_config_runs_through_the_pipeline(estimator, tmp_path):
    """``ebm_8gaussians_conditional``, tiny, through `experiments.run.run_experiment` (what
    ``python -m experiments.main`` calls): the labels reach the loss, ``log Z(y)`` comes
    back per class, and the test NLL is ``-mean log p(x | y)`` with it."""
    from experiments.config_io import load_config
    from experiments.load import load_run
    from experiments.run import run_experiment
    from jaxgen.training import evaluate_nll

    config = load_config("ebm_8gaussians_conditional")
    config.data.update(num_train=256, num_valid=64, num_test=64)
    config.model.update(hidden_sizes=(8,), langevin_steps=2, buffer_size=64, sample_steps=2,
                        grid_size=16, log_z_max_doublings=2, log_z_tail_samples=256,
                        estimator=estimator)
    config.train.update(num_steps=4, steps_per_call=2, batch_size=32, log_every=2,
                        eval_every=0)
    config.sampler.update(num_samples=8, timing_repeats=1)
    config.eval.update(num_plot_samples=8)
    with pytest.warns(RuntimeWarning):  # 4 steps: the energy is not yet confining
        results = run_experiment(config, str(tmp_path))
    assert len(results["log_z"]) == 8 and results["log_z_method"].startswith("nested")
    run = load_run(str(tmp_path))
    np.testing.assert_allclose(np.asarray(run.model.log_z[...]), results["log_z"], rtol=1e-6)
    nll = evaluate_nll(run.model, run.dataset.split_data("test"))
    np.testing.assert_allclose(nll, results["test_nll_nats"], rtol=1e-5)
