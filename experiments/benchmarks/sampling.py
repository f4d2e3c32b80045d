"""Categorical sampling throughput: inverse CDF, Gumbel-max and alias vs jax.random.categorical.

Run ``python -m experiments.benchmarks.sampling [--quick]``. Prints one JSON line per
(method, C) and a final summary line with the speedup of our best sampler over
`jax.random.categorical` per C.

Each sampler draws from one fixed distribution (Dirichlet(1) probabilities) and is jitted
as ``f(key, params) -> [num_draws]``; ``compile_s`` is lowering + compilation, then after one
warm-up call the best and median of ``--repeats`` calls (``block_until_ready``) are taken.
``draws_per_s`` uses the best call (least disturbed by other processes). O(1)/O(log C)
samplers draw ``--num_draws`` per call; the O(C)-per-draw ones (Gumbel-max and
`jax.random.categorical`, which is Gumbel-max too) draw ``min(num_draws, noise_budget // C)``
so a call stays within a few seconds; the count used is reported. The inverse-CDF time
includes its O(C) cumsum on every call; the alias table is built once, outside the timed
region, and its build time is reported as ``setup_s``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.distributions import (build_alias_table, sample_alias, sample_gumbel_max,
                                  sample_inverse_cdf)

NUM_CATEGORIES = (2, 17, 256, 65536)
OURS = ("inverse_cdf", "alias", "gumbel_max")


def _methods(probs: np.ndarray):
    """name -> (setup() -> params, sample(key, params, n), cost per draw is O(C))."""
    logits = lambda: jnp.log(jnp.asarray(probs))  # noqa: E731
    return {
        "inverse_cdf": (lambda: jnp.asarray(probs), sample_inverse_cdf, False),
        "alias": (lambda: build_alias_table(probs), sample_alias, False),
        "gumbel_max": (logits, sample_gumbel_max, True),
        "jax_categorical": (logits, lambda key, l, shape: jax.random.categorical(
            key, l, shape=shape), True),
    }


def _benchmark(name, setup_fn, sample_fn, num_categories, num_draws, repeats, key):
    start = time.perf_counter()
    params = jax.block_until_ready(setup_fn())
    setup_s = time.perf_counter() - start

    fn = jax.jit(lambda key, params: sample_fn(key, params, (num_draws,)))
    start = time.perf_counter()
    compiled = fn.lower(key, params).compile()
    compile_s = time.perf_counter() - start
    jax.block_until_ready(compiled(key, params))  # warm-up
    times = []
    for i in range(repeats):
        step_key = jax.random.fold_in(key, i)
        start = time.perf_counter()
        jax.block_until_ready(compiled(step_key, params))
        times.append(time.perf_counter() - start)
    best = min(times)
    return dict(method=name, num_categories=num_categories, num_draws=num_draws,
                draws_per_s=num_draws / best, best_s=best, median_s=statistics.median(times),
                compile_s=compile_s, setup_s=setup_s, repeats=repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fast smoke run")
    parser.add_argument("--num_draws", type=int, default=None,
                        help="draws per call (default 10**6, --quick 10**5)")
    parser.add_argument("--noise_budget", type=int, default=None,
                        help="max draws*C for O(C) samplers (default 2**24, --quick 2**20)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls (5; quick 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    num_draws = args.num_draws or (10**5 if args.quick else 10**6)
    noise_budget = args.noise_budget or (2**20 if args.quick else 2**24)
    repeats = args.repeats or (2 if args.quick else 5)
    device = jax.devices()[0]
    key = jax.random.key(args.seed)

    results = []
    for num_categories in NUM_CATEGORIES:
        probs = np.random.default_rng(args.seed).dirichlet(np.ones(num_categories))
        probs = probs.astype(np.float32)
        for name, (setup_fn, sample_fn, linear_cost) in _methods(probs).items():
            draws = min(num_draws, max(1, noise_budget // num_categories)) if linear_cost \
                else num_draws
            record = _benchmark(name, setup_fn, sample_fn, num_categories, draws, repeats, key)
            record.update(device=device.device_kind, platform=device.platform)
            results.append(record)
            print(json.dumps(record), flush=True)

    summary = {"summary": True, "speedup_over_jax_categorical": {}, "best_method": {}}
    for num_categories in NUM_CATEGORIES:
        rate = {r["method"]: r["draws_per_s"] for r in results
                if r["num_categories"] == num_categories}
        best = max(OURS, key=rate.__getitem__)
        summary["best_method"][str(num_categories)] = best
        summary["speedup_over_jax_categorical"][str(num_categories)] = (
            rate[best] / rate["jax_categorical"])
    speedups = summary["speedup_over_jax_categorical"]
    summary["meets_target"] = bool(min(speedups.values()) >= 1.0
                                   and speedups[str(NUM_CATEGORIES[-1])] >= 10.0)
    summary.update(device=device.device_kind, jax_version=jax.__version__)
    print(json.dumps(summary), flush=True)
    return summary


if __name__ == "__main__":
    main()
