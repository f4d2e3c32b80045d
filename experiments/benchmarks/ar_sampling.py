"""Naive vs fast (cached) sampling throughput: Gated PixelCNN and causal transformer.

``python -m experiments.benchmarks.ar_sampling`` prints one JSON line per model with the
images/s of naive sampling (one full forward pass per position) and fast sampling (cached
activations / KV cache) on 28x28 binary images, batch 16, the compile seconds of each
(lowering + XLA compilation, timed apart from the runs), the median seconds per batch over
``--repeats`` runs (at least 3 for the cheap fast sampler), the speed-up, and whether both
gave identical samples for the same key.

Model sizes: Gated PixelCNN 32 hidden channels, 5 layers, 5x5 kernels; transformer
d_model 64, 4 heads, 2 layers (small enough that the naive sampler finishes on a CPU: at
28x28 one naive batch of 16 takes minutes). docs/AR_BENCHMARKS.md has measured numbers.
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np
from flax import nnx

from jaxgen.autoregressive import CausalTransformer, GatedPixelCNN


def _time(jitted, state, key, repeats):
    """Compiles ``jitted(state, key)`` (timed alone), then times ``repeats`` runs.

    Returns ``(samples for key, compile seconds, median seconds per run)``; run ``i`` uses
    ``fold_in(key, i)`` (run 0: ``key`` itself), each ended by ``block_until_ready``.
    """
    t0 = time.perf_counter()
    compiled = jitted.lower(state, key).compile()
    compile_s = time.perf_counter() - t0
    samples, times = [], []
    for i in range(max(repeats, 1)):
        t0 = time.perf_counter()
        samples.append(jax.block_until_ready(
            compiled(state, key if i == 0 else jax.random.fold_in(key, i))))
        times.append(time.perf_counter() - t0)
    return samples[0], compile_s, float(np.median(times))


def bench(name, model, batch, repeats):
    graphdef, state = nnx.split(model)
    fast = jax.jit(lambda s, k: nnx.merge(graphdef, s).sample(k, batch))
    naive = jax.jit(lambda s, k: nnx.merge(graphdef, s).sample_naive(k, batch))
    key = jax.random.key(0)
    # The fast sampler is cheap: at least 3 timed runs (the naive one gets --repeats).
    a, fast_compile, fast_s = _time(fast, state, key, max(repeats, 3))
    b, naive_compile, naive_s = _time(naive, state, key, repeats)
    num_params = sum(int(np.size(x)) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
    return dict(model=name, event_shape=list(model.event_shape), batch=batch,
                num_params=num_params, naive_images_per_s=batch / naive_s,
                fast_images_per_s=batch / fast_s, naive_s=naive_s, fast_s=fast_s,
                speedup=naive_s / fast_s, naive_compile_s=naive_compile,
                fast_compile_s=fast_compile, identical_samples=bool((a == b).all()),
                naive_repeats=max(repeats, 1), backend=jax.default_backend())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    shape = (args.size, args.size, 1)
    models = {
        "gated_pixelcnn": GatedPixelCNN(shape, 2, hidden_channels=32, num_layers=5,
                                        kernel_size=5, rngs=nnx.Rngs(0)),
        "transformer": CausalTransformer(shape, 2, d_model=64, num_heads=4, num_layers=2,
                                         rngs=nnx.Rngs(0)),
    }
    for name, model in models.items():
        print(json.dumps(bench(name, model, args.batch, args.repeats)), flush=True)


if __name__ == "__main__":
    main()
