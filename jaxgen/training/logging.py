"""A run's metrics: ``metrics.jsonl`` (append-only, truncated to the restored step on resume)
and TensorBoard event files in ``tensorboard/`` beside it (tensorboardX: no TensorFlow
needed; ``tensorboard --logdir WORKDIR/tensorboard``)."""
from __future__ import annotations

import json
import os


TENSORBOARD_DIR = "tensorboard"


class MetricsWriter:
    """One JSON object per line: ``{"step": ..., "split": "train"|"valid", ...}``; each
    numeric field also goes to TensorBoard as the scalar ``"{split}/{field}"``.

    On resume (``resume_step``) the TensorBoard writer purges events after that step
    (tensorboardX ``purge_step``), as the JSON lines are truncated, so a replayed stretch
    is not shown twice.
    """

    def __init__(self, path: str | None, *, resume_step: int | None = None,
                 tensorboard: bool = True):
        self.path, self._tb = path, None
        if path is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if resume_step is not None and os.path.exists(path):
            # Lines written after the checkpoint we resume from are replayed by this run.
            with open(path) as f:
                kept = [line for line in f if _step_of(line) <= resume_step]
            with open(path, "w") as f:
                f.writelines(kept)
        elif resume_step is None and os.path.exists(path):
            os.replace(path, path + ".previous")  # a fresh run never destroys an old log
        if tensorboard:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(
                os.path.join(os.path.dirname(os.path.abspath(path)), TENSORBOARD_DIR),
                purge_step=None if resume_step is None else resume_step + 1,
                flush_secs=30)

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _to_json(v) for k, v in record.items()}) + "\n")
        if self._tb is not None and "step" in record:
            split = record.get("split", "train")
            for name, value in record.items():
                if name in ("step", "split") or isinstance(value, (str, bool)):
                    continue
                try:
                    value = float(value)
                except (TypeError, ValueError):
                    continue
                self._tb.add_scalar(f"{split}/{name}", value, int(record["step"]))

    def close(self) -> None:
        """Flushes and closes the TensorBoard file (the JSON lines are written at once)."""
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def _step_of(line: str) -> float:
    """A record's step; ``inf`` (dropped on resume) for a blank line or one cut short by a
    killed process."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return float("inf")
    return record.get("step", 0) if isinstance(record, dict) else float("inf")


def _to_json(value):
    try:
        return float(value) if not isinstance(value, (str, int, bool)) else value
    except (TypeError, ValueError):
        return str(value)
