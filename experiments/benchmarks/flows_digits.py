"""Trains a flow config on digits (or any dequantized config) and prints one JSON line:
test NLL in nats (continuous, and discrete-data units), bits/dim, wall time.

    python -m experiments.benchmarks.flows_digits realnvp_digits [workdir]

A stand-alone runner for the flow configs (``experiments.run`` is the general one); it
uses `jaxgen.training.train` with the flow's dequantization ``preprocess_fn`` and, for
BatchNorm flows, `jaxgen.flows.train_mode_nll_loss`.
"""
from __future__ import annotations

import importlib
import json
import math
import sys
import time

import jax
from flax import nnx

from jaxgen import flows
from jaxgen.data import load_dataset
from jaxgen.metrics import bits_per_dim
from jaxgen.training import evaluate_nll, train


def run(config_name: str, workdir: str | None = None, **train_overrides) -> dict:
    config = importlib.import_module(f"experiments.configs.{config_name}").get_config()
    for key, value in train_overrides.items():
        config.train[key] = value
    t0 = time.perf_counter()
    dataset = load_dataset(config.data)
    model = flows.build_flow(config.model, dataset, rngs=nnx.Rngs(config.seed))
    uses_bn = config.model.get("normalization", "") == "batchnorm"
    preprocess = flows.dequantize_fn(dataset.num_levels)
    result = train(model, dataset, config, workdir, preprocess_fn=preprocess,
                   loss_fn=flows.train_mode_nll_loss if uses_bn else None)
    # Test NLL averaged over 5 dequantization draws (each an upper bound in expectation).
    test_nll = sum(evaluate_nll(result.model, dataset.test, preprocess_fn=preprocess,
                                key=jax.random.key(100 + i)) for i in range(5)) / 5
    d, k = dataset.num_dims, dataset.num_levels
    out = dict(config=config_name, test_nll_continuous=test_nll,
               test_nll_discrete=test_nll + (d * math.log(k) if k else 0.0),
               test_bits_per_dim=float(bits_per_dim(test_nll, d, num_levels=k)),
               best_valid_bits_per_dim=float(bits_per_dim(result.best_valid_nll, d,
                                                          num_levels=k)),
               best_step=result.best_step, train_steps=result.train_steps,
               stopped_early=result.stopped_early, steps_per_s=result.steps_per_s,
               compile_s=result.compile_s, train_wall_s=result.train_wall_s,
               total_wall_s=time.perf_counter() - t0,
               num_params=sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
