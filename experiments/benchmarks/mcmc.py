"""MCMC and RBM throughput, one JSON line per measurement.

``python -m experiments.benchmarks.mcmc [--quick] [--data PATH] [--key_impl threefry2x32]
[--only BENCH,...] [--rbm_workdir RUN]``

Comparisons run in the same process, interleaved (``A, B, A, B, ...``) and each side keeps
its best round, so a load spike from other jobs on the machine hits both sides alike;
``load_avg_1min`` records the machine load at the end of each measurement.
``--key_impl`` picks the PRNG key implementation of the jaxgen runs (any of
``jax.random.key``'s ``impl``: threefry2x32, rbg, unsafe_rbg, philox4x32, ...).

* ``matmul``: measured float32 GFLOP/s of matmuls (jitted): ``gflops`` the machine's peak
  (``1024^3``), ``rbm_shape_gflops`` the ``[100, 784] x [784, 500]`` shape of an RBM step;
  the reference the RBM numbers are compared with (``fraction_of_peak``).
* ``rbm_gibbs``: block-Gibbs sweeps/s of a 784x500 RBM for 100 chains (``lax.scan`` of
  sweeps, one jit), GFLOP/s (``2 x 2 x 100 x 784 x 500`` flops per sweep), the same sweep
  drawing its uniforms with ``jax.random.uniform`` (``jax_random_sweeps_per_s``: what the
  sampler did before ``jaxgen.mcmc.rng``; the same numbers, checked), and scikit-learn's
  ``BernoulliRBM.gibbs`` on the same weights in float32, its best of 1 and all BLAS threads
  (``speedup``; target >= 2.5; ``target_gflops``: the sweep's GFLOP/s that 2.5x needs, and
  ``target_over_rbm_shape_matmul`` that over a bare matmul of the sweep's shape: at ~1 or
  above no float32 sweep, sampling included, can reach it). ``bf16x2_*``: the same sweeps with
  ``BernoulliRBM(precision="bf16x2")`` (`jaxgen.nn.precision`: ``v W`` and ``h W^T`` as two
  bfloat16 passes over ``W = hi + lo``, weights to a relative 1.5e-5; fast on CPUs with
  bfloat16 units), with the fraction of chain units equal to the float32 chains' (same
  random numbers).
* ``rbm_pcd_epoch``: seconds per epoch of PCD-1 (batch 100, momentum SGD) on binarized MNIST
  (50k; random binary data if the file is missing) through ``jaxgen.training``'s train step
  (6 matmul-equivalents of ``2 x 100 x 784 x 500`` flops per step: the Gibbs sweep 2, the
  free energies of data and chains forward 2 and their ``dW`` 2);
  ``persist_hidden_epoch_s``: ``pcd_loss(1, persist_hidden=True)``, which carries the hidden
  layer and reuses the forward pass's hidden logits (5 matmul-equivalents, as scikit-learn);
  vs ``BernoulliRBM(batch_size=100, n_iter=1).fit`` on float32 data (10k rows, scaled to the
  epoch), best of 1 and all BLAS threads. scikit-learn's fit is PCD-1 carrying the hidden
  samples, 5 matmuls per step: the algorithm of ``persist_hidden``, so
  ``persist_hidden_speedup`` is the like-for-like ratio and ``meets_target`` (>= 2) is read
  from it; ``speedup`` is the default loss's (one more
  matmul per step). ``target_gflops_*``: the GFLOP/s each loss needs for 2x, next to
  ``rbm_shape_matmul_gflops`` (a bare ``[100, 784] x [784, 500]`` matmul). (A ``bf16x2``
  RBM does not train faster: per step the weight split and transposes cost what the three
  forward products save; measured, not kept.)
* ``mala``: chain-steps/s of MALA for 1000 chains on a 784-256-256-1 MLP energy, and
  blackjax's MALA (if installed) on the identical workload: same energy weights, step size
  1e-4, chains, initial positions and keys; ``max_abs_position_diff`` compares the final
  positions of the two (0 when both draw the same random numbers; target ratio >= 1).
* ``rbm_ess`` (one record per sampler: ``block_gibbs``, ``gibbs_with_gradients``,
  ``parallel_tempering``): the ``rbm_gibbs`` RBM (or a trained one, ``--rbm_workdir``), 100
  chains, chain-steps/s and the ESS of the free energy and of the mean visible unit
  (`jaxgen.mcmc.diagnostics`) per second and per energy evaluation, split R-hat, PT's swap
  acceptance per rung; see `bench_rbm_samplers`. ``--only=rbm_ess`` runs just these.
"""
from __future__ import annotations

import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from jaxgen import mcmc
from jaxgen.energy import BernoulliRBM, MLPEnergy
from jaxgen.energy.losses import pcd_init
from jaxgen.energy.objectives import PersistentContrastiveDivergence
from jaxgen.training.optim import OptimSettings, make_optimizer
from jaxgen.training.state import init_train_state, split_model
from jaxgen.training.steps import make_train_step

_QUICK = flags.DEFINE_bool("quick", False, "Short timings (smoke test).")
_DATA = flags.DEFINE_string("data", "../shared/data/binarized_mnist.npz",
                            "Binarized MNIST .npz (train array).")
_RBM_WORKDIR = flags.DEFINE_string(
    "rbm_workdir", "", "rbm_ess: a finished 784x500 BernoulliRBM run (experiments.main) whose "
    "weights replace the random ones; PT then tempers towards the data's base rates and the "
    "chains start at training images (--data).")
_ONLY = flags.DEFINE_list("only", [], "Run only these benches (matmul, rbm_gibbs, "
                          "rbm_pcd_epoch, mala, rbm_ess); all by default.")
_KEY_IMPL = flags.DEFINE_string("key_impl", "threefry2x32",
                                "PRNG key implementation of the jaxgen runs (jax.random.key impl).")


# flops of one [100, 784] x [784, 500] product (100 chains / a batch of 100, 784 x 500 RBM)
RBM_MATMUL_FLOPS = 2 * 100 * 784 * 500


def _device() -> dict:
    d = jax.devices()[0]
    return dict(platform=d.platform, device_kind=d.device_kind, device_count=jax.device_count())


def _key(seed: int):
    return jax.random.key(seed, impl=_KEY_IMPL.value)


def _load() -> dict:
    return dict(load_avg_1min=os.getloadavg()[0])


def _time(fn, repeats: int) -> float:
    """Best seconds of ``fn()`` (blocked) over ``repeats`` calls, after one warm-up call."""
    return _interleaved({"fn": fn}, repeats)["fn"]


def _one_blas_thread(fn):
    """``fn`` run with numpy's BLAS limited to 1 thread (threadpoolctl, a scikit-learn
    dependency): on a machine shared with other jobs OpenBLAS's spinning threads can be
    several times slower than one thread, so scikit-learn is timed both ways and keeps its
    best."""
    from threadpoolctl import threadpool_limits

    def run():
        with threadpool_limits(limits=1, user_api="blas"):
            return fn()
    return run


def _interleaved(fns: dict, rounds: int) -> dict:
    """Best seconds of each ``fn()`` (blocked) over ``rounds`` interleaved rounds, after one
    warm-up call each (compilation); every other round runs in reverse order (A B, B A, ...)
    so that no side always follows the other."""
    for fn in fns.values():
        jax.block_until_ready(fn())
    best = {name: float("inf") for name in fns}
    for i in range(rounds):
        for name, fn in (list(fns.items()) if i % 2 == 0 else list(fns.items())[::-1]):
            t0 = time.perf_counter()
            jax.block_until_ready(fn())
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


def _matmul_gflops(m: int, k: int, n: int, num: int, repeats: int) -> float:
    a = jnp.asarray(np.random.default_rng(0).random((m, k)), jnp.float32)
    b = jnp.asarray(np.random.default_rng(1).random((k, n)), jnp.float32)
    # the scale depends on the iteration, so XLA cannot hoist the matmul out of the loop
    body = lambda i, x: x + ((a * (1.0 + 1e-7 * i)) @ b)[0, 0]
    f = jax.jit(lambda a, b: jax.lax.fori_loop(0, num, body, 0.0))
    s = _time(lambda: f(a, b), repeats)
    return num * 2 * m * k * n / s / 1e9


def bench_matmul(repeats: int) -> dict:
    peak = _matmul_gflops(1024, 1024, 1024, 10, repeats)
    rbm_shape = _matmul_gflops(100, 784, 500, 50, repeats)
    return dict(bench="matmul", shape="1024x1024x1024", gflops=max(peak, rbm_shape),
                peak_shape_gflops=peak, rbm_shape="100x784x500", rbm_shape_gflops=rbm_shape)


def bench_rbm_gibbs(num_sweeps: int, rounds: int, matmul_gflops: float,
                    rbm_shape_gflops: float | None = None) -> dict:
    rbm = BernoulliRBM(784, 500, rngs=nnx.Rngs(0), init_scale=0.05)
    graphdef, state = nnx.split(rbm)
    # the same weights (same seed), products as two bfloat16 passes
    graphdef_x2, _ = nnx.split(BernoulliRBM(784, 500, rngs=nnx.Rngs(0), init_scale=0.05,
                                            precision="bf16x2"))
    v0 = (jax.random.uniform(jax.random.key(0), (100, 784)) < 0.2).astype(jnp.float32)

    def jax_random_step(model, ops, key, v):  # the sweep as it was, jax.random uniforms
        key_h, key_v = jax.random.split(key)
        p_h = jax.nn.sigmoid(model.hidden_logits(v, ops))
        h = (jax.random.uniform(key_h, p_h.shape) < p_h).astype(jnp.float32)
        p_v = jax.nn.sigmoid(model.visible_logits(h, ops))
        return (jax.random.uniform(key_v, p_v.shape) < p_v).astype(jnp.float32)

    def make(step_fn, graphdef):
        """Sweeps in one jit; the weight operands prepared once, outside the scan (as
        ``sample`` does)."""
        @jax.jit
        def sweeps(state, key, v):
            model = nnx.merge(graphdef, state)
            ops = model.weight_operands()
            return jax.lax.scan(lambda v, k: (step_fn(model, ops, k, v), None), v,
                                jax.random.split(key, num_sweeps))[0]
        return sweeps

    gibbs = lambda model, ops, k, v: model.gibbs_step(k, v, ops)[0]
    ours, ours_x2 = make(gibbs, graphdef), make(gibbs, graphdef_x2)
    reference = make(jax_random_step, graphdef)
    key = _key(1)
    fns = {"ours": lambda: ours(state, key, v0), "jax_random": lambda: reference(state, key, v0),
           "bf16x2": lambda: ours_x2(state, key, v0)}
    ours_chains = fns["ours"]()
    same = bool(jnp.array_equal(ours_chains, fns["jax_random"]()))
    # same random numbers: the bf16x2 chains differ only where a rounded logit crosses a draw
    x2_agreement = float(jnp.mean(ours_chains == fns["bf16x2"]()))
    sk = None
    try:
        from sklearn.neural_network import BernoulliRBM as SkRBM
        sk = SkRBM(n_components=500, random_state=0)
        sk.components_ = np.asarray(rbm.weights[...]).T.astype(np.float32)
        sk.intercept_hidden_ = np.zeros(500, np.float32)
        sk.intercept_visible_ = np.zeros(784, np.float32)
        sk.random_state_ = np.random.RandomState(0)
        sk_sweeps = max(10, num_sweeps // 10)

        def sk_run():
            v = np.asarray(v0, np.float32)
            for _ in range(sk_sweeps):
                v = sk.gibbs(v)
            return v

        fns["sklearn"] = sk_run
        fns["sklearn_1_thread"] = _one_blas_thread(sk_run)
    except ImportError:
        pass
    best = _interleaved(fns, rounds)
    sweeps_per_s = num_sweeps / best["ours"]
    gflops = sweeps_per_s * 2 * RBM_MATMUL_FLOPS / 1e9
    out = dict(bench="rbm_gibbs", shape="784x500", chains=100, key_impl=_KEY_IMPL.value,
               sweeps_per_s=sweeps_per_s, gflops=gflops, matmul_gflops=matmul_gflops,
               fraction_of_peak=gflops / matmul_gflops,
               jax_random_sweeps_per_s=num_sweeps / best["jax_random"],
               same_chains_as_jax_random=same,
               bf16x2_sweeps_per_s=num_sweeps / best["bf16x2"],
               bf16x2_units_equal_to_float32_chains=x2_agreement)
    if sk is not None:
        sk_rate = sk_sweeps / min(best["sklearn"], best["sklearn_1_thread"])
        out.update(sklearn_sweeps_per_s=sk_rate,
                   sklearn_all_threads_sweeps_per_s=sk_sweeps / best["sklearn"],
                   sklearn_1_thread_sweeps_per_s=sk_sweeps / best["sklearn_1_thread"],
                   speedup=sweeps_per_s / sk_rate,
                   target_speedup=2.5, meets_target=bool(sweeps_per_s / sk_rate >= 2.5),
                   bf16x2_speedup=out["bf16x2_sweeps_per_s"] / sk_rate,
                   sklearn_gflops=sk_rate * 2 * RBM_MATMUL_FLOPS / 1e9)
        # what 2.5x needs: GFLOP/s of the whole sweep (sampling included) next to the rate of
        # a bare [100, 784] x [784, 500] matmul; >= ~1 means no float32 sweep can get there
        out["target_gflops"] = 2.5 * out["sklearn_gflops"]
        if rbm_shape_gflops:
            out["target_over_rbm_shape_matmul"] = out["target_gflops"] / rbm_shape_gflops
    return {**out, **_load()}


def _mnist(path: str) -> np.ndarray:
    if os.path.exists(path):
        return np.load(path)["train"].reshape(-1, 28, 28, 1).astype(np.int32)
    rng = np.random.default_rng(0)
    return (rng.random((50000, 28, 28, 1)) < 0.13).astype(np.int32)


def bench_pcd_epoch(data: np.ndarray, steps_per_epoch: int, rounds: int,
                    matmul_gflops: float, rbm_shape_gflops: float | None = None) -> dict:
    rbm = BernoulliRBM((28, 28, 1), 500, rngs=nnx.Rngs(0))
    graphdef, params, model_state = split_model(rbm)
    optimizer = make_optimizer(OptimSettings(name="sgd", lr=0.01, momentum=0.9), steps_per_epoch)
    train = jnp.asarray(data)
    keys = (_key(1), _key(2))
    fns, compile_s = {}, {}
    for name, persist in (("ours", False), ("persist_hidden", True)):
        extra = pcd_init(jax.random.key(0), data, 100, model=rbm if persist else None)
        state = init_train_state(params, model_state, optimizer, extra=extra,
                                 num_examples=data.shape[0])
        step = jax.jit(make_train_step(
            graphdef, optimizer, PersistentContrastiveDivergence(1, persist_hidden=persist),
            batch_size=100, steps_per_call=steps_per_epoch))
        t0 = time.perf_counter()
        jax.block_until_ready(step(state, train, *keys)[0].step)
        compile_s[name] = time.perf_counter() - t0
        fns[name] = (lambda step, state: lambda: step(state, train, *keys)[0].step)(step, state)
    sk_x = None
    try:
        from sklearn.neural_network import BernoulliRBM as SkRBM
        # sklearn's cost per step is constant: time 100 steps (10k rows), scale to the epoch
        sk_x = data.reshape(len(data), -1)[: 100 * min(steps_per_epoch, 100)].astype(np.float32)

        def sk_fit():  # one epoch of PCD-1 over sk_x
            sk = SkRBM(n_components=500, batch_size=100, learning_rate=0.01, n_iter=1,
                       random_state=0)
            sk.fit(sk_x)
            assert sk.components_.dtype == np.float32, sk.components_.dtype
            return sk.components_

        fns["sklearn"] = sk_fit
        fns["sklearn_1_thread"] = _one_blas_thread(sk_fit)
    except ImportError:
        pass
    best = _interleaved(fns, rounds)
    per_epoch = data.shape[0] / (100 * steps_per_epoch)  # timed steps -> one epoch
    epoch_s = best["ours"] * per_epoch
    # flops per step: Gibbs sweep 2 matmuls; free energies of [data; chains] forward 2, dW 2
    gflops = 6 * RBM_MATMUL_FLOPS * steps_per_epoch / best["ours"] / 1e9
    out = dict(bench="rbm_pcd_epoch", shape="784x500", batch_size=100,
               key_impl=_KEY_IMPL.value, epoch_s=epoch_s,
               steps_per_s=steps_per_epoch / best["ours"], compile_s=compile_s["ours"],
               gflops=gflops, matmul_gflops=matmul_gflops,
               fraction_of_peak=gflops / matmul_gflops,
               persist_hidden_epoch_s=best["persist_hidden"] * per_epoch,
               persist_hidden_compile_s=compile_s["persist_hidden"])
    out["persist_hidden_gflops"] = (5 * RBM_MATMUL_FLOPS * steps_per_epoch
                                    / best["persist_hidden"] / 1e9)
    if sk_x is not None:
        scale = data.shape[0] / sk_x.shape[0]
        sk_epoch = min(best["sklearn"], best["sklearn_1_thread"]) * scale
        out.update(sklearn_epoch_s=sk_epoch, sklearn_all_threads_epoch_s=best["sklearn"] * scale,
                   sklearn_1_thread_epoch_s=best["sklearn_1_thread"] * scale,
                   speedup=sk_epoch / epoch_s,
                   # scikit-learn's fit is PCD-1 carrying the hidden samples: the same
                   # algorithm (and matmul count, 5 per step) as persist_hidden
                   persist_hidden_speedup=sk_epoch / out["persist_hidden_epoch_s"],
                   target_speedup=2.0,
                   default_loss_meets_target=bool(sk_epoch / epoch_s >= 2.0))
        out["meets_target"] = bool(out["persist_hidden_speedup"] >= 2.0)
        # GFLOP/s each loss needs for 2x, next to the bare RBM-shape matmul rate
        per_epoch_flops = RBM_MATMUL_FLOPS * data.shape[0] / 100
        out["target_gflops_default_loss"] = 6 * per_epoch_flops / (sk_epoch / 2) / 1e9
        out["target_gflops_same_algorithm"] = 5 * per_epoch_flops / (sk_epoch / 2) / 1e9
        if rbm_shape_gflops:
            out["rbm_shape_matmul_gflops"] = rbm_shape_gflops
    return {**out, **_load()}


def bench_mala(num_steps: int, rounds: int) -> dict:
    model = MLPEnergy((784,), (256, 256), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    x0 = jax.random.uniform(jax.random.key(0), (1000, 784))
    step_size = 1e-4

    def make(kernel_fn):
        """One jit: 1000 chains (vmap), ``num_steps`` steps each (scan), the same keys."""
        @jax.jit
        def run(state, key, x0):
            algo = kernel_fn(nnx.merge(graphdef, state).logdensity_fn, step_size)

            def one(k, x):
                st, _ = jax.lax.scan(lambda s, kk: algo.step(kk, s), algo.init(x),
                                     jax.random.split(k, num_steps))
                return st.position
            return jax.vmap(one)(jax.random.split(key, x0.shape[0]), x0)
        return run

    key = _key(1)
    runs = {"ours": make(mcmc.mala)}
    try:
        import blackjax
        runs["blackjax"] = make(blackjax.mala)
    except ImportError:
        pass
    best = _interleaved({n: (lambda r: lambda: r(state, key, x0))(r) for n, r in runs.items()},
                        rounds)
    rate = 1000 * num_steps / best["ours"]
    out = dict(bench="mala", energy="mlp 784-256-256-1", chains=1000, step_size=step_size,
               key_impl=_KEY_IMPL.value, chain_steps_per_s=rate)
    if "blackjax" in runs:
        import blackjax
        diff = jnp.max(jnp.abs(runs["ours"](state, key, x0) - runs["blackjax"](state, key, x0)))
        bj_rate = 1000 * num_steps / best["blackjax"]
        out.update(blackjax_version=blackjax.__version__, blackjax_chain_steps_per_s=bj_rate,
                   speedup=rate / bj_rate, target_speedup=1.0,
                   meets_target=bool(rate >= bj_rate), max_abs_position_diff=float(diff))
    else:
        out.update(blackjax="not installed")
    return {**out, **_load()}


def bench_rbm_samplers(num_steps: int, num_draws: int, rounds: int, num_burnin: int,
                       gwg_thin: int, num_rungs: int = 10, min_beta: float = 0.1,
                       separate_timing: bool = True, rbm_workdir: str = "",
                       data: np.ndarray | None = None) -> list[dict]:
    """Block Gibbs, Gibbs-with-gradients and parallel tempering on the ``rbm_gibbs`` workload
    (784x500 RBM, ``init_scale=0.05``, seed 0; 100 chains): steps/s and ESS per second and
    per energy evaluation, one record per sampler (``bench="rbm_ess"``).

    Every sampler is the library's one-chain ``(init, step)`` kernel vmapped over the chains
    (``BernoulliRBM.gibbs_kernel``; ``mcmc.gibbs_with_gradients`` on ``-F(v)``;
    ``mcmc.parallel_tempering`` over ``BernoulliRBM.tempering()``: block-Gibbs rungs on a
    geometric ladder from 1 to ``min_beta``, tempered towards Bernoulli(1/2)). All start from
    the same 100 states, ``num_burnin`` block Gibbs sweeps after the ``rbm_gibbs`` start
    (PT then makes ``num_burnin / num_rungs`` PT steps more, so its hot rungs settle).
    With ``rbm_workdir`` (a trained 784x500 RBM run) its weights and biases are used instead,
    the chains start at the first 100 images of ``data`` and PT tempers towards ``data``'s
    base rates (`jaxgen.energy.ais.base_rate_logits`), as PT training does.

    * Throughput (``separate_timing``): scans of ``num_steps`` steps (PT ``num_steps /
      num_rungs``) that record nothing, interleaved best-of ``rounds``;
      ``chain_steps_per_s`` = chains x steps / s, a PT step being one ladder step (a sweep
      of every rung, then the even-odd swaps). Without ``separate_timing`` (``--quick``)
      the recording runs below are timed themselves (``timing_includes_statistics``).
    * ESS: a run of ``num_draws`` draws per chain (GWG: one every ``gwg_thin`` steps; PT:
      ``num_draws / 4`` steps) records two statistics of each chain's (PT: cold rung's)
      state: the free energy ``F(v)`` (``ess``) and the mean visible unit
      (``mean_visible_ess``). `jaxgen.mcmc.diagnostics.effective_sample_size` over the
      ``[chains, draws]`` trace (Geyer's initial monotone sequence, multi-chain) is the ESS
      of the run's ``chains x draws`` draws; ``ess_per_s = ESS / (steps / step rate)``.
      Split R-hat of the same traces (``rhat``, ``mean_visible_rhat``): well above 1 means
      the chains have not mixed and the ESS is not to be trusted beyond "about one draw per
      chain".
    * Energy evaluations: counted as ``[V] x [V, H]`` products per chain per step, the
      cost of one ``F(v)``: block Gibbs 2 (``v W``, ``h W^T``), GWG 2 (``F`` and its
      gradient ``-b - W sigmoid(c + v W)`` at the proposal), PT ``2 R`` for the rungs' sweeps
      plus ``R`` for the swaps (``swap_evals``: ``log pi_beta(x_r)`` at the three
      temperatures ``beta_{r-1}, beta_r, beta_{r+1}`` share one ``x_r W``).
      ``ess_per_energy_eval = ESS / (chains x steps x evals_per_step)``.
    """
    from jaxgen.mcmc.diagnostics import effective_sample_size, split_rhat
    from jaxgen.mcmc.tempering import geometric_ladder, parallel_tempering, swap_acceptance

    num_chains, num_visible = 100, 784
    rbm = BernoulliRBM(num_visible, 500, rngs=nnx.Rngs(0), init_scale=0.05)
    v0 = (jax.random.uniform(jax.random.key(0), (num_chains, num_visible)) < 0.2
          ).astype(jnp.int32)
    base = None
    if rbm_workdir:
        from experiments.load import load_run
        from jaxgen.energy.ais import base_rate_logits

        trained = load_run(rbm_workdir).model
        if (trained.num_visible, trained.num_hidden) != (num_visible, 500):
            raise ValueError(f"--rbm_workdir must hold a 784x500 RBM, got "
                             f"{trained.num_visible}x{trained.num_hidden}")
        for name in ("weights", "visible_bias", "hidden_bias"):
            getattr(rbm, name).value = getattr(trained, name)[...]
        flat = np.asarray(data).reshape(len(data), -1)
        v0 = jnp.asarray(flat[:num_chains], jnp.int32)
        base = jnp.asarray(base_rate_logits(flat), jnp.float32)
    graphdef, state = nnx.split(rbm)
    betas = geometric_ladder(num_rungs, min_beta)
    names = ("block_gibbs", "gibbs_with_gradients", "parallel_tempering")

    def kernel(model, name):
        if name == "block_gibbs":
            return model.gibbs_kernel()
        if name == "gibbs_with_gradients":
            return mcmc.gibbs_with_gradients(
                lambda v: -model.free_energy_flat(v[None].astype(jnp.float32))[0])
        return parallel_tempering(*model.tempering(base), betas)

    first_call_s, first_out = {}, {}

    @functools.lru_cache(maxsize=None)
    def runner(name, num_records, thin, record):
        """jitted ``(state, key, chain_states) -> (chain_states, (stats, infos) | None)``:
        ``num_records x thin`` steps of every chain; with ``record``, the statistics
        ``[num_records, C, 2]`` (free energy, mean visible unit of each chain's target-rung
        state) after every ``thin`` steps, and the step infos."""
        @jax.jit
        def run(state, key, st):
            model = nnx.merge(graphdef, state)
            step = jax.vmap(kernel(model, name).step)

            def one(st, k):
                return step(jax.random.split(k, num_chains), st)

            def body(st, k):
                st, info = jax.lax.scan(one, st, jax.random.split(k, thin))
                if not record:
                    return st, None
                v = (st.position[:, 0] if name == "parallel_tempering" else st.position
                     ).astype(jnp.float32)  # [C, V]
                stats = jnp.stack([model.free_energy_flat(v), v.mean(axis=1)], -1)  # [C, 2]
                return st, (stats, info)
            return jax.lax.scan(body, st, jax.random.split(key, num_records))

        def call(*args):  # the first call's seconds: compilation + one run
            if (name, num_records, thin, record) not in first_call_s:
                t0 = time.perf_counter()
                out = jax.block_until_ready(run(*args))
                first_call_s[name, num_records, thin, record] = time.perf_counter() - t0
                first_out[name, num_records, thin, record] = out
                return out
            return run(*args)
        return call

    @jax.jit
    def init(state, v):
        model = nnx.merge(graphdef, state)
        ladder = jnp.broadcast_to(v[:, None], (num_chains, num_rungs, num_visible))
        return {name: jax.vmap(kernel(model, name).init)(ladder if name == "parallel_tempering"
                                                          else v) for name in names}

    timed = {"block_gibbs": (num_steps, 1), "gibbs_with_gradients": (num_steps, 1),
             "parallel_tempering": (max(1, num_steps // num_rungs), 1)}
    recorded = {"block_gibbs": (num_draws, 1), "gibbs_with_gradients": (num_draws, gwg_thin),
                "parallel_tempering": (max(4, num_draws // 4), 1)}
    starts = init(state, v0)
    for i in range(num_burnin // num_steps):  # with the timed programs: compiled once
        starts["block_gibbs"] = runner("block_gibbs", num_steps, 1, False)(
            state, _key(30 + i), starts["block_gibbs"])[0]
    if num_burnin:
        starts = init(state, starts["block_gibbs"].position)
        for i in range(num_burnin // num_steps):
            starts["parallel_tempering"] = runner(
                "parallel_tempering", *timed["parallel_tempering"], False)(
                state, _key(40 + i), starts["parallel_tempering"])[0]
    programs = timed if separate_timing else recorded
    fns = {name: (lambda run, st: lambda: run(state, _key(5), st)[0])(
        runner(name, *programs[name], separate_timing is False), starts[name])
        for name in names}
    best = _interleaved(fns, rounds)
    records = []
    for name in names:
        num_records, thin = recorded[name]
        if (name, num_records, thin, True) not in first_out:  # (timed: already recorded)
            runner(name, num_records, thin, True)(state, _key(5), starts[name])
        stats, info = first_out[name, num_records, thin, True][1]
        stats = np.asarray(stats, np.float64).transpose(1, 0, 2)  # [C, S, 2]
        ess, mean_visible_ess = (float(e) for e in effective_sample_size(stats))
        rhat, mean_visible_rhat = (float(r) for r in split_rhat(stats))
        num, t = programs[name]
        rate = num * t / best[name]  # steps/s of each chain (all chains at once)
        run_s = num_records * thin / rate  # seconds of the recorded run at that rate
        swap_evals = num_rungs
        evals = {"parallel_tempering": 2 * num_rungs + swap_evals}.get(name, 2)
        total_evals = num_chains * num_records * thin * evals
        out = dict(bench="rbm_ess", sampler=name, shape="784x500", chains=num_chains,
                   rbm=rbm_workdir or "random init_scale=0.05",
                   key_impl=_KEY_IMPL.value, chain_steps_per_s=num_chains * rate,
                   compile_s=first_call_s[(name, num, t, not separate_timing)] - best[name],
                   timing_includes_statistics=not separate_timing,
                   draws_per_chain=num_records, steps_per_draw=thin,
                   evals_per_step=evals, ess=ess, rhat=rhat,
                   mean_visible_rhat=mean_visible_rhat,
                   ess_per_s=ess / run_s,
                   ess_per_energy_eval=ess / total_evals, mean_visible_ess=mean_visible_ess,
                   mean_visible_ess_per_s=mean_visible_ess / run_s,
                   mean_visible_ess_per_energy_eval=mean_visible_ess / total_evals)
        if name == "gibbs_with_gradients":
            out["acceptance_rate"] = float(np.mean(np.asarray(info.acceptance_rate)))
        if name == "parallel_tempering":
            rates = swap_acceptance(info)
            out.update(num_rungs=num_rungs, min_beta=min_beta, swap_evals=swap_evals,
                       rung_sweeps_per_s=num_chains * num_rungs * rate,
                       swap_acceptance=[round(float(r), 4) for r in rates],
                       swap_acceptance_min=float(np.min(rates)))
        records.append(out)
    for r in records:
        r["ess_per_s_over_block_gibbs"] = r["ess_per_s"] / records[0]["ess_per_s"]
        r["ess_per_energy_eval_over_block_gibbs"] = (r["ess_per_energy_eval"]
                                                     / records[0]["ess_per_energy_eval"])
    return [{**r, **_load()} for r in records]


def main(argv):
    del argv
    quick = _QUICK.value
    wanted = lambda bench: not _ONLY.value or bench in _ONLY.value
    repeats = 2 if quick else 5
    records = []
    if any(map(wanted, ("matmul", "rbm_gibbs", "rbm_pcd_epoch"))):
        mm = bench_matmul(repeats)  # the reference of the RBM benches' fraction_of_peak
        records += [mm] if wanted("matmul") else []
    rounds = 2 if quick else 11
    if wanted("rbm_gibbs"):
        records.append(bench_rbm_gibbs(20 if quick else 200, rounds, mm["gflops"],
                                       mm["rbm_shape_gflops"]))
    if wanted("rbm_pcd_epoch"):
        records.append(bench_pcd_epoch(_mnist(_DATA.value)[: 5000 if quick else 50000],
                                       20 if quick else 500, 2 if quick else 5, mm["gflops"],
                                       mm["rbm_shape_gflops"]))
    if wanted("mala"):
        records.append(bench_mala(5 if quick else 20, 2 if quick else 15))
    if wanted("rbm_ess"):
        records.extend(bench_rbm_samplers(
            num_steps=200, num_draws=16 if quick else 1000, rounds=1 if quick else 7,
            num_burnin=0 if quick else 400, gwg_thin=2 if quick else 10,
            num_rungs=4 if quick else 10, separate_timing=not quick,
            rbm_workdir=_RBM_WORKDIR.value,
            data=_mnist(_DATA.value) if _RBM_WORKDIR.value else None))
    for r in records:
        print(json.dumps({**r, **_device()}), flush=True)


if __name__ == "__main__":
    app.run(main)
