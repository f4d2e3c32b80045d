"""Workdir safety: a workdir holds one run; another config's files are never touched.

``check_workdir`` decides, from the workdir's ``config.json``, whether a run is new, resumes
(same config up to `experiments.schema.RESUMABLE_KEYS`) or is already complete (same config
up to `experiments.schema.DISPLAY_KEYS`, ``results.json`` present).
"""
from __future__ import annotations

import json
import os
from typing import NamedTuple

from experiments import schema


class WorkdirError(RuntimeError):
    """The workdir holds files of another run (nothing was changed)."""


class WorkdirStatus(NamedTuple):
    """``kind``: ``"new"``, ``"resume"`` or ``"complete"``; ``results``: the stored
    ``results.json`` of a complete run (else None)."""

    kind: str
    results: dict | None = None
    # config keys the stored run predates (fields added since, at their defaults,
    # `schema.added_default_keys`): left out of what a resume records and checks
    added: tuple = ()


def write_json(path: str, obj) -> None:
    """Writes atomically: a reader never sees half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def _read_json(path: str) -> dict:
    """A workdir's JSON record (``config.json``, ``results.json``) as a dict.

    Raises:
      WorkdirError: the file cannot be read, is not valid JSON (truncated by a full disk or
        an interrupted copy) or holds no JSON object; naming the file and what to do. The
        file is left as it is.
    """
    advice = ("it was left as it is: move it away (or restore it from the run's other "
              "record: results.json embeds the config) or choose a new --workdir")
    try:
        with open(path, "rb") as f:
            loaded = json.loads(f.read().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise WorkdirError(f"{path} is not valid JSON ({err}): truncated or corrupt; "
                           f"{advice}") from None
    except OSError as err:
        raise WorkdirError(f"{path} could not be read ({type(err).__name__}: {err}); "
                           f"{advice}") from None
    if not isinstance(loaded, dict):
        raise WorkdirError(f"{path} holds a JSON {type(loaded).__name__}, not the object a "
                           f"run writes; {advice}")
    return loaded


def check_workdir(workdir: str, config: dict) -> WorkdirStatus:
    """Refuses a workdir holding another config's run; says whether to start, resume or
    return stored results.

    Raises:
      WorkdirError: the workdir's ``config.json`` differs from ``config`` in keys other than
        `schema.RESUMABLE_KEYS` (a key it lacks counts as equal when ``config`` holds that
        field's default: a field added since the run started), or it holds run files but no ``config.json``, or its
        ``config.json`` or ``results.json`` is unreadable or corrupt (`_read_json`).
    """
    config_path = os.path.join(workdir, "config.json")
    if not os.path.exists(config_path):
        leftovers = [name for name in ("results.json", "metrics.jsonl", "checkpoints")
                     if os.path.exists(os.path.join(workdir, name))]
        if leftovers:
            raise WorkdirError(f"workdir {workdir} holds {leftovers} but no config.json; "
                               "refusing to mix runs (choose a new --workdir)")
        return WorkdirStatus("new")
    stored = _read_json(config_path)
    added = tuple(schema.added_default_keys(stored, config))
    changed = schema.differing_keys(stored, schema.without_keys(config, added))
    fixed = [k for k in changed if k not in schema.RESUMABLE_KEYS]
    if fixed:
        raise WorkdirError(
            f"workdir {workdir} holds a run of a different config (differing keys: "
            f"{', '.join('config.' + k for k in fixed)}); choose a new --workdir. "
            "Nothing was changed.")
    results_path = os.path.join(workdir, "results.json")
    if os.path.exists(results_path) and all(k in schema.DISPLAY_KEYS for k in changed):
        return WorkdirStatus("complete", _read_json(results_path), added)
    return WorkdirStatus("resume", None, added)


def archive_results(workdir: str) -> str | None:
    """Renames an existing ``results.json`` to ``results-step<N>.json`` (its train steps)
    before a resumed run writes a new one; returns the new name, or None."""
    path = os.path.join(workdir, "results.json")
    if not os.path.exists(path):
        return None
    steps = _read_json(path).get("train_steps", "unknown")
    target = os.path.join(workdir, f"results-step{steps}.json")
    os.replace(path, target)
    return target


def last_logged_steps_per_s(workdir: str) -> float:
    """Throughput recorded by an earlier process (when this one had nothing to train)."""
    rate = 0.0
    path = os.path.join(workdir, "metrics.jsonl")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut short by a killed process
                if not isinstance(record, dict):
                    continue
                if record.get("split") == "train" and record.get("steps_per_s"):
                    rate = float(record["steps_per_s"])
    return rate


def read_metrics(workdir: str) -> list[dict]:
    """The records of ``metrics.jsonl`` (a line cut short by a killed process is skipped)."""
    path = os.path.join(workdir, "metrics.jsonl")
    records = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
    return records
