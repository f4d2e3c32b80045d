"""One experiment, end to end: validate the config, train, evaluate, sample, plot, record.

``run_experiment(config, workdir)`` is what ``python -m experiments.main`` calls; it is a
plain function, so notebooks, the demo and tests call it too. The workdir ends up with::

    config.json     the full config (written before any training)
    checkpoints/    orbax checkpoints (the training loop resumes from them)
    metrics.jsonl   train/valid records of the training loop
    samples.png     a grid of samples (images) or a scatter plot next to the data (2D)
    density.png     2D data only: the model density on a grid
    results.json    test/valid NLL, bits/dim, timings, parameter count, environment, config

Re-running on a workdir is safe: a workdir holding another config is refused before
anything is written; one holding the same config resumes training from its checkpoints, or,
when ``results.json`` exists already, returns the stored results without recomputing.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.util
import json
import math
import os
import statistics
import time
from typing import Any, Callable

import jax
import ml_collections
import numpy as np
from absl import logging
from flax import nnx
from ml_collections.config_dict import FieldReference

from experiments import registry
from experiments.configs import common
from experiments.configs.common import ConfigError
from experiments.environment import environment_info
from jaxgen import metrics, viz
from jaxgen.data import SOURCES, Dataset, load_dataset
from jaxgen.data.preprocessing import dequantize, quantize, uniform_dequantize
from jaxgen.training import count_params, evaluate_nll, train
from jaxgen.training.loop import train_config_with_defaults
from jaxgen.training.optim import OPTIMIZERS, SCHEDULES

# Config keys that may differ between a workdir's config.json and a run resuming in it.
RESUMABLE_KEYS = ("train.progress", "train.halt_after_steps")
# Keys `results.json` always holds (tests and the demo rely on them).
RESULT_KEYS = (
    "model", "dataset", "test_nll_nats", "test_bits_per_dim", "valid_nll_nats",
    "valid_bits_per_dim", "num_params", "train_steps", "train_wall_s", "steps_per_s",
    "compile_s", "sample_time_s", "num_samples", "seed", "environment", "config")
# fold_in indices of the keys derived from the config seed (and the numpy seed offset of
# the dequantization noise for data-dependent init): one per use, no shared streams.
_TEST_KEY, _VALID_KEY, _SAMPLE_KEY, _PLOT_KEY, _INIT_DATA_KEY, _HOOK_KEY = 11, 12, 13, 14, 15, 16


class WorkdirError(RuntimeError):
    """The workdir holds results of another config (nothing was changed)."""


def quiet_library_logs() -> None:
    """Keeps orbax's per-save INFO chatter out of absl's log (warnings still show)."""
    import logging as std_logging

    def keep(record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname

    logging.get_absl_handler().addFilter(keep)


# ------------------------------------------------------------------------------------------
# Configs.


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """Loads a config by name (``"diagonal_gaussian_moons"``), ``.py`` path or ``.json``.

    A ``.py`` path may carry an argument for its ``get_config`` after a colon, as with
    ``--config`` (``experiments/configs/from_json.py:runs/x/results.json``).

    A ``.json`` file may be a workdir's ``config.json`` or ``results.json`` (whose
    ``"config"`` entry is the run's full config): every run can be reproduced from it.
    """
    path, _, arg = name_or_path.partition(":")
    if path.endswith(".json"):
        with open(path) as f:
            loaded = json.load(f)
        if "environment" in loaded:  # a results.json
            loaded = loaded["config"]
        return ml_collections.ConfigDict(loaded)
    if path.endswith(".py"):
        if not os.path.exists(path):
            raise FileNotFoundError(f"config file {path!r} does not exist")
        spec = importlib.util.spec_from_file_location("_experiment_config", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(f"experiments.configs.{path}")
        except ModuleNotFoundError:
            raise ConfigError(f"no config named {path!r} in experiments/configs") from None
    return module.get_config(arg) if arg else module.get_config()


def as_config_dict(config) -> ml_collections.ConfigDict:
    """A ``ConfigDict`` from a ``ConfigDict`` or a plain (e.g. JSON-loaded) dict."""
    if isinstance(config, ml_collections.ConfigDict):
        return config
    if isinstance(config, dict):
        return ml_collections.ConfigDict(config)
    raise ConfigError(f"a config must be a ConfigDict or a dict, got {type(config).__name__}")


def config_to_dict(config) -> dict:
    """The config as plain JSON data (tuples become lists, placeholders ``None``)."""
    raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps(raw))


def find_unknown_key(config, dotted: str) -> str | None:
    """The first prefix of ``dotted`` (``"train.nonsense"``) that is not a key of ``config``."""
    node, path = config, []
    for part in dotted.split("."):
        path.append(part)
        if not hasattr(node, "keys") or part not in node.keys():
            return ".".join(path)
        node = node[part]
    return None


def _check_keys(section: str | None, values, allowed) -> None:
    where = "config" if section is None else f"config.{section}"
    unknown = sorted(set(values.keys()) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {[f'{where}.{k}' for k in unknown]}; "
                          f"valid keys of {where}: {sorted(allowed)}")


def _type_ok(value, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if expected is int:
        return isinstance(value, (int, np.integer))
    if expected is float:
        return isinstance(value, (int, float, np.integer, np.floating))
    return isinstance(value, expected)


def _check_types(section: str, values, defaults: dict) -> None:
    """Each value must have its default's type (ints are fine where floats are expected);
    ``None`` only where the default is optional (a placeholder or None)."""
    for key, default in defaults.items():
        if key not in values.keys():
            continue
        value = values[key]
        optional = default is None or isinstance(default, FieldReference)
        expected = default.get_type() if isinstance(default, FieldReference) else type(default)
        if value is None and optional or default is None:
            continue
        if value is None or not _type_ok(value, expected):
            raise ConfigError(f"config.{section}.{key}={value!r} has type "
                              f"{type(value).__name__}, expected {expected.__name__}")


def _positive(section: str, values, *keys: str) -> None:
    for key in keys:
        if not values[key] > 0:
            raise ConfigError(f"config.{section}.{key} must be positive, got {values[key]!r}")


def validate_config(config) -> None:
    """Checks every section, key, type and value a run reads, before any compute.

    Raises:
      ConfigError: naming the offending key (``config.train.nonsense``) or value; for an
        ``npz`` source, also when ``config.data.path`` does not exist.
    """
    config = as_config_dict(config)
    _check_keys(None, config, common.SECTIONS)
    missing = [s for s in common.SECTIONS if s not in config.keys()]
    if missing:
        raise ConfigError(f"config is missing section(s) {missing}")
    if not isinstance(config.seed, (int, np.integer)) or isinstance(config.seed, bool):
        raise ConfigError(f"config.seed must be an int, got {config.seed!r}")

    data = config.data
    source = data.get("name")
    if source not in SOURCES or source not in common.DATA_FIELDS:
        raise ConfigError(f"config.data.name={source!r} is not a data source; known: "
                          f"{sorted(SOURCES)}")
    data_defaults = {**common.DATA_FIELDS[source], **common.DATA_COMMON}
    _check_keys("data", data, ["name", *data_defaults])
    _check_types("data", data, data_defaults)
    if data.get("dequantize", "none") not in common.DEQUANTIZE:
        raise ConfigError(f"config.data.dequantize={data.dequantize!r} is not one of "
                          f"{common.DEQUANTIZE}")
    if source == "npz":
        if not data.get("path"):
            raise ConfigError("config.data.path must name the .npz file for data source 'npz'")
        if not os.path.isfile(data.path):
            raise ConfigError(f"config.data.path={data.path!r}: no such file "
                              f"(absolute: {os.path.abspath(data.path)})")

    try:
        spec = registry.get_spec(config.model.get("name"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    _check_keys("model", config.model, ["name", *spec.defaults])
    _check_types("model", config.model, spec.defaults)

    from jaxgen.training import TRAIN_DEFAULTS
    _check_keys("train", config.train, TRAIN_DEFAULTS)
    _check_types("train", config.train, TRAIN_DEFAULTS)
    try:
        train_config_with_defaults(config.train)
    except ValueError as err:
        raise ConfigError(str(err)) from None

    optim = config.optim
    _check_keys("optim", optim, common.OPTIM_DEFAULTS)
    _check_types("optim", optim, common.OPTIM_DEFAULTS)
    if optim.name not in OPTIMIZERS:
        raise ConfigError(f"config.optim.name={optim.name!r} is not one of {OPTIMIZERS}")
    if optim.get("schedule", "constant") not in SCHEDULES:
        raise ConfigError(f"config.optim.schedule={optim.schedule!r} is not one of {SCHEDULES}")
    _positive("optim", optim, "lr")

    _check_keys("sampler", config.sampler, common.SAMPLER_DEFAULTS)
    _check_types("sampler", config.sampler, common.SAMPLER_DEFAULTS)
    _positive("sampler", config.sampler, *common.SAMPLER_DEFAULTS)
    _check_keys("eval", config.eval, common.EVAL_DEFAULTS)
    _check_types("eval", config.eval, common.EVAL_DEFAULTS)
    _positive("eval", config.eval, *common.EVAL_DEFAULTS)


# ------------------------------------------------------------------------------------------
# Data and model.


@dataclasses.dataclass
class Experiment:
    """Everything built from a config before training.

    Attributes:
      config: the validated config.
      dataset: the data as loaded (discrete levels stay integers).
      model: the freshly initialized model.
      preprocess_fn: ``(key, batch) -> batch`` applied in every train/eval step (uniform
        dequantization ``(x + u) / K``), or None.
      nll_offset_nats: added to the model's NLL to get the NLL of the *data*: ``D log K``
        for dequantized data (the bound ``-log P(x) <= E_u[-log p((x + u) / K)] + D log K``),
        else 0.
    """

    config: Any
    dataset: Dataset
    model: nnx.Module
    preprocess_fn: Callable | None
    nll_offset_nats: float

    @property
    def dequantized(self) -> bool:
        return self.preprocess_fn is not None

    def bits_per_dim(self, model_nll_nats: float) -> float:
        """Bits/dim of the data (discrete units when dequantized) from the model's NLL."""
        return float(metrics.bits_per_dim(
            model_nll_nats, self.dataset.num_dims,
            num_levels=self.dataset.num_levels if self.dequantized else None))

    def to_display(self, samples) -> tuple[np.ndarray, int | None]:
        """Model samples as data-space values for plotting, with their ``num_levels``."""
        if self.dequantized:
            return np.asarray(quantize(samples, self.dataset.num_levels)), self.dataset.num_levels
        return np.asarray(samples), self.dataset.num_levels


def build_experiment(config) -> Experiment:
    """Validates ``config``, loads the data and builds the model (no training)."""
    config = as_config_dict(config)
    validate_config(config)
    dataset = load_dataset(config.data)
    deq = config.data.get("dequantize", "none")
    try:
        registry.check_data_compatible(config.model.name, dataset.num_levels, deq)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    preprocess_fn, offset, train_view = None, 0.0, dataset.train
    if deq == "uniform":
        k = dataset.num_levels
        preprocess_fn = functools.partial(uniform_dequantize, num_levels=k)
        offset = dataset.num_dims * math.log(k)
        noise = np.random.default_rng(config.seed + _INIT_DATA_KEY).random(
            dataset.train.shape, dtype=np.float32)
        train_view = np.asarray(dequantize(dataset.train, noise, k))
    model_data = registry.ModelData(
        event_shape=dataset.event_shape, num_levels=None if deq == "uniform" else
        dataset.num_levels, train=train_view,
        dequantized_levels=dataset.num_levels if deq == "uniform" else None)
    model = registry.build_model(config.model, model_data, nnx.Rngs(int(config.seed)))
    return Experiment(config, dataset, model, preprocess_fn, offset)


# ------------------------------------------------------------------------------------------
# Sampling.


def jit_sampler(model: nnx.Module, num_samples: int) -> Callable:
    """``key -> model.sample(key, num_samples)``, jit-compiled (parameters passed as args)."""
    graphdef, state = nnx.split(model)
    sample_fn = jax.jit(lambda state, key: nnx.merge(graphdef, state).sample(key, num_samples))
    return functools.partial(sample_fn, state)


def time_sampling(model: nnx.Module, key, num_samples: int, repeats: int = 5):
    """Draws ``num_samples`` with a jitted ``model.sample`` and times it.

    Returns:
      ``(samples, compile_s, sample_time_s)``: the first draw, the seconds of the first
      (compiling) call, and the median over ``repeats`` further calls (fresh keys) of the
      seconds to draw ``num_samples`` samples, each ended with ``block_until_ready``.
    """
    sample_fn = jit_sampler(model, num_samples)
    t0 = time.perf_counter()
    samples = jax.block_until_ready(sample_fn(key))
    compile_s = time.perf_counter() - t0
    times = []
    for i in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(sample_fn(jax.random.fold_in(key, i + 1)))
        times.append(time.perf_counter() - t0)
    return samples, compile_s, statistics.median(times)


def write_plots(exp: Experiment, model: nnx.Module, samples, workdir: str) -> dict:
    """``samples.png`` (and ``density.png`` for 2D data); returns ``{name: path}``."""
    config, event_shape = exp.config, exp.dataset.event_shape
    num_plot = int(config.eval.num_plot_samples)
    if samples.shape[0] >= num_plot:
        samples = samples[:num_plot]
    else:
        samples = jit_sampler(model, num_plot)(
            jax.random.fold_in(jax.random.key(config.seed), _PLOT_KEY))
    values, num_levels = exp.to_display(samples)
    files = {}
    if len(event_shape) == 3 and event_shape[-1] in (1, 3):
        path = os.path.join(workdir, "samples.png")
        scale = max(1, 64 // max(event_shape[:2]))  # small images get bigger pixels
        viz.save_image_grid(path, values, num_levels, int(config.eval.plot_ncols), scale=scale)
        files["samples"] = path
    elif event_shape == (2,):
        data = exp.dataset.test[:num_plot]
        files["samples"] = os.path.join(workdir, "samples.png")
        viz.plot_2d_samples(files["samples"], values, data,
                            title=f"{config.model.name} on {exp.dataset.name}")
        graphdef, state = nnx.split(model)
        log_prob_fn = jax.jit(lambda x: nnx.merge(graphdef, state).log_prob(x))
        files["density"] = os.path.join(workdir, "density.png")
        viz.plot_2d_density(files["density"], log_prob_fn, viz.data_extent(exp.dataset.test),
                            title=f"{config.model.name} density")
    else:
        logging.info("no plot for event shape %s", event_shape)
    return files


# ------------------------------------------------------------------------------------------
# The run.


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)  # atomic: a reader never sees half a file


def _diff_keys(a, b, prefix="") -> list[str]:
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip(".") or "<root>"]
    out = []
    for key in sorted(set(a) | set(b)):
        out += _diff_keys(a.get(key), b.get(key), f"{prefix}{key}.")
    return out


def check_workdir(workdir: str, config_dict: dict) -> dict | None:
    """Refuses a workdir holding another config's run; returns its results if complete.

    Returns:
      The stored ``results.json`` contents if the workdir holds a completed run of this
      config, else None (fresh workdir, or an unfinished run to resume).

    Raises:
      WorkdirError: the workdir's ``config.json`` differs from ``config_dict`` (in keys other
        than `RESUMABLE_KEYS`), or it holds run files but no ``config.json``.
    """
    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        leftovers = [name for name in ("results.json", "metrics.jsonl", "checkpoints")
                     if os.path.exists(os.path.join(workdir, name))]
        if leftovers:
            raise WorkdirError(f"workdir {workdir} holds {leftovers} but no config.json; "
                               "refusing to mix runs (choose a new --workdir)")
        return None
    with open(config_path) as f:
        stored = json.load(f)
    diff = [k for k in _diff_keys(stored, config_dict) if k not in RESUMABLE_KEYS]
    if diff:
        raise WorkdirError(
            f"workdir {workdir} holds a run of a different config (differing keys: "
            f"{', '.join('config.' + k for k in diff)}); choose a new --workdir. "
            "Nothing was changed.")
    results_path = os.path.join(workdir, "results.json")
    if os.path.exists(results_path):
        with open(results_path) as f:
            return json.load(f)
    return None


def _last_logged_steps_per_s(workdir: str) -> float:
    """Throughput recorded by an earlier process (when this one had nothing to train)."""
    rate = 0.0
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if record.get("split") == "train" and record.get("steps_per_s"):
                    rate = float(record["steps_per_s"])
    return rate


def run_hooks(model_name: str):
    """The optional ``run_hooks`` of a model's registry builder (None for most models).

    A builder may carry ``build_fn.run_hooks`` with ``train_kwargs(config, dataset, model) -> dict``
    (extra `jaxgen.training.train` arguments: ``loss_fn``, ``extra_init``) and
    ``prepare_eval(config, dataset, model, key) -> (model, dict)`` (run after training and
    before evaluation, e.g. setting an energy model's ``log Z``; the dict joins the results).
    """
    return getattr(registry.get_spec(model_name).build_fn, "run_hooks", None)


def run_experiment(config, workdir: str) -> dict:
    """Trains and evaluates the model ``config`` describes; writes and returns the results.

    Steps: validate the config (`ConfigError` names the bad key), check the workdir
    (`WorkdirError` if it holds another config), load the data, write ``config.json``,
    build the model (`experiments.registry`), train with `jaxgen.training.train` (resuming
    from checkpoints), evaluate the best-on-valid model on valid and test, time
    ``config.sampler.num_samples`` samples, plot, and write ``results.json``.

    NLLs are nats per example of the *data*: for dequantized data that is the model's NLL
    on ``(x + u) / K`` plus ``D log K`` (an upper bound on the discrete NLL), and
    ``*_bits_per_dim`` are in the discrete data's units.

    Args:
      config: a ``ConfigDict`` as built by `experiments.configs.common.get_config`.
      workdir: output directory (created).

    Returns:
      The ``results.json`` contents (the stored ones if the run had completed before).
    """
    t_start = time.perf_counter()
    config = as_config_dict(config)
    validate_config(config)
    config_dict = config_to_dict(config)
    stored = check_workdir(workdir, config_dict)
    if stored is not None:
        logging.info("%s already holds results of this config; returning them", workdir)
        return stored
    exp = build_experiment(config)
    os.makedirs(workdir, exist_ok=True)
    _write_json(os.path.join(workdir, "config.json"), config_dict)
    logging.info("training %s on %s in %s", config.model.name, exp.dataset, workdir)

    hooks = run_hooks(config.model.name)
    result = train(exp.model, exp.dataset, config, workdir, preprocess_fn=exp.preprocess_fn,
                   nll_offset_nats=exp.nll_offset_nats,
                   **(hooks.train_kwargs(config, exp.dataset, exp.model) if hooks else {}))
    model = result.model

    t_eval = time.perf_counter()
    base_key = jax.random.key(int(config.seed))
    hook_results = {}
    if hooks:  # e.g. an energy model estimates its log Z before the test NLL
        model, hook_results = hooks.prepare_eval(config, exp.dataset, model,
                                                 jax.random.fold_in(base_key, _HOOK_KEY))
    model_nll = {
        split: evaluate_nll(model, getattr(exp.dataset, split),
                            batch_size=int(config.eval.batch_size),
                            preprocess_fn=exp.preprocess_fn,
                            key=jax.random.fold_in(base_key, key_index))
        for split, key_index in (("test", _TEST_KEY), ("valid", _VALID_KEY))}
    eval_wall_s = time.perf_counter() - t_eval

    samples, sample_compile_s, sample_time_s = time_sampling(
        model, jax.random.fold_in(base_key, _SAMPLE_KEY), int(config.sampler.num_samples),
        int(config.sampler.timing_repeats))
    files = write_plots(exp, model, samples, workdir)

    results = {
        "model": config.model.name,
        "dataset": exp.dataset.name,
        "dequantize": config.data.get("dequantize", "none"),
        "event_shape": list(exp.dataset.event_shape),
        "num_dims": exp.dataset.num_dims,
        "num_levels": exp.dataset.num_levels,
        "nll_units": ("nats per example of the discrete data (uniform dequantization bound)"
                      if exp.dequantized else "nats per example"),
        "num_params": count_params(model),
        "seed": int(config.seed),
        "train_steps": int(result.train_steps),
        "best_step": int(result.best_step),
        "stopped_early": bool(result.stopped_early),
        "train_wall_s": float(result.train_wall_s),
        # Steady state excludes the first (compiling) call: None if there was only one.
        "steps_per_s": float(result.steps_per_s) or _last_logged_steps_per_s(workdir) or None,
        "compile_s": float(result.compile_s),
        "eval_wall_s": eval_wall_s,
        "num_samples": int(config.sampler.num_samples),
        "sample_time_s": sample_time_s,
        "sample_compile_s": sample_compile_s,
        "files": {name: os.path.basename(path) for name, path in files.items()},
        **hook_results,
    }
    for split, nll in model_nll.items():
        results[f"{split}_nll_nats"] = nll + exp.nll_offset_nats
        results[f"{split}_bits_per_dim"] = exp.bits_per_dim(nll)
        if exp.dequantized:
            results[f"{split}_nll_nats_dequantized_density"] = nll
    bad = {k: v for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        logging.warning("non-finite results: %s", bad)
    results["run_wall_s"] = time.perf_counter() - t_start
    results["environment"] = environment_info()
    results["config"] = config_dict
    _write_json(os.path.join(workdir, "results.json"), results)
    logging.info("%s on %s: test NLL %.3f nats, %.4f bits/dim -> %s", results["model"],
                 results["dataset"], results["test_nll_nats"], results["test_bits_per_dim"],
                 workdir)
    return results
