"""After training: evaluate, time sampling, plot, and assemble ``results.json``."""
from __future__ import annotations

import functools
import math
import os
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx

from experiments.build import Experiment
from experiments.environment import environment_info
from experiments.workdir import last_logged_steps_per_s, read_metrics
from jaxgen import viz
from jaxgen.training import TrainResult, count_params, evaluate_nll

# Keys `results.json` always holds (tests and the demo rely on them).
RESULT_KEYS = (
    "model", "dataset", "test_nll_nats", "test_bits_per_dim", "valid_nll_nats",
    "valid_bits_per_dim", "num_params", "train_steps", "train_wall_s", "steps_per_s",
    "compile_s", "sample_time_s", "num_samples", "seed", "environment", "config")
# fold_in indices of the keys derived from the config seed: one per use.
_TEST_KEY, _VALID_KEY, _SAMPLE_KEY, _PLOT_KEY, _TEST_IW_KEY = 11, 12, 13, 14, 18


def jit_sampler(model: nnx.Module, num_samples: int, **sample_kwargs) -> Callable:
    """``key -> model.sample(key, num_samples, **sample_kwargs)``, jit-compiled (parameters
    passed as args)."""
    graphdef, state = nnx.split(model)
    sample_fn = jax.jit(lambda state, key: nnx.merge(graphdef, state).sample(
        key, num_samples, **sample_kwargs))
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
    """``samples.png`` (and ``density.png`` for 2D data, ``class_samples.png`` for images of a
    conditional data set: row ``c`` holds ``plot_ncols`` draws of ``p(x | y = c)``); returns
    ``{name: path}``."""
    settings, event_shape = exp.settings, exp.dataset.event_shape
    num_plot = settings.eval.num_plot_samples
    if samples.shape[0] >= num_plot:
        samples = samples[:num_plot]
    else:
        samples = jit_sampler(model, num_plot)(
            jax.random.fold_in(jax.random.key(settings.seed), _PLOT_KEY))
    values, num_levels = exp.preprocessing.to_data(samples), exp.dataset.num_levels
    files = {}
    if len(event_shape) == 3 and event_shape[-1] in (1, 3):
        path = os.path.join(workdir, "samples.png")
        scale = max(1, 64 // max(event_shape[:2]))  # small images get bigger pixels
        viz.save_image_grid(path, values, num_levels, settings.eval.plot_ncols, scale=scale)
        files["samples"] = path
        if exp.dataset.is_conditional:  # one row per class: p(x | y = row)
            per_class, k = settings.eval.plot_ncols, exp.dataset.num_classes
            labels = np.repeat(np.arange(k), per_class)  # [k * per_class]
            draws = jit_sampler(model, k * per_class, context=labels)(
                jax.random.fold_in(jax.random.key(settings.seed), _PLOT_KEY + 1))
            files["class_samples"] = os.path.join(workdir, "class_samples.png")
            viz.save_image_grid(files["class_samples"], exp.preprocessing.to_data(draws),
                                num_levels, per_class, scale=scale)
    elif event_shape == (2,):
        data = exp.dataset.test[:num_plot]
        files["samples"] = os.path.join(workdir, "samples.png")
        viz.plot_2d_samples(files["samples"], values, data,
                            title=f"{settings.model_name} on {exp.dataset.name}")
        log_prob_fn = _marginal_log_prob_fn(model, exp.dataset)
        files["density"] = os.path.join(workdir, "density.png")
        viz.plot_2d_density(files["density"], log_prob_fn, viz.data_extent(exp.dataset.test),
                            title=f"{settings.model_name} density")
    else:
        logging.info("no plot for event shape %s", event_shape)
    curves = os.path.join(workdir, "curves.png")
    if viz.plot_curves(curves, read_metrics(workdir),
                       title=f"{settings.model_name} on {exp.dataset.name}"):
        files["curves"] = curves
    return files


def _marginal_log_prob_fn(model: nnx.Module, dataset) -> Callable:
    """``x [N, D] -> log p(x) [N]``, jit-compiled: the model's own ``log_prob``, or for a
    class-conditional model the mixture ``log sum_y pi_y p(x | y)`` with ``pi`` the training
    split's class frequencies (what a density plot of the unlabeled data shows)."""
    graphdef, state = nnx.split(model)
    if not dataset.is_conditional:
        return jax.jit(lambda x: nnx.merge(graphdef, state).log_prob(x))
    k = int(dataset.num_classes)
    counts = np.bincount(np.asarray(dataset.train_labels), minlength=k)
    with np.errstate(divide="ignore"):
        log_pi = jnp.asarray(np.log(counts / counts.sum()), jnp.float32)  # [K]

    def log_prob(x):
        m = nnx.merge(graphdef, state)
        per_class = jnp.stack([m.log_prob(x, context=jnp.full((x.shape[0],), y, jnp.int32))
                               for y in range(k)], axis=-1)  # [N, K]
        return jax.nn.logsumexp(per_class + log_pi, axis=-1)

    return jax.jit(log_prob)


def evaluate(exp: Experiment, model: nnx.Module) -> dict:
    """Test and valid NLL of ``model`` in the stored data's nats and bits/dim.

    For dequantized data the NLL is the model's NLL on ``(x + u) / K`` plus ``D log K``
    (an upper bound on the discrete NLL); the density's own NLL is kept as
    ``*_nll_nats_dequantized_density``. With variational dequantization the model scores
    the levels itself: ``*_nll_nats`` is the variational bound (one ``u ~ q(u | x)`` per
    example), and ``test_nll_iw_nats`` / ``test_bits_per_dim_iw`` the tighter
    importance-weighted estimate with ``iw_samples = S`` draws per example
    (``config.data.iw_samples``), ``-log (1/S) sum_s p((x + u_s) / K) K^-D / q(u_s | x)``.
    """
    base_key = jax.random.key(exp.settings.seed)
    pre, out = exp.preprocessing, {}
    for split, key_index in (("test", _TEST_KEY), ("valid", _VALID_KEY)):
        nll = evaluate_nll(model, exp.dataset.split_data(split),  # Labeled if conditional
                           batch_size=exp.settings.eval.batch_size, preprocessing=pre,
                           key=jax.random.fold_in(base_key, key_index))
        out[f"{split}_nll_nats"] = nll + pre.nll_offset_nats
        out[f"{split}_bits_per_dim"] = pre.bits_per_dim(nll)
        if pre.active:
            out[f"{split}_nll_nats_dequantized_density"] = nll
    if pre.dequantize == "variational":
        num_samples = int(exp.settings.data["iw_samples"])
        nll_iw = evaluate_nll(model.with_num_samples(num_samples), exp.dataset.split_data("test"),
                              batch_size=max(1, exp.settings.eval.batch_size // num_samples),
                              preprocessing=pre, key=jax.random.fold_in(base_key, _TEST_IW_KEY))
        out.update(test_nll_iw_nats=nll_iw, test_bits_per_dim_iw=pre.bits_per_dim(nll_iw),
                   iw_samples=num_samples)
    return out


def report(exp: Experiment, result: TrainResult, workdir: str, *,
           write_files: bool = True) -> dict:
    """Evaluates the trained model, times and plots samples; returns the results record
    (without ``run_wall_s``, ``environment`` and ``config``, which `assemble` adds).
    ``write_files=False`` (processes other than 0 of a multi-process run) skips the plots;
    the evaluation, which every process takes part in, runs either way."""
    settings, model = exp.settings, result.model
    t_eval = time.perf_counter()
    nlls = evaluate(exp, model)
    eval_wall_s = time.perf_counter() - t_eval
    samples, sample_compile_s, sample_time_s = time_sampling(
        model, jax.random.fold_in(jax.random.key(settings.seed), _SAMPLE_KEY),
        settings.sampler.num_samples, settings.sampler.timing_repeats)
    files = write_plots(exp, model, samples, workdir) if write_files else {}
    pre = exp.preprocessing
    results = {
        "model": settings.model_name,
        "dataset": exp.dataset.name,
        "dequantize": pre.dequantize,
        "objective": type(exp.objective).__name__,
        "event_shape": list(exp.dataset.event_shape),
        "num_dims": exp.dataset.num_dims,
        "num_levels": exp.dataset.num_levels,
        "nll_units": pre.nll_units,
        "num_params": count_params(model),
        "seed": settings.seed,
        "train_steps": int(result.train_steps),
        "best_step": int(result.best_step),
        "stopped_early": bool(result.stopped_early),
        "train_wall_s": float(result.train_wall_s),
        # Steady state excludes the first (compiling) call: None if there was only one.
        "steps_per_s": float(result.steps_per_s) or last_logged_steps_per_s(workdir) or None,
        "compile_s": float(result.compile_s),
        "eval_wall_s": eval_wall_s,
        "num_samples": settings.sampler.num_samples,
        "sample_time_s": sample_time_s,
        "sample_compile_s": sample_compile_s,
        "files": {name: os.path.basename(path) for name, path in files.items()},
        **result.finalize_results,
        **nlls,
    }
    bad = {k: v for k, v in results.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        logging.warning("non-finite results: %s", bad)
    return results


def assemble(results: dict, settings, run_wall_s: float) -> dict:
    """Adds the run's wall time, the environment and the config."""
    return dict(results, run_wall_s=run_wall_s, environment=environment_info(),
                config=settings.config)
