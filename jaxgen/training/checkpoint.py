"""Orbax checkpoints (the only module that imports orbax).

A checkpoint holds the whole ``TrainState``, the best-on-valid parameters and a small JSON
record of the loop's bookkeeping (best valid NLL, evaluations since the best, ...), so a run
killed at any point resumes exactly.
"""
from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpointer:
    """Thin wrapper over ``ocp.CheckpointManager`` (keep-N, async saves)."""

    def __init__(self, directory: str, *, max_to_keep: int = 3, async_save: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, enable_async_checkpointing=async_save, create=True)
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

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

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()
