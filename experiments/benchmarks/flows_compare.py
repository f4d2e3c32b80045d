"""jaxgen's RealNVP against distrax and flowjax on one workload, measured in one run.

Workload: 8 affine couplings on 64-d dequantized digits at batch 256; each coupling splits
the vector in halves (32 | 32), alternating which half conditions; conditioner MLP
``32 -> 256 -> 256 -> 64`` (ReLU), ``y_b = x_b * exp(s) + t``; standard normal base
(725,504 parameters in every library). All three libraries get *the same weights* (ours,
perturbed off the identity), and the benchmark checks that their ``log_prob`` agree.

* jaxgen: ``RealNVP((64,), normalization="none", scale_fn="exp")`` (split/concat
  couplings, shift and log-scale as two contiguous blocks of the conditioner's output);
* distrax: ``Transformed(MultivariateNormalDiag, Inverse(Chain([SplitCoupling(32, swap=j % 2)
  ...])))`` with ``Block(ScalarAffine(shift, log_scale), 1)`` and pure-jnp conditioners;
* flowjax: ``Transformed(StandardNormal, Invert(Scan(Chain([Coupling, Permute(swap halves)]))))``
  (flowjax's own ``coupling_flow`` layout, with the swap instead of a random permutation and
  the affine scale parameterized as ``exp``).

Every flow evaluates ``log_prob`` in the cheap (normalizing) direction. Measurements:
train step (Adam, ``value_and_grad`` of the mean NLL, jitted), ``log_prob`` and ``sample``;
each library's compiled functions are called in interleaved rounds and the best round
counts (the machine is shared). Next to the throughputs, ``*_cpu_ms_per_call`` is the best
process CPU time per call and ``speedup[lib]["*_cpu"]`` its ratio (theirs / ours): the work
each program does, less disturbed by other jobs than the wall clock. A library that is not
importable is reported as ``{"installed": false}``.

    python -m experiments.benchmarks.flows_compare [--quick]
"""
from __future__ import annotations

import importlib.util
import json
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxgen import flows
from jaxgen.data import load_digits
from jaxgen.data.preprocessing import uniform_dequantize
from jaxgen.training.state import merge_model, split_model

DIM, HALF, HIDDEN, NUM_COUPLINGS, BATCH = 64, 32, 256, 8, 256
LIBRARIES = ("jaxgen", "distrax", "flowjax")


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def _compile(fn, *args):
    """``(compiled, compile_s, flops)``; the compile time includes the first call."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    compile_s = time.perf_counter() - t0
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return compiled, compile_s, float(cost.get("flops", 0.0)) if cost else 0.0


def interleaved_best(calls: dict, rounds: int, inner: int) -> tuple[dict, dict]:
    """Best seconds per call of each ``calls[name] = (compiled, args)`` over ``rounds``
    rounds of ``inner`` calls; the names take turns inside every round.

    Returns ``(wall, cpu)``: the best wall-clock seconds per call, and the best process CPU
    seconds per call (all threads; `time.process_time`). On a shared machine the CPU time
    is the steadier measure of how much work each library's program does: other jobs
    stretch the wall clock but not this process's CPU time (much)."""
    best = {name: float("inf") for name in calls}
    best_cpu = {name: float("inf") for name in calls}
    for _ in range(rounds):
        for name, (compiled, args) in calls.items():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(inner):
                out = compiled(*args)
            jax.block_until_ready(out)
            best[name] = min(best[name], (time.perf_counter() - t0) / inner)
            best_cpu[name] = min(best_cpu[name], (time.process_time() - c0) / inner)
    return best, best_cpu


# ------------------------------------------------------------------------------------------
# The three builds. Each returns (params, log_prob_fn(params, x), sample_fn(params, key)).

def jaxgen_flow(seed: int = 0):
    """Ours, with every parameter perturbed off the identity (``0.02 N(0, 1)`` noise)."""
    model = flows.RealNVP((DIM,), num_couplings=NUM_COUPLINGS, hidden_features=HIDDEN,
                          num_hidden_layers=2, normalization="none", scale_fn="exp",
                          rngs=nnx.Rngs(seed))
    graphdef, params, state = split_model(model)
    rng = np.random.RandomState(seed)
    params = jax.tree.map(
        lambda p: p + 0.02 * rng.standard_normal(p.shape).astype(np.float32), params)
    log_prob = lambda p, x: merge_model(graphdef, p, state).log_prob(x)
    sample = lambda p, key: merge_model(graphdef, p, state).sample(key, BATCH)
    return params, log_prob, sample


def coupling_weights(params) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Our parameters as 8 lists (in application order) of 3 ``(kernel [in, out],
    bias [out])`` pairs. The normalizing chain is ``Chain([pair_4, ..., pair_1])`` and each
    pair ``Chain([parity 1, parity 0])``, so coupling ``2 i + p`` is
    ``bijectors[3 - i].bijectors[1 - p]``."""
    pairs = params["bijector"]["bijector"]["bijectors"]
    out = []
    for i in range(NUM_COUPLINGS // 2):
        for p in (0, 1):
            net = pairs[NUM_COUPLINGS // 2 - 1 - i]["bijectors"][1 - p]["conditioner"]
            linears = [net["hidden"][0], net["hidden"][1], net["out"]]
            layer = [(np.asarray(l["kernel"][...]), np.asarray(l["bias"][...]))
                     for l in linears]
            # ours: output [shifts (32) | raw scales (32)]; the others (distrax's examples,
            # flowjax's Coupling) interleave per entry [t_1, r_1, t_2, r_2, ...]
            order = np.stack([np.arange(HALF), HALF + np.arange(HALF)], axis=1).reshape(-1)
            w, b = layer[-1]
            layer[-1] = (w[:, order], b[order])
            out.append(layer)
    return out


def _mlp_apply(layers, x):  # [B, 32] -> [B, 64]
    for w, b in layers[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = layers[-1]
    return x @ w + b


def distrax_flow(weights):
    import distrax

    params = [[(jnp.asarray(w), jnp.asarray(b)) for w, b in layer] for layer in weights]

    def build(params):
        bijectors = []
        for j, layer in enumerate(params):
            def conditioner(x, layer=layer):
                return _mlp_apply(layer, x).reshape(x.shape[:-1] + (HALF, 2))

            def bijector(theta):
                return distrax.Block(distrax.ScalarAffine(shift=theta[..., 0],
                                                          log_scale=theta[..., 1]), 1)

            bijectors.append(distrax.SplitCoupling(HALF, 1, conditioner, bijector,
                                                   swap=bool(j % 2)))
        normalizing = distrax.Chain(bijectors[::-1])  # forward applies bijectors[0] first
        base = distrax.MultivariateNormalDiag(jnp.zeros(DIM), jnp.ones(DIM))
        return distrax.Transformed(base, distrax.Inverse(normalizing))

    log_prob = lambda p, x: build(p).log_prob(x)
    sample = lambda p, key: build(p).sample(seed=key, sample_shape=(BATCH,))
    return params, log_prob, sample


def flowjax_flow(weights):
    import equinox as eqx
    import paramax
    from flowjax.bijections import Affine, Chain, Coupling, Invert, Permute, Scan
    from flowjax.distributions import StandardNormal, Transformed

    transformer = eqx.tree_at(lambda a: a.scale, Affine(),
                              replace=paramax.Parameterize(jnp.exp, jnp.zeros(())))
    swap = Permute(jnp.concatenate([jnp.arange(HALF, DIM), jnp.arange(HALF)]))
    def make_layer(key):  # flowjax's coupling_flow layer: coupling, then a permutation
        coupling = Coupling(key, transformer=transformer, untransformed_dim=HALF, dim=DIM,
                            nn_width=HIDDEN, nn_depth=2)
        return Chain([coupling, swap])

    stacked = eqx.filter_vmap(make_layer)(jax.random.split(jax.random.key(0), NUM_COUPLINGS))
    for k in range(3):  # our weights, stacked; equinox Linear holds weight [out, in]
        w = jnp.stack([jnp.asarray(layer[k][0].T) for layer in weights])
        b = jnp.stack([jnp.asarray(layer[k][1]) for layer in weights])
        stacked = eqx.tree_at(lambda l: (l.bijections[0].conditioner.layers[k].weight,
                                         l.bijections[0].conditioner.layers[k].bias),
                              stacked, (w, b))
    flow = Transformed(StandardNormal((DIM,)), Invert(Scan(stacked)))
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    model = lambda p: paramax.unwrap(eqx.combine(p, static))
    log_prob = lambda p, x: model(p).log_prob(x)
    sample = lambda p, key: model(p).sample(key, (BATCH,))
    return params, log_prob, sample


# ------------------------------------------------------------------------------------------

def _train_step_fn(log_prob, optimizer):
    def train_step(params, opt_state, x):
        loss, grads = jax.value_and_grad(lambda p: -jnp.mean(log_prob(p, x)))(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
    return train_step


def compare(quick: bool = False, matmul_gflops: float | None = None) -> dict:
    """Runs the comparison; returns ``{"workload", "libraries": {name: record}, "speedup"}``
    (``speedup[lib][measurement]`` = ours / theirs in throughput)."""
    rounds, inner = (1, 1) if quick else (7, 5)
    digits = load_digits()
    x = uniform_dequantize(jax.random.key(0), digits.train[:BATCH], 17)
    x = jnp.asarray(x, jnp.float32).reshape(BATCH, DIM)  # [B, 64]
    ours = jaxgen_flow()
    weights = coupling_weights(ours[0])
    builders = {"jaxgen": lambda: ours, "distrax": lambda: distrax_flow(weights),
                "flowjax": lambda: flowjax_flow(weights)}
    optimizer = optax.adam(1e-3)
    records, calls = {}, {"train": {}, "log_prob": {}, "sample": {}}
    reference = None
    for name in LIBRARIES:
        if name != "jaxgen" and not installed(name):
            records[name] = dict(installed=False)
            continue
        params, log_prob, sample = builders[name]()
        rec = dict(installed=True, num_params=int(sum(
            np.size(p) for p in jax.tree.leaves(params))))
        if name != "jaxgen":
            rec["version"] = __import__(name).__version__
        opt_state = optimizer.init(params)
        for what, fn, args in (("train", _train_step_fn(log_prob, optimizer),
                                (params, opt_state, x)),
                               ("log_prob", log_prob, (params, x)),
                               ("sample", sample, (params, jax.random.key(1)))):
            compiled, compile_s, flops = _compile(fn, *args)
            rec[f"{what}_compile_s"], rec[f"{what}_flops"] = compile_s, flops
            calls[what][name] = (compiled, args)
        lp = np.asarray(calls["log_prob"][name][0](params, x))
        if reference is None:
            reference = lp
        rec["max_abs_log_prob_diff_vs_jaxgen"] = float(np.max(np.abs(lp - reference)))
        records[name] = rec
    for what, unit in (("train", "steps"), ("log_prob", "points"), ("sample", "points")):
        best, best_cpu = interleaved_best(calls[what], rounds, inner)
        for name, seconds in best.items():
            rec = records[name]
            rec[f"{what}_cpu_ms_per_call"] = 1e3 * best_cpu[name]
            per_s = (1.0 if what == "train" else BATCH) / seconds
            key = "train_steps_per_s" if what == "train" else f"{what}_points_per_s"
            rec[key] = per_s
            # One flop count for all: jaxgen's XLA count (an unrolled program; the three
            # compute the same function). XLA counts a scan body once, so flowjax's own
            # count (its Scan) is 1/8 of the work; it is kept as `*_xla_flops`.
            rec[f"{what}_xla_flops"] = rec.pop(f"{what}_flops")
            flops = records["jaxgen"][f"{what}_xla_flops"]
            rec[f"{what}_gflops_per_s"] = flops / seconds / 1e9
            if matmul_gflops:
                rec[f"{what}_fraction_of_matmul"] = rec[f"{what}_gflops_per_s"] / matmul_gflops
    speedup = {}
    for name, rec in records.items():
        if name == "jaxgen" or not rec.get("installed"):
            continue
        speedup[name] = {k: records["jaxgen"][k] / rec[k] for k in
                         ("train_steps_per_s", "log_prob_points_per_s", "sample_points_per_s")}
        # theirs / ours in CPU seconds per call: > 1 means jaxgen's program does less work
        speedup[name].update({f"{what}_cpu": rec[f"{what}_cpu_ms_per_call"]
                              / records["jaxgen"][f"{what}_cpu_ms_per_call"]
                              for what in ("train", "log_prob", "sample")})
    return dict(workload=f"realnvp {NUM_COUPLINGS} affine couplings, MLP {HALF}-{HIDDEN}-"
                         f"{HIDDEN}-{2 * HALF}, {DIM}-d digits, batch {BATCH}",
                timing=f"best of {rounds} interleaved rounds x {inner} calls",
                libraries=records, speedup=speedup)


def main(quick: bool = False) -> None:
    print(json.dumps(dict(bench="flows_compare", **compare(quick))), flush=True)


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
