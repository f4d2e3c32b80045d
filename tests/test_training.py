"""Training loop: exact resume, data parallelism, NaN stop, recompilation, early stopping,
checkpoint pruning, settings validation."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.training import (MaximumLikelihood, Objective, OptimSettings, TrainSettings,
                             evaluate_nll, train)
from jaxgen.training.optim import make_optimizer
from jaxgen.training.state import init_train_state, split_model
from jaxgen.training.steps import make_train_step
from tests import training_fixtures as fx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _params_of(model):
    return jax.tree.map(np.asarray, nnx.state(model, nnx.Param))


def _run_script(code, env_extra=None):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


def test_kill_and_resume_gives_identical_params(tmp_path):
    straight = fx.run(str(tmp_path / "a"))
    # Run B: a separate process killed (SIGKILL, from a train callback, as a scheduler
    # would) right after its step-20 checkpoint ...
    proc = _run_script(f"""
        from tests import training_fixtures as fx
        fx.run({str(tmp_path / 'b')!r}, callback=fx.kill_at(20))
    """)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert os.path.isdir(tmp_path / "b" / "checkpoints" / "20")
    assert not os.path.isdir(tmp_path / "b" / "checkpoints" / "60")
    # ... then resumed with the same workdir.
    resumed = fx.run(str(tmp_path / "b"))
    assert resumed.train_steps == straight.train_steps == 60
    chex.assert_trees_all_equal(_params_of(straight.model), _params_of(resumed.model))
    assert resumed.best_valid_nll == straight.best_valid_nll
    # metrics.jsonl of the resumed run holds each step once.
    records = [json.loads(l) for l in open(tmp_path / "b" / "metrics.jsonl")]
    steps = [(r["step"], r["split"]) for r in records]
    assert len(steps) == len(set(steps))
    assert max(s for s, _ in steps) == 60


def test_fsdp_on_four_devices_resumes_on_two_and_one_to_the_one_device_run(tmp_path):
    """Data parallel over 4 devices with sharded parameters and optimizer state
    (``sharding="fsdp"``) takes the steps one device takes, and its checkpoint (orbax's
    global arrays) resumes on 2 devices (replicated) and on 1 (fsdp over one device) to the
    parameters of a straight 1-device run."""
    import shutil
    code = """
        import json, os, signal, numpy as np, jax
        from flax import nnx
        from jax.sharding import PartitionSpec as P
        from jaxgen.training import TrainingInterrupted
        from tests import training_fixtures as fx
        assert jax.device_count() == {n}, jax.devices()
        seen = {{}}
        def note(step, state):  # the sharding the step runs with; Ctrl-C at step `stop`
            specs = [leaf.sharding.spec for leaf in jax.tree.leaves(state.params)]
            seen["sharded"] = sum(spec != P() for spec in specs)
            if step == {stop}:
                os.kill(os.getpid(), signal.SIGINT)
        try:
            res = fx.run_wide({workdir!r}, num_steps=40, eval_every=10, checkpoint_every=10,
                              sharding={mode!r}, callback=note)
        except TrainingInterrupted as stopped:
            print(json.dumps(dict(seen, steps=stopped.step)))
        else:
            flat = jax.tree.leaves(jax.tree.map(np.asarray, nnx.state(res.model, nnx.Param)))
            np.savez({out!r}, *flat)
            print(json.dumps(dict(seen, steps=res.train_steps)))
    """

    def run(n, mode, workdir, stop=-1):
        out = str(tmp_path / f"{os.path.basename(workdir)}-{n}.npz")
        proc = _run_script(code.format(n=n, mode=mode, workdir=workdir, stop=stop, out=out),
                           {"XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
                            + f" --xla_force_host_platform_device_count={n}"})
        assert proc.returncode == 0, proc.stderr[-3000:]
        info = json.loads(proc.stdout.strip().splitlines()[-1])
        return info, (np.load(out) if os.path.exists(out) else None)

    four, on_two, on_one = (str(tmp_path / name) for name in ("four", "two", "one"))
    info, _ = run(4, "fsdp", four, stop=20)  # interrupted at step 20 of 40
    # the 64x64 kernel is sharded (the biases and the 1x64 / 64x1 kernels are below
    # FSDP_MIN_SIZE and stay replicated)
    assert info == {"sharded": 1, "steps": 20}, info
    shutil.copytree(four, on_two)
    shutil.copytree(four, on_one)
    resumed_two, params_two = run(2, "replicated", on_two)
    resumed_one, params_one = run(1, "fsdp", on_one)
    assert resumed_two["sharded"] == 0 and resumed_two["steps"] == resumed_one["steps"] == 40
    _, straight = run(1, "replicated", str(tmp_path / "straight"))
    # The device count changes the order of the gradient's sums (float32 rounding, ~1e-7).
    # Adam divides each gradient entry by its running RMS, so for an entry whose gradient
    # is near zero that rounding can move the update by a fraction of the step size (lr
    # 0.02): all entries agree to 1e-3 (5% of one step), and all but 0.1% to 1e-5.
    for name in straight.files:
        for params in (params_two, params_one):
            np.testing.assert_allclose(params[name], straight[name], atol=1e-3, rtol=0)
            close = np.isclose(params[name], straight[name], atol=1e-5, rtol=1e-5)
            assert close.mean() >= 0.999, (name, close.size - close.sum())


class _NaNAfter(nnx.Module):
    def __init__(self, *, rngs):
        self.event_shape = (2,)
        self.mean = nnx.Param(jnp.zeros(2))

    def log_prob(self, x):
        return -jnp.sum((x - self.mean[...]) ** 2, -1)


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tmp_path):
    # The loss turns NaN at step 15 exactly; checkpoints every 10 steps.
    objective = fx.Scheduled(lambda t: jnp.where(t >= 15, jnp.nan, 1.0))
    settings = fx.tiny_settings(num_steps=40, log_every=10, checkpoint_every=10, eval_every=0)
    with pytest.raises(FloatingPointError, match=r"non-finite loss or gradient at step 15: "
                       r"training stopped; the last good checkpoint is step 10"):
        train(_NaNAfter(rngs=nnx.Rngs(0)), fx.tiny_data(), settings, str(tmp_path),
              objective=objective)
    # the loop raised at the first log after the bad step (20): nothing from then was saved
    assert sorted(s for s in os.listdir(tmp_path / "checkpoints") if s.isdigit()) == ["10"]


def test_nan_stop_keeps_last_good_checkpoint(tmp_path):
    data = fx.tiny_data()
    data.train = data.train + 1.0  # the mean walks away from 0 at ~lr per Adam step
    settings = fx.tiny_settings(num_steps=40, log_every=10, checkpoint_every=10, eval_every=0)
    model = _NaNAfter(rngs=nnx.Rngs(0))

    class NaNAwayFromZero(Objective):
        def loss(self, model, batch, key, extra):
            loss = -jnp.mean(model.log_prob(batch))
            return loss * jnp.where(jnp.abs(model.mean[...][0]) > 0.25, jnp.nan, 1.0), extra, {}

    with pytest.raises(FloatingPointError, match="last good checkpoint is step 10"):
        train(model, data, settings, str(tmp_path), objective=NaNAwayFromZero())
    assert "10" in os.listdir(tmp_path / "checkpoints")


@pytest.mark.parametrize("poison", ["nan_loss", "inf_grad"])
def test_bad_step_leaves_params_and_optimizer_state_unchanged(poison):
    """A step with a non-finite loss or gradient is skipped (the update runs in a
    ``lax.cond``), records its step in ``bad_step``; a good step still updates."""
    model = _NaNAfter(rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model)
    opt = make_optimizer(OptimSettings(name="adam", lr=1e-2), 10)

    class Poisoned(Objective):
        def loss(self, model, batch, key, extra):
            loss = -jnp.mean(model.log_prob(batch))
            bad = (batch[0, 0] > 100.0)  # the poisoned batch
            if poison == "nan_loss":
                return jnp.where(bad, jnp.nan, loss), extra, {}
            # a finite loss whose gradient is inf: d/dm of m * inf-scaled term
            return loss + jnp.where(bad, jnp.inf, 0.0) * jnp.sum(model.mean[...]), extra, {}

    step = jax.jit(make_train_step(graphdef, opt, Poisoned(), batch_size=4))
    state = init_train_state(params, rest, opt)
    good = jnp.ones((4, 2))
    state, _ = step(state, good, jax.random.key(0), jax.random.key(1))
    before = jax.tree.map(np.asarray, (state.params, state.opt_state))
    state, metrics = step(state, good + 1000.0, jax.random.key(0), jax.random.key(1))
    assert int(state.bad_step) == 1 and int(state.step) == 2
    assert not np.isfinite(float(metrics["grad_norm"])) or not np.isfinite(
        float(metrics["loss"]))
    chex.assert_trees_all_equal(before, jax.tree.map(np.asarray,
                                                     (state.params, state.opt_state)))
    state, _ = step(state, good, jax.random.key(0), jax.random.key(1))
    assert int(state.bad_step) == 1  # the first bad step stays recorded
    assert not np.allclose(before[0]["mean"], np.asarray(state.params["mean"]))


def test_train_step_does_not_recompile():
    model = fx.TinyFlow(2, rngs=nnx.Rngs(0))
    graphdef, params, rest = split_model(model)
    opt = make_optimizer(OptimSettings(name="adam", lr=1e-2), 10)
    step = jax.jit(make_train_step(graphdef, opt, MaximumLikelihood(), batch_size=16))
    state = init_train_state(params, rest, opt)
    data = jnp.asarray(fx.tiny_data().train)
    k1, k2 = jax.random.key(0), jax.random.key(1)
    state, _ = step(state, data, k1, k2)
    state, _ = step(state, data, k1, k2)
    state, _ = step(state, data, k1, k2)
    assert step._cache_size() == 1
    assert int(state.step) == 3


def test_early_stopping_returns_best_on_valid_params():
    data = fx.tiny_data()
    # Descend the NLL for 50 steps, then ascend it: validation NLL is best at some step
    # <= 50 and rises from then on, so patience 3 runs out 3 evaluations after the best.
    objective = fx.Scheduled(lambda t: jnp.where(t < 50, 1.0, -1.0))
    settings = fx.tiny_settings(num_steps=200, eval_every=10, log_every=10, patience=3,
                                optim=dict(schedule="constant"))
    res = train(fx.TinyFlow(2, rngs=nnx.Rngs(0)), data, settings, None, objective=objective)
    assert res.stopped_early and 10 <= res.best_step <= 50
    assert res.train_steps == res.best_step + 3 * 10
    np.testing.assert_allclose(evaluate_nll(res.model, data.valid), res.best_valid_nll,
                               rtol=1e-5)
    valid = [h["nll"] for h in res.history if h["split"] == "valid"]
    assert len(valid) == res.train_steps // 10 and min(valid) == pytest.approx(res.best_valid_nll)
    assert valid[res.best_step // 10 - 1] == min(valid)
    assert all(a < b for a, b in zip(valid[4:], valid[5:]))  # ascent: strictly worse


def test_checkpoints_are_pruned_to_keep_checkpoints(tmp_path):
    fx.run(str(tmp_path), num_steps=60, checkpoint_every=10, keep_checkpoints=2)
    assert sorted(int(s) for s in os.listdir(tmp_path / "checkpoints") if s.isdigit()) == [50, 60]


def test_training_reduces_nll_and_ema():
    data = fx.tiny_data()
    model = fx.TinyFlow(2, rngs=nnx.Rngs(0))
    before = evaluate_nll(model, data.test)
    res = train(model, data, fx.tiny_settings(num_steps=300, ema_decay=0.9, steps_per_call=10),
                None)
    after = evaluate_nll(res.model, data.test)
    assert after < before - 0.3, (before, after)
    plain = train(fx.TinyFlow(2, rngs=nnx.Rngs(0)), data,
                  fx.tiny_settings(num_steps=300, steps_per_call=10), None)
    # the EMA run evaluates (and keeps) averaged parameters, not the raw ones
    assert not np.allclose(_params_of(res.model)["mean"], _params_of(plain.model)["mean"])


@pytest.mark.parametrize("bad, error, match", [
    (dict(not_a_key=1), TypeError, "not_a_key"),
    (dict(batch_size=0), ValueError, "batch_size must be positive"),
    (dict(steps_per_call=7), ValueError, "multiple of train.steps_per_call"),
    (dict(ema_decay=1.0), ValueError, r"ema_decay must be in \[0, 1\)"),
    (dict(optim=dict(lr=-1e-3)), ValueError, "optim.lr must be positive"),
    (dict(optim=dict(name="adagrad")), ValueError, "optim.name='adagrad'"),
])
def test_bad_train_settings_fail_at_construction(bad, error, match):
    with pytest.raises(error, match=match):
        fx.tiny_settings(**bad)


def test_batch_larger_than_data_fails_before_compute():
    with pytest.raises(ValueError, match="larger than the training set"):
        train(fx.TinyFlow(2, rngs=nnx.Rngs(0)), fx.tiny_data(),
              fx.tiny_settings(batch_size=10_000), None)


def test_resume_with_other_settings_refuses_and_keeps_files(tmp_path):
    fx.run(str(tmp_path), num_steps=20)
    before = sorted(os.listdir(tmp_path / "checkpoints"))
    with pytest.raises(ValueError, match="optim.lr"):
        train(fx.TinyFlow(2, rngs=nnx.Rngs(0)), fx.tiny_data(),
              fx.tiny_settings(num_steps=40, optim=dict(lr=0.5)), str(tmp_path),
              objective=fx.NoisyNLL())
    assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_resume_extends_a_finished_run_to_more_steps(tmp_path):
    """``num_steps`` is resumable: 30 steps, then 30 more, equal 60 straight (the cosine
    schedule is set by num_steps, so use a constant one)."""
    constant = dict(optim=dict(schedule="constant"))
    fx.run(str(tmp_path / "a"), num_steps=30, checkpoint_every=10, **constant)
    extended = fx.run(str(tmp_path / "a"), num_steps=60, checkpoint_every=10, **constant)
    straight = fx.run(str(tmp_path / "b"), num_steps=60, checkpoint_every=10, **constant)
    assert extended.train_steps == 60
    chex.assert_trees_all_equal(_params_of(straight.model), _params_of(extended.model))


def test_cached_epoch_order_gives_the_reference_batches():
    """The step's cached per-epoch order yields exactly batch_at_step's batches."""
    from jaxgen.data.batching import batch_at_step

    class Recorder(nnx.Module):
        def __init__(self):
            self.event_shape = (1,)
            self.w = nnx.Param(jnp.zeros(()))

        def log_prob(self, x):
            return -(x[:, 0] - self.w[...]) ** 2

    data = jnp.arange(23, dtype=jnp.float32)[:, None]
    graphdef, params, rest = split_model(Recorder())
    opt = make_optimizer(OptimSettings(name="sgd", lr=1e-9), 10)

    class Record(Objective):
        def loss(self, m, b, k, extra):
            return jnp.mean(-m.log_prob(b)), extra, {"first": b[0, 0], "sum": b.sum()}

    step = jax.jit(make_train_step(graphdef, opt, Record(), batch_size=5))
    state = init_train_state(params, rest, opt, num_examples=23)
    key = jax.random.key(7)
    for t in range(13):  # crosses three epochs of 4 batches
        state, m = step(state, data, key, key)
        ref = batch_at_step(data, key, t, 5)
        assert float(m["first"]) == float(ref[0, 0]) and float(m["sum"]) == float(ref.sum()), t


def test_ema_is_optax_debiased_ema():
    """The stored EMA equals optax ``ema(decay, debias=True)`` of the iterates, whatever the
    starting value (the initial parameters do not enter the average)."""
    import optax

    from jaxgen.training.steps import debiased_ema_decay
    decay, rng = 0.99, np.random.RandomState(0)
    tx = optax.ema(decay, debias=True)
    opt_state, average = tx.init(jnp.zeros(4)), jnp.full(4, 1e3)
    for t in range(1, 30):
        p = jnp.asarray(rng.randn(4), jnp.float32)
        reference, opt_state = tx.update(p, opt_state)
        d = debiased_ema_decay(decay, t)
        average = d * average + (1 - d) * p
        np.testing.assert_allclose(average, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_checkpoints_stops_and_resumes_exactly(tmp_path, signum):
    """SIGINT/SIGTERM mid-run: the loop finishes the step, checkpoints, raises
    `TrainingInterrupted` (a KeyboardInterrupt naming the step and how to resume); the same
    call again ends with the parameters of an uninterrupted run. Step 30 is not a multiple of
    checkpoint_every, so the checkpoint is the one the signal wrote."""
    from jaxgen.training import TrainingInterrupted
    data = fx.tiny_data()
    settings = fx.tiny_settings(num_steps=60, checkpoint_every=20, eval_every=20,
                                checkpoint_every_s=0.0)
    ref = train(fx.TinyFlow(rngs=nnx.Rngs(0)), data, settings, str(tmp_path / "ref"),
                objective=fx.NoisyNLL())
    workdir = str(tmp_path / "run")
    with pytest.raises(TrainingInterrupted, match=rf"{signal.Signals(signum).name} at step 30"
                                                  rf".*again to resume") as info:
        train(fx.TinyFlow(rngs=nnx.Rngs(0)), data, settings, workdir,
              objective=fx.NoisyNLL(), callback=fx.signal_at(30, signum))
    assert isinstance(info.value, KeyboardInterrupt) and info.value.exit_code == 128 + signum
    steps = sorted(int(d) for d in os.listdir(os.path.join(workdir, "checkpoints"))
                   if d.isdigit())
    assert steps[-1] == 30, steps
    assert signal.getsignal(signum) is not None  # the loop's handler is gone again
    resumed = train(fx.TinyFlow(rngs=nnx.Rngs(0)), data, settings, workdir,
                    objective=fx.NoisyNLL())
    chex.assert_trees_all_equal(nnx.state(resumed.model, nnx.Param),
                                nnx.state(ref.model, nnx.Param))


def test_tensorboard_events_read_back(tmp_path):
    """The TensorBoard file holds every logged scalar at its step (tensorboard's own reader),
    equal to the metrics.jsonl records."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    workdir = str(tmp_path / "run")
    train(fx.TinyFlow(rngs=nnx.Rngs(0)), fx.tiny_data(),
          fx.tiny_settings(num_steps=40, log_every=10, eval_every=20), workdir)
    records = [json.loads(line) for line in open(os.path.join(workdir, "metrics.jsonl"))]
    events = EventAccumulator(os.path.join(workdir, "tensorboard"))
    events.Reload()
    for split, name in (("train", "loss"), ("valid", "nll"), ("valid", "bits_per_dim")):
        expected = [(r["step"], r[name]) for r in records if r["split"] == split]
        got = [(e.step, e.value) for e in events.Scalars(f"{split}/{name}")]
        assert [s for s, _ in got] == [s for s, _ in expected], (split, name)
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-6)


def test_copy_model_owns_its_variables():
    """An objective's ``finalize`` edits `copy_model`'s result; the argument stays as it was."""
    from jaxgen.training import copy_model
    model = fx.TinyFlow(rngs=nnx.Rngs(0))
    before = np.asarray(model.mean[...])
    copy = copy_model(model)
    copy.mean[...] = copy.mean[...] + 1.0
    np.testing.assert_array_equal(np.asarray(model.mean[...]), before)
    np.testing.assert_array_equal(np.asarray(copy.mean[...]), before + 1.0)


def test_compute_dtype_takes_the_mixed_precision_dtypes_only():
    from jaxgen.training import TrainSettings
    assert TrainSettings(compute_dtype="bfloat16").compute_dtype == "bfloat16"
    with pytest.raises(ValueError, match="train.compute_dtype must be one of"):
        TrainSettings(compute_dtype="float64")
