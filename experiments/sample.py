"""Command line: samples from a trained run.

``python -m experiments.sample --workdir DIR [--num_samples N] [--temperature T] [--seed S]
[--which final|best|latest] [--out PREFIX]``

Loads the run (`experiments.load.load_run`), draws ``N`` samples with ``jax.random.key(S)``
and writes ``PREFIX.npz`` (``samples``: in the stored data's units, levels for discrete or
dequantized data) and ``PREFIX.png`` (an image grid, or a scatter plot over the test data for
2D points; no figure for other shapes). ``PREFIX`` defaults to ``DIR/samples-seed<S>``.
``--temperature`` scales a flow's base draws (``T < 1``: towards the mode); models without a
temperature refuse any value but 1.
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys

import jax
import numpy as np

from experiments.load import WHICH, RunError, load_run
from experiments.report import jit_sampler
from jaxgen import viz
from jaxgen.checks import check_count, check_positive


def draw(run, num_samples: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """``num_samples`` samples of ``run.model`` in the data's units (jit-compiled draw)."""
    num_samples = check_count("num_samples", num_samples)
    temperature = check_positive("temperature", temperature)
    model = run.model
    kwargs = {}
    if temperature != 1.0:
        if "temperature" not in inspect.signature(model.sample).parameters:
            raise RunError(f"{type(model).__name__} has no sampling temperature (only flows "
                           f"do); drop --temperature={temperature}")
        kwargs["temperature"] = temperature
    samples = jit_sampler(model, num_samples, **kwargs)(jax.random.key(int(seed)))
    return run.preprocessing.to_data(samples)


def write_samples(run, samples: np.ndarray, prefix: str) -> dict:
    """``prefix.npz`` and, for images and 2D points, ``prefix.png``; returns the paths."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    files = {"npz": prefix + ".npz"}
    np.savez(files["npz"], samples=samples)
    shape, settings = tuple(run.dataset.event_shape), run.settings
    if len(shape) == 3 and shape[-1] in (1, 3):
        files["png"] = prefix + ".png"
        viz.save_image_grid(files["png"], samples, run.dataset.num_levels,
                            settings.eval.plot_ncols, scale=max(1, 64 // max(shape[:2])))
    elif shape == (2,):
        files["png"] = prefix + ".png"
        viz.plot_2d_samples(files["png"], samples, run.dataset.test[:len(samples)],
                            title=f"{settings.model_name} on {run.dataset.name}")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.sample",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="the run's directory")
    parser.add_argument("--num_samples", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--which", default="final", choices=WHICH)
    parser.add_argument("--out", default=None, help="output prefix (default "
                        "DIR/samples-seed<S>)")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.workdir, args.which)
        samples = draw(run, args.num_samples, args.seed, args.temperature)
    except (RunError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    files = write_samples(run, samples,
                          args.out or os.path.join(args.workdir, f"samples-seed{args.seed}"))
    print(f"{len(samples)} samples of {run.settings.model_name} -> "
          + ", ".join(files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
