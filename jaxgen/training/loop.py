"""The model-agnostic maximum-likelihood training loop.

``train(model, dataset, config, workdir)`` fits any model with ``log_prob`` (or any loss) and
handles what a research run needs: optax optimizers and schedules, gradient clipping, EMA,
jit-compiled steps keyed by ``fold_in(base_key, step)``, periodic validation with early
stopping (the best-on-valid parameters are returned), ``metrics.jsonl``, a tqdm bar, orbax
checkpoints with exact resume, a clear stop on non-finite losses, and data parallelism over a
``jax.sharding`` mesh of every device.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from jaxgen.data.batching import steps_per_epoch
from jaxgen.training import sharding as shd
from jaxgen.training.checkpoint import Checkpointer
from jaxgen.training.logging import MetricsWriter
from jaxgen.training.optim import make_optimizer
from jaxgen.training.state import init_train_state, merge_model, split_model
from jaxgen.training.steps import make_log_prob_fn, make_train_step

# Every field train() reads from config.train, with its default.
TRAIN_DEFAULTS = dict(
    num_steps=1000, batch_size=128, steps_per_call=1, log_every=100, eval_every=500,
    checkpoint_every=0, keep_checkpoints=3, patience=0, ema_decay=0.0, eval_batch_size=1000,
    progress=True, halt_after_steps=0,
)
# Fields that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("train.num_steps", "train.progress", "train.halt_after_steps")


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
      model: the model with the best-on-valid parameters (the last ones if no validation).
      train_steps: optimizer steps taken in total (across resumptions).
      train_wall_s: wall-clock seconds spent training (across resumptions, excludes nothing).
      steps_per_s: steady-state throughput of this process (first, compiling call excluded).
      compile_s: seconds of the first (compiling) step call in this process.
      best_valid_nll: best validation NLL in nats per example (nan if never evaluated).
      best_step: step at which it was reached.
      stopped_early: whether patience ran out.
      history: list of the records written to metrics.jsonl by this process.
    """

    model: nnx.Module
    train_steps: int
    train_wall_s: float
    steps_per_s: float
    compile_s: float
    best_valid_nll: float
    best_step: int
    stopped_early: bool
    history: list


def train_config_with_defaults(train_config) -> dict:
    """Checks ``config.train`` eagerly and returns it merged with ``TRAIN_DEFAULTS``."""
    given = dict(train_config)
    unknown = sorted(set(given) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown config.train key(s) {unknown}; valid keys: {sorted(TRAIN_DEFAULTS)}")
    tc = {**TRAIN_DEFAULTS, **given}
    for name in ("num_steps", "batch_size", "steps_per_call", "eval_batch_size"):
        if int(tc[name]) <= 0:
            raise ValueError(f"config.train.{name} must be positive, got {tc[name]}")
    k = int(tc["steps_per_call"])
    for name in ("num_steps", "log_every", "eval_every", "checkpoint_every", "halt_after_steps"):
        if int(tc[name]) < 0 or int(tc[name]) % k:
            raise ValueError(f"config.train.{name}={tc[name]} must be a non-negative multiple of "
                             f"train.steps_per_call={k}")
    if not 0.0 <= float(tc["ema_decay"]) < 1.0:
        raise ValueError(f"config.train.ema_decay must be in [0, 1), got {tc['ema_decay']}")
    return tc


@functools.lru_cache(maxsize=64)
def _jitted_log_prob(graphdef, preprocess_fn):
    return jax.jit(make_log_prob_fn(graphdef, preprocess_fn))


def evaluate_nll(model: nnx.Module, data, *, batch_size: int = 1000,
                 preprocess_fn: Callable | None = None, key=None, mesh=None) -> float:
    """Mean negative log-likelihood (nats per example) of ``model`` on ``data``.

    Batches are padded to ``batch_size`` (one compilation for the whole split) and sharded
    over the mesh. ``preprocess_fn(key, batch)`` (e.g. dequantization) gets
    ``fold_in(key, batch_index)``, so repeated evaluations are comparable.
    """
    graphdef, params, model_state = split_model(model)
    return _evaluate(_jitted_log_prob(graphdef, preprocess_fn), params, model_state,
                     np.asarray(data), batch_size,
                     jax.random.key(0) if key is None else key,
                     shd.make_mesh() if mesh is None else mesh)


def _evaluate(log_prob_fn, params, model_state, data: np.ndarray, batch_size, key, mesh):
    if data.shape[0] == 0:
        raise ValueError("cannot evaluate on an empty split")
    n_dev = mesh.devices.size
    batch_size = min(batch_size, -(-data.shape[0] // n_dev) * n_dev)
    batch_size = -(-batch_size // n_dev) * n_dev
    sharding = shd.batch_sharded(mesh)
    total = 0.0
    for i, start in enumerate(range(0, data.shape[0], batch_size)):
        chunk = data[start:start + batch_size]
        valid = chunk.shape[0]
        if valid < batch_size:  # pad with copies of the first example, masked out below
            pad = np.repeat(chunk[:1], batch_size - valid, axis=0)
            chunk = np.concatenate([chunk, pad], axis=0)
        lp = log_prob_fn(params, model_state, jax.device_put(chunk, sharding),
                         jax.random.fold_in(key, i))
        total += float(jnp.sum(lp[:valid]))
    return -total / data.shape[0]


def _config_diff(a: dict, b: dict, prefix="") -> list[str]:
    keys = set(a) | set(b)
    out = []
    for k in sorted(keys):
        name = f"{prefix}{k}"
        if isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            out += _config_diff(a[k], b[k], name + ".")
        elif a.get(k) != b.get(k) and name not in _RESUMABLE_CHANGES:
            out.append(name)
    return out


def _to_host(tree):
    return jax.tree.map(np.asarray, jax.device_get(tree))


def train(model: nnx.Module, dataset, config, workdir: str | None = None, *,
          loss_fn: Callable | None = None, extra_init: Any = None,
          preprocess_fn: Callable | None = None,
          eval_preprocess_fn: Callable | None = None, mesh=None,
          nll_offset_nats: float = 0.0) -> TrainResult:
    """Trains ``model`` on ``dataset.train`` by minimizing ``loss_fn`` (default: mean NLL).

    Args:
      model: an NNX module with ``log_prob(x) -> [B]`` (used for validation).
      dataset: a ``jaxgen.data.Dataset`` (``train``/``valid`` arrays, ``num_dims``).
      config: ConfigDict with ``seed``, ``train`` (keys: ``TRAIN_DEFAULTS``) and ``optim``
        (see ``jaxgen.training.optim.make_optimizer``).
      workdir: where ``checkpoints/`` and ``metrics.jsonl`` go; ``None`` keeps nothing on disk.
        If it already holds checkpoints of the same config, training resumes from the latest.
      loss_fn: see ``jaxgen.training.steps``; with ``extra_init`` it also threads a pytree.
      preprocess_fn: ``(key, batch) -> batch`` applied inside the train step (dequantization,
        dynamic binarization) and, unless ``eval_preprocess_fn`` is given, at evaluation.
      mesh: a ``jax.sharding.Mesh`` (default: all devices on one ``"data"`` axis).
      nll_offset_nats: added to NLLs before they are logged as bits/dim (e.g. ``D log K`` for
        a density on dequantized data scaled to [0, 1), so logs are in the discrete units).

    Returns:
      A ``TrainResult`` whose model carries the best-on-valid parameters.

    Raises:
      FloatingPointError: a loss or gradient became non-finite; names the step. Checkpoints
        written before it are kept.
    """
    tc = train_config_with_defaults(config.train)
    num_steps, batch_size, k = int(tc["num_steps"]), int(tc["batch_size"]), int(tc["steps_per_call"])
    mesh = shd.make_mesh() if mesh is None else mesh
    shd.check_batch_divisible(batch_size, mesh)
    steps_per_epoch(dataset.train.shape[0], batch_size)  # raises if the data is too small
    eval_pre = preprocess_fn if eval_preprocess_fn is None else eval_preprocess_fn

    graphdef, params, model_state = split_model(model)
    optimizer = make_optimizer(config.optim, num_steps)
    ema_decay = float(tc["ema_decay"])
    state = init_train_state(params, model_state, optimizer, ema=ema_decay > 0, extra=extra_init,
                             num_examples=int(dataset.train.shape[0]))
    best = _to_host({"params": params, "model_state": model_state})  # host copies: state is donated
    book = dict(best_valid_nll=math.inf, best_step=-1, evals_since_best=0, stopped_early=False,
                train_wall_s=0.0, last_checkpoint=-1)

    base_key = jax.random.key(int(config.seed))
    shuffle_key, step_key, eval_key = (jax.random.fold_in(base_key, i) for i in (1, 2, 3))
    config_dict = config.to_dict() if hasattr(config, "to_dict") else dict(config)

    ckpt, start_step = None, 0
    if workdir is not None:
        ckpt = Checkpointer(os.path.join(workdir, "checkpoints"),
                            max_to_keep=int(tc["keep_checkpoints"]))
        latest = ckpt.latest_step()
        if latest is not None:
            state, best, meta = ckpt.restore(latest, state, best)
            diff = _config_diff(meta.get("config", {}), json.loads(json.dumps(config_dict)))
            if diff:
                raise ValueError(
                    f"workdir {workdir} holds checkpoints of a different config (keys {diff}); "
                    "use a new workdir (nothing was overwritten)")
            book.update(meta["book"])
            start_step = int(state.step)
    writer = MetricsWriter(None if workdir is None else os.path.join(workdir, "metrics.jsonl"),
                           resume_step=start_step if start_step else None)

    rep = shd.replicated(mesh)
    state = jax.device_put(state, rep)
    train_data = jax.device_put(np.asarray(dataset.train), rep)
    valid_data = None if getattr(dataset, "valid", None) is None else np.asarray(dataset.valid)
    train_fn = jax.jit(
        make_train_step(graphdef, optimizer, batch_size=batch_size, loss_fn=loss_fn,
                        has_extra=extra_init is not None, preprocess_fn=preprocess_fn,
                        ema_decay=ema_decay, batch_sharding=shd.batch_sharded(mesh),
                        steps_per_call=k),
        donate_argnums=0)
    log_prob_fn = jax.jit(make_log_prob_fn(graphdef, eval_pre))
    bits_scale = 1.0 / (dataset.num_dims * math.log(2.0))

    def eval_params(s):
        return s.ema_params if s.ema_params is not None else s.params

    def save(step):
        if ckpt is None:
            return
        book["last_checkpoint"] = step
        ckpt.save(step, state, best, {"config": config_dict, "book": dict(book)})

    history = []

    def log(record):
        history.append(record)
        writer.write(record)

    step = start_step
    bar = tqdm(total=num_steps, initial=step, disable=not tc["progress"], unit="step",
               dynamic_ncols=True)
    compile_s, steady_steps, steady_time = 0.0, 0, 0.0
    t_last, last_logged = time.perf_counter(), start_step
    try:
        while step < num_steps and not book["stopped_early"]:
            t0 = time.perf_counter()
            state, metrics = train_fn(state, train_data, shuffle_key, step_key)
            step += k
            first_call = step == start_step + k
            if first_call:
                jax.block_until_ready(state.step)
                compile_s = time.perf_counter() - t0
            bar.update(k)
            at = lambda every: every and step % int(every) == 0
            if at(tc["log_every"]) or step >= num_steps or at(tc["eval_every"]):
                bad = int(state.bad_step)
                if bad >= 0:
                    where = (f"; the last good checkpoint is step {book['last_checkpoint']} in "
                             f"{ckpt.directory}" if ckpt and book["last_checkpoint"] >= 0 else "")
                    raise FloatingPointError(
                        f"non-finite loss or gradient at step {bad}: training stopped{where}")
                now = time.perf_counter()
                metrics = {name: float(v) for name, v in metrics.items()}
                if not first_call:
                    steady_time += now - t_last
                    steady_steps += step - last_logged
                t_last, last_logged = now, step
                record = dict(step=step, split="train", **metrics,
                              bits_per_dim=(metrics["loss"] + nll_offset_nats) * bits_scale,
                              steps_per_s=steady_steps / steady_time if steady_time else 0.0)
                log(record)
                bar.set_postfix(loss=f"{metrics['loss']:.4f}",
                                bpd=f"{record['bits_per_dim']:.4f}",
                                sps=f"{record['steps_per_s']:.1f}")
            if first_call:
                last_logged, t_last = step, time.perf_counter()
            if valid_data is not None and (at(tc["eval_every"]) or step >= num_steps):
                t_eval = time.perf_counter()
                nll = _evaluate(log_prob_fn, eval_params(state), state.model_state, valid_data,
                                int(tc["eval_batch_size"]), eval_key, mesh)
                improved = nll < book["best_valid_nll"]
                if improved:
                    book.update(best_valid_nll=nll, best_step=step, evals_since_best=0)
                    best = {"params": _to_host(eval_params(state)),
                            "model_state": _to_host(state.model_state)}
                else:
                    book["evals_since_best"] += 1
                    if tc["patience"] and book["evals_since_best"] >= int(tc["patience"]):
                        book["stopped_early"] = True
                log(dict(step=step, split="valid", nll=nll,
                         bits_per_dim=(nll + nll_offset_nats) * bits_scale,
                         best_nll=book["best_valid_nll"], best_step=book["best_step"]))
                t_last += time.perf_counter() - t_eval  # evaluation is not training throughput
            book["train_wall_s"] += time.perf_counter() - t0
            if (at(tc["checkpoint_every"]) or step >= num_steps or book["stopped_early"]):
                save(step)
            if tc["halt_after_steps"] and step >= int(tc["halt_after_steps"]) and step < num_steps:
                # Testing aid: die like a killed process, right after a checkpoint is on disk.
                if ckpt is not None:
                    ckpt.wait()
                os.kill(os.getpid(), signal.SIGKILL)
        jax.block_until_ready(state)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()

    if valid_data is None or book["best_step"] < 0:
        best = {"params": eval_params(state), "model_state": state.model_state}
    final_model = merge_model(graphdef, jax.tree.map(jnp.asarray, best["params"]),
                              jax.tree.map(jnp.asarray, best["model_state"]))
    return TrainResult(
        model=final_model, train_steps=step, train_wall_s=book["train_wall_s"],
        steps_per_s=(steady_steps / steady_time) if steady_time else 0.0, compile_s=compile_s,
        best_valid_nll=book["best_valid_nll"] if book["best_step"] >= 0 else math.nan,
        best_step=book["best_step"], stopped_early=book["stopped_early"], history=history)
