"""MCMC and RBM throughput, one JSON line per measurement.

``python -m experiments.benchmarks.mcmc [--quick] [--data PATH]``

* ``matmul``: measured float32 GFLOP/s of matmuls (jitted): ``gflops`` the machine's peak
  (``1024^3``), ``rbm_shape_gflops`` the ``[100, 784] x [784, 500]`` shape of an RBM step;
  the reference the RBM numbers are compared with (``fraction_of_peak``).
* ``rbm_gibbs``: block-Gibbs sweeps/s of a 784x500 RBM for 100 chains (``lax.scan`` of
  sweeps, one jit), GFLOP/s (``2 x 2 x 100 x 784 x 500`` flops per sweep), and
  scikit-learn's ``BernoulliRBM.gibbs`` on the same shapes in float32 (``speedup``;
  target >= 2.5).
* ``rbm_pcd_epoch``: seconds per epoch of PCD-1 (batch 100, momentum SGD) on binarized MNIST
  (50k; random binary data if the file is missing) through ``jaxgen.training``'s train step
  (6 matmul-equivalents of ``2 x 100 x 784 x 500`` flops per step: the Gibbs sweep 2, the
  free energies of data and chains forward 2 and their ``dW`` 2), vs
  ``BernoulliRBM(batch_size=100, n_iter=1).fit`` on float32 data (sklearn's fit is PCD-1 too,
  with 5 matmuls per step: it reuses the previous step's hidden means; target >= 2).
* ``mala``: chain-steps/s of MALA for 1000 chains on a 784-256-256-1 MLP energy (and
  blackjax's MALA if installed).
"""
from __future__ import annotations

import json
import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from flax import nnx

from jaxgen import mcmc
from jaxgen.energy import BernoulliRBM, MLPEnergy
from jaxgen.energy.losses import pcd_init, pcd_loss
from jaxgen.training.optim import make_optimizer
from jaxgen.training.state import init_train_state, split_model
from jaxgen.training.steps import make_train_step

_QUICK = flags.DEFINE_bool("quick", False, "Short timings (smoke test).")
_DATA = flags.DEFINE_string("data", "../shared/data/binarized_mnist.npz",
                            "Binarized MNIST .npz (train array).")


def _device() -> dict:
    d = jax.devices()[0]
    return dict(platform=d.platform, device_kind=d.device_kind, device_count=jax.device_count())


def _time(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` (blocked), after one warm-up call."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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


def bench_rbm_gibbs(num_sweeps: int, repeats: int, matmul_gflops: float) -> dict:
    rbm = BernoulliRBM(784, 500, rngs=nnx.Rngs(0), init_scale=0.05)
    graphdef, state = nnx.split(rbm)
    v0 = (jax.random.uniform(jax.random.key(0), (100, 784)) < 0.2).astype(jnp.float32)

    @jax.jit
    def sweeps(state, key, v):
        model = nnx.merge(graphdef, state)
        return jax.lax.scan(lambda v, k: (model.gibbs_step(k, v)[0], None), v,
                            jax.random.split(key, num_sweeps))[0]

    s = _time(lambda: sweeps(state, jax.random.key(1), v0), repeats)
    sweeps_per_s = num_sweeps / s
    gflops = sweeps_per_s * 2 * 2 * 100 * 784 * 500 / 1e9
    out = dict(bench="rbm_gibbs", shape="784x500", chains=100, sweeps_per_s=sweeps_per_s,
               gflops=gflops, matmul_gflops=matmul_gflops,
               fraction_of_peak=gflops / matmul_gflops)
    try:
        from sklearn.neural_network import BernoulliRBM as SkRBM
        sk = SkRBM(n_components=500, random_state=0)
        sk.components_ = np.asarray(rbm.weights[...]).T.astype(np.float32)
        sk.intercept_hidden_ = np.zeros(500, np.float32)
        sk.intercept_visible_ = np.zeros(784, np.float32)
        sk.random_state_ = np.random.RandomState(0)
        v = np.asarray(v0, np.float32)
        n = max(10, num_sweeps // 10)
        t0 = time.perf_counter()
        for _ in range(n):
            v = sk.gibbs(v)
        sk_rate = n / (time.perf_counter() - t0)
        out.update(sklearn_sweeps_per_s=sk_rate, speedup=sweeps_per_s / sk_rate,
                   target_speedup=2.5, meets_target=bool(sweeps_per_s / sk_rate >= 2.5))
    except ImportError:
        pass
    return out


def _mnist(path: str) -> np.ndarray:
    if os.path.exists(path):
        return np.load(path)["train"].reshape(-1, 28, 28, 1).astype(np.int32)
    rng = np.random.default_rng(0)
    return (rng.random((50000, 28, 28, 1)) < 0.13).astype(np.int32)


def bench_pcd_epoch(data: np.ndarray, steps_per_epoch: int, matmul_gflops: float) -> dict:
    rbm = BernoulliRBM((28, 28, 1), 500, rngs=nnx.Rngs(0))
    graphdef, params, model_state = split_model(rbm)
    optim = ml_collections.ConfigDict(dict(name="sgd", lr=0.01, momentum=0.9, schedule="constant"))
    optimizer = make_optimizer(optim, steps_per_epoch)
    extra = pcd_init(jax.random.key(0), data, 100)
    state = init_train_state(params, model_state, optimizer, extra=extra,
                             num_examples=data.shape[0])
    step = jax.jit(make_train_step(graphdef, optimizer, batch_size=100, loss_fn=pcd_loss(1),
                                   has_extra=True, steps_per_call=steps_per_epoch))
    train = jnp.asarray(data)
    keys = (jax.random.key(1), jax.random.key(2))
    t0 = time.perf_counter()
    state, _ = step(state, train, *keys)
    jax.block_until_ready(state.step)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    state, _ = step(state, train, *keys)
    jax.block_until_ready(state.step)
    s = time.perf_counter() - t0
    epoch_s = s * data.shape[0] / (100 * steps_per_epoch)
    # flops per step: Gibbs sweep 2 matmuls; free energies of [data; chains] forward 2, dW 2
    gflops = 6 * 2 * 100 * 784 * 500 * steps_per_epoch / s / 1e9
    out = dict(bench="rbm_pcd_epoch", shape="784x500", batch_size=100, epoch_s=epoch_s,
               steps_per_s=steps_per_epoch / s, compile_s=compile_s, gflops=gflops,
               matmul_gflops=matmul_gflops, fraction_of_peak=gflops / matmul_gflops)
    try:
        from sklearn.neural_network import BernoulliRBM as SkRBM
        sk = SkRBM(n_components=500, batch_size=100, learning_rate=0.01, n_iter=1,
                   random_state=0)
        x = data.reshape(len(data), -1)[: 100 * steps_per_epoch].astype(np.float32)
        t0 = time.perf_counter()
        sk.fit(x)  # one epoch of PCD-1 over x
        sk_epoch = (time.perf_counter() - t0) * data.shape[0] / x.shape[0]
        assert sk.components_.dtype == np.float32, sk.components_.dtype
        out.update(sklearn_epoch_s=sk_epoch, speedup=sk_epoch / epoch_s, target_speedup=2.0,
                   meets_target=bool(sk_epoch / epoch_s >= 2.0))
    except ImportError:
        pass
    return out


def bench_mala(num_steps: int, repeats: int) -> dict:
    model = MLPEnergy((784,), (256, 256), rngs=nnx.Rngs(0))
    graphdef, state = nnx.split(model)
    x0 = jax.random.uniform(jax.random.key(0), (1000, 784))

    @jax.jit
    def run(state, key, x0):
        m = nnx.merge(graphdef, state)
        algo = mcmc.mala(m.logdensity_fn, 1e-4)
        return jax.vmap(lambda k, x: mcmc.run_kernel(k, algo, algo.init(x), num_steps)[0])(
            jax.random.split(key, 1000), x0).position

    s = _time(lambda: run(state, jax.random.key(1), x0), repeats)
    out = dict(bench="mala", energy="mlp 784-256-256-1", chains=1000,
               chain_steps_per_s=1000 * num_steps / s)
    try:
        import blackjax
        logdensity = lambda x: nnx.merge(graphdef, state).logdensity_fn(x)
        kernel = blackjax.mala(logdensity, 1e-4)

        @jax.jit
        def run_bj(key, x0):
            def one(k, x):
                st = kernel.init(x)
                st, _ = jax.lax.scan(lambda s, kk: kernel.step(kk, s), st,
                                     jax.random.split(k, num_steps))
                return st.position
            return jax.vmap(one)(jax.random.split(key, 1000), x0)

        s_bj = _time(lambda: run_bj(jax.random.key(1), x0), repeats)
        out.update(blackjax_chain_steps_per_s=1000 * num_steps / s_bj)
    except ImportError:
        out.update(blackjax="not installed")
    return out


def main(argv):
    del argv
    quick = _QUICK.value
    repeats = 2 if quick else 5
    mm = bench_matmul(repeats)
    records = [mm]
    records.append(bench_rbm_gibbs(20 if quick else 200, repeats, mm["gflops"]))
    records.append(bench_pcd_epoch(_mnist(_DATA.value)[: 5000 if quick else 50000],
                                   20 if quick else 500, mm["gflops"]))
    records.append(bench_mala(5 if quick else 50, repeats))
    for r in records:
        print(json.dumps({**r, **_device()}), flush=True)


if __name__ == "__main__":
    app.run(main)
