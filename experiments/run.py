"""One experiment, end to end: ``run_experiment(config, workdir)``.

What ``python -m experiments.main`` calls; a plain function, so notebooks, the demo and
tests call it too. In order:

1. `experiments.schema.validate`: the config, once (`ConfigError` names the bad key);
2. `experiments.workdir.check_workdir`: new, resume, or complete (`WorkdirError` if the
   workdir holds another config's run; nothing is changed then);
3. `experiments.build.build_experiment`: data, preprocessing, model, objective;
4. `jaxgen.training.train`: the loop (resuming from checkpoints), ending with the
   objective's ``finalize``;
5. `experiments.report`: test/valid NLL, sampling time, plots, ``results.json``.

The workdir ends up with::

    config.json     the full config (written before any training)
    checkpoints/    orbax checkpoints (the training loop resumes from them)
    metrics.jsonl   train/valid records of the training loop
    tensorboard/    the same records as TensorBoard scalars (``tensorboard --logdir``)
    final_model/    the finalized model's whole state (`experiments.load.load_run`)
    curves.png      train/valid bits/dim (or NLL) against the step
    samples.png     a grid of samples (images) or a scatter plot next to the data (2D)
    density.png     2D data only: the model density on a grid
    results.json    test/valid NLL, bits/dim, timings, parameter count, environment, config
"""
from __future__ import annotations

import os
import time
from typing import Callable

from absl import logging

from experiments import schema
from experiments.build import build_experiment
from experiments.report import assemble, report
from experiments.workdir import archive_results, check_workdir, write_json
from jaxgen.training import train
from jaxgen.training.sharding import is_main_process


def quiet_library_logs() -> None:
    """Keeps orbax's per-save INFO chatter out of absl's log (warnings still show)."""
    import logging as std_logging

    def keep(record: std_logging.LogRecord) -> bool:
        return record.levelno >= std_logging.WARNING or "orbax" not in record.pathname

    logging.get_absl_handler().addFilter(keep)


def run_experiment(config, workdir: str, *, callback: Callable | None = None) -> dict:
    """Trains and evaluates the model ``config`` describes; writes and returns the results.

    NLLs are nats per example of the *data*: for dequantized data that is the model's NLL
    on ``(x + u) / K`` plus ``D log K`` (an upper bound on the discrete NLL), and
    ``*_bits_per_dim`` are in the discrete data's units.

    Args:
      config: a ``ConfigDict`` (a config file's ``get_config()``), a plain dict (a run's
        ``config.json``) or `experiments.schema.RunSettings`.
      workdir: output directory (created).
      callback: passed to `jaxgen.training.train` (``callback(step, state)``).

    Returns:
      The ``results.json`` contents (the stored ones if the run had completed before).
    """
    t_start = time.perf_counter()
    settings = schema.validate(config)
    status = check_workdir(workdir, settings.config)
    if status.kind == "complete":
        logging.info("%s already holds results of this config; returning them", workdir)
        return status.results
    exp = build_experiment(settings)
    main_process = is_main_process()  # of a multi-process run, only process 0 writes files
    os.makedirs(workdir, exist_ok=True)
    # A run started before some fields existed keeps recording (and checking its
    # checkpoints against) the config without them; they hold their defaults.
    recorded = schema.without_keys(settings.config, status.added)
    if main_process:
        write_json(os.path.join(workdir, "config.json"), recorded)
    logging.info("training %s on %s in %s", settings.model_name, exp.dataset, workdir)
    result = train(exp.model, exp.dataset, settings.train, workdir, objective=exp.objective,
                   preprocessing=exp.preprocessing, run_id=schema.run_id(recorded),
                   callback=callback)
    results = assemble(report(exp, result, workdir, write_files=main_process), settings,
                       time.perf_counter() - t_start)
    if not main_process:
        return results
    archive_results(workdir)
    write_json(os.path.join(workdir, "results.json"), results)
    logging.info("%s on %s: test NLL %.3f nats, %.4f bits/dim -> %s", results["model"],
                 results["dataset"], results["test_nll_nats"], results["test_bits_per_dim"],
                 workdir)
    return results
