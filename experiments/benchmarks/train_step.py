"""Train-step throughput: compile seconds and steady-state steps/s, one JSON line per config.

``python -m experiments.benchmarks.train_step [--quick] [--configs a,b] [--steps_per_call K]``

For each config (``experiments/configs/<name>.py``) it builds the data and model exactly as a
run does (`experiments.run.build_experiment`), jit-compiles the loop's train step
(`jaxgen.training.steps.make_train_step`, parameters replicated and the batch sharded over
all devices, state donated), times the first call (``compile_s``), warms up, then times a
window of back-to-back calls ended by ``block_until_ready``. Any config name works, so
later model families benchmark by passing theirs.

Output keys: config, model, dataset, batch_size, steps_per_call, num_params, compile_s,
steps_per_s, examples_per_s, timed_steps, timed_s, device_kind, device_count, platform.
"""
from __future__ import annotations

import json
import math
import time

import jax
import numpy as np
from absl import app, flags

from experiments.run import build_experiment, load_config
from jaxgen.training import count_params
from jaxgen.training import sharding as shd
from jaxgen.training.optim import make_optimizer
from jaxgen.training.state import init_train_state, split_model
from jaxgen.training.steps import make_train_step

DEFAULT_CONFIGS = (
    "factorized_categorical_digits",
    "factorized_bernoulli_digits",
    "diagonal_gaussian_digits",
    "diagonal_gaussian_moons",
)

_QUICK = flags.DEFINE_bool("quick", False, "Short timing window (smoke test).")
_CONFIGS = flags.DEFINE_list("configs", list(DEFAULT_CONFIGS), "Config names to benchmark.")
_STEPS_PER_CALL = flags.DEFINE_integer(
    "steps_per_call", 1, "Optimizer steps per jitted call (lax.scan); 1 times single steps.")
_MIN_TIME_S = flags.DEFINE_float("min_time_s", 2.0, "Length of the timed window (seconds).")


def benchmark_train_step(name: str, *, steps_per_call: int = 1, min_time_s: float = 2.0,
                         warmup_calls: int = 2) -> dict:
    """Times the jitted train step of config ``name``; returns one JSON-able record."""
    config = load_config(name)
    exp = build_experiment(config)
    batch_size = int(config.train.batch_size)
    ema_decay = float(config.train.ema_decay)
    mesh = shd.make_mesh()
    graphdef, params, model_state = split_model(exp.model)
    optimizer = make_optimizer(config.optim, int(config.train.num_steps))
    state = init_train_state(params, model_state, optimizer, ema=ema_decay > 0,
                             num_examples=int(exp.dataset.train.shape[0]))
    state = jax.device_put(state, shd.replicated(mesh))
    train_data = jax.device_put(np.asarray(exp.dataset.train), shd.replicated(mesh))
    step_fn = jax.jit(
        make_train_step(graphdef, optimizer, batch_size=batch_size,
                        preprocess_fn=exp.preprocess_fn, ema_decay=ema_decay,
                        batch_sharding=shd.batch_sharded(mesh), steps_per_call=steps_per_call),
        donate_argnums=0)
    base_key = jax.random.key(int(config.seed))
    shuffle_key, step_key = jax.random.fold_in(base_key, 1), jax.random.fold_in(base_key, 2)

    t0 = time.perf_counter()
    state, _ = step_fn(state, train_data, shuffle_key, step_key)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - t0

    for _ in range(warmup_calls):
        state, _ = step_fn(state, train_data, shuffle_key, step_key)
    jax.block_until_ready(state)

    # Timed window: chunks of back-to-back calls (doubling), one sync per chunk, until the
    # window lasts min_time_s.
    num_calls, chunk, t0 = 0, 1, time.perf_counter()
    while True:
        for _ in range(chunk):
            state, _ = step_fn(state, train_data, shuffle_key, step_key)
        jax.block_until_ready(state)
        num_calls += chunk
        timed_s = time.perf_counter() - t0
        if timed_s >= min_time_s:
            break
        remaining = (min_time_s - timed_s) * num_calls / timed_s  # calls left, estimated
        chunk = max(1, min(2 * chunk, math.ceil(remaining)))
    timed_steps = num_calls * steps_per_call
    steps_per_s = timed_steps / timed_s
    device = jax.devices()[0]
    return {
        "config": name,
        "model": config.model.name,
        "dataset": exp.dataset.name,
        "batch_size": batch_size,
        "steps_per_call": steps_per_call,
        "num_params": count_params(exp.model),
        "compile_s": compile_s,
        "steps_per_s": steps_per_s,
        "examples_per_s": steps_per_s * batch_size,
        "timed_steps": timed_steps,
        "timed_s": timed_s,
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "platform": device.platform,
    }


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    min_time_s = 0.1 if _QUICK.value else _MIN_TIME_S.value
    for name in _CONFIGS.value:
        record = benchmark_train_step(name, steps_per_call=_STEPS_PER_CALL.value,
                                      min_time_s=min_time_s)
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    app.run(main)
