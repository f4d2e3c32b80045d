"""Exposure bias on digits: an LSTM with teacher forcing vs with scheduled sampling.

Trains the registry's ``lstm`` on 8x8 digits (17 levels) with the same steps, data order,
initialization and optimizer, once per variant (teacher forcing; parallel and sequential
scheduled sampling), through the same path as ``experiments.main`` (config validation, the
registry's run hooks, `jaxgen.training.train`), then measures on the test split:

* ``test_nll_nats`` (per image) of the best-on-valid parameters;
* `jaxgen.autoregressive.continuation_nll` with the top half of the image as the prefix
  (``prefix_len = 32``; nats per continuation position): one completion of each test image
  and as many model samples per repeat;
* `jaxgen.autoregressive.own_history_nll` (nats per dimension of the true test images when a
  share ``q`` of the history is the model's own one-step samples), one draw per repeat;

each repeated ``--num_repeats`` times with independent keys (mean and standard error).

Writes one JSON file (default ``docs/exposure_bias.json``; docs/EXPOSURE_BIAS.md quotes it)::

    python -m experiments.exposure_bias [--num_steps 1500] [--out docs/exposure_bias.json]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.configs import common
from experiments.environment import environment_info
from experiments.build import build_experiment
from experiments.schema import config_to_dict
from jaxgen.autoregressive import continuation_nll, own_history_nll
from jaxgen.training import evaluate_nll, train

PREFIX_LEN = 32  # the top 4 rows of 8
REPLACE_PROBS = (0.0, 0.1, 0.25, 0.5)


def variants(num_steps: int) -> dict:
    """Variant name -> ``config.model`` scheduled-sampling fields.

    Both scheduled-sampling runs decay ``p_truth`` linearly from 1 to 0.75 over training
    (``k = 1``, ``c = 0.25 / num_steps``, Bengio et al.'s linear schedule).
    """
    decay = dict(scheduled_sampling="linear", scheduled_sampling_k=1.0,
                 scheduled_sampling_c=0.25 / num_steps, scheduled_sampling_min=0.75)
    return {
        "teacher_forcing": dict(scheduled_sampling="none"),
        "scheduled_sampling_parallel": dict(decay, scheduled_sampling_method="parallel"),
        "scheduled_sampling_sequential": dict(decay, scheduled_sampling_method="sequential"),
    }


def make_config(num_steps: int, hidden_size: int, seed: int, **ss_fields):
    return common.get_config(
        seed=seed,
        data=common.data_config("digits"),
        model=common.model_config("lstm", hidden_size=hidden_size, **ss_fields),
        train=dict(num_steps=num_steps, batch_size=64, steps_per_call=1,
                   log_every=max(num_steps // 4, 1), eval_every=max(num_steps // 4, 1),
                   progress=False),
        optim=dict(name="adam", lr=2e-3, schedule="cosine", end_lr_factor=0.05),
    )


def _mean_and_se(values) -> tuple[float, float]:
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(values.size))


def measure(model, test: np.ndarray, key, num_repeats: int) -> dict:
    """Exposure-bias measures of ``model`` on ``test``: each is computed ``num_repeats``
    times with independent keys (completions, model samples, history replacements) over the
    whole test split; reported as the mean and, under ``*_se``, its standard error."""
    graphdef, state = nnx.split(model)
    data = jnp.asarray(test)  # [N, 8, 8, 1]

    @jax.jit  # arrays are arguments: jaxgen's level checks read closed-over constants eagerly
    def continuation(state, data, key):
        c = continuation_nll(nnx.merge(graphdef, state), key, data, PREFIX_LEN)
        return c._asdict() | {"exposure_gap": c.exposure_gap}

    @jax.jit
    def own_history(state, data, key, q):
        return own_history_nll(nnx.merge(graphdef, state), key, data, q)

    cont_key, hist_key = jax.random.split(key)
    runs = [continuation(state, data, jax.random.fold_in(cont_key, r))
            for r in range(num_repeats)]
    out = {}
    for name in runs[0]:
        out[f"continuation_{name}"], out[f"continuation_{name}_se"] = _mean_and_se(
            [float(run[name]) for run in runs])
    for q in REPLACE_PROBS:
        out[f"own_history_nll_q{q:g}"], out[f"own_history_nll_q{q:g}_se"] = _mean_and_se(
            [float(own_history(state, data, jax.random.fold_in(hist_key, r), q))
             for r in range(num_repeats)])
    return out


def run(num_steps: int, hidden_size: int, seed: int, num_repeats: int, only=None) -> dict:
    results = {}
    for name, fields in variants(num_steps).items():
        if only and name not in only:
            continue
        config = make_config(num_steps, hidden_size, seed, **fields)
        exp = build_experiment(config)
        t0 = time.perf_counter()
        result = train(exp.model, exp.dataset, exp.settings.train, None,
                       objective=exp.objective, preprocessing=exp.preprocessing)
        train_s = time.perf_counter() - t0
        test_nll = evaluate_nll(result.model, exp.dataset.test)
        t0 = time.perf_counter()
        measures = measure(result.model, np.asarray(exp.dataset.test),
                           jax.random.key(seed + 1000), num_repeats)
        last_train = [r for r in result.history if r["split"] == "train"][-1]
        results[name] = {
            "test_nll_nats": test_nll,
            "test_bits_per_dim": test_nll / (exp.dataset.num_dims * np.log(2.0)),
            "best_valid_nll_nats": result.best_valid_nll,
            "best_step": result.best_step,
            "final_p_truth": last_train.get("p_truth", 1.0),
            "final_train_loss": last_train["loss"],
            "train_wall_s": train_s,
            "steps_per_s": result.steps_per_s,
            "measure_wall_s": time.perf_counter() - t0,
            **measures,
            "config_model": config_to_dict(config)["model"],
        }
        print(json.dumps({name: {k: v for k, v in results[name].items()
                                 if k != "config_model"}}), flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_steps", type=int, default=1500)
    parser.add_argument("--hidden_size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--num_repeats", type=int, default=8)
    parser.add_argument("--only", nargs="*", default=None, help="variant names to run")
    parser.add_argument("--out", default="docs/exposure_bias.json")
    args = parser.parse_args(argv)
    results = run(args.num_steps, args.hidden_size, args.seed, args.num_repeats, args.only)
    record = {
        "setup": {"data": "digits (8x8, 17 levels; 1257/270/270)", "model": "lstm",
                  "num_steps": args.num_steps, "hidden_size": args.hidden_size,
                  "batch_size": 64, "optim": "adam 2e-3, cosine to 0.05x",
                  "seed": args.seed, "prefix_len": PREFIX_LEN, "num_repeats": args.num_repeats,
                  "units": {"test_nll_nats": "nats per image",
                            "continuation_*": "nats per continuation position (32 positions)",
                            "own_history_nll_q*": "nats per dimension (64)"}},
        "results": results,
        "environment": environment_info(),
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
