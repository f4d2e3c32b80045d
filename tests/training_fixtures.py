"""A tiny model + data used by the training tests (importable from subprocesses)."""
import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx


class TinyFlow(nnx.Module):
    """x = a * tanh-MLP-free affine of z: a diagonal Gaussian with a learned MLP-free shift
    plus a 2-layer network on the first coordinate, enough to make gradients non-trivial."""

    def __init__(self, dim: int = 2, *, rngs: nnx.Rngs):
        self.event_shape = (dim,)
        self.mean = nnx.Param(jnp.zeros(dim))
        self.log_std = nnx.Param(jnp.zeros(dim))
        self.hidden = nnx.Linear(1, 8, rngs=rngs)
        self.out = nnx.Linear(8, dim - 1, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def log_prob(self, x):  # [B, D] -> [B]
        shift = jnp.concatenate([jnp.zeros_like(x[:, :1]), self.out(jnp.tanh(self.hidden(x[:, :1])))], -1)
        z = (x - self.mean[...] - shift) * jnp.exp(-self.log_std[...])
        return jnp.sum(-0.5 * z**2 - self.log_std[...] - 0.5 * jnp.log(2 * jnp.pi), -1)


def tiny_data(seed: int = 0):
    rng = np.random.default_rng(seed)
    def draw(n):
        a = rng.normal(size=(n, 1))
        b = np.sin(2 * a) + 0.3 * rng.normal(size=(n, 1))
        return np.concatenate([a, b], 1).astype(np.float32)
    return types.SimpleNamespace(train=draw(512), valid=draw(128), test=draw(128), num_dims=2)


def noise_preprocess(key, batch):
    """Uses the step key, so a resumed run must replay the key stream exactly."""
    return batch + 0.01 * jax.random.normal(key, batch.shape)


def tiny_config(**train):
    base = dict(num_steps=60, batch_size=32, log_every=10, eval_every=20, checkpoint_every=20,
                progress=False)
    base.update(train)
    return ml_collections.ConfigDict(dict(
        seed=3, train=base, optim=dict(name="adam", lr=0.02, schedule="cosine",
                                       grad_clip_norm=5.0)))


def run(workdir, num_devices_note="", **train):
    from jaxgen.training import train as train_fn
    model = TinyFlow(2, rngs=nnx.Rngs(0))
    result = train_fn(model, tiny_data(), tiny_config(**train), workdir,
                      preprocess_fn=noise_preprocess, eval_preprocess_fn=None)
    return result
