"""Flow throughput benchmark; prints one JSON line per model.

* RealNVP, 8 affine couplings with MLP conditioners (2 hidden layers of 256), on 64-d
  digits (dequantized) at batch 256: training steps/s, ``log_prob`` points/s, sample
  points/s, the achieved GFLOP/s of each (XLA's cost analysis of the compiled function /
  time) next to this machine's float32 matmul GFLOP/s.
  The record's ``comparison`` holds the same workload (without ActNorm and Logit, scale
  ``exp``) in jaxgen, distrax and flowjax, measured interleaved in this run
  (`experiments.benchmarks.flows_compare`; a library that is not importable is reported as
  ``{"installed": false}``).
* A 3-level multi-scale Glow (K = 8 steps per level, 512 hidden channels as in the paper;
  ``--quick``, a smoke test: K = 1, 8 channels, on 16x16x1 at batch 8) on 28x28x1 at batch
  64: the same numbers plus peak memory (XLA's memory analysis of the compiled train step, and the process's max RSS) and
  whether both stay under 4 GiB.

* MAF, 5 affine masked autoregressive layers with MADE conditioners (2 hidden layers of
  64), on 64-d dequantized digits at batch 256: ``log_prob`` points/s (one pass per layer)
  and sample points/s (64 sequential passes per layer, one ``lax.scan``), next to flowjax's
  ``masked_autoregressive_flow`` (``flow_layers=5, nn_width=64, nn_depth=2``, an affine
  transformer, ``invert=True``: the same fast direction) on the same inputs in the same
  run (``{"installed": false}`` when flowjax is not importable).

Compile seconds are reported next to steady-state throughput.

    python -m experiments.benchmarks.flows [--quick]
"""
from __future__ import annotations

import json
import resource
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from experiments.benchmarks.flows_compare import compare
from jaxgen import flows
from jaxgen.data.preprocessing import uniform_dequantize
from jaxgen.data import load_digits
from jaxgen.training.state import merge_model, split_model


def _time(fn, *args, repeats: int, rounds: int = 3):
    """``(compiled, compile_s, best seconds per call, XLA flops)``: the best of ``rounds``
    rounds of ``repeats`` calls (the machine may be shared)."""
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    out = compiled(*args)
    jax.block_until_ready(out)
    compile_s = time.perf_counter() - t0
    per_call = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            out = compiled(*args)
        jax.block_until_ready(out)
        per_call = min(per_call, (time.perf_counter() - t0) / repeats)
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0)) if cost else 0.0
    return compiled, compile_s, per_call, flops


def matmul_gflops(n: int = 1024, repeats: int = 10) -> float:
    """This machine's float32 matmul throughput (``2 n^3`` flops per product)."""
    a = jnp.asarray(np.random.RandomState(0).standard_normal((n, n)), jnp.float32)
    f = jax.jit(lambda x: x @ x)
    _, _, per_call, _ = _time(f, a, repeats=repeats)
    return 2 * n ** 3 / per_call / 1e9


def bench(name: str, model, batch: np.ndarray, repeats: int, rounds: int = 3) -> dict:
    graphdef, params, state = split_model(model)
    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)
    batch = jnp.asarray(batch)
    n = batch.shape[0]

    def train_step(params, opt_state, x):
        def loss_fn(p):
            return -jnp.mean(merge_model(graphdef, p, state).log_prob(x))
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    log_prob = lambda p, x: merge_model(graphdef, p, state).log_prob(x)
    sample = lambda p, key: merge_model(graphdef, p, state).sample(key, n)
    out = dict(model=name, batch_size=n, event_shape=list(batch.shape[1:]),
               num_params=int(sum(x.size for x in jax.tree.leaves(params))))
    compiled, c_s, t, flops = _time(jax.jit(train_step), params, opt_state, batch,
                                    repeats=repeats, rounds=rounds)
    mem = compiled.memory_analysis()
    if mem is not None:
        out["train_step_peak_bytes_xla"] = int(
            mem.temp_size_in_bytes + mem.argument_size_in_bytes + mem.output_size_in_bytes)
    out.update(train_compile_s=c_s, train_steps_per_s=1 / t, train_gflops_per_s=flops / t / 1e9)
    _, c_s, t, flops = _time(jax.jit(log_prob), params, batch, repeats=repeats, rounds=rounds)
    out.update(log_prob_compile_s=c_s, log_prob_points_per_s=n / t,
               log_prob_gflops_per_s=flops / t / 1e9)
    _, c_s, t, flops = _time(jax.jit(sample), params, jax.random.key(0), repeats=repeats,
                             rounds=rounds)
    out.update(sample_compile_s=c_s, sample_points_per_s=n / t,
               sample_gflops_per_s=flops / t / 1e9)
    out["max_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def _throughput(fn, args, n: int, repeats: int, rounds: int) -> dict:
    _, compile_s, t, _ = _time(jax.jit(fn), *args, repeats=repeats, rounds=rounds)
    return dict(points_per_s=n / t, seconds_per_call=t, compile_s=compile_s)


def maf_comparison(x: np.ndarray, quick: bool) -> dict:
    """MAF ``log_prob`` and ``sample`` throughput in jaxgen and flowjax on ``x [B, D]``."""
    repeats, rounds = (2, 1) if quick else (10, 3)
    x = np.asarray(x).reshape(x.shape[0], -1)  # [B, D]
    n, d = x.shape
    layers, width, depth = (2 if quick else 5), 64, 2
    out = {"workload": dict(batch=n, num_dims=d, flow_layers=layers, nn_width=width,
                            nn_depth=depth, transformer="affine")}
    maf = flows.MAF((d,), num_layers=layers, hidden_features=width, num_hidden_layers=depth,
                    rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(maf)
    out["jaxgen"] = dict(
        log_prob=_throughput(lambda s, v: nnx.merge(graphdef, s).log_prob(v), (state, x), n,
                             repeats, rounds),
        sample=_throughput(lambda s, k: nnx.merge(graphdef, s).sample(k, n),
                           (state, jax.random.key(1)), n, repeats, rounds))
    try:
        import equinox as eqx
        from flowjax.distributions import Normal
        from flowjax.flows import masked_autoregressive_flow
    except ImportError:
        out["flowjax"] = {"installed": False}
        return out
    flow = masked_autoregressive_flow(jax.random.key(0), base_dist=Normal(jnp.zeros(d)),
                                      flow_layers=layers, nn_width=width, nn_depth=depth)
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    out["flowjax"] = dict(
        installed=True,
        log_prob=_throughput(lambda p, v: eqx.combine(p, static).log_prob(v), (params, x), n,
                             repeats, rounds),
        sample=_throughput(lambda p, k: eqx.combine(p, static).sample(k, (n,)),
                           (params, jax.random.key(1)), n, repeats, rounds))
    for what in ("log_prob", "sample"):
        out[f"{what}_ratio_jaxgen_over_flowjax"] = (
            out["jaxgen"][what]["points_per_s"] / out["flowjax"][what]["points_per_s"])
    return out


GLOW = dict(num_scales=3, num_steps=8, hidden_channels=512)  # paper width (Kingma & Dhariwal)
GLOW_QUICK = dict(num_scales=3, num_steps=1, hidden_channels=8)


def main(quick: bool = False) -> None:
    repeats = 2 if quick else 10
    machine = dict(backend=jax.default_backend(), devices=jax.device_count(),
                   matmul_float32_gflops_per_s=matmul_gflops(256 if quick else 1024,
                                                             repeats=3 if quick else 10))
    digits = load_digits()
    x = np.asarray(uniform_dequantize(jax.random.key(0), digits.train[:256], 17))
    # --quick is a smoke test of the record's shape: 2 couplings of width 32
    couplings, width = (2, 32) if quick else (8, 256)
    realnvp = flows.build_flow(
        "realnvp", digits.event_shape,
        uniform_dequantize(jax.random.key(0), digits.train[:512], 17), unit_interval=True,
        architecture="vector", num_couplings=couplings, hidden_features=width,
        num_hidden_layers=2, rngs=nnx.Rngs(0))
    record = bench(f"realnvp_vector_{couplings}x{width}_digits", realnvp, x, repeats,
                   rounds=1 if quick else 3)
    # the same workload in jaxgen, distrax and flowjax (those that are importable)
    record["comparison"] = compare(quick, machine["matmul_float32_gflops_per_s"])
    print(json.dumps({**record, **machine}), flush=True)
    maf = {"model": "maf_5x64x2_digits" if not quick else "maf_2x64x2_digits",
           **maf_comparison(x, quick)}
    print(json.dumps({**maf, **machine}), flush=True)
    rng = np.random.RandomState(0)
    side, batch = (16, 8) if quick else (28, 64)  # --quick: 3 levels on 16x16
    images = rng.uniform(0, 1, (batch, side, side, 1)).astype(np.float32)
    glow_config = GLOW_QUICK if quick else GLOW
    glow = flows.Glow((side, side, 1), **glow_config, logit_alpha=1e-6, rngs=nnx.Rngs(0))
    flows.initialize(glow, images)
    record = bench(f"glow_3_levels_{side}x{side}x1", glow, images, 1 if quick else 3,
                   rounds=1 if quick else 2)
    record.update(glow_config, fits_4_gib=bool(
        max(record.get("train_step_peak_bytes_xla", 0), record["max_rss_bytes"]) < 4 * 2 ** 30))
    print(json.dumps({**record, **machine}), flush=True)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
