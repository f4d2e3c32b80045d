"""Command line: ``python -m experiments.main --config CONFIG.py --workdir DIR [overrides]``.

Flags only; the run itself is `experiments.run.run_experiment`. Any config leaf can be
overridden, e.g. ``--config.train.num_steps=200 --config.optim.lr=3e-4``; an unknown key
(``--config.train.nonsense=1``) or a value of the wrong type stops before anything runs.
Values are read as the schema's types: ``--config.data.valid_key=None`` (or ``none``,
``null``) sets None, for any key (the schema then says whether None is allowed there);
``true``/``false`` are bools, and numbers are numbers even where the config file holds
None or an int where the schema expects a float (`experiments.config_io.parse_value`).
``--list`` prints the shipped configs, one line each. Examples::

    python -m experiments.main --config experiments/configs/diagonal_gaussian_moons.py \\
        --workdir runs/moons
    # Re-run a finished run from its record (the part after ':' is the JSON file):
    python -m experiments.main --config experiments/configs/from_json.py:runs/moons/results.json \\
        --workdir runs/moons_again
"""
from __future__ import annotations

import os
import re
import sys
from typing import NamedTuple

import ml_collections
from absl import app, flags
from ml_collections import config_flags

from experiments.config_io import (NULL_LITERALS, check_config_file, expected_type,
                                   find_unknown_key, get_value, load_config, parse_value,
                                   set_value)
from experiments.run import quiet_library_logs, run_experiment
from experiments.schema import ConfigError
from experiments.workdir import WorkdirError
from jaxgen.data.dataset import DataFileError
from jaxgen.training import TrainingInterrupted
from jaxgen.training.checkpoint import CheckpointError
from jaxgen.training.sharding import initialize_distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, e.g. experiments/configs/NAME.py.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory of the run.")
flags.mark_flags_as_required(["config", "workdir"])
# One process of a multi-process run (`jax.distributed`); default: the environment's
# JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID (what experiments.launch
# sets), or a cluster jax.distributed detects when JAXGEN_DISTRIBUTED=1 (docs/SCALING.md).
_COORDINATOR = flags.DEFINE_string(
    "coordinator_address", None, "host:port of process 0's coordinator (multi-process runs).")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run.")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index, 0-based.")

_OVERRIDE = re.compile(r"^--?config\.([\w.]+)")
_OVERRIDE_VALUE = re.compile(r"^--?config\.([\w.]+)=(.*)$", re.DOTALL)
_FATAL = "FATAL Flags parsing error: "


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(("--config=", "-config=")):
            return arg.split("=", 1)[1]
        if arg in ("--config", "-config") and i + 1 < len(argv):
            return argv[i + 1]
    return None


class _Override(NamedTuple):
    """One ``--config.KEY=VALUE`` on the command line: ``argv[start:stop]``."""

    key: str
    text: str
    start: int
    stop: int
    deferred: bool  # parsed by `parse_flags` after absl, not by ml_collections


def _field_type(config, key: str) -> type | None:
    """The type ml_collections parses ``--config.KEY`` values as: that of the config's
    field (a placeholder's declared type, ``NoneType`` for a None field)."""
    parent, _, last = key.rpartition(".")
    node = get_value(config, parent) if parent else config
    return node.get_type(last) if isinstance(node, ml_collections.ConfigDict) else None


def _overrides(argv: list[str], config) -> list[_Override]:
    """Every ``--config.KEY=VALUE`` (or ``--config.KEY None``) of ``argv``, marking those
    ml_collections cannot read as the schema means them: None literals, and keys whose
    config value has another type than the schema's (None in a config from JSON, an int
    where a float is expected)."""
    found, i = [], 0
    while i < len(argv):
        match = _OVERRIDE_VALUE.match(argv[i])
        if match:
            key, text, stop = match[1], match[2], i + 1
        elif (_OVERRIDE.match(argv[i]) and "=" not in argv[i] and i + 1 < len(argv)
              and argv[i + 1] in NULL_LITERALS):
            key, text, stop = _OVERRIDE.match(argv[i])[1], argv[i + 1], i + 2
        else:
            i += 1
            continue
        deferred = text in NULL_LITERALS
        if not deferred and config is not None and find_unknown_key(config, key) is None:
            expected, current = expected_type(config, key), _field_type(config, key)
            deferred = (expected is not None and current is not None
                        and not issubclass(current, ml_collections.ConfigDict)
                        and current is not expected)
        found.append(_Override(key, text, i, stop, deferred))
        i = stop
    return found


def _split_overrides(argv: list[str], config, defer_data: bool = False
                     ) -> tuple[list[str], dict[str, str]]:
    """``argv`` without the deferred overrides, and those as ``{key: text}``. The last
    occurrence of a key wins, as with absl: a deferred one removes every earlier one of its
    key, and a later ordinary one drops the earlier deferred ones. ``defer_data``: every
    ``data.*`` override is deferred (the data source changes, see `_new_data_source`)."""
    overrides = _overrides(argv, config)
    if defer_data:
        overrides = [o._replace(deferred=True) if o.key.startswith("data.") else o
                     for o in overrides]
    last = {o.key: o for o in overrides}
    drop = {i for o in overrides if o.deferred or last[o.key].deferred
            for i in range(o.start, o.stop)}
    deferred = {key: o.text for key, o in last.items() if o.deferred}
    return [arg for i, arg in enumerate(argv) if i not in drop], deferred


def _exit_unknown_key(config, unknown: str, arg: str):
    parent = unknown.rpartition(".")[0]
    node = config
    for part in filter(None, parent.split(".")):
        node = node[part]
    sys.exit(f"{_FATAL}unknown config key 'config.{unknown}' in {arg!r}; valid keys of "
             f"config{'.' + parent if parent else ''}: {sorted(node.keys())}")


def _preload(path: str | None):
    """The ``--config`` config, loaded before absl does, or None.

    A missing file, a config that cannot load for a reason `load_config` names (a missing
    JSON record behind ``from_json.py``) stop here with that message; other errors are left
    to absl, which reports them with their traceback.
    """
    if path is None:
        return None
    file = path.partition(":")[0]
    try:
        check_config_file(file)
        return load_config(path) if file.endswith(".py") else None
    except ConfigError as err:
        sys.exit(f"{_FATAL}--config={path}: {err}")
    except Exception:  # noqa: BLE001  (absl reports it with the traceback)
        return None


def list_configs() -> str:
    """One line per shipped config: its name and its docstring's first line (read without
    importing the file)."""
    import ast

    from experiments.config_io import CONFIG_DIR, known_config_names
    lines = []
    for name in known_config_names():
        with open(os.path.join(CONFIG_DIR, f"{name}.py")) as f:
            doc = ast.get_docstring(ast.parse(f.read())) or ""
        lines.append(f"{name:40s} {doc.strip().splitlines()[0] if doc.strip() else ''}")
    return ("configs (--config experiments/configs/NAME.py; any leaf can be overridden, e.g. "
            "--config.train.num_steps=200):\n" + "\n".join(lines))


def _new_data_source(argv: list[str], config) -> str | None:
    """The ``--config.data.name=SOURCE`` of ``argv`` when it names another source than the
    config file's (the last occurrence wins), else None."""
    source = None
    for o in _overrides(argv, None):
        if o.key == "data.name":
            source = o.text.strip("'\"")
    current = None
    if config is not None and "data" in config and "name" in config.data:
        current = config.data.name
    return source if source is not None and source != current else None


def _with_data_source(config, source: str):
    """Replaces ``config.data`` by source ``source``'s section at its defaults, keeping the
    fields every data section has (``dequantize``): own data with any shipped config,
    ``--config.data.name=npz --config.data.path=FILE``."""
    from experiments import schema
    from experiments.configs.common import data_config
    if source not in schema.DATA_FIELDS:
        sys.exit(f"{_FATAL}--config.data.name={source}: unknown data source; known: "
                 f"{sorted(schema.DATA_FIELDS)}")
    kept = {k: config.data[k] for k in schema.DATA_COMMON if k in config.data}
    with config.unlocked():
        config.data = data_config(source, **kept)
    return config


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, with clear messages for a missing ``--config`` file and unknown
    ``--config.KEY`` overrides, and values read as the schema's types.

    ml_collections rejects unknown keys with a bare ``AttributeError: 'KEY'``; this names
    the full key and lists the valid ones at that level. It reads a value by the type the
    config file happens to hold, so ``None`` would arrive as the string ``'None'`` and a
    field that is None in the file could not be overridden at all; those overrides are
    parsed here, by the schema's type (`experiments.config_io.parse_value`), after absl.
    """
    if "--list" in argv[1:] or "-list" in argv[1:]:
        print(list_configs())
        sys.exit(0)
    path = _config_path(argv)
    preloaded = _preload(path)
    source = _new_data_source(argv, preloaded)
    if source is not None:
        preloaded = _with_data_source(preloaded, source)
    kept, deferred = _split_overrides(argv, preloaded, defer_data=source is not None)
    saved_argv = sys.argv
    sys.argv = kept  # ml_collections finds the overrides in sys.argv, not in its argument
    try:
        remaining = app.parse_flags_with_usage(kept)
    except (AttributeError, KeyError) as err:
        config = preloaded if preloaded is not None else (load_config(path) if path else None)
        for arg in argv:
            match = _OVERRIDE.match(arg)
            unknown = match and config is not None and find_unknown_key(config, match[1])
            if unknown:
                _exit_unknown_key(config, unknown, arg)
        raise err
    finally:
        sys.argv = saved_argv
    config = _CONFIG.value
    if not isinstance(config, (ml_collections.ConfigDict, dict)):
        error = getattr(config, "_error", None)  # ml_collections defers a file's IOError
        sys.exit(f"{_FATAL}--config={path}: the config could not be loaded"
                 + (f" ({type(error).__name__}: {error})" if error else
                    f" (get_config() returned a {type(config).__name__})"))
    if source is not None:
        _with_data_source(config, source)
    for key, text in deferred.items():
        unknown = find_unknown_key(config, key)
        if unknown:
            _exit_unknown_key(config, unknown, f"--config.{key}={text}")
        try:
            set_value(config, key, parse_value(key, text, expected_type(config, key)))
        except ConfigError as err:
            sys.exit(f"{_FATAL}{err}")
    return remaining


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    try:  # multi-process runs join before any device is touched
        initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
    except ValueError as err:
        sys.exit(f"error: {err}")
    try:
        run_experiment(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, WorkdirError, DataFileError, CheckpointError) as err:
        sys.exit(f"error: {err}")
    except TrainingInterrupted as stop:  # SIGINT/SIGTERM: checkpointed, one line, 128 + signum
        print(f"{stop}", file=sys.stderr)
        sys.stderr.flush()
        os._exit(stop.exit_code)  # skip interpreter teardown: nothing is left to write


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
