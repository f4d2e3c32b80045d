"""Command line: ``python -m experiments.main --config CONFIG.py --workdir DIR [overrides]``.

Flags only; the run itself is `experiments.run.run_experiment`. Any config leaf can be
overridden, e.g. ``--config.train.num_steps=200 --config.optim.lr=3e-4``; an unknown key
(``--config.train.nonsense=1``) or a value of the wrong type stops before anything runs.
Examples::

    python -m experiments.main --config experiments/configs/diagonal_gaussian_moons.py \\
        --workdir runs/moons
    # Re-run a finished run from its record (the part after ':' is the JSON file):
    python -m experiments.main --config experiments/configs/from_json.py:runs/moons/results.json \\
        --workdir runs/moons_again
"""
from __future__ import annotations

import re
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments.config_io import find_unknown_key, load_config
from experiments.run import quiet_library_logs, run_experiment
from experiments.schema import ConfigError
from experiments.workdir import WorkdirError
from jaxgen.training.sharding import maybe_initialize_distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file, e.g. experiments/configs/NAME.py.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory of the run.")
flags.mark_flags_as_required(["config", "workdir"])

_OVERRIDE = re.compile(r"^--?config\.([\w.]+)")


def _config_path(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith(("--config=", "-config=")):
            return arg.split("=", 1)[1]
        if arg in ("--config", "-config") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def parse_flags(argv: list[str]) -> list[str]:
    """absl flag parsing, with a clear message for unknown ``--config.KEY`` overrides.

    ml_collections rejects them with a bare ``AttributeError: 'KEY'``; this names the full
    key and lists the valid ones at that level.
    """
    try:
        return app.parse_flags_with_usage(argv)
    except (AttributeError, KeyError) as err:
        path = _config_path(argv)
        config = load_config(path) if path else None
        for arg in argv:
            match = _OVERRIDE.match(arg)
            unknown = match and config is not None and find_unknown_key(config, match[1])
            if unknown:
                parent = unknown.rpartition(".")[0]
                node = config
                for part in filter(None, parent.split(".")):
                    node = node[part]
                sys.exit(f"FATAL Flags parsing error: unknown config key 'config.{unknown}' "
                         f"in {arg!r}; valid keys of config{'.' + parent if parent else ''}: "
                         f"{sorted(node.keys())}")
        raise err


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    quiet_library_logs()
    maybe_initialize_distributed()  # multi-host launches: before any device is touched
    try:
        run_experiment(_CONFIG.value, _WORKDIR.value)
    except (ConfigError, WorkdirError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
