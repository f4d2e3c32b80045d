"""Mode coverage of a finished 8gaussians energy-model run: ``python -m experiments.ebm_modes
WORKDIR [WORKDIR ...]`` prints one JSON line per run.

The eight modes sit at ``(4 / sqrt 2) (cos k pi/4, sin k pi/4)`` with std ``0.5 / sqrt 2``
(`jaxgen.data.toy2d`). For each mode this measures the model's probability mass within
radius ``r = 3 std = 1.06`` of its centre, by the midpoint rule on a 600 x 600 grid of
``[-6, 6]^2`` under the run's normalized ``log_prob`` (``log Z`` from its ``finalize``), so
no sampler is involved. The true mass is ``(1 - exp(-9/2)) / 8 = 0.1236`` per mode; a mode
counts as **covered** when the model puts at least half of that (0.0618) there. Also
reported: the same fractions among ``num_samples`` draws of ``model.sample`` (the run's
own sampler, Langevin then MALA from the noise box).
"""
from __future__ import annotations

import json
import math
import sys

import jax
import jax.numpy as jnp
import numpy as np

CENTERS = (4 / math.sqrt(2)) * np.stack([np.cos(np.arange(8) * np.pi / 4),
                                         np.sin(np.arange(8) * np.pi / 4)], axis=1)
RADIUS = 3 * 0.5 / math.sqrt(2)
TRUE_MASS = (1 - math.exp(-4.5)) / 8
COVERED_FRACTION = 0.5


def mode_masses(log_prob_fn, grid_size: int = 600, half_width: float = 6.0) -> np.ndarray:
    """``[8]``: mass within `RADIUS` of each centre under ``exp(log_prob_fn)``."""
    xs = np.linspace(-half_width, half_width, grid_size, endpoint=False) + half_width / grid_size
    pts = np.stack(np.meshgrid(xs, xs), -1).reshape(-1, 2).astype(np.float32)
    cell = (2 * half_width / grid_size) ** 2
    density = np.exp(np.asarray(jax.jit(log_prob_fn)(jnp.asarray(pts)), np.float64)) * cell
    dist = np.linalg.norm(pts[:, None] - CENTERS[None], axis=-1)  # [N, 8]
    return np.array([density[dist[:, k] < RADIUS].sum() for k in range(8)])


def sample_fractions(samples) -> np.ndarray:
    dist = np.linalg.norm(np.asarray(samples)[:, None] - CENTERS[None], axis=-1)
    return (dist < RADIUS).mean(0)


def coverage(workdir: str, num_samples: int = 2000) -> dict:
    from experiments.load import load_run

    run = load_run(workdir)
    model = run.model
    masses = mode_masses(model.log_prob)
    samples = jax.jit(model.sample, static_argnums=1)(jax.random.key(0), num_samples)
    fractions = sample_fractions(samples)
    threshold = COVERED_FRACTION * TRUE_MASS
    return dict(workdir=workdir, estimator=run.settings.model.get("estimator", "langevin"),
                test_nll=run.results.get("test_nll_nats"),
                log_z_std_err=run.results.get("log_z_std_err"),
                train_wall_s=run.results.get("train_wall_s"),
                log_z=run.results.get("log_z"),
                mode_mass=[round(float(m), 4) for m in masses],
                modes_covered=int(np.sum(masses >= threshold)),
                sample_fraction=[round(float(f), 4) for f in fractions],
                modes_covered_by_samples=int(np.sum(fractions >= threshold)),
                true_mode_mass=round(TRUE_MASS, 4))


def main(argv):
    for workdir in argv[1:]:
        print(json.dumps(coverage(workdir)))


if __name__ == "__main__":
    main(sys.argv)
