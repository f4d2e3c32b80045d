"""Conditional generation: labels in the data layer, context in the models, p(x | y).

Normalization is checked by enumeration (every x of a tiny discrete space, for every class)
and by quadrature (a conditional 2D flow on a grid, per class); that the context is used,
by classes giving different conditionals; that batches keep labels with their examples, by
batching data whose label equals its row.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import os

import numpy as np
import pytest
from flax import nnx

from jaxgen.autoregressive import MADE, NADE, CausalTransformer
from jaxgen.data import Dataset, load_dataset, load_npz
from jaxgen.data.batching import Labeled, batch_at_step, log_prob_of
from jaxgen.data.dataset import DataFileError
from jaxgen.flows.models import build_flow
from jaxgen.training import MaximumLikelihood, evaluate_nll


def _perturb(model, key, scale):
    """Adds N(0, scale^2) noise to every parameter (zero-initialized last layers make a new
    conditional model ignore its context; noise makes every class differ). One jit call."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def noisy(params, key):
        leaves, treedef = jax.tree.flatten(params)
        sizes = [leaf.size for leaf in leaves]
        noise = scale * jax.random.normal(key, (sum(sizes),))  # one draw for all leaves
        starts = np.cumsum([0] + sizes[:-1])
        return jax.tree.unflatten(treedef, [
            p + noise[s:s + p.size].reshape(p.shape) for p, s in zip(leaves, starts)])

    return nnx.merge(graphdef, noisy(params, key), rest)


# ---------------------------------------------------------------------------------------
# Data layer.

def test_digits_labels_are_the_digit_classes():
    from sklearn.datasets import load_digits as sk
    plain, labeled = load_dataset({"name": "digits"}), load_dataset(
        {"name": "digits", "conditional": True})
    assert not plain.is_conditional and plain.train_labels is None
    assert labeled.num_classes == 10
    bunch = sk()
    for split in ("train", "valid", "test"):
        x, y = getattr(labeled, split), labeled.labels(split)
        assert y.shape == (x.shape[0],) and y.dtype == np.int32
        np.testing.assert_array_equal(x, getattr(plain, split))
        # each image's label is the scikit-learn target of that very image
        flat = bunch.images.reshape(len(bunch.images), -1).astype(np.int32)
        index = {row.tobytes(): t for row, t in zip(flat, bunch.target)}
        assert all(index[img.reshape(-1).tobytes()] == lab for img, lab in zip(x[:50], y[:50]))
    batch = labeled.split_data("test")
    assert isinstance(batch, Labeled) and batch.context is labeled.test_labels


@pytest.mark.parametrize("bad, message", [
    (dict(train_labels=np.zeros(4, np.float32)), "must be integers"),
    (dict(train_labels=np.zeros(3, np.int64)), r"expected shape \(4,\)"),
    (dict(train_labels=-np.ones(4, np.int64)), ">= 0"),
    (dict(num_classes=2, valid_labels=np.array([0, 2])), r"lie in \[0, 2\)"),
])
def test_bad_labels_are_refused_naming_the_split(bad, message):
    x = np.zeros((4, 2), np.float32)
    fields = dict(train_labels=np.zeros(4, np.int64), valid_labels=np.zeros(2, np.int64),
                  test_labels=np.ones(2, np.int64))
    with pytest.raises((TypeError, ValueError), match=message):
        Dataset("d", x, x[:2], x[:2], **{**fields, **bad})
    with pytest.raises(ValueError, match="not for"):
        Dataset("d", x, x[:2], x[:2], train_labels=np.zeros(4, np.int64))


def test_npz_labels_round_trip_carve_and_errors(tmp_path):
    rng = np.random.RandomState(0)
    x, y = np.arange(20)[:, None] * np.ones((1, 3), np.int64), rng.randint(0, 3, 20)
    path = tmp_path / "d.npz"
    np.savez(path, train=x, train_labels=y, test=x[:5], test_labels=y[:5])
    ds = load_npz(path, valid_key=None, valid_fraction=0.25, num_levels=20, labels=True)
    assert ds.num_classes == 3
    for split in ("train", "valid"):  # the carve keeps every example with its own label
        rows = {tuple(r): l for r, l in zip(x, y)}
        assert all(rows[tuple(r)] == l for r, l in zip(getattr(ds, split), ds.labels(split)))
    bad = tmp_path / "bad.npz"
    np.savez(bad, train=x, train_labels=y[:19], test=x[:5], test_labels=y[:5])
    with pytest.raises(DataFileError, match=r"train_labels.*expected shape \(20,\)"):
        load_npz(bad, valid_key=None, num_levels=20, labels=True)
    np.savez(bad, train=x, test=x[:5])
    with pytest.raises(KeyError, match="train_labels"):
        load_npz(bad, valid_key=None, num_levels=20, labels=True)
    with pytest.raises(ValueError, match="toy2d.*no class labels"):
        load_dataset({"name": "toy2d", "conditional": True})


def test_batches_keep_each_example_with_its_label():
    n = 50
    data = Labeled(jnp.arange(n)[:, None] * jnp.ones((1, 3), jnp.int32), jnp.arange(n))
    for step in (0, 3, 7):
        batch = batch_at_step(data, jax.random.key(1), step, 16)
        np.testing.assert_array_equal(batch.x[:, 0], batch.context)
        assert batch.x.shape == (16, 3)


# ---------------------------------------------------------------------------------------
# Normalization per class.

ALL_3_TERNARY = jnp.asarray(list(itertools.product(range(3), repeat=3)), jnp.int32)  # [27, 3]


@pytest.mark.parametrize("make, xs", [
    (lambda: MADE((3,), 3, (8,), num_classes=3, rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: MADE((3,), 3, (8,), num_masks=2, ordering="random", num_classes=3,
                  rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: MADE((3,), 3, (8,), context_features=2, rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: CausalTransformer((3,), 3, d_model=8, num_heads=2, num_layers=1, num_classes=3,
                               rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: CausalTransformer((3,), 3, d_model=8, num_heads=2, num_layers=1,
                               context_features=2, rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: NADE((3,), 3, 8, num_classes=3, rngs=nnx.Rngs(0)), ALL_3_TERNARY),
    (lambda: NADE((3,), 3, 8, context_features=2, rngs=nnx.Rngs(0)), ALL_3_TERNARY),
], ids=["made", "made_ensemble", "made_vector_context", "transformer",
        "transformer_vector_context", "nade", "nade_vector_context"])
def test_discrete_conditional_sums_to_one_for_every_class(make, xs):
    model = _perturb(make(), jax.random.key(2), 0.5)
    n = xs.shape[0]
    contexts = ([jnp.full((n,), y) for y in range(3)] if model.num_classes is not None else
                [jnp.tile(jnp.array([[a, b]], jnp.float32), (n, 1))
                 for a, b in ((0.0, 0.0), (1.0, -2.0), (3.0, 0.5))])
    log_prob = jax.jit(lambda v, c: model.log_prob(v, context=c))
    probs = [jnp.exp(log_prob(xs, c)) for c in contexts]
    for p in probs:
        np.testing.assert_allclose(float(jnp.sum(p)), 1.0, atol=1e-5)
    # the context is used: the classes' distributions differ
    assert float(jnp.max(jnp.abs(probs[0] - probs[1]))) > 1e-3
    with pytest.raises(ValueError, match="is conditional: pass context"):
        model.log_prob(xs)


FLOW_2D = {
    "realnvp": dict(num_couplings=4, hidden_features=16),
    "spline": dict(num_couplings=2, hidden_features=16, coupling="spline"),
}


@pytest.mark.parametrize("name", sorted(FLOW_2D))
def test_conditional_2d_flow_integrates_to_one_per_class(name):
    fields = dict(FLOW_2D[name])
    model_name = "realnvp" if name == "spline" else name
    init = np.random.RandomState(0).randn(64, 2).astype(np.float32)
    flow = build_flow(model_name, (2,), init, unit_interval=False, rngs=nnx.Rngs(0),
                      num_classes=2, **fields)
    flow = _perturb(flow, jax.random.key(3), 0.2)
    lim, m = 8.0, 241
    g = jnp.linspace(-lim, lim, m)
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)  # [m^2, 2]
    cell = (g[1] - g[0]) ** 2
    masses = []
    log_prob = jax.jit(lambda v, c: flow.log_prob(v, context=c))
    for y in range(2):
        lp = log_prob(grid, jnp.full((grid.shape[0],), y))
        masses.append(jnp.exp(lp))
        np.testing.assert_allclose(float(jnp.sum(jnp.exp(lp)) * cell), 1.0, atol=1e-2)
    assert float(jnp.max(jnp.abs(masses[0] - masses[1]))) > 1e-3


@pytest.mark.parametrize("name, fields", [
    ("glow", dict(num_scales=2, num_steps=1, hidden_channels=4)),
], ids=["glow"])
def test_conditional_image_flow_sample_and_density_agree(name, fields):
    """Multi-scale (squeeze, split, scanned steps, channel couplings): the context reaches
    every level; sampling inverts the density's map for the same class."""
    from jaxgen.flows.models import FLOW_MODELS
    # the class itself (no eager data-dependent init: the identities hold for any parameters)
    flow = FLOW_MODELS[name][0]((4, 4, 1), logit_alpha=0.05, num_classes=10,
                                rngs=nnx.Rngs(0), **fields)
    flow = _perturb(flow, jax.random.key(4), 0.05)
    labels = jnp.array([0, 3, 7, 9])
    graphdef, state = nnx.split(flow)

    @jax.jit
    def run(key, labels):
        f = nnx.merge(graphdef, state)
        x, lp = f.sample_and_log_prob(key, 4, context=labels)
        both = f.log_prob(jnp.concatenate([x, x]),  # own class, then the next class
                          context=jnp.concatenate([labels, (labels + 1) % 10]))
        return lp, both[:4], both[4:]

    lp, again, other = run(jax.random.key(5), labels)
    np.testing.assert_allclose(again, lp, rtol=1e-4, atol=1e-3)
    assert float(jnp.max(jnp.abs(other - lp))) > 1e-3  # the context is used
    with pytest.raises(ValueError, match=r"lie in \[0, 10\)"):
        flow.embed_context(jnp.array([0, 1, 2, 10]), 4)
    with pytest.raises(TypeError, match="integers"):
        flow.embed_context(jnp.zeros(4), 4)


def test_sampling_default_context_is_class_balanced():
    from jaxgen.nn.context import check_context
    np.testing.assert_array_equal(check_context(None, 7, 3, None, "m", for_sampling=True),
                                  [0, 1, 2, 0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"\[7, 2\] float vectors"):
        check_context(None, 7, None, 2, "m", for_sampling=True)


def test_unconditional_models_refuse_a_context():
    made = MADE((3,), 3, (8,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="unconditional"):
        made.log_prob(ALL_3_TERNARY, context=jnp.zeros(27, jnp.int32))


# ---------------------------------------------------------------------------------------
# Class-conditional causal transformer (a class token added to the start vector).

ALL_3X3_BINARY = jnp.asarray(list(itertools.product([0, 1], repeat=9)),
                             jnp.int32).reshape(-1, 3, 3)  # [512, 3, 3]


def _tiny_transformer(**kwargs):
    return CausalTransformer((3, 3), 2, d_model=8, num_heads=2, num_layers=2,
                             rngs=nnx.Rngs(0), **{"num_classes": 3, **kwargs})


def _assert_unconditional_refuses_contexts(plain, name: str, x, key) -> None:
    """``log_prob``, ``sample`` and ``sample_naive`` of an unconditional autoregressive model
    refuse a context, naming the model."""
    for call in (lambda c: plain.log_prob(x, context=c), lambda c: plain.sample(key, 4, c),
                 lambda c: plain.sample_naive(key, 4, context=c)):
        with pytest.raises(ValueError, match=f"{name} is unconditional"):
            call(jnp.zeros(4, jnp.int32))


def test_conditional_transformer_sums_to_one_per_class_and_uses_the_class_token():
    """Every 3x3 binary image, for every class: p(x | y) sums to 1. With a zero class table
    every class is the unconditional model; moving only the table (the rest of the network
    as built) makes the classes' distributions differ."""
    model, plain = _tiny_transformer(), _tiny_transformer(num_classes=None)
    n = ALL_3X3_BINARY.shape[0]

    def probs(table):
        model.context_embed.weight[...] = table
        log_prob = jax.jit(lambda v, c: model.log_prob(v, context=c))  # traced per table
        return [np.exp(np.asarray(log_prob(ALL_3X3_BINARY, jnp.full((n,), y)), np.float64))
                for y in range(3)]

    same = probs(jnp.zeros((3, 8)))
    moved = probs(jax.random.normal(jax.random.key(1), (3, 8)))
    for p in same + moved:
        np.testing.assert_allclose(p.sum(), 1.0, atol=1e-5)
    unconditional = np.exp(np.asarray(plain.log_prob(ALL_3X3_BINARY), np.float64))
    for p in same:  # zero table: the start vector alone, as in the unconditional model
        np.testing.assert_allclose(p, unconditional, rtol=1e-5, atol=1e-9)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert np.abs(moved[a] - moved[b]).max() > 1e-3, (a, b)


def test_conditional_transformer_is_autoregressive_given_the_class():
    """d theta_i / d input_j = 0 for j >= i (raster order) with a class token at position 0,
    and position 0's parameters depend on the class (they see nothing else)."""
    model = _perturb(_tiny_transformer(), jax.random.key(4), 0.3)
    x = jax.random.randint(jax.random.key(0), (3, 3, 3), 0, 2)
    labels = jnp.array([0, 1, 2])
    inputs = model.encode(x)  # [3, 3, 3, 2]

    def params_fn(inp, y):
        return model.params_from_inputs(inp[None], y[None])[0].reshape(9, -1)  # [D, P]

    jac = jax.jit(jax.vmap(jax.jacrev(params_fn)))(inputs, labels)  # [N, D, P, 3, 3, 2]
    dep = np.abs(np.asarray(jac).reshape(3, 9, -1, 9, 2)).max(axis=(0, 2, 4)) > 0  # [D, D]
    assert not np.any(dep & np.triu(np.ones((9, 9), bool))), np.argwhere(dep)[:5]
    assert dep[-1, :-1].all()  # and the last position sees all of the past
    first = jax.vmap(lambda y: params_fn(inputs[0], y)[0])(labels)  # [3, P]
    assert float(jnp.max(jnp.abs(first[0] - first[1]))) > 1e-4


def test_conditional_transformer_cached_sampling_equals_naive_with_a_context():
    model = _perturb(_tiny_transformer(), jax.random.key(5), 0.5)
    vector = _perturb(_tiny_transformer(num_classes=None, context_features=2),
                      jax.random.key(5), 0.5)
    labels = jnp.array([2, 0, 1, 1, 2, 0, 0, 2])
    vectors = jax.random.normal(jax.random.key(9), (8, 2))
    graphdef, state = nnx.split(model)
    vgraphdef, vstate = nnx.split(vector)

    @jax.jit
    def draws(key):
        m, v = nnx.merge(graphdef, state), nnx.merge(vgraphdef, vstate)
        return dict(
            fast=m.sample(key, 8, context=labels, temperature=0.5),
            naive=m.sample_naive(key, 8, context=labels, temperature=0.5),
            fast_default=m.sample(key, 8), balanced=m.sample(key, 8, context=jnp.arange(8) % 3),
            other=m.sample(key, 8, context=(labels + 1) % 3, temperature=0.5),
            vector_fast=v.sample(key, 8, context=vectors),
            vector_naive=v.sample_naive(key, 8, context=vectors))

    out = {k: np.asarray(v) for k, v in draws(jax.random.key(7)).items()}
    for fast, naive in (("fast", "naive"), ("vector_fast", "vector_naive")):
        assert out[fast].shape == (8, 3, 3) and out[fast].dtype == np.int32
        np.testing.assert_array_equal(out[fast], out[naive], err_msg=fast)
    # context=None draws class i mod 3 for sample i
    np.testing.assert_array_equal(out["fast_default"], out["balanced"])
    assert not np.array_equal(out["fast"], out["other"])  # the class changes the draws
    assert len(np.unique(out["fast"])) > 1


def test_transformer_refuses_bad_contexts_naming_the_value():
    model = _tiny_transformer()
    x = ALL_3X3_BINARY[:4]
    key = jax.random.key(0)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\), found min 0 and max 3"):
        model.log_prob(x, context=jnp.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"lie in \[0, 3\), found min -1"):
        model.sample(key, 2, context=jnp.array([-1, 0]))
    with pytest.raises(TypeError, match="integers, got dtype float32"):
        model.sample_naive(key, 2, context=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"expected \[4\] class labels.*shape \(3,\)"):
        model.log_prob(x, context=jnp.zeros(3, jnp.int32))
    with pytest.raises(ValueError, match="CausalTransformer is conditional: pass context"):
        model.log_prob(x)
    vector = _tiny_transformer(num_classes=None, context_features=2)
    with pytest.raises(ValueError, match=r"context of shape \[2, 2\], got \(2, 3\)"):
        vector.sample(key, 2, context=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[2, 2\] float vectors"):
        vector.sample(key, 2)  # no default for a vector context
    plain = _tiny_transformer(num_classes=None)
    assert plain.context_embed is None
    _assert_unconditional_refuses_contexts(plain, "CausalTransformer", x, key)


def test_registry_builds_the_conditional_transformer_from_its_config():
    from experiments import build
    from experiments.configs import transformer_digits_conditional
    from experiments.schema import ConfigError

    config = transformer_digits_conditional.get_config()
    assert config.data.conditional
    config.model.d_model, config.model.num_layers = 8, 1
    exp = build.build_experiment(config)
    assert exp.dataset.num_classes == 10 and exp.model.num_classes == 10
    assert exp.model.context_embed.weight.shape == (10, 8)
    test = exp.dataset.split_data("test")
    x, y = test.x[:4], test.context[:4]
    assert exp.model.log_prob(x, context=y).shape == (4,)
    config.model.scheduled_sampling = "linear"
    with pytest.raises(ConfigError, match="scheduled_sampling='none'"):
        build.build_experiment(config)


# ---------------------------------------------------------------------------------------
# Class-conditional NADE (the class embedding starts the hidden running sum).

ALL_5_BINARY = jnp.asarray(list(itertools.product([0, 1], repeat=5)),
                           jnp.int32).reshape(-1, 5)  # [32, 5]


def _tiny_nade(**kwargs):
    return NADE((5,), 2, 6, rngs=nnx.Rngs(0), **{"num_classes": 3, **kwargs})


def _nade_class_probs(model, xs):
    """``[3, K]`` float64: ``p(x | y)`` of every row of ``xs`` for each class (one jit)."""
    n = xs.shape[0]
    log_prob = jax.jit(lambda v, c: model.log_prob(v, context=c))
    return np.stack([np.exp(np.asarray(log_prob(xs, jnp.full((n,), y)), np.float64))
                     for y in range(3)])


def test_conditional_nade_sums_to_one_per_class_and_uses_the_class_embedding():
    """Every 5-bit x, for every class: p(x | y) sums to 1. With a zero class table every
    class is the unconditional NADE (same parameters otherwise); moving only the table makes
    the classes' distributions differ."""
    model, plain = _tiny_nade(), _tiny_nade(num_classes=None)
    nnx.update(plain, nnx.state(_perturb(plain, jax.random.key(3), 0.7), nnx.Param))
    for name in ("W", "c", "V", "b"):  # the same network, plus a class table
        getattr(model, name)[...] = getattr(plain, name)[...]
    model.context_hidden.weight[...] = jnp.zeros((3, 6))
    same = _nade_class_probs(model, ALL_5_BINARY)
    model.context_hidden.weight[...] = 2.0 * jax.random.normal(jax.random.key(1), (3, 6))
    moved = _nade_class_probs(model, ALL_5_BINARY)
    np.testing.assert_allclose(np.concatenate([same, moved]).sum(-1), 1.0, atol=1e-5)
    unconditional = np.exp(np.asarray(plain.log_prob(ALL_5_BINARY), np.float64))
    np.testing.assert_allclose(same, np.tile(unconditional, (3, 1)), rtol=1e-5, atol=1e-9)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert 0.5 * np.abs(moved[a] - moved[b]).sum() > 0.05, (a, b)


def test_conditional_nade_samples_follow_the_enumerated_class_conditionals():
    """The fast sampler draws p(x | y) for each class: total variation against the
    enumerated conditional below the McDiarmid bound of `test_ar_enumeration` (a sampler that
    ignored the class, drawing p(x | y') for y' != y, is further away than that); fast equals
    naive for the same key and classes; context=None gives class i mod 3."""
    from tests.test_ar_enumeration import tv_bound

    model = _perturb(_tiny_nade(), jax.random.key(6), 1.0)
    probs = _nade_class_probs(model, ALL_5_BINARY)  # [3, 32]
    num_samples = 20_000
    graphdef, state = nnx.split(model)

    @jax.jit
    def draws(key, labels):
        m = nnx.merge(graphdef, state)
        return m.sample(key, num_samples, context=labels)

    powers = 2 ** np.arange(4, -1, -1)
    for y in range(3):
        x = np.asarray(draws(jax.random.key(10 + y), jnp.full((num_samples,), y)))
        assert x.shape == (num_samples, 5) and x.dtype == np.int32
        freq = np.bincount(x @ powers, minlength=32) / num_samples
        tv = 0.5 * np.abs(freq - probs[y]).sum()
        bound = tv_bound(probs[y], num_samples)
        assert tv < bound, (y, tv, bound)
        others = [0.5 * np.abs(freq - probs[o]).sum() for o in range(3) if o != y]
        assert min(others) > bound, (y, others)

    @jax.jit
    def pair(key, labels):
        m = nnx.merge(graphdef, state)
        return (m.sample(key, 6, context=labels), m.sample_naive(key, 6, context=labels),
                m.sample(key, 6), m.sample(key, 6, context=jnp.arange(6) % 3))

    fast, naive, default, balanced = pair(jax.random.key(0), jnp.array([2, 0, 1, 1, 0, 2]))
    np.testing.assert_array_equal(fast, naive)
    np.testing.assert_array_equal(default, balanced)


def test_nade_refuses_bad_contexts_naming_the_problem():
    model = _tiny_nade()
    x, key = ALL_5_BINARY[:4], jax.random.key(0)
    with pytest.raises(ValueError, match="NADE is conditional: pass context"):
        model.log_prob(x)
    with pytest.raises(ValueError, match=r"lie in \[0, 3\), found min 0 and max 3"):
        model.log_prob(x, context=jnp.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match=r"expected \[4\] class labels.*shape \(3,\)"):
        model.log_prob(x, context=jnp.zeros(3, jnp.int32))
    with pytest.raises(TypeError, match="integers, got dtype float32"):
        model.sample(key, 2, context=jnp.zeros(2))
    with pytest.raises(ValueError, match=r"found min -1"):
        model.sample_naive(key, 2, context=jnp.array([-1, 0]))
    vector = _tiny_nade(num_classes=None, context_features=2)
    with pytest.raises(ValueError, match=r"context of shape \[2, 2\], got \(2, 3\)"):
        vector.sample(key, 2, context=jnp.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\[2, 2\] float vectors"):
        vector.sample(key, 2)
    plain = _tiny_nade(num_classes=None)
    assert plain.context_hidden is None
    _assert_unconditional_refuses_contexts(plain, "NADE", x, key)


def test_registry_builds_the_conditional_nade_from_its_config():
    from experiments import build
    from experiments.configs import nade_digits_conditional

    config = nade_digits_conditional.get_config()
    assert config.data.conditional
    config.model.hidden_size = 8
    exp = build.build_experiment(config)
    assert exp.dataset.num_classes == 10 and exp.model.num_classes == 10
    assert exp.model.context_hidden.weight.shape == (10, 8)
    test = exp.dataset.split_data("test")
    x, y = test.x[:4], test.context[:4]
    lp = exp.model.log_prob(x, context=y)
    assert lp.shape == (4,) and bool(jnp.all(jnp.isfinite(lp)))
    loss, _, _ = exp.objective.loss(exp.model, Labeled(x, y), jax.random.key(0), {})
    np.testing.assert_allclose(loss, -jnp.mean(lp), rtol=1e-6)


# ---------------------------------------------------------------------------------------
# The pipeline: labels reach the model through the batch.

def test_objective_and_evaluation_use_the_labels():
    model = _perturb(MADE((3,), 3, (8,), num_classes=3, rngs=nnx.Rngs(0)),
                     jax.random.key(7), 0.5)
    x = ALL_3_TERNARY
    y = jnp.arange(27) % 3
    batch = Labeled(x, y)
    loss, _, _ = MaximumLikelihood().loss(model, batch, jax.random.key(0), {})
    np.testing.assert_allclose(loss, -jnp.mean(model.log_prob(x, context=y)), rtol=1e-6)
    np.testing.assert_allclose(log_prob_of(model, batch), model.log_prob(x, context=y))
    nll = evaluate_nll(model, Labeled(np.asarray(x), np.asarray(y)), batch_size=10)
    np.testing.assert_allclose(nll, float(-jnp.mean(model.log_prob(x, context=y))),
                               rtol=1e-5)


def _train_conditional_made():
    """A conditional MADE on digits after 10 steps: ``(experiment, trained model)``."""
    from experiments import build
    from experiments.configs import made_digits, pixelcnn_digits
    from experiments.schema import ConfigError
    from jaxgen.training import TrainSettings, train

    config = made_digits.get_config()
    config.data.conditional = True
    config.model.hidden_sizes = (16,)
    exp = build.build_experiment(config)
    assert exp.dataset.is_conditional and exp.model.num_classes == 10
    settings = TrainSettings(num_steps=10, batch_size=64, eval_every=10, log_every=10,
                             seed=0, optim=exp.settings.train.optim)
    before = np.asarray(exp.model.context_out.weight[...]).copy()
    result = train(exp.model, exp.dataset, settings, objective=exp.objective)
    assert np.abs(np.asarray(result.model.context_out.weight[...]) - before).max() > 1e-4
    test = exp.dataset.split_data("test")
    expected = -float(jnp.mean(result.model.log_prob(test.x, context=test.context)))
    np.testing.assert_allclose(evaluate_nll(result.model, test), expected, rtol=1e-5)
    return exp, result.model


def test_conditional_config_trains_and_refuses_unconditional_models():
    from experiments import build
    from experiments.configs import pixelcnn_digits
    from experiments.schema import ConfigError

    _train_conditional_made()
    config = pixelcnn_digits.get_config()
    config.data.conditional = True
    with pytest.raises(ConfigError, match="conditional=True.*takes no context"):
        build.build_experiment(config)


def test_conditional_run_plots_one_row_per_class(tmp_path, monkeypatch):
    """``class_samples.png``: row ``c`` holds ``plot_ncols`` draws given class ``c``."""
    from experiments import report

    exp, model = _train_conditional_made()
    contexts, grids = [], {}
    real_sampler, real_grid = report.jit_sampler, report.viz.save_image_grid

    def sampler(model, n, **kwargs):
        contexts.append(kwargs.get("context"))
        return real_sampler(model, n, **kwargs)

    def grid(path, images, *args, **kwargs):
        grids[os.path.basename(path)] = real_grid(path, images, *args, **kwargs)
        return grids[os.path.basename(path)]

    monkeypatch.setattr(report, "jit_sampler", sampler)
    monkeypatch.setattr(report.viz, "save_image_grid", grid)
    files = report.write_plots(exp, model, np.zeros((0, 8, 8, 1)), str(tmp_path))
    ncols = exp.settings.eval.plot_ncols
    assert os.path.exists(files["class_samples"])
    np.testing.assert_array_equal(np.asarray(contexts[-1]), np.repeat(np.arange(10), ncols))
    rows_px, cols_px = grids["class_samples.png"].shape[:2]
    single = grids["samples.png"].shape[1] / ncols  # pixels per image column (with padding)
    assert cols_px == grids["samples.png"].shape[1]
    assert abs(rows_px - 10 * single) <= 8, (rows_px, single)  # 10 rows of images


def test_softmax_temperature_sharpens_the_heads_and_is_validated():
    from jaxgen.autoregressive.heads import CategoricalHead
    logits = jnp.tile(jnp.array([[0.0, 1.0, 2.0]]), (20000, 1))
    draws = CategoricalHead(3).sample(jax.random.key(0), logits, 0.5)
    freq = np.bincount(np.asarray(draws), minlength=3) / draws.size
    np.testing.assert_allclose(freq, jax.nn.softmax(2.0 * logits[0]), atol=0.012)
    made = MADE((3,), 3, (8,), rngs=nnx.Rngs(0))
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            made.sample(jax.random.key(0), 2, temperature=bad)
