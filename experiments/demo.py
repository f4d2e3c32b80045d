"""The demo: train every model family on 8x8 digits and write a markdown report.

``python -m experiments.demo --workdir runs/demo`` (``make demo``) runs each config of
`DEMO_CONFIGS` with `experiments.run.run_experiment` in ``runs/demo/<config>/`` and writes

* ``runs/demo/report.md``: one table row per model (data set, test NLL in nats and
  bits/dim, parameters, training time, steps/s, time to draw 100 samples), the sample
  grids (per class for the class-conditional model), and the environment;
* ``runs/demo/results.json``: the same rows plus the environment, as data.

A new model family joins the demo by adding its config name to `DEMO_CONFIGS`.

Re-running on an existing workdir never destroys results: completed runs are skipped (their
stored ``results.json`` is reused; delete a run's folder to redo it), unfinished ones
resume from their checkpoints, a larger ``--num_steps`` extends them (the earlier
``results.json`` is kept as ``results-step<N>.json``), and a run folder holding a different
config is refused with an error naming the differing keys.
"""
from __future__ import annotations

import json
import os
import time

from absl import app, flags, logging

from experiments.environment import environment_info, environment_line
from experiments import schema
from experiments.config_io import load_config
from experiments.workdir import check_workdir
from experiments.run import quiet_library_logs, run_experiment

# Configs the demo trains, in report order (experiments/configs/<name>.py).
DEMO_CONFIGS = (
    "factorized_categorical_digits",
    "factorized_bernoulli_digits",
    "diagonal_gaussian_digits",
    "realnvp_vector_digits",
    "glow_digits",
    "made_digits",
    "made_digits_conditional",
    "pixelcnn_digits",
    "gated_pixelcnn_digits",
    "transformer_digits",
    "rbm_digits",
)



def _define_flags():
    """The demo's flags, defined only when it runs as ``python -m experiments.demo`` (so
    that importing it next to `experiments.main`, which has its own ``--workdir``, works)."""
    return (flags.DEFINE_string("workdir", "runs/demo", "Output directory of the demo."),
            flags.DEFINE_list("configs", list(DEMO_CONFIGS), "Config names to run."),
            flags.DEFINE_integer(
                "num_steps", 0, "If > 0, overrides train.num_steps of every config (a "
                "multiple of its train.steps_per_call); for quick checks."))

_COLUMNS = (  # (header, row key, format)
    ("model", "model", "{}"),
    ("dataset", "dataset", "{}"),
    ("test NLL (nats)", "test_nll_nats", "{:.2f}"),
    ("test bits/dim", "test_bits_per_dim", "{:.4f}"),
    ("parameters", "num_params", "{:,}"),
    ("training time (s)", "train_wall_s", "{:.1f}"),
    ("steps/s", "steps_per_s", "{:,.0f}"),
    ("100 samples (ms)", "sample_time_ms_per_100", "{:.2f}"),
)


def _row(name: str, results: dict) -> dict:
    dataset = results["dataset"]
    if results.get("dequantize", "none") != "none":
        dataset += f" ({results['dequantize']} dequantization)"
    if results["config"].get("data", {}).get("conditional"):
        dataset += ", given the class"
    return {
        "config": name,
        "model": results["model"],
        "dataset": dataset,
        "test_nll_nats": results["test_nll_nats"],
        "test_bits_per_dim": results["test_bits_per_dim"],
        "num_params": results["num_params"],
        "train_wall_s": results["train_wall_s"],
        "train_steps": results["train_steps"],
        "steps_per_s": results["steps_per_s"],
        "sample_time_ms_per_100": 1e3 * results["sample_time_s"] * 100 / results["num_samples"],
        "samples_png": (os.path.join(name, results["files"]["samples"])
                        if "samples" in results.get("files", {}) else None),
        "curves_png": (os.path.join(name, results["files"]["curves"])
                       if "curves" in results.get("files", {}) else None),
        "class_samples_png": (os.path.join(name, results["files"]["class_samples"])
                              if "class_samples" in results.get("files", {}) else None),
    }


def markdown_report(rows: list[dict], env: dict, wall_s: float) -> str:
    """The report: results table, notes on units, sample grids, environment."""
    lines = ["# jaxgen demo: explicit-likelihood models on 8x8 digits", "",
             "| " + " | ".join(h for h, _, _ in _COLUMNS) + " |",
             "|" + "|".join("---" if k in ("model", "dataset") else "---:"
                            for _, k, _ in _COLUMNS) + "|"]
    for row in rows:
        lines.append("| " + " | ".join("n/a" if row[k] is None else fmt.format(row[k])
                                       for _, k, fmt in _COLUMNS) + " |")
    lines += [
        "",
        "Test NLL is nats per example of the data each model is given, evaluated with the "
        "best-on-validation parameters; bits/dim = NLL / (64 ln 2). Digits have 17 levels "
        "per pixel, binarized digits 2, so only rows on the same data compare. A continuous "
        "model on dequantized digits, `y = (x + u) / 17`, is scored in the discrete data's "
        "units through the bound `-log P(x) <= E_u[-log p(y)] + 64 log 17`. Training time "
        "includes compilation; steps/s is steady state.",
        "", "## Samples", ""]
    for row in rows:
        if row["samples_png"]:
            lines += [f"**{row['model']}** on {row['dataset']}", "",
                      f"![{row['config']} samples]({row['samples_png']})", ""]
    conditional = [row for row in rows if row.get("class_samples_png")]
    if conditional:
        lines += ["## Samples per class", "",
                  "Class-conditional models: row `c` holds draws of `p(x | y = c)`, digits "
                  "0 (top) to 9. `python -m experiments.class_samples --workdir <run>` "
                  "measures how often a classifier agrees with the asked-for class.", ""]
        for row in conditional:
            lines += [f"**{row['model']}** on {row['dataset']} (`{row['config']}`)", "",
                      f"![{row['config']} samples per class]({row['class_samples_png']})",
                      ""]
    lines += ["## Learning curves", "",
              "Train and validation bits/dim against the step (`curves.png` of each run; "
              "`tensorboard --logdir runs/demo` shows the same scalars).", ""]
    for row in rows:
        if row.get("curves_png"):
            lines += [f"**{row['model']}**", "",
                      f"![{row['config']} learning curves]({row['curves_png']})", ""]
    reused = [row["config"] for row in rows if row.get("reused")]
    lines += [f"Environment: {environment_line(env)}.", "",
              f"Demo wall time {wall_s:.1f} s"
              + (f" (reused completed runs: {', '.join(reused)}; their times are from the "
                 "original runs)." if reused else "."), ""]
    return "\n".join(lines)


def run_demo(workdir: str, config_names=DEMO_CONFIGS, num_steps: int = 0) -> list[dict]:
    """Runs every config in its own ``workdir/<name>``; writes ``report.md``, ``results.json``.

    Args:
      workdir: the demo's output directory.
      config_names: configs of ``experiments/configs`` to run, in report order.
      num_steps: if > 0, overrides ``train.num_steps`` of every config.

    Returns:
      One summary row per config.
    """
    t0 = time.perf_counter()
    rows = []
    for name in config_names:
        config = load_config(name)
        if num_steps > 0:
            config.train.num_steps = num_steps
        run_dir = os.path.join(workdir, name)
        settings = schema.validate(config)
        reused = check_workdir(run_dir, settings.config).kind == "complete"
        logging.info("demo: %s%s", name, " (completed before: reusing it)" if reused else "")
        rows.append(dict(_row(name, run_experiment(settings, run_dir)), reused=reused))
    wall_s = time.perf_counter() - t0
    env = environment_info()
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "report.md"), "w") as f:
        f.write(markdown_report(rows, env, wall_s))
    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump({"rows": rows, "demo_wall_s": wall_s, "environment": env}, f, indent=2)
    return rows


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    t0 = time.perf_counter()
    rows = run_demo(_WORKDIR.value, _CONFIGS.value, _NUM_STEPS.value)
    print(f"\nwrote {os.path.join(_WORKDIR.value, 'report.md')} "
          f"({len(rows)} models, {time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    _WORKDIR, _CONFIGS, _NUM_STEPS = _define_flags()
    app.run(main)
