"""A tiny model, data and objectives used by the training tests (importable from
subprocesses)."""
import os
import signal
import types

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.training import Objective, OptimSettings, TrainSettings


class TinyFlow(nnx.Module):
    """A diagonal Gaussian whose second coordinate's mean is a small tanh network of the
    first: enough to make gradients non-trivial."""

    def __init__(self, dim: int = 2, *, rngs: nnx.Rngs):
        self.event_shape = (dim,)
        self.mean = nnx.Param(jnp.zeros(dim))
        self.log_std = nnx.Param(jnp.zeros(dim))
        self.hidden = nnx.Linear(1, 8, rngs=rngs)
        self.out = nnx.Linear(8, dim - 1, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def log_prob(self, x):  # [B, D] -> [B]
        shift = jnp.concatenate([jnp.zeros_like(x[:, :1]),
                                 self.out(jnp.tanh(self.hidden(x[:, :1])))], -1)
        z = (x - self.mean[...] - shift) * jnp.exp(-self.log_std[...])
        return jnp.sum(-0.5 * z**2 - self.log_std[...] - 0.5 * jnp.log(2 * jnp.pi), -1)


def tiny_data(seed: int = 0):
    rng = np.random.default_rng(seed)

    def draw(n):
        a = rng.normal(size=(n, 1))
        b = np.sin(2 * a) + 0.3 * rng.normal(size=(n, 1))
        return np.concatenate([a, b], 1).astype(np.float32)

    return types.SimpleNamespace(train=draw(512), valid=draw(128), test=draw(128), num_dims=2)


class NoisyNLL(Objective):
    """NLL of the batch plus noise from the step key, so a resumed run must replay the key
    stream exactly to end with the same parameters."""

    def loss(self, model, batch, key, extra):
        batch = batch + 0.01 * jax.random.normal(key, batch.shape)
        nll = -jnp.mean(model.log_prob(batch))
        return nll, extra, {"nll": nll}


class Scheduled(Objective):
    """NLL times ``factor_fn(t)``, ``t`` the step counter it carries in ``extra``."""

    def __init__(self, factor_fn):
        self.factor_fn = factor_fn

    def init(self, model, train_data, key):
        return {"t": jnp.zeros((), jnp.int32)}

    def loss(self, model, batch, key, extra):
        nll = -jnp.mean(model.log_prob(batch))
        return nll * self.factor_fn(extra["t"]), {"t": extra["t"] + 1}, {"nll": nll}


def tiny_settings(**train):
    optim = train.pop("optim", {})
    base = dict(num_steps=60, batch_size=32, log_every=10, eval_every=20, checkpoint_every=20,
                progress=False, seed=3)
    base.update(train)
    return TrainSettings(**base, optim=OptimSettings(
        **{**dict(name="adam", lr=0.02, schedule="cosine", grad_clip_norm=5.0), **optim}))


def kill_at(step_to_die: int):
    """A train callback that SIGKILLs the process after step ``step_to_die`` (its
    checkpoint, if any, is on disk by then), as a scheduler would."""
    def callback(step, state):
        if step >= step_to_die:
            os.kill(os.getpid(), signal.SIGKILL)
    return callback


def run(workdir, callback=None, **train):
    from jaxgen.training import train as train_fn
    model = TinyFlow(2, rngs=nnx.Rngs(0))
    return train_fn(model, tiny_data(), tiny_settings(**train), workdir, objective=NoisyNLL(),
                    callback=callback)


def signal_at(step_to_signal: int, signum: int = signal.SIGINT):
    """A train callback that sends ``signum`` to this process after step ``step_to_signal``,
    as Ctrl-C or a scheduler's SIGTERM would."""
    def callback(step, state):
        if step == step_to_signal:
            os.kill(os.getpid(), signum)
    return callback


class WideFlow(TinyFlow):
    """`TinyFlow` with a 64-wide hidden layer pair, so that one kernel (64 x 64 = 4096
    entries) is large enough for ``train.sharding="fsdp"`` to shard."""

    def __init__(self, dim: int = 2, *, rngs: nnx.Rngs):
        super().__init__(dim, rngs=rngs)
        self.hidden = nnx.Linear(1, 64, rngs=rngs)
        self.mid = nnx.Linear(64, 64, rngs=rngs)
        self.out = nnx.Linear(64, dim - 1, kernel_init=nnx.initializers.zeros, rngs=rngs)

    def log_prob(self, x):  # [B, D] -> [B]
        h = jnp.tanh(self.mid(jnp.tanh(self.hidden(x[:, :1]))))
        shift = jnp.concatenate([jnp.zeros_like(x[:, :1]), self.out(h)], -1)
        z = (x - self.mean[...] - shift) * jnp.exp(-self.log_std[...])
        return jnp.sum(-0.5 * z**2 - self.log_std[...] - 0.5 * jnp.log(2 * jnp.pi), -1)


def run_wide(workdir, callback=None, **train):
    from jaxgen.training import train as train_fn
    model = WideFlow(2, rngs=nnx.Rngs(0))
    return train_fn(model, tiny_data(), tiny_settings(**train), workdir, objective=NoisyNLL(),
                    callback=callback)
