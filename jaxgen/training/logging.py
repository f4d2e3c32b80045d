"""metrics.jsonl writer (append-only, truncated to the restored step on resume)."""
from __future__ import annotations

import json
import os


class MetricsWriter:
    """One JSON object per line: ``{"step": ..., "split": "train"|"valid", ...}``."""

    def __init__(self, path: str | None, *, resume_step: int | None = None):
        self.path = path
        if path is None:
            return
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        if resume_step is not None and os.path.exists(path):
            # Lines written after the checkpoint we resume from are replayed by this run.
            with open(path) as f:
                kept = [line for line in f if line.strip()
                        and json.loads(line).get("step", 0) <= resume_step]
            with open(path, "w") as f:
                f.writelines(kept)
        elif resume_step is None and os.path.exists(path):
            os.replace(path, path + ".previous")  # a fresh run never destroys an old log

    def write(self, record: dict) -> None:
        if self.path is None:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({k: _to_json(v) for k, v in record.items()}) + "\n")


def _to_json(value):
    try:
        return float(value) if not isinstance(value, (str, int, bool)) else value
    except (TypeError, ValueError):
        return str(value)
