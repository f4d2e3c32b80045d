"""Exposure bias: scheduled-sampling schedules and losses (parallel for any model, sequential
for the LSTM), their registry wiring, REINFORCE fine-tuning, and the exposure measures."""
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxgen.autoregressive import (SAMPLING_SCHEDULES, CausalTransformer, LSTMModel, complete,
                                   continuation_log_prob, continuation_nll,
                                   init_reinforce_state, make_reinforce_step, make_schedule,
                                   make_scheduled_sampling_loss, own_history_nll,
                                   parallel_scheduled_sampling_log_prob,
                                   scheduled_sampling_log_prob,
                                   sequential_scheduled_sampling_log_prob)
from jaxgen.training.state import merge_model, split_model
from jaxgen.training import MaximumLikelihood
from tests.testing import enumerate_grid

EVENT, LEVELS = (3, 4, 1), 5


def _lstm(event=EVENT, levels=LEVELS, hidden=12, seed=0):
    return LSTMModel(event, levels, hidden_size=hidden, rngs=nnx.Rngs(seed))


def _transformer(event=EVENT, levels=LEVELS):
    return CausalTransformer(event, levels, d_model=16, num_heads=2, num_layers=1,
                             rngs=nnx.Rngs(0))


MODELS = {"lstm": _lstm, "transformer": _transformer}


def _data(n=16, seed=1):
    return jax.random.randint(jax.random.key(seed), (n, *EVENT), 0, LEVELS)


def _grads(loss_fn, model):
    graphdef, params, rest = split_model(model)
    return jax.grad(lambda p: loss_fn(merge_model(graphdef, p, rest)))(params)


def _jit(model, fn):
    """``fn(model, *args)`` under one ``jax.jit`` (few compilations: eager mode compiles every
    primitive). Arrays must be passed as ``args``, not closed over."""
    graphdef, state = nnx.split(model)
    return functools.partial(jax.jit(lambda st, *a: fn(nnx.merge(graphdef, st), *a)), state)


def _assert_trees_close(a, b, **tol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), **tol)


# ------------------------------------------------------------------------------------------
# Schedules.


def test_schedules_at_known_steps():
    steps = jnp.array([0, 50, 100, 1000])
    linear = make_schedule("linear", k=1.0, c=0.01, min_value=0.2)
    np.testing.assert_allclose(linear(steps), [1.0, 0.5, 0.2, 0.2], atol=1e-6)
    exponential = make_schedule("exponential", k=0.99)
    np.testing.assert_allclose(exponential(steps), [1.0, 0.99 ** 50, 0.99 ** 100, 0.99 ** 1000],
                               rtol=1e-4)
    inv = make_schedule("inverse_sigmoid", k=10.0)
    half = 10.0 * math.log(10.0)  # k / (k + exp(i / k)) = 1/2  <=>  i = k log k
    np.testing.assert_allclose(inv(jnp.array([0.0, half, 100.0])),
                               [10 / 11, 0.5, 10 / (10 + math.exp(10))], rtol=1e-4)
    np.testing.assert_allclose(make_schedule("constant", k=0.3)(steps), [0.3] * 4, atol=1e-7)
    # A floor applies to every decaying schedule; huge steps give no NaN.
    np.testing.assert_allclose(make_schedule("inverse_sigmoid", k=2.0, min_value=0.1)(10 ** 6),
                               0.1, atol=1e-7)
    # Traced steps (jit) give the same numbers.
    np.testing.assert_allclose(jax.jit(inv)(jnp.int32(23)), inv(23), rtol=1e-6)


def test_bad_schedule_name_and_parameters_raise():
    with pytest.raises(ValueError, match="inverse_sigmoid") as err:
        make_schedule("cosine")
    assert all(name in str(err.value) for name in SAMPLING_SCHEDULES)
    assert "'cosine'" in str(err.value)
    with pytest.raises(ValueError, match="linear"):
        make_scheduled_sampling_loss("sigmoid")
    with pytest.raises(ValueError, match="0 < k <= 1"):
        make_schedule("exponential", k=1.5)
    with pytest.raises(ValueError, match="k >= 1"):
        make_schedule("inverse_sigmoid", k=0.5)
    with pytest.raises(ValueError, match="parallel"):
        make_scheduled_sampling_loss("linear", method="exact")
    with pytest.raises(ValueError, match="LSTMModel"):
        sequential_scheduled_sampling_log_prob(_transformer(), _data(), jax.random.key(0), 0.5)
    with pytest.raises(ValueError, match="p_truth"):
        parallel_scheduled_sampling_log_prob(_lstm(), _data(), jax.random.key(0), 1.5)


# ------------------------------------------------------------------------------------------
# Scheduled-sampling losses.


@pytest.mark.parametrize("name", sorted(MODELS))
def test_p_truth_one_is_teacher_forcing_exactly(name):
    model, x, key = MODELS[name](), _data(), jax.random.key(3)
    loss_fn, step0 = make_scheduled_sampling_loss("constant", k=1.0)

    def compute(m, x, key, step0):
        log_prob, mixed = parallel_scheduled_sampling_log_prob(m, x, key, 1.0)
        # Through the training-loop loss (constant schedule k = 1): same loss and gradients.
        loss, (metrics, step1) = loss_fn(m, x, key, step0)
        grads = (_grads(lambda mm: loss_fn(mm, x, key, step0)[0], m),
                 _grads(lambda mm: MaximumLikelihood().loss(mm, x, key, {})[0], m))
        return log_prob, m.log_prob(x), mixed, loss, MaximumLikelihood().loss(m, x, key, {})[0], metrics, step1, grads

    log_prob, tf_log_prob, mixed, loss, tf_loss, metrics, step1, grads = _jit(model, compute)(
        x, key, step0)
    np.testing.assert_array_equal(log_prob, tf_log_prob)
    assert bool(mixed.use_truth.all()) and bool((mixed.inputs == x).all())
    assert float(loss) == float(tf_loss) and int(step1) == 1
    assert float(metrics["p_truth"]) == 1.0 and float(metrics["model_input_fraction"]) == 0.0
    _assert_trees_close(*grads, rtol=1e-5, atol=1e-6)


def test_p_truth_zero_feeds_model_samples_without_gradient_through_them():
    """p = 0: the history is the model's one-step samples (no gradient through them), the
    targets stay the data; p = 0.7 (same compiled function): that share is the truth."""
    model, x, key = _lstm(), _data(n=48), jax.random.key(4)

    def compute(m, x, key, p):
        log_prob, mixed = parallel_scheduled_sampling_log_prob(m, x, key, p)
        # The one-step samples given the true history (the function's key split).
        guesses = m.head.sample(jax.random.split(key)[0], m.params_from_inputs(m.encode(x)))
        params = m.params_from_inputs(m.encode(mixed.inputs))
        expected = m.head.log_prob(params, x).reshape(x.shape[0], -1).sum(-1)
        # The gradient is that of the second pass with the sampled history held constant.
        inputs = jax.lax.stop_gradient(mixed.inputs)
        fixed = lambda mm: -jnp.mean(mm.head.log_prob(mm.params_from_inputs(mm.encode(inputs)),
                                                      x).reshape(x.shape[0], -1).sum(-1))
        ss = lambda mm: -jnp.mean(parallel_scheduled_sampling_log_prob(mm, x, key, p)[0])
        return (log_prob, mixed, guesses, expected, m.log_prob(x),
                (_grads(ss, m), _grads(fixed, m)))

    fn = _jit(model, compute)
    log_prob, mixed, guesses, expected, tf_log_prob, grads = fn(x, key, 0.0)
    assert not bool(mixed.use_truth.any())
    np.testing.assert_array_equal(mixed.inputs, guesses)
    assert float(jnp.mean(mixed.inputs != x)) > 0.5  # 5 levels, an untrained model
    np.testing.assert_allclose(log_prob, expected, rtol=1e-6)
    assert not np.allclose(log_prob, tf_log_prob)
    _assert_trees_close(*grads, rtol=1e-5, atol=1e-6)

    log_prob, mixed, guesses, expected, _, grads = fn(x, key, 0.7)
    use = np.asarray(mixed.use_truth)
    assert abs(use.mean() - 0.7) < 0.05, use.mean()
    np.testing.assert_array_equal(np.asarray(mixed.inputs)[use], np.asarray(x)[use])
    np.testing.assert_array_equal(np.asarray(mixed.inputs)[~use], np.asarray(guesses)[~use])
    np.testing.assert_allclose(log_prob, expected, rtol=1e-6)
    _assert_trees_close(*grads, rtol=1e-5, atol=1e-6)


def test_lstm_sequential_version():
    """p = 1: teacher forcing (values and gradients). p = 0: the fed sequence is an
    ancestral sample, each fed level the draw from the conditional given the *fed* (not the
    true) history with that step's key; the targets stay the data."""
    model, x, key = _lstm(), _data(), jax.random.key(6)
    b, d = x.shape[0], model.num_dims

    def compute(m, x, key):
        one = sequential_scheduled_sampling_log_prob(m, x, key, 1.0)
        seq = lambda mm: -jnp.mean(sequential_scheduled_sampling_log_prob(mm, x, key, 1.0)[0])
        grads = (_grads(seq, m), _grads(lambda mm: MaximumLikelihood().loss(mm, x, key, {})[0], m))
        zero_log_prob, zero = sequential_scheduled_sampling_log_prob(m, x, key, 0.0)
        params = m.params_from_inputs(m.encode(zero.inputs)).reshape(b, d, -1)  # fed history
        sample_keys = jax.vmap(lambda k: jax.random.split(k)[0])(jax.random.split(key, d))
        redrawn = jax.vmap(m.head.sample, (0, 1), 1)(sample_keys, params)  # [B, D]
        expected = m.head.log_prob(params.reshape(*x.shape, -1), x).reshape(b, -1).sum(-1)
        return one, m.log_prob(x), grads, zero_log_prob, zero, redrawn, expected

    one, tf_log_prob, grads, zero_log_prob, zero, redrawn, expected = _jit(model, compute)(
        x, key)
    np.testing.assert_allclose(one[0], tf_log_prob, rtol=1e-6, atol=1e-5)
    np.testing.assert_array_equal(one[1].inputs, x)
    _assert_trees_close(*grads, rtol=1e-4, atol=1e-6)
    assert not bool(zero.use_truth.any()) and float(jnp.mean(zero.inputs != x)) > 0.5
    np.testing.assert_array_equal(redrawn, zero.inputs.reshape(b, d))
    np.testing.assert_allclose(zero_log_prob, expected, rtol=1e-5, atol=1e-5)


def test_loss_counts_steps_and_follows_schedule_under_jit():
    model, x = _lstm(), _data()
    loss_fn, extra = make_scheduled_sampling_loss("linear", k=1.0, c=0.25, min_value=0.0,
                                                  method="sequential")
    graphdef, params, rest = split_model(model)
    step = jax.jit(lambda p, b, k, e: loss_fn(merge_model(graphdef, p, rest), b, k, e))
    seen = []
    for i in range(5):
        loss, (metrics, extra) = step(params, x, jax.random.key(i), extra)
        seen.append(float(metrics["p_truth"]))
        assert np.isfinite(float(loss))
    np.testing.assert_allclose(seen, [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-6)
    assert int(extra) == 5 and step._cache_size() == 1
    assert "nll_teacher_forced" not in metrics  # the sequential method has no free TF pass
    with pytest.raises(ValueError, match="method"):
        scheduled_sampling_log_prob(model, x, jax.random.key(0), 0.5, method="beam")


# ------------------------------------------------------------------------------------------
# Registry wiring.


def _ss_config(name, num_steps=4, **fields):
    from experiments.configs import common
    return common.get_config(
        data=common.data_config("digits"),
        model=common.model_config(name, **({"hidden_size": 8} if name == "lstm" else
                                           {"d_model": 8, "num_heads": 1, "num_layers": 1}),
                                  **fields),
        train=dict(num_steps=num_steps, batch_size=16, log_every=1, eval_every=0,
                   progress=False))


def test_registry_trains_lstm_with_scheduled_sampling():
    from experiments.build import build_experiment
    from jaxgen.autoregressive.objectives import ScheduledSampling
    from jaxgen.training import train
    config = _ss_config("lstm", scheduled_sampling="linear", scheduled_sampling_c=0.1,
                        scheduled_sampling_min=0.75, scheduled_sampling_method="sequential")
    exp = build_experiment(config)
    assert isinstance(exp.objective, ScheduledSampling) and exp.objective.method == "sequential"
    result = train(exp.model, exp.dataset, exp.settings.train, None, objective=exp.objective)
    p_truth = [r["p_truth"] for r in result.history if r["split"] == "train"]
    np.testing.assert_allclose(p_truth, [1.0, 0.9, 0.8, 0.75], atol=1e-6)


def test_registry_defaults_keep_teacher_forcing_and_reject_bad_fields():
    from experiments.configs.transformer_digits import get_config
    from experiments.build import build_experiment
    from jaxgen.autoregressive.objectives import ScheduledSampling
    config = get_config()
    assert config.model.scheduled_sampling == "none"
    assert type(build_experiment(config).objective) is MaximumLikelihood
    ss = build_experiment(_ss_config("transformer", scheduled_sampling="exponential",
                                     scheduled_sampling_k=0.99)).objective
    assert isinstance(ss, ScheduledSampling) and (ss.schedule, ss.k) == ("exponential", 0.99)
    with pytest.raises(ValueError, match="inverse_sigmoid") as err:
        build_experiment(_ss_config("lstm", scheduled_sampling="cosine"))
    assert "config.model.scheduled_sampling" in str(err.value)
    with pytest.raises(ValueError, match="needs the lstm"):
        build_experiment(_ss_config("transformer", scheduled_sampling="linear",
                                    scheduled_sampling_method="sequential"))


# ------------------------------------------------------------------------------------------
# REINFORCE.


def _ones_reward(samples):  # [n, 8] -> [n]
    return jnp.sum(samples, axis=-1).astype(jnp.float32)


def test_reinforce_raises_mean_reward_on_toy_task():
    """A small LSTM over 8 binary positions; reward = number of ones (max 8). Measured with
    this seed (512 samples): mean reward 3.88 before, 8.00 after 150 steps."""
    model = LSTMModel((8,), 2, hidden_size=16, rngs=nnx.Rngs(0))
    mean_reward = lambda m, key: _ones_reward(m.sample(key, 512)).mean()
    before = float(_jit(model, mean_reward)(jax.random.key(999)))
    optimizer = optax.adam(0.03)
    graphdef, state = init_reinforce_state(model, optimizer)
    step = jax.jit(make_reinforce_step(graphdef, optimizer, _ones_reward, num_samples=64,
                                       baseline="moving_average", baseline_decay=0.8))
    rewards = []
    for i in range(150):
        state, metrics = step(state, jax.random.key(i))
        rewards.append(float(metrics["reward"]))
    assert int(state.step) == 150 and step._cache_size() == 1
    trained = merge_model(graphdef, state.params, state.model_state)
    after = float(_jit(trained, mean_reward)(jax.random.key(999)))
    print(f"REINFORCE toy: mean reward {before:.3f} -> {after:.3f}")
    assert 3.5 < before < 4.5, before  # an untrained model is near fair coins
    assert after > 7.0, (before, after)
    assert np.mean(rewards[-10:]) > 7.0


@pytest.mark.parametrize("baseline", ["batch_mean", "leave_one_out"])
def test_reinforce_constant_reward_with_baseline_gives_zero_gradient(baseline):
    model = _lstm(event=(6,), levels=3)
    optimizer = optax.sgd(1.0)
    graphdef, state = init_reinforce_state(model, optimizer)
    step = jax.jit(make_reinforce_step(graphdef, optimizer, lambda s: jnp.full(s.shape[0], 2.5),
                                       num_samples=8, baseline=baseline))
    new_state, metrics = step(state, jax.random.key(0))
    assert float(metrics["grad_norm"]) == 0.0 and float(metrics["baseline"]) == 2.5
    _assert_trees_close(new_state.params, state.params, rtol=0, atol=0)


def test_reinforce_gradient_is_advantage_weighted_score():
    """Without a baseline the update is -lr * grad of -(1/n) sum R(x) log p(x)."""
    model = _lstm(event=(6,), levels=3)
    optimizer = optax.sgd(1.0)
    graphdef, state = init_reinforce_state(model, optimizer)
    reward = lambda s: jnp.sum(s == 2, axis=-1).astype(jnp.float32)
    step = jax.jit(make_reinforce_step(graphdef, optimizer, reward, num_samples=8,
                                       baseline="none"))
    new_state, _ = step(state, jax.random.key(1))

    def expected_update(m, key):
        samples = m.sample(key, 8)
        grads = _grads(lambda mm: -jnp.mean(reward(samples) * mm.log_prob(samples)), m)
        return jax.tree.map(lambda p, g: p - g, nnx.state(m, nnx.Param), grads)

    _assert_trees_close(new_state.params, _jit(model, expected_update)(jax.random.key(1)),
                        rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="moving_average"):
        make_reinforce_step(graphdef, optimizer, reward, num_samples=8, baseline="median")
    bad = jax.jit(make_reinforce_step(graphdef, optimizer, lambda s: s.sum(), num_samples=8))
    with pytest.raises(ValueError, match="one reward per sample"):
        bad(state, jax.random.key(0))


# ------------------------------------------------------------------------------------------
# Exposure measures.


def test_complete_keeps_prefix_and_matches_naive_sampling():
    model, x, key = _lstm(), _data(n=5), jax.random.key(8)
    fn = _jit(model, lambda m, x, key: (complete(m, key, x, 0), m.sample_naive(key, 5),
                                        complete(m, key, x, 7)))
    from_scratch, naive, completed = fn(x, key)
    np.testing.assert_array_equal(from_scratch, naive)
    c, x_flat = np.asarray(completed).reshape(5, -1), np.asarray(x).reshape(5, -1)
    np.testing.assert_array_equal(c[:, :7], x_flat[:, :7])
    assert (c[:, 7:] != x_flat[:, 7:]).any()
    with pytest.raises(ValueError, match="prefix_len"):
        complete(model, key, x, model.num_dims)
    with pytest.raises(ValueError, match="replace_prob"):
        own_history_nll(model, key, x, 1.5)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_exposure_measures_run_and_are_consistent(name):
    model, x, key = MODELS[name](), _data(n=64), jax.random.key(9)
    d = model.num_dims

    def compute(m, x, key):
        result = continuation_nll(m, key, x, prefix_len=6)
        return (result, result.exposure_gap,
                -jnp.mean(continuation_log_prob(m, x, 6)) / (d - 6),
                -jnp.mean(continuation_log_prob(m, x, 0)), -jnp.mean(m.log_prob(x)),
                own_history_nll(m, key, x, 0.0), own_history_nll(m, key, x, 0.5))

    result, gap, cont6, cont0, nll, own0, own_half = _jit(model, compute)(x, key)
    values = [float(v) for v in (*result, gap, own_half)]
    assert all(np.isfinite(values)), values
    # "data" is the teacher-forced NLL of the last D - L positions, per position.
    np.testing.assert_allclose(float(result.data), float(cont6), rtol=1e-6)
    np.testing.assert_allclose(float(cont0), float(nll), rtol=1e-6)
    # Own-history NLL: q = 0 is the teacher-forced NLL per dimension.
    np.testing.assert_allclose(float(own0), float(nll) / d, rtol=1e-6)
    assert all(v > 0 for v in values[:3] + values[4:]), values
    if name == "lstm":  # an untrained LSTM is near uniform over 5 levels: each term ~ log 5
        for value in (*result, own_half):
            assert abs(float(value) - math.log(LEVELS)) < 0.1, (result, own_half)


def test_continuation_nll_against_enumeration():
    """The three continuation NLLs and the exposure gap of a peaked transformer on 3^4
    sequences, against expectations computed from the enumerated joint p(x) alone
    (marginals and conditionals by summing it), within 5 standard errors (also from the
    enumeration). Data = the model's own samples: the gap is 0. Data = all-zero sequences:
    "data" is -log p(0, 0 | 0, 0) / 2 exactly, and the gap is
    (H(X_{>=2} | X_{<2}) - H(X_{>=2} | X_{<2} = 0)) / 2 (0.21 nats here)."""
    num_dims, levels, prefix_len, n = 4, 3, 2, 2000
    model = _transformer(event=(num_dims,), levels=levels)
    rng = np.random.RandomState(0)
    nnx.update(model, jax.tree.map(  # far from uniform, and far from ignoring the prefix
        lambda p: p + 0.5 * rng.standard_normal(p.shape).astype(np.float32),
        nnx.state(model, nnx.Param)))
    grid = enumerate_grid((num_dims,), levels)  # [81, 4], row r = base-3 digits of r
    log_joint = np.asarray(_jit(model, lambda m, g: m.log_prob(g))(jnp.asarray(grid)),
                           np.float64)
    joint = np.exp(log_joint).reshape(levels ** prefix_len, -1)  # [prefix, continuation]
    assert abs(joint.sum() - 1.0) < 1e-5
    cond = joint / joint.sum(axis=1, keepdims=True)  # p(continuation | prefix)
    nats = -np.log(cond) / (num_dims - prefix_len)  # per continuation position
    mean_all, mean_zero = (joint * nats).sum(), (cond[0] * nats[0]).sum()
    sd_all = np.sqrt((joint * (nats - mean_all) ** 2).sum() / n)
    sd_zero = np.sqrt((cond[0] * (nats[0] - mean_zero) ** 2).sum() / n)
    assert abs(mean_all - mean_zero) > 10 * np.hypot(sd_all, sd_zero)  # the cases differ

    measure = _jit(model, lambda m, x, key: continuation_nll(m, key, x, prefix_len))
    own = _jit(model, lambda m, key: m.sample(key, n))(jax.random.key(3))
    result = measure(own, jax.random.key(4))
    assert abs(float(result.data) - mean_all) < 5 * sd_all, (result, mean_all)
    assert abs(float(result.own_after_data_prefix) - mean_all) < 5 * sd_all, result
    assert abs(float(result.own_after_own_prefix) - mean_all) < 5 * sd_all, result
    assert abs(float(result.exposure_gap)) < 5 * np.sqrt(2) * sd_all, result

    result = measure(jnp.zeros((n, num_dims), jnp.int32), jax.random.key(4))
    np.testing.assert_allclose(float(result.data), nats[0, 0], rtol=1e-5)
    assert abs(float(result.own_after_data_prefix) - mean_zero) < 5 * sd_zero, result
    assert abs(float(result.own_after_own_prefix) - mean_all) < 5 * sd_all, result
    assert abs(float(result.exposure_gap) - (mean_all - mean_zero)) < 5 * np.hypot(
        sd_all, sd_zero), (result, mean_all - mean_zero)
