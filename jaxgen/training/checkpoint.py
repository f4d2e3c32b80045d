"""Orbax checkpoints (the only module that imports orbax).

A checkpoint holds the whole ``TrainState``, the best-on-valid parameters and a small JSON
record of the loop's bookkeeping (best valid NLL, evaluations since the best, ...), so a run
killed at any point resumes exactly.

Resume is robust to damaged checkpoints (`Checkpointer.restore_newest`): it restores the
newest step that reads back completely, trying older ones when a newer one fails (a stray
empty ``checkpoints/999/``, a truncated or garbled file, a half-copied directory). The
skipped steps are never deleted: `Checkpointer.set_aside` moves each into
``<directory>_skipped/`` next to the checkpoints, with a note of why, and logs a warning.
Moving them out of orbax's directory is what keeps them safe: orbax's keep-N clean-up
counts every step directory it sees and removes the oldest, and a skipped step newer than
the restored one would also block the run from re-saving that step. Since a resumed run
replays the same batches and keys from the restored step, resuming from an older step costs
time, never exactness. When no step can be restored at all, nothing is moved and a
`CheckpointError` lists every step and what is wrong with it.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import time
from typing import Any

import jax
import orbax.checkpoint as ocp

ITEMS = ("state", "best", "meta")  # the items of every checkpoint this module writes
_JSON_FILES = ("_CHECKPOINT_METADATA", "_METADATA", "_sharding", "metadata")
_MAX_REASON = 400  # characters of an orbax/tensorstore error kept in a message

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """Checkpoints that cannot be used: none restores, or they are of another run or format.

    The message names the directory, each step and what is wrong with it, and what to do;
    nothing on disk was changed.
    """


@dataclasses.dataclass(frozen=True)
class Restored:
    """What `Checkpointer.restore_newest` read back.

    Attributes:
      step: the restored step.
      state: the ``TrainState``, in the structure of the template.
      best: the best-on-valid parameters, in the structure of the template.
      meta: the JSON bookkeeping saved with it.
      skipped: ``(step, reason)`` of every newer step that could not be read back, newest
        first; still on disk where it was (see `Checkpointer.set_aside`).
    """

    step: int
    state: Any
    best: Any
    meta: dict
    skipped: tuple[tuple[int, str], ...] = ()


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def _short(err: BaseException) -> str:
    """``Type: first line of the message`` (and of its cause's), at most `_MAX_REASON`
    characters: tensorstore errors carry the whole array spec, their cause says what failed
    (e.g. ``OUT_OF_RANGE: Error reading "params/0" ...``)."""
    def line(e: BaseException) -> str:
        text = str(e).split("See full TensorStore details")[0].strip()
        text = text.splitlines()[0].strip() if text else ""
        if len(text) > 160:  # orbax appends advice about its own options: keep the first
            text = re.split(r"(?<=\.)\s", text, maxsplit=1)[0]  # sentence
        return f"{type(e).__name__}: {text}" if text else type(e).__name__

    text = line(err)
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause).strip():
        text = f"{text} (caused by {line(cause)})"
    return text if len(text) <= _MAX_REASON else text[:_MAX_REASON - 3] + "..."


class Checkpointer:
    """Thin wrapper over ``ocp.CheckpointManager`` (keep-N, async saves)."""

    def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    @property
    def skipped_directory(self) -> str:
        """Where `set_aside` moves checkpoints that could not be read back."""
        return self.directory.rstrip(os.sep) + "_skipped"

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def steps(self) -> list[int]:
        """Every step orbax sees in the directory, oldest first (readable or not)."""
        return sorted(self._manager.all_steps())

    def step_directory(self, step: int) -> str:
        return os.path.join(self.directory, str(int(step)))

    def save(self, step: int, state: Any, best: Any, meta: dict) -> None:
        """Saves asynchronously; ``wait()`` blocks until it is on disk."""
        self._manager.save(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            best=ocp.args.StandardSave(best),
            meta=ocp.args.JsonSave(meta)), force=True)

    def restore(self, step: int, state_like: Any, best_like: Any):
        """Returns ``(state, best, meta)`` restored into the structure of the templates."""
        restored = self._manager.restore(int(step), args=ocp.args.Composite(
            state=ocp.args.StandardRestore(_abstract(state_like)),
            best=ocp.args.StandardRestore(_abstract(best_like)),
            meta=ocp.args.JsonRestore()))
        return restored["state"], restored["best"], dict(restored["meta"])

    def read_meta(self, step: int) -> dict | None:
        """Only the JSON bookkeeping of ``step`` (no arrays), or None if it does not read."""
        try:
            restored = self._manager.restore(int(step), args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))
            return dict(restored["meta"])
        except Exception:  # unreadable: the caller reports the full restore's failure
            return None

    def restore_newest(self, state_like: Any, best_like: Any) -> Restored | None:
        """The newest step that reads back completely (state, best and meta).

        Steps are tried newest first; one that fails (any error from orbax: a missing or
        unreadable item, bad JSON, garbled array data, a structure or shape that does not
        fit the templates) is recorded in ``skipped`` with the reason and the next older one
        is tried. Nothing is moved or deleted here (`set_aside` does that).

        Returns:
          The `Restored` checkpoint, or None when the directory holds no step at all.

        Raises:
          CheckpointError: there are steps but none can be restored; the message lists each
            with its reason.
        """
        steps = self.steps()
        skipped = []
        for step in reversed(steps):
            try:
                state, best, meta = self.restore(step, state_like, best_like)
            except Exception as err:  # orbax raises many types; each means "unusable"
                skipped.append((step, self.diagnose(step) or _short(err)))
                continue
            return Restored(step, state, best, meta, tuple(skipped))
        if not steps:
            return None
        listed = "; ".join(f"step {step}: {reason}" for step, reason in skipped)
        raise CheckpointError(
            f"none of the {len(steps)} checkpoint(s) in {self.directory} can be restored "
            f"({listed}). They are corrupt, or were written by another program, model or "
            "version. Nothing was changed: move the checkpoints directory away to start "
            "afresh, or use a new workdir")

    def diagnose(self, step: int) -> str | None:
        """What is visibly wrong with a step's directory, naming the file, or None.

        Looks for what the orbax error does not say: an empty directory, missing items, a
        JSON file that does not parse. Used only to word a failure (orbax decides whether a
        checkpoint restores).
        """
        path = self.step_directory(step)
        if not os.path.isdir(path):
            return f"{path} is not a directory"
        if not os.listdir(path):
            return f"{path} is an empty directory (a stray mkdir or an interrupted copy)"
        missing = [item for item in ITEMS if not os.path.isdir(os.path.join(path, item))]
        if missing:
            return (f"{path} lacks the item(s) {missing} (not a complete jaxgen training "
                    "checkpoint: another program's, or an interrupted copy)")
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                if name in _JSON_FILES or os.path.basename(root) == "array_metadatas":
                    file = os.path.join(root, name)
                    try:
                        with open(file, "rb") as f:
                            json.loads(f.read().decode("utf-8"))
                    except (ValueError, OSError) as err:  # JSONDecodeError, UnicodeError
                        return f"{file} is not valid JSON ({_short(err)}): truncated or corrupt"
        return None

    def set_aside(self, step: int, reason: str) -> str:
        """Moves a step that could not be read back out of orbax's directory, never deleting
        it, and logs a warning; returns where it went.

        The step goes to ``<skipped_directory>/<step>`` (``<step>-1``, ... if taken), with
        ``<step>.reason.txt`` beside it. Only process 0 moves files; every process then
        re-reads the directory.
        """
        source = self.step_directory(step)
        os.makedirs(self.skipped_directory, exist_ok=True)
        target, suffix = os.path.join(self.skipped_directory, str(int(step))), 0
        while os.path.exists(target) or os.path.exists(target + ".reason.txt"):
            suffix += 1
            target = os.path.join(self.skipped_directory, f"{int(step)}-{suffix}")
        if jax.process_index() == 0:
            os.replace(source, target)
            with open(target + ".reason.txt", "w") as f:
                f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}: checkpoint step {step} of "
                        f"{self.directory} could not be read back and was moved here by "
                        f"jaxgen's resume (not deleted): {reason}\n")
        if jax.process_count() > 1:
            ocp.multihost.sync_global_processes(f"jaxgen_set_aside_{step}_{suffix}")
        self._manager.reload()
        log.warning("checkpoint step %d in %s could not be read back (%s); it was moved, "
                    "not deleted, to %s", step, self.directory, reason, target)
        return target

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def _barrier(name: str) -> None:
    """Every process of a multi-process run reaches this point (no-op with one process)."""
    if jax.process_count() > 1:
        ocp.multihost.sync_global_processes(name)


def save_tree(directory: str, tree: Any) -> None:
    """Writes a pytree of arrays (e.g. a finalized model's ``nnx.State``) to ``directory``
    (synchronously; an existing one is replaced only once the new one is complete).

    In a multi-process run every process calls it with the same (global) arrays; orbax
    writes each process's shards, and process 0 alone moves the directories."""
    import shutil
    directory = os.path.abspath(directory)
    tmp, old = directory + ".tmp", directory + ".old"
    main = jax.process_index() == 0
    if main and os.path.exists(tmp):
        shutil.rmtree(tmp)
    _barrier("jaxgen_save_tree_start")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(tmp, tree)
        checkpointer.wait_until_finished()
    _barrier("jaxgen_save_tree_written")
    if main:
        if os.path.exists(directory):
            if os.path.exists(old):
                shutil.rmtree(old)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old)
        else:
            os.replace(tmp, directory)
    _barrier("jaxgen_save_tree_done")


def restore_tree(directory: str, like: Any) -> Any:
    """The pytree `save_tree` wrote, restored into the structure (and dtypes) of ``like``.

    Raises:
      CheckpointError: naming the directory, when it is missing or does not read back into
        ``like`` (another model, or a corrupt file).
    """
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise CheckpointError(f"{directory} does not exist: the run has not finished (or was "
                              "written before models were saved); train it to the end first")
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            return checkpointer.restore(directory, _abstract(like))
    except Exception as err:  # orbax raises many types; name the directory and the cause
        raise CheckpointError(f"{directory} could not be restored into this model "
                              f"({_short(err)}); it was left as it is") from None
