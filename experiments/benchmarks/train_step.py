"""Train-step throughput and memory: compile seconds, steady-state steps/s, peak bytes.

``python -m experiments.benchmarks.train_step [--quick] [--configs a,b] [--steps_per_call K]
[--data=random]``

For each config (``experiments/configs/<name>.py``) it builds the data and model exactly as a
run does (`experiments.build.build_experiment`), jit-compiles the loop's train step
(`jaxgen.training.steps.make_train_step`, parameters replicated and the batch sharded over
all devices, state donated), times the first call (``compile_s``: lowering, compilation and
one step; ``lower_s`` and ``xla_compile_s`` are its first two parts), warms up, then times a window of back-to-back calls ended by
``block_until_ready``. Any config name works, so later model families benchmark by passing
theirs; ``--configs`` also takes group names (`CONFIG_GROUPS`): ``baselines`` (the default)
and ``ar_binarized_mnist`` (every autoregressive model at its binarized-MNIST config).

``--layer_scan=rolled,unrolled`` benchmarks both layer-stack programs (`jaxgen.nn.layer_scan`:
the GPU/TPU loop and the CPU unrolled copies) and ``--compute_dtype=float32,bfloat16`` both
precisions, one record each; ``--compile_only`` stops after compiling (paper-size configs on a
CPU, for compile seconds and XLA's memory estimate).

``--data=random`` replaces the config's data by uniform random levels (``--random_levels``,
default 2) of shape ``--random_shape`` (default 28,28,1) with binarized MNIST's split sizes
(50k/10k/10k), so e.g. the binarized-MNIST configs run without the data file; the model,
batch size and optimizer are the config's. Throughput does not depend on the pixel values.

Output keys: config, model, dataset, data, event_shape, batch_size, steps_per_call,
num_params, layer_scan, unrolled, compute_dtype, lower_s, xla_compile_s, products,
low_precision_products (dot_general/convolution ops of the step, and those with both operands
in the compute dtype), compile_s, steps_per_s, examples_per_s, timed_steps, timed_s, peak_bytes_xla
(XLA's memory analysis of the compiled step: its peak, i.e. arguments + outputs - donated
aliases + temporaries; the whole train set is an argument), temp_bytes_xla,
peak_bytes_in_use (the device allocator's peak where it reports one, e.g. GPU; else null),
max_rss_bytes (the process's peak resident memory so far: with several configs in one
process it is the maximum over the configs run until then; run one config per process for
per-model numbers), device_kind, device_count, platform.
"""
from __future__ import annotations

import json
import math
import os
import re
import resource
import tempfile
import time

import jax
import numpy as np
from absl import app, flags

from experiments.configs import common
from experiments.build import build_experiment
from experiments.config_io import (expected_type, find_unknown_key, load_config,
                                   parse_value, set_value)
from jaxgen.nn.layer_scan import layer_scan_mode, unroll_layers
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
AR_BINARIZED_MNIST_CONFIGS = tuple(f"{model}_binarized_mnist" for model in (
    "made", "nade", "pixelcnn", "gated_pixelcnn", "rowlstm", "diagonal_bilstm", "transformer"))
CONFIG_GROUPS = {"baselines": DEFAULT_CONFIGS, "ar_binarized_mnist": AR_BINARIZED_MNIST_CONFIGS}
# Split sizes of the random data (those of binarized MNIST, so the train set an XLA step
# holds as an argument has the size of a real run's).
RANDOM_SPLITS = {"train": 50_000, "valid": 10_000, "test": 10_000}

_QUICK = flags.DEFINE_bool("quick", False, "Smoke test: a 0.1 s timing window, no warm-up calls.")
_CONFIGS = flags.DEFINE_list(
    "configs", list(DEFAULT_CONFIGS),
    f"Config names to benchmark, or group names: {sorted(CONFIG_GROUPS)}.")
_STEPS_PER_CALL = flags.DEFINE_integer(
    "steps_per_call", 1, "Optimizer steps per jitted call (lax.scan); 1 times single steps, "
    "0 uses each config's train.steps_per_call.")
_MIN_TIME_S = flags.DEFINE_float("min_time_s", 2.0, "Length of the timed window (seconds).")
_DATA = flags.DEFINE_enum(
    "data", "config", ["config", "random"],
    "'config': the config's data set; 'random': uniform random levels (no data file).")
_RANDOM_SHAPE = flags.DEFINE_list("random_shape", ["28", "28", "1"],
                                  "Event shape of --data=random.")
_RANDOM_LEVELS = flags.DEFINE_integer("random_levels", 2, "Levels of --data=random.")
_LAYER_SCAN = flags.DEFINE_list(
    "layer_scan", ["auto"], "Layer-stack programs to benchmark, each a record: 'auto' (the "
    "backend's), 'rolled' (lax.scan loops, the GPU/TPU program), 'unrolled' (the CPU one).")
_COMPUTE_DTYPES = flags.DEFINE_list(
    "compute_dtype", ["float32"], "train.compute_dtype values to benchmark, each a record.")
_SET = flags.DEFINE_multi_string(
    "set", [], "Config overrides applied to every config, e.g. --set=model.num_steps=8.")
_COMPILE_ONLY = flags.DEFINE_bool(
    "compile_only", False, "Lower and compile the step, report its times and memory, run "
    "nothing (paper-size configs on a CPU).")


def expand_config_names(names) -> list[str]:
    """Config names with group names (`CONFIG_GROUPS`) replaced by their members."""
    out = []
    for name in names:
        out.extend(CONFIG_GROUPS.get(name, (name,)))
    return out


def build_random_experiment(config, event_shape, num_levels: int, seed: int = 0):
    """`build_experiment` on uniform random levels ``[N, *event_shape]`` (`RANDOM_SPLITS`).

    The random splits go through the ``npz`` data source (a temporary file), so the config is
    validated and the model built by exactly the code a real run uses.
    """
    if num_levels < 2:
        raise ValueError(f"random data need num_levels >= 2, got {num_levels}")
    event_shape = tuple(int(s) for s in event_shape)
    if not event_shape or min(event_shape) < 1:
        raise ValueError(f"random data need a non-empty positive event shape, got {event_shape}")
    rng = np.random.default_rng(seed)
    dtype = np.uint8 if num_levels <= 256 else np.int32
    splits = {split: rng.integers(0, num_levels, (n, *event_shape), dtype=dtype)
              for split, n in RANDOM_SPLITS.items()}
    config = config.copy_and_resolve_references()
    dequantize = config.data.get("dequantize", "none")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "random.npz")
        np.savez(path, **splits)
        config.data = common.data_config("npz", path=path, num_levels=num_levels,
                                         dequantize=dequantize)
        return build_experiment(config)


def memory_record(compiled) -> dict:
    """Peak-memory fields of a record (see the module docstring)."""
    out = {"peak_bytes_xla": None, "temp_bytes_xla": None, "peak_bytes_in_use": None}
    try:
        mem = compiled.memory_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        mem = None
    if mem is not None:
        # Donated inputs alias outputs: count them once. (``peak_memory_in_bytes`` is not
        # used: on XLA:CPU it leaves out the temporaries.)
        out["peak_bytes_xla"] = int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                                    - mem.alias_size_in_bytes + mem.temp_size_in_bytes)
        out["temp_bytes_xla"] = int(mem.temp_size_in_bytes)
    try:
        stats = jax.devices()[0].memory_stats() or {}
    except Exception:  # noqa: BLE001 - CPU clients may not report allocator stats
        stats = {}
    if "peak_bytes_in_use" in stats:
        out["peak_bytes_in_use"] = int(stats["peak_bytes_in_use"])
    out["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


_PRODUCT = re.compile(r"stablehlo\.(dot_general|convolution).*: \(tensor<([^>]*)>, tensor<([^>]*)>\)")


def count_products(stablehlo_text: str, low_dtype: str = "bf16") -> dict:
    """Matrix products and convolutions of a lowered program, and how many take both
    operands in ``low_dtype`` (StableHLO's element-type name: ``bf16``, ``f16``)."""
    found = _PRODUCT.findall(stablehlo_text)
    low = sum(a.endswith("x" + low_dtype) and b.endswith("x" + low_dtype) for _, a, b in found)
    return {"products": len(found), "low_precision_products": int(low)}


def resolve_steps_per_call(requested: int, configured: int) -> int:
    """The steps per timed call: ``requested``, or the config's ``configured`` for 0."""
    steps = configured if requested == 0 else requested
    if steps < 1:
        raise ValueError(f"steps_per_call must be >= 1 (or 0: the config's), got {requested}")
    return steps


def benchmark_train_step(name: str, *, steps_per_call: int = 1, min_time_s: float = 2.0,
                         warmup_calls: int = 2, data: str = "config",
                         random_shape=(28, 28, 1), random_levels: int = 2,
                         layer_scan: str = "auto", compute_dtype: str = "float32",
                         compile_only: bool = False, lower_only: bool = False,
                         overrides=()) -> dict:
    """Times the jitted train step of config ``name``; returns one JSON-able record.

    Args:
      name: config name (or path, see `experiments.config_io.load_config`).
      steps_per_call: optimizer steps per jitted call; 0 takes ``config.train.steps_per_call``.
      min_time_s: length of the timed window.
      warmup_calls: untimed calls after the first (compiling) one.
      data: ``"config"`` (the config's data) or ``"random"`` (`build_random_experiment`).
      random_shape, random_levels: event shape and levels of ``data="random"``.
      layer_scan: the layer-stack program traced (`jaxgen.nn.layer_scan.layer_scan_mode`).
      compute_dtype: the step's ``compute_dtype`` (mixed precision for bfloat16/float16).
      compile_only: stop after compiling (no step is run; throughput fields are None).
      lower_only: stop after lowering; the record holds only the config, compute dtype,
        ``lower_s`` and the product counts (`count_products`).
      overrides: ``"key=value"`` strings (``model.num_steps=8``), as the CLI's
        ``--config.key=value``.
    """
    config = load_config(name)
    for item in overrides:
        dotted, sep, text = item.partition("=")
        if not sep or find_unknown_key(config, dotted) is not None:
            raise ValueError(f"--set {item!r}: expected an existing key=value")
        set_value(config, dotted, parse_value(dotted, text, expected_type(config, dotted)))
    if data == "config":
        exp = build_experiment(config)
    elif data == "random":
        exp = build_random_experiment(config, random_shape, random_levels, int(config.seed))
    else:
        raise ValueError(f"data must be 'config' or 'random', got {data!r}")
    settings = exp.settings.train
    steps_per_call = resolve_steps_per_call(steps_per_call, int(settings.steps_per_call))
    batch_size = int(settings.batch_size)
    ema_decay = float(settings.ema_decay)
    mesh = shd.make_mesh()
    graphdef, params, model_state = split_model(exp.model)
    optimizer = make_optimizer(settings.optim, int(settings.num_steps))
    base_key = jax.random.key(int(config.seed))
    extra = exp.objective.init(exp.model, exp.preprocessing.init_data,
                               jax.random.fold_in(base_key, 4))
    state = init_train_state(params, model_state, optimizer, ema=ema_decay > 0, extra=extra,
                             num_examples=int(exp.dataset.train.shape[0]))
    state = jax.device_put(state, shd.replicated(mesh))
    train_data = jax.device_put(np.asarray(exp.dataset.train), shd.replicated(mesh))
    step_fn = jax.jit(
        make_train_step(graphdef, optimizer, exp.objective, batch_size=batch_size,
                        preprocess_fn=exp.preprocessing if exp.preprocessing.active else None,
                        ema_decay=ema_decay,
                        batch_sharding=shd.batch_sharded(mesh), steps_per_call=steps_per_call,
                        compute_dtype=compute_dtype),
        donate_argnums=0)
    shuffle_key, step_key = jax.random.fold_in(base_key, 1), jax.random.fold_in(base_key, 2)

    t0 = time.perf_counter()
    with layer_scan_mode(layer_scan):
        lowered = step_fn.lower(state, train_data, shuffle_key, step_key)
    lower_s = time.perf_counter() - t0
    products = count_products(lowered.as_text(),
                              {"float16": "f16"}.get(compute_dtype, "bf16"))
    if lower_only:
        return {"config": name, "compute_dtype": compute_dtype, "lower_s": lower_s, **products}
    step_fn = lowered.compile()
    xla_compile_s = time.perf_counter() - t0 - lower_s
    device = jax.devices()[0]
    record = {
        "config": name, "model": config.model.name, "dataset": exp.dataset.name,
        "data": data, "event_shape": list(exp.dataset.event_shape), "batch_size": batch_size,
        "steps_per_call": steps_per_call, "num_params": count_params(exp.model),
        "layer_scan": layer_scan, "unrolled": _unrolled(layer_scan),
        "compute_dtype": compute_dtype, "overrides": list(overrides), "lower_s": lower_s, "xla_compile_s": xla_compile_s,
        "device_kind": device.device_kind, "device_count": jax.device_count(),
        "platform": device.platform, **products,
    }
    if compile_only:
        return {**record, "compile_s": None, "steps_per_s": None, "examples_per_s": None,
                "timed_steps": 0, "timed_s": 0.0, **memory_record(step_fn)}
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
    return {**record, "compile_s": compile_s, "steps_per_s": steps_per_s,
            "examples_per_s": steps_per_s * batch_size, "timed_steps": timed_steps,
            "timed_s": timed_s, **memory_record(step_fn)}


def _unrolled(mode: str) -> bool:
    with layer_scan_mode(mode):
        return unroll_layers()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    min_time_s = 0.1 if _QUICK.value else _MIN_TIME_S.value
    random_shape = tuple(int(s) for s in _RANDOM_SHAPE.value)
    for name in expand_config_names(_CONFIGS.value):
        for layer_scan in _LAYER_SCAN.value:
            for compute_dtype in _COMPUTE_DTYPES.value:
                record = benchmark_train_step(
                    name, steps_per_call=_STEPS_PER_CALL.value, min_time_s=min_time_s,
                    data=_DATA.value, warmup_calls=0 if _QUICK.value else 2,
                    random_shape=random_shape, random_levels=_RANDOM_LEVELS.value,
                    layer_scan=layer_scan, compute_dtype=compute_dtype,
                    compile_only=_COMPILE_ONLY.value, overrides=tuple(_SET.value))
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    app.run(main)
