"""The model-agnostic training loop.

``train(model, dataset, settings, workdir)`` fits any model with ``log_prob`` under its
family's `Objective` and handles what a research run needs: optax optimizers and schedules,
gradient clipping, EMA, jit-compiled steps keyed by ``fold_in(base_key, step)``, periodic
validation with early stopping (the best-on-valid parameters are returned), ``metrics.jsonl``,
a tqdm bar, orbax checkpoints with exact resume, a clear stop on non-finite losses, and data
parallelism over a ``jax.sharding`` mesh of every device.

The pieces, in the order a run meets them: `_restore_or_init` (fresh state, or the latest
checkpoint of the same run), `_Loop.run` (the step loop: `_Loop.log`, `_Loop.validate`,
`_Loop.checkpoint`), then the objective's ``finalize`` on the best parameters.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from tqdm.auto import tqdm

from jaxgen.data.batching import steps_per_epoch
from jaxgen.training import sharding as shd
from jaxgen.training.checkpoint import Checkpointer, save_tree
from jaxgen.training.evaluation import evaluate_with
from jaxgen.training.interrupt import InterruptGuard, TrainingInterrupted
from jaxgen.training.logging import MetricsWriter
from jaxgen.training.objective import MaximumLikelihood, Objective
from jaxgen.training.optim import make_optimizer
from jaxgen.training.settings import TrainSettings
from jaxgen.training.state import TrainState, init_train_state, merge_model, split_model
from jaxgen.training.steps import make_log_prob_fn, make_train_step

# The finalized model (best parameters, then the objective's finalize: log Z...) as a whole
# ``nnx.State``, written at the end of a run with a workdir.
FINAL_MODEL_DIR = "final_model"

# fold_in indices of the keys derived from the seed: one per use, no shared streams.
_SHUFFLE_KEY, _STEP_KEY, _EVAL_KEY, _INIT_KEY, _FINALIZE_KEY, _VIEW_KEY = 1, 2, 3, 4, 5, 6


@dataclasses.dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
      model: the model with the best-on-valid parameters (the last ones if no validation),
        in eval mode, after the objective's ``finalize``.
      train_steps: optimizer steps taken in total (across resumptions).
      train_wall_s: wall-clock seconds spent training (across resumptions).
      steps_per_s: steady-state throughput of this process (first, compiling call excluded;
        0 when there was no second call).
      compile_s: seconds of the first (compiling) step call in this process.
      best_valid_nll: best validation NLL in nats per example (nan if never evaluated).
      best_step: step at which it was reached.
      stopped_early: whether patience ran out.
      history: the records written to metrics.jsonl by this process.
      finalize_results: the dict the objective's ``finalize`` returned (e.g. log Z).
      extra: the objective's state at the end (persistent chains, replay buffers).
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
    finalize_results: dict = dataclasses.field(default_factory=dict)
    extra: Any = None


@dataclasses.dataclass
class _Book:
    """The loop's bookkeeping, saved with every checkpoint (JSON)."""

    best_valid_nll: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0
    stopped_early: bool = False
    train_wall_s: float = 0.0
    last_checkpoint: int = -1


def _to_host(tree):
    return shd.to_host(tree)


def _stderr_is_terminal() -> bool:
    import sys
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def differing_keys(a, b, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like dicts."""
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return [] if a == b else [prefix.rstrip(".") or "<root>"]
    return [k for key in sorted(set(a) | set(b))
            for k in differing_keys(a.get(key), b.get(key), f"{prefix}{key}.")]


def _restore_or_init(ckpt: Checkpointer | None, state: TrainState, best: dict,
                     run_id: dict, workdir: str | None):
    """The newest checkpoint of this run that reads back completely, or the fresh state.

    A newer step that cannot be read back (an empty stray step directory, a truncated or
    garbled file) is skipped for the next older one; the skipped steps are moved aside, not
    deleted, each with a logged warning (`Checkpointer.set_aside`), so that orbax's keep-N
    clean-up never removes them and the run can re-save those steps. Resuming from an older
    step replays the same batches and keys, so the result is the same as an uninterrupted
    run's. Skipped steps are moved only once the restored step is known to belong to this
    run, so a refused resume changes nothing.

    Returns:
      ``(state, best, book)``.

    Raises:
      CheckpointError: (a ``ValueError``) the checkpoints belong to a run with another
        ``run_id`` (naming the keys), were written by another program or version, or none
        of them can be restored (listing each with its reason). Nothing is changed then.
    """
    if ckpt is None:
        return state, best, _Book()
    from jaxgen.training.checkpoint import CheckpointError

    try:
        restored = ckpt.restore_newest(state, best)
    except CheckpointError:
        # No step fits this run's state. If the newest one's bookkeeping still reads, say
        # whether it is another run's (e.g. EMA switched on) rather than "corrupt".
        steps = ckpt.steps()
        meta = ckpt.read_meta(steps[-1]) if steps else None
        if isinstance(meta, dict):
            _book_from_meta(meta, steps[-1], run_id, workdir, ckpt.directory)
        raise
    if restored is None:
        return state, best, _Book()
    book = _book_from_meta(restored.meta, restored.step, run_id, workdir, ckpt.directory)
    for step, reason in restored.skipped:
        ckpt.set_aside(step, reason)
    return restored.state, restored.best, book


def _book_from_meta(meta, step: int, run_id: dict, workdir: str | None,
                    directory: str) -> _Book:
    """The loop's bookkeeping saved with checkpoint ``step``, checked to be this run's."""
    from jaxgen.training.checkpoint import CheckpointError

    where = f"checkpoint step {step} in {directory}"
    book = meta.get("book") if isinstance(meta, dict) else None
    fields = {field.name for field in dataclasses.fields(_Book)}
    if (not isinstance(book, dict) or not isinstance(meta.get("run_id"), dict)
            or not set(book) <= fields):
        found = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise CheckpointError(f"{where} was not written by this version of jaxgen's training "
                              f"loop (its meta item holds {found}, expected 'run_id' and a "
                              f"'book' with keys among {sorted(fields)}); use a new workdir "
                              "(nothing was changed)")
    diff = differing_keys(meta["run_id"], run_id)
    if diff:
        raise CheckpointError(f"workdir {workdir} holds checkpoints of a different run (keys "
                              f"{diff} differ, {where}); use a new workdir (nothing was "
                              "overwritten)")
    return _Book(**book)


def initial_state(model: nnx.Module, settings: TrainSettings, objective: Objective, init_data,
                  num_examples: int, key):
    """What a run starts from (and what its checkpoints restore into).

    Returns:
      ``(graphdef, optimizer, state, best)``: the model's graph, the optax transformation, a
      step-0 `TrainState` (``objective.init`` from ``init_data`` and ``key``) and a host
      copy of the parameters and model state as the first "best" (host: the state is donated).
    """
    graphdef, params, model_state = split_model(model)
    optimizer = make_optimizer(settings.optim, int(settings.num_steps))
    extra = objective.init(model, init_data, key)
    state = init_train_state(params, model_state, optimizer, ema=settings.ema_decay > 0,
                             extra=extra, num_examples=int(num_examples))
    return graphdef, optimizer, state, _to_host({"params": params, "model_state": model_state})


def split_pytree(dataset, split: str):
    """A split as the batch pytree the steps index: the array, or ``Labeled(x, labels)``
    for a conditional `jaxgen.data.Dataset`."""
    if hasattr(dataset, "split_data"):
        return jax.tree.map(np.asarray, dataset.split_data(split))
    return np.asarray(getattr(dataset, split))


def _model_view(dataset, preprocessing, key):
    """The data as the model sees it, for the objective's ``finalize``."""
    if preprocessing is None or not preprocessing.active:
        return dataset
    from jaxgen.data.dataset import Dataset
    splits = {split: preprocessing(jax.random.fold_in(key, i), np.asarray(getattr(dataset, split)))
              for i, split in enumerate(("valid", "test"))}
    labels = {f"{split}_labels": getattr(dataset, f"{split}_labels", None)
              for split in ("train", "valid", "test")}
    return Dataset(dataset.name, preprocessing.init_data, np.asarray(splits["valid"]),
                   np.asarray(splits["test"]), num_levels=None, **labels,
                   num_classes=getattr(dataset, "num_classes", None))


class _Loop:
    """The step loop of one `train` call (its state lives in attributes, not closures)."""

    def __init__(self, *, settings, state, best, book, train_fn, log_prob_fn, train_data,
                 valid_data, mesh, keys, ckpt, writer, run_id, nll_offset_nats, num_dims,
                 callback):
        self.s = settings
        self.state, self.best, self.book = state, best, book
        self.train_fn, self.log_prob_fn = train_fn, log_prob_fn
        self.train_data, self.valid_data, self.mesh = train_data, valid_data, mesh
        self.shuffle_key, self.step_key, self.eval_key = keys
        self.ckpt, self.writer, self.run_id = ckpt, writer, run_id
        self.offset, self.bits_scale = nll_offset_nats, 1.0 / (num_dims * math.log(2.0))
        self.callback = callback
        self.history: list = []
        self.compile_s, self.steady_steps, self.steady_time = 0.0, 0, 0.0

    def _eval_params(self):
        s = self.state
        return s.ema_params if s.ema_params is not None else s.params

    def _due(self, every: int, step: int) -> bool:
        return bool(every) and step % int(every) == 0

    def record(self, record: dict) -> None:
        self.history.append(record)
        self.writer.write(record)

    def log(self, step: int, metrics, first_call: bool, t_last: float, last_logged: int):
        """Checks for a non-finite step, then writes a train record; returns the new
        ``(t_last, last_logged)`` of the throughput clock."""
        bad = int(self.state.bad_step)
        if bad >= 0:
            where = (f"; the last good checkpoint is step {self.book.last_checkpoint} in "
                     f"{self.ckpt.directory}" if self.ckpt and self.book.last_checkpoint >= 0
                     else "")
            raise FloatingPointError(
                f"non-finite loss or gradient at step {bad}: training stopped{where}")
        now = time.perf_counter()
        metrics = {name: float(v) for name, v in metrics.items()}
        if not first_call:
            self.steady_time += now - t_last
            self.steady_steps += step - last_logged
        rate = self.steady_steps / self.steady_time if self.steady_time else 0.0
        record = dict(step=step, split="train", **metrics, steps_per_s=rate)
        if "nll" in metrics:  # the model's NLL in the stored data's bits/dim
            record["bits_per_dim"] = (metrics["nll"] + self.offset) * self.bits_scale
        self.record(record)
        # bits/dim of the stored data when the objective reports an NLL (a dequantized
        # density's own loss is in other units), else the loss.
        shown = (("bpd", record["bits_per_dim"]) if "bits_per_dim" in record
                 else ("loss", metrics["loss"]))
        self.bar.set_postfix({name: f"{value:.4g}" for name, value in (shown, ("sps", rate))})
        return now, step

    def validate(self, step: int) -> None:
        """Validation NLL; keeps the best parameters on the host; counts patience."""
        nll = evaluate_with(self.log_prob_fn, self._eval_params(), self.state.model_state,
                            self.valid_data, int(self.s.eval_batch_size), self.eval_key,
                            self.mesh, placed=True)
        book = self.book
        if nll < book.best_valid_nll:
            book.best_valid_nll, book.best_step, book.evals_since_best = nll, step, 0
            self.best = {"params": _to_host(self._eval_params()),
                         "model_state": _to_host(self.state.model_state)}
        else:
            book.evals_since_best += 1
            if self.s.patience and book.evals_since_best >= int(self.s.patience):
                book.stopped_early = True
        self.record(dict(step=step, split="valid", nll=nll,
                         bits_per_dim=(nll + self.offset) * self.bits_scale,
                         best_nll=book.best_valid_nll, best_step=book.best_step))

    def checkpoint(self, step: int) -> None:
        if self.ckpt is None:
            return
        self.book.last_checkpoint = step
        self.ckpt.save(step, self.state, self.best,
                       {"run_id": self.run_id, "book": dataclasses.asdict(self.book)})

    def run(self, start_step: int) -> int:
        """Steps from ``start_step`` to ``num_steps`` (or early stop); returns the last step.

        Raises:
          TrainingInterrupted: SIGINT/SIGTERM arrived; the step in progress was finished and
            checkpointed (when there is a workdir) before raising.
        """
        s, k, num_steps = self.s, int(self.s.steps_per_call), int(self.s.num_steps)
        step = start_step
        self.bar = tqdm(total=num_steps, initial=step, unit="step", dynamic_ncols=True,
                        disable=not (s.progress and _stderr_is_terminal()))
        t_last, last_logged = time.perf_counter(), start_step
        t_checkpoint = time.perf_counter()
        guard = InterruptGuard()
        try:
            guard.__enter__()
            while step < num_steps and not self.book.stopped_early:
                t0 = time.perf_counter()
                self.state, metrics = self.train_fn(self.state, self.train_data,
                                                    self.shuffle_key, self.step_key)
                step += k
                first_call = step == start_step + k
                if first_call:
                    jax.block_until_ready(self.state.step)
                    self.compile_s = time.perf_counter() - t0
                self.bar.update(k)
                last = step >= num_steps
                if self._due(s.log_every, step) or self._due(s.eval_every, step) or last:
                    t_last, last_logged = self.log(step, metrics, first_call, t_last,
                                                   last_logged)
                if first_call:
                    last_logged, t_last = step, time.perf_counter()
                evaluated = self.valid_data is not None and (self._due(s.eval_every, step)
                                                             or last)
                if evaluated:
                    t_eval = time.perf_counter()
                    self.validate(step)
                    t_last += time.perf_counter() - t_eval  # evaluation is not throughput
                self.book.train_wall_s += time.perf_counter() - t0
                timed = (float(s.checkpoint_every_s) > 0
                         and time.perf_counter() - t_checkpoint >= float(s.checkpoint_every_s))
                requested = guard.requested
                if jax.process_count() > 1:
                    # every process must take the same checkpoint and stop decisions (a
                    # save is collective); the clock and the signals are per process
                    timed, signum = shd.max_across_processes(
                        [int(timed), 0 if requested is None else int(requested)])
                    timed, requested = bool(timed), (signum or None)
                saved = (self._due(s.checkpoint_every, step) or last or self.book.stopped_early
                         or evaluated or timed or requested is not None)
                if saved:
                    self.checkpoint(step)
                    t_checkpoint = time.perf_counter()
                if self.callback is not None:
                    if saved and self.ckpt is not None:
                        self.ckpt.wait()  # the callback may end the process
                    self.callback(step, self.state)
                if jax.process_count() == 1:  # a signal sent during the callback counts now
                    requested = guard.requested
                if requested is not None:  # a signal arrived: checkpoint and stop
                    if not saved:
                        self.checkpoint(step)
                    if self.ckpt is not None:
                        self.ckpt.wait()
                    raise TrainingInterrupted(requested, step,
                                              None if self.ckpt is None else self.ckpt.directory)
            jax.block_until_ready(self.state)
        finally:
            guard.__exit__(None, None, None)
            self.bar.close()
            self.writer.close()
            if self.ckpt is not None:
                self.ckpt.close()
        return step


def train(model: nnx.Module, dataset, settings: TrainSettings, workdir: str | None = None, *,
          objective: Objective | None = None, preprocessing=None, mesh=None,
          run_id: dict | None = None,
          callback: Callable[[int, TrainState], None] | None = None) -> TrainResult:
    """Trains ``model`` on ``dataset.train`` by minimizing ``objective.loss``.

    Args:
      model: an NNX module with ``log_prob(x) -> [B]`` (used for validation).
      dataset: ``train`` (and optionally ``valid``) arrays of stored data and ``num_dims``
        (a `jaxgen.data.Dataset`).
      settings: a `TrainSettings` (steps, batch, intervals, seed, optimizer).
      workdir: where ``checkpoints/``, ``metrics.jsonl`` and, at the end, ``final_model/``
        (the returned model's whole ``nnx.State``) go; ``None`` keeps nothing on disk. If it holds checkpoints of the same run, training resumes from the latest
        (bit-identically: batches and keys are functions of the seed and the step).
      objective: the model family's `Objective` (default: `MaximumLikelihood`).
      preprocessing: a `jaxgen.data.preprocessing.Preprocessing` (dequantization), applied
        to every train and validation batch; its ``init_data`` feeds ``objective.init`` and
        its ``nll_offset_nats`` puts logged bits/dim in the stored data's units.
      mesh: a ``jax.sharding.Mesh`` (default: all devices on one ``"data"`` axis).
      run_id: JSON-able identity of the run, stored with the checkpoints; resuming with
        another one is refused. Default: ``settings.fingerprint()`` (every setting except
        `TrainSettings.RESUMABLE`).
      callback: ``callback(step, state)`` after each step call (after its checkpoint, if
        one was written, is on disk): progress hooks, or a scheduler test ending the process.

    Returns:
      A ``TrainResult`` whose model carries the best-on-valid parameters, finalized.

    Raises:
      FloatingPointError: a loss or gradient became non-finite; names the step. Checkpoints
        written before it are kept.
      TrainingInterrupted: SIGINT or SIGTERM (a ``KeyboardInterrupt``): the step in progress
        was finished and checkpointed; calling ``train`` again with the same workdir resumes.
      ValueError: checkpoints of another run in ``workdir``; a batch that does not fit the
        data or the devices.
    """
    if not isinstance(settings, TrainSettings):
        raise TypeError(f"settings must be a jaxgen.training.TrainSettings, got "
                        f"{type(settings).__name__}")
    objective = MaximumLikelihood() if objective is None else objective
    mesh = shd.make_mesh() if mesh is None else mesh
    batch_size = int(settings.batch_size)
    shd.check_batch_divisible(batch_size, mesh)
    steps_per_epoch(dataset.train.shape[0], batch_size)  # raises if the data is too small
    run_id = json.loads(json.dumps(settings.fingerprint() if run_id is None else run_id))

    base_key = jax.random.key(int(settings.seed))
    key = lambda index: jax.random.fold_in(base_key, index)
    init_data = (np.asarray(dataset.train) if preprocessing is None
                 else preprocessing.init_data)
    preprocess_fn = preprocessing if preprocessing is not None and preprocessing.active else None

    graphdef, optimizer, state, best = initial_state(
        model, settings, objective, init_data, int(dataset.train.shape[0]), key(_INIT_KEY))
    # On the mesh before restoring: checkpoints restore into these shardings whatever the
    # device count or layout that wrote them (orbax stores global arrays).
    shardings = shd.state_shardings(state, mesh, settings.sharding)
    state = shd.put(state, shardings)
    ckpt = None if workdir is None else Checkpointer(
        os.path.join(workdir, "checkpoints"), max_to_keep=int(settings.keep_checkpoints))
    state, best, book = _restore_or_init(ckpt, state, best, run_id, workdir)
    start_step = int(state.step)

    rep = shd.replicated(mesh)
    valid = getattr(dataset, "valid", None)
    main_process = shd.is_main_process()  # only process 0 writes metrics
    loop = _Loop(
        settings=settings, state=state, best=best, book=book,
        train_fn=jax.jit(make_train_step(
            graphdef, optimizer, objective, batch_size=batch_size, preprocess_fn=preprocess_fn,
            ema_decay=float(settings.ema_decay), batch_sharding=shd.batch_sharded(mesh),
            steps_per_call=int(settings.steps_per_call),
            compute_dtype=settings.compute_dtype),
            out_shardings=(shardings, rep), donate_argnums=0),
        log_prob_fn=jax.jit(make_log_prob_fn(graphdef, preprocess_fn)),
        train_data=shd.put(split_pytree(dataset, "train"), rep),
        valid_data=None if valid is None else split_pytree(dataset, "valid"), mesh=mesh,
        keys=tuple(shd.put(key(i), rep) for i in (_SHUFFLE_KEY, _STEP_KEY, _EVAL_KEY)),
        ckpt=ckpt,
        writer=MetricsWriter(None if workdir is None or not main_process
                             else os.path.join(workdir, "metrics.jsonl"),
                             resume_step=start_step or None),
        run_id=run_id,
        nll_offset_nats=0.0 if preprocessing is None else preprocessing.nll_offset_nats,
        num_dims=int(dataset.num_dims), callback=callback)
    step = loop.run(start_step)

    book, state = loop.book, loop.state
    if loop.valid_data is None or book.best_step < 0:
        best = _to_host({"params": loop._eval_params(), "model_state": state.model_state})
    else:
        best = loop.best
    final = merge_model(graphdef, jax.tree.map(jnp.asarray, best["params"]),
                        jax.tree.map(jnp.asarray, best["model_state"]))
    final.eval()
    final, finalize_results = objective.finalize(
        final, _model_view(dataset, preprocessing, key(_VIEW_KEY)), key(_FINALIZE_KEY))
    if workdir is not None:  # what `experiments.load.load_run` gives back
        # global (replicated) arrays: every process takes part in orbax's save
        save_tree(os.path.join(workdir, FINAL_MODEL_DIR), shd.put(nnx.state(final), rep))
    return TrainResult(
        model=final, train_steps=step, train_wall_s=book.train_wall_s,
        steps_per_s=(loop.steady_steps / loop.steady_time) if loop.steady_time else 0.0,
        compile_s=loop.compile_s,
        best_valid_nll=book.best_valid_nll if book.best_step >= 0 else math.nan,
        best_step=book.best_step, stopped_early=book.stopped_early, history=loop.history,
        finalize_results=dict(finalize_results), extra=state.extra)
