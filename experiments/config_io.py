"""Loading configs: by name, from a ``.py`` file (``get_config``), or from a run's JSON."""
from __future__ import annotations

import importlib
import importlib.util
import json
import os

import ml_collections

from experiments.schema import ConfigError


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """Loads a config by name (``"diagonal_gaussian_moons"``), ``.py`` path or ``.json``.

    A ``.py`` path may carry an argument for its ``get_config`` after a colon, as with
    ``--config`` (``experiments/configs/from_json.py:runs/x/results.json``).

    A ``.json`` file may be a workdir's ``config.json`` or ``results.json`` (whose
    ``"config"`` entry is the run's full config): every run can be reproduced from it.

    Raises:
      ConfigError: an unknown name, a missing or unreadable file (naming it).
    """
    path, _, arg = name_or_path.partition(":")
    if path.endswith(".json"):
        try:
            with open(path) as f:
                loaded = json.load(f)
        except FileNotFoundError:
            raise ConfigError(f"config file {path!r} does not exist") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {path!r} is not valid JSON ({err})") from None
        if isinstance(loaded, dict) and "environment" in loaded and "config" in loaded:
            loaded = loaded["config"]  # a results.json
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path!r} holds a {type(loaded).__name__}, not a "
                              "config object")
        return ml_collections.ConfigDict(loaded)
    if path.endswith(".py"):
        if not os.path.exists(path):
            raise ConfigError(f"config file {path!r} does not exist")
        spec = importlib.util.spec_from_file_location("_experiment_config", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(f"experiments.configs.{path}")
        except ModuleNotFoundError:
            raise ConfigError(f"no config named {path!r} in experiments/configs") from None
    return module.get_config(arg) if arg else module.get_config()


def find_unknown_key(config, dotted: str) -> str | None:
    """The first prefix of ``dotted`` (``"train.nonsense"``) that is not a key of ``config``."""
    node, path = config, []
    for part in dotted.split("."):
        path.append(part)
        if not hasattr(node, "keys") or part not in node.keys():
            return ".".join(path)
        node = node[part]
    return None
