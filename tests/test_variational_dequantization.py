"""Variational dequantization (Flow++): q(u | x) is a normalized density on (0, 1)^D whose
log-determinant matches autodiff, its samples stay in the cells, and on a tiny 2-D model
with K = 4 levels the single-sample bound >= the importance-weighted estimate >= the exact
-log P(x) (grid quadrature of the density over each cell); a new (uniform) dequantizer
gives uniform dequantization's NLL. Then the pipeline: ``data.dequantize="variational"``
trains through `run_experiment` and reports the bound and the IW estimate."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.data.preprocessing import dequantize, make_preprocessing
from jaxgen.flows import (AffineCoupling, Inverse, Logit, StandardNormal,
                          TransformedDistribution, chain_in_order)
from jaxgen.flows.variational_dequantization import (ConditionalDequantizer,
                                                     VariationallyDequantized)
from jaxgen.nn.mlp import MLP

K = 4  # levels of the tiny 2-D case
ALL_X = np.stack(np.meshgrid(np.arange(K), np.arange(K), indexing="ij"), -1).reshape(-1, 2)


def _perturb(module, seed, scale):
    """Adds N(0, scale^2) to every parameter (zero-initialized last layers would leave the
    couplings at the identity)."""
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [p + scale * jax.random.normal(k, p.shape) for p, k in zip(leaves, keys)]
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves), rest)


def _density_2d(seed=0):
    """A 2-D flow on [0, 1]^2: Logit, two affine couplings, normal base (perturbed)."""
    rngs = nnx.Rngs(seed)
    couplings = [AffineCoupling(MLP(1, 8, 2, 1, rngs=rngs), 2, "half", p) for p in (0, 1)]
    flow = TransformedDistribution(StandardNormal((2,)),
                                   Inverse(chain_in_order([Logit(0.05)] + couplings)))
    return _perturb(flow, seed + 100, 0.4)


def _dequantizer_2d(seed=1, scale=0.3, amplitude=0.3):
    """A perturbed 2-D dequantizer. ``amplitude`` sets the couplings' log-scale bound
    ``|s| <= a`` (two couplings per entry: q_u(u) ~ u^(e^-S - 1) at the edges with
    ``|S| <= 2a``), keeping the importance weights' variance finite and q_z's tails light."""
    deq = ConditionalDequantizer((2,), K, num_couplings=4, hidden_channels=8,
                                 context_features=4, rngs=nnx.Rngs(seed))
    if scale == 0:
        return deq
    deq = _perturb(deq, seed + 100, scale)
    if amplitude is not None:
        for _, module in nnx.iter_modules(deq):
            if isinstance(module, AffineCoupling):
                module.scale[...] = jnp.full(module.scale[...].shape, amplitude)
    return deq


def _midpoints(n):
    return (np.arange(n) + 0.5) / n


def _cell_log_density(density, n=400):
    """``log p((x + u) / K)`` for every cell x (ALL_X) on an n x n midpoint grid of u:
    ``[16, n * n]`` (one jit call)."""
    graphdef, state = nnx.split(density)
    g = jnp.asarray(_midpoints(n), jnp.float32)
    u = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)  # [N, 2]

    @jax.jit
    def fn(state, x):
        y = (x[:, None, :] + u[None]) / K  # [16, N, 2]
        return nnx.merge(graphdef, state).log_prob(y.reshape(-1, 2)).reshape(y.shape[:2])

    return np.asarray(fn(state, jnp.asarray(ALL_X, jnp.float32)), np.float64)


def _exact_nll_2d(density):
    """-log P(x) = -log K^-2 int_{[0,1)^2} p((x + u) / K) du (midpoint rule 400 x 400)."""
    log_p = _cell_log_density(density)
    return -(np.asarray(jax.nn.logsumexp(log_p, axis=1)) - math.log(log_p.shape[1])
             - 2 * math.log(K))


def _uniform_nll_2d(density):
    """Uniform dequantization's NLL, E_u[-log p((x + u) / K)] + 2 log K (midpoint rule)."""
    return -_cell_log_density(density).mean(axis=1) + 2 * math.log(K)


def _log_weights(model, x, key, num_samples):
    """log w [S, B] (jit once per S)."""
    graphdef, state = nnx.split(model.with_num_samples(num_samples))
    fn = jax.jit(lambda state, x, key: nnx.merge(graphdef, state).log_weights(x, key))
    return np.asarray(fn(state, jnp.asarray(x, jnp.int32), key), np.float64)


def test_new_dequantizer_is_exactly_uniform():
    deq = _dequantizer_2d(scale=0)
    x = jnp.asarray(ALL_X, jnp.int32)
    u = jax.random.uniform(jax.random.key(0), x.shape, minval=0.01, maxval=0.99)
    np.testing.assert_allclose(deq.log_prob(u, x), 0.0, atol=1e-5)
    image = ConditionalDequantizer((3, 3, 2), 5, num_couplings=2, hidden_channels=4,
                                   rngs=nnx.Rngs(0))
    xi = jax.random.randint(jax.random.key(1), (4, 3, 3, 2), 0, 5)
    _, log_q = image.sample_and_log_prob(jax.random.key(2), xi, num_samples=3)
    np.testing.assert_allclose(log_q, 0.0, atol=1e-4)


def test_log_q_integrates_to_one():
    """int_{(0,1)^2} q(u | x) du = int_{R^2} q_z(z | x) dz = 1 for every x (z = logit u),
    midpoint rule, 600 x 600 over [-30, 30]^2 (log-scale amplitude 0.3: q_z's tails are
    light enough for the box); the sigmoid's own log-det is checked against autodiff below."""
    deq = _dequantizer_2d()
    n, half = 600, 30.0
    g = jnp.asarray((_midpoints(n) * 2 - 1) * half, jnp.float32)
    z = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    graphdef, state = nnx.split(deq)

    @jax.jit
    def mass(state, x):
        log_q = nnx.merge(graphdef, state).log_prob_logit(z, jnp.broadcast_to(x, z.shape))
        return jnp.exp(jax.nn.logsumexp(log_q)) * (2 * half / n) ** 2

    for x in ALL_X[[0, 5, 10, 15, 3]]:
        assert abs(float(mass(state, jnp.asarray(x, jnp.int32))) - 1.0) < 2e-3, x
    # and q depends on x (the test above is not about one density)
    u = jnp.full((2, 2), 0.3)
    log_q = deq.log_prob(u, jnp.asarray([[0, 0], [3, 3]], jnp.int32))
    assert abs(float(log_q[0] - log_q[1])) > 1e-2


def test_log_det_matches_autodiff_and_inverse():
    """log q(u | x) = log p_logistic(eps) - log|det du/deps| with the Jacobian by autodiff
    (images, spatial context), and the inverse path's log q agrees with the sampler's."""
    deq = _perturb(ConditionalDequantizer((2, 2, 1), 5, num_couplings=3, hidden_channels=4,
                                          context_features=3, rngs=nnx.Rngs(3)), 4, 0.3)
    x = jax.random.randint(jax.random.key(5), (3, 2, 2, 1), 0, 5)
    u, log_q = deq.sample_and_log_prob(jax.random.key(6), x)
    u, log_q = u[0], log_q[0]
    h = deq.embed(x)
    z = jnp.log(u) - jnp.log1p(-u)
    eps = deq.couplings.inverse_and_log_det(z, context=h)[0]  # [B, 2, 2, 1]
    for i in range(3):
        jac = jax.jacfwd(lambda e: deq.forward_and_log_det(e[None], h[i:i + 1])[0][0])(eps[i])
        log_det = jnp.linalg.slogdet(jac.reshape(4, 4))[1]
        log_logistic = jnp.sum(-eps[i] - 2 * jnp.log1p(jnp.exp(-eps[i])))
        np.testing.assert_allclose(log_q[i], log_logistic - log_det, atol=2e-4)
    np.testing.assert_allclose(deq.log_prob(u, x), log_q, atol=2e-4)


def test_samples_lie_in_their_cells():
    deq = _dequantizer_2d(scale=1.0, amplitude=None)  # strongly non-uniform
    x = jnp.asarray(np.repeat(ALL_X, 64, axis=0), jnp.int32)
    u, _ = deq.sample_and_log_prob(jax.random.key(7), x, num_samples=8)
    u = np.asarray(u)
    assert np.all(u > 0) and np.all(u < 1)
    x_s = np.broadcast_to(np.asarray(x), u.shape)
    assert np.all(np.floor(x_s + u) == x_s)
    y = np.asarray(dequantize(jnp.asarray(x_s), jnp.asarray(u), K))
    assert np.all(np.floor(y * K) == x_s)


def test_bound_ge_importance_weighted_ge_exact():
    """On every cell of a 2-D model with K = 4: E[-log w] >= E[-log mean_8 w] >= -log P(x)
    (exact by quadrature), each gap beyond 4 standard errors; and mean w over 32768 draws
    (the S -> infinity limit) recovers P(x) within 4 standard errors (delta method) + 0.01
    (a missing D log K, sigmoid log-det or q normalization is off by far more)."""
    model = VariationallyDequantized(_density_2d(), _dequantizer_2d(), K)
    exact = _exact_nll_2d(model.density)
    # probabilities of disjoint cells of [0, 1)^2: each <= 1, the sum too
    assert np.all(exact > 0) and np.exp(-exact).sum() <= 1.0 + 1e-4
    log_w = _log_weights(model, ALL_X, jax.random.key(8), 32768)  # [S, 16]
    bound = -log_w  # single-sample estimates
    iw = -(jax.nn.logsumexp(log_w.reshape(-1, 8, 16), axis=1) - math.log(8))  # [4096, 16]
    iw = np.asarray(iw)
    se = lambda a: a.std(0) / math.sqrt(a.shape[0])
    gap = bound.reshape(-1, 8, 16).mean(1) - iw  # paired: same draws
    assert np.all(gap.mean(0) > 4 * se(gap)), (gap.mean(0), se(gap))
    assert np.all(iw.mean(0) - exact > -4 * se(iw)), (iw.mean(0), exact, se(iw))
    assert np.all(bound.mean(0) - exact > 4 * se(bound))  # q is not the posterior here
    w = np.exp(log_w - log_w.max(0))
    limit = -(np.log(w.mean(0)) + log_w.max(0))
    se_limit = w.std(0) / w.mean(0) / math.sqrt(w.shape[0])
    assert np.all(se_limit < 0.15), se_limit  # the check below is not vacuous
    assert np.all(np.abs(limit - exact) < 4 * se_limit + 0.01), (limit - exact, se_limit)


def test_uniform_dequantizer_gives_uniform_dequantization_nll():
    """A new dequantizer (uniform q): the bound's mean equals E_u[-log p((x + u)/K)] + D log K
    (quadrature), and so does the uniform `Preprocessing` path's NLL + offset."""
    density = _density_2d(seed=2)
    model = VariationallyDequantized(density, _dequantizer_2d(scale=0), K)
    expected = _uniform_nll_2d(density)
    bound = -_log_weights(model, ALL_X, jax.random.key(9), 16384)
    se = bound.std(0) / math.sqrt(bound.shape[0])
    assert np.all(np.abs(bound.mean(0) - expected) < 4 * se + 1e-4), (bound.mean(0), expected)

    class _Data:
        name, num_levels, num_dims, train = "tiny", K, 2, ALL_X

    pre = make_preprocessing(_Data, "uniform", jax.random.key(0))
    x_rep = np.repeat(ALL_X, 4096, axis=0)
    y = pre(jax.random.key(10), x_rep)
    nll = -np.asarray(jax.jit(lambda s, y: nnx.merge(*s).log_prob(y))(nnx.split(density), y),
                      np.float64).reshape(16, 4096) + pre.nll_offset_nats
    se_pre = nll.std(1) / math.sqrt(4096)
    assert np.all(np.abs(nll.mean(1) - expected) < 4 * se_pre + 1e-4)


def test_bad_input_is_refused_eagerly():
    model = VariationallyDequantized(_density_2d(), _dequantizer_2d(scale=0), K)
    with pytest.raises(TypeError, match="integer level indices, got dtype float32"):
        model.log_prob(jnp.zeros((2, 2), jnp.float32))
    with pytest.raises(ValueError, match=r"levels in \[0, 4\), got values in \[0, 4\]"):
        model.log_prob(jnp.asarray([[0, 4]], jnp.int32))
    with pytest.raises(ValueError, match=r"\[B, \*\(2,\)\]"):
        model.log_prob(jnp.zeros((2, 3), jnp.int32))
    with pytest.raises(ValueError, match="vector event"):
        ConditionalDequantizer((1,), K, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="num_levels"):
        ConditionalDequantizer((2,), 1, rngs=nnx.Rngs(0))


# --- the pipeline ---------------------------------------------------------------------------

def _tiny_config():
    from experiments.configs import common

    return common.get_config(
        data=common.data_config("digits", dequantize="variational", dequantizer_couplings=2,
                                dequantizer_hidden_channels=4, dequantizer_context_features=2,
                                iw_samples=4),
        model=common.model_config("glow", num_scales=2, num_steps=1, hidden_channels=4),
        seed=1,
        train=dict(num_steps=4, batch_size=32, log_every=2, eval_every=4, ema_decay=0.5,
                   progress=False),
        sampler=dict(num_samples=4, timing_repeats=1),
        eval=dict(batch_size=500, num_plot_samples=4, plot_ncols=4))


def test_variational_config_trains_and_reports_bound_and_iw(tmp_path):
    from experiments.build import build_experiment
    from experiments.evaluate import evaluate_run
    from experiments.load import load_run
    from experiments.run import run_experiment
    from jaxgen.training.state import split_model

    config = _tiny_config()
    exp = build_experiment(config)
    assert isinstance(exp.model, VariationallyDequantized)
    assert exp.preprocessing.nll_offset_nats == 0.0 and not exp.preprocessing.active
    _, params0, _ = split_model(exp.model)
    final = {}
    results = run_experiment(config, str(tmp_path / "run"),
                             callback=lambda step, state: final.update(state=state))
    moved = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))),
                         params0, final["state"].params)
    assert all(jax.tree.leaves(moved["dequantizer"])) and all(jax.tree.leaves(moved["density"]))
    assert results["dequantize"] == "variational" and results["iw_samples"] == 4
    assert "variational" in results["nll_units"]
    # IW (4 draws) below the single-draw bound: a gap of nats per example on 64 dims.
    assert results["test_nll_iw_nats"] < results["test_nll_nats"]
    assert results["test_bits_per_dim_iw"] == pytest.approx(
        results["test_nll_iw_nats"] / (64 * math.log(2)))
    # bits/dim of the bound = nats / (D ln 2): no D log K offset added a second time
    assert results["test_bits_per_dim"] == pytest.approx(
        results["test_nll_nats"] / (64 * math.log(2)))
    run = load_run(str(tmp_path / "run"))
    assert isinstance(run.model, VariationallyDequantized)
    assert evaluate_run(run)["nll_nats"] == pytest.approx(results["test_nll_nats"], rel=1e-5)
    record = evaluate_run(run, iw_samples=4)  # the CLI's --iw_samples: results' IW figure
    assert record["nll_iw_nats"] == pytest.approx(results["test_nll_iw_nats"], rel=1e-5)
    samples = run.model.sample(jax.random.key(0), 3)
    assert samples.dtype == jnp.int32 and samples.shape == (3, 8, 8, 1)
    assert int(samples.min()) >= 0 and int(samples.max()) < 17


def test_variational_fields_need_variational_dequantization():
    from experiments import schema
    from experiments.configs import common

    config = _tiny_config()
    config.data.dequantize = "uniform"
    with pytest.raises(schema.ConfigError, match="dequantizer_.* variational dequantization only"):
        schema.validate(config)
    config = _tiny_config()
    config.data.iw_samples = 0
    with pytest.raises(schema.ConfigError, match="iw_samples"):
        schema.validate(config)
    ebm = common.get_config(data=common.data_config("digits", dequantize="variational"),
                            model=common.model_config("ebm_conv"))
    from experiments.build import build_experiment

    with pytest.raises(schema.ConfigError, match="maximum likelihood"):
        build_experiment(ebm)
