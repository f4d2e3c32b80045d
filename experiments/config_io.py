"""Loading configs: by name, from a ``.py`` file (``get_config``), or from a run's JSON; and
reading command-line values with the types the schema expects (`parse_value`)."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os

import ml_collections
from ml_collections import config_dict

from experiments.schema import ConfigError

NULL_LITERALS = ("None", "none", "null", "Null", "NULL")
_TRUE, _FALSE = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def load_config(name_or_path: str) -> ml_collections.ConfigDict:
    """Loads a config by name (``"diagonal_gaussian_moons"``), ``.py`` path or ``.json``.

    A ``.py`` path may carry an argument for its ``get_config`` after a colon, as with
    ``--config`` (``experiments/configs/from_json.py:runs/x/results.json``).

    A ``.json`` file may be a workdir's ``config.json`` or ``results.json`` (whose
    ``"config"`` entry is the run's full config): every run can be reproduced from it.

    Raises:
      ConfigError: an unknown name, a missing, unreadable or corrupt file, a ``.py`` file
        without ``get_config`` or whose ``get_config`` returns nothing (naming the file).
    """
    path, _, arg = name_or_path.partition(":")
    if path.endswith(".json"):
        return _load_json(path)
    if path.endswith(".py"):
        check_config_file(path)
        spec = importlib.util.spec_from_file_location("_experiment_config", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(f"experiments.configs.{path}")
        except ModuleNotFoundError:
            raise ConfigError(f"no config named {path!r} in experiments/configs; known: "
                              f"{known_config_names()}") from None
    if not callable(getattr(module, "get_config", None)):
        raise ConfigError(f"config file {path!r} defines no get_config() function")
    config = module.get_config(arg) if arg else module.get_config()
    if config is None:
        raise ConfigError(f"get_config() of {path!r} returned None (a missing return?)")
    return config


def _load_json(path: str) -> ml_collections.ConfigDict:
    """A config from a workdir's ``config.json`` or ``results.json``."""
    try:
        with open(path, "rb") as f:
            loaded = json.loads(f.read().decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path!r} does not exist (absolute: "
                          f"{os.path.abspath(path)})") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path!r} is a directory; pass its config.json or "
                          "results.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"config file {path!r} is not valid JSON ({err}): it is truncated "
                          "or corrupt; use the run's other record (config.json or "
                          "results.json) or the original config file") from None
    except OSError as err:
        raise ConfigError(f"config file {path!r} could not be read ({err})") from None
    if isinstance(loaded, dict) and "environment" in loaded and "config" in loaded:
        loaded = loaded["config"]  # a results.json
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path!r} holds a {type(loaded).__name__}, not a "
                          "config object")
    return ml_collections.ConfigDict(loaded)


def known_config_names() -> list[str]:
    """The config names under ``experiments/configs`` (what ``load_config`` accepts)."""
    return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                  if f.endswith(".py") and not f.startswith("_")
                  and f not in ("__init__.py", "common.py", "from_json.py"))


def check_config_file(path: str) -> None:
    """Checks a ``--config`` file exists, with a message that says what to pass instead.

    Raises:
      ConfigError: naming the path (and the absolute path); for a bare config name it
        points to ``experiments/configs/NAME.py``, for a ``.json`` to ``from_json.py``.
    """
    if os.path.isfile(path):
        return
    hint = (" (a directory)" if os.path.isdir(path) else
            f" (absolute: {os.path.abspath(path)})")
    name = os.path.splitext(os.path.basename(path))[0]
    if path.endswith(".json"):
        advice = (f"a run's record is passed as --config "
                  f"experiments/configs/from_json.py:{path}, and must exist")
    elif os.path.isfile(os.path.join(CONFIG_DIR, f"{name}.py")):
        advice = f"did you mean experiments/configs/{name}.py?"
    else:
        advice = ("pass an existing config file, e.g. "
                  "experiments/configs/diagonal_gaussian_moons.py (ls experiments/configs "
                  "lists them)")
    raise ConfigError(f"config file {path!r} does not exist{hint}; {advice}")


def find_unknown_key(config, dotted: str) -> str | None:
    """The first prefix of ``dotted`` (``"train.nonsense"``) that is not a key of ``config``."""
    node, path = config, []
    for part in dotted.split("."):
        path.append(part)
        if not hasattr(node, "keys") or part not in node.keys():
            return ".".join(path)
        node = node[part]
    return None


def get_value(config, dotted: str):
    """``config.a.b`` for ``dotted="a.b"`` (the key must exist)."""
    node = config
    for part in dotted.split("."):
        node = node[part]
    return node


def set_value(config, dotted: str, value) -> None:
    """Sets ``config.a.b = value``, whatever the type the field held before.

    A ``ConfigDict`` refuses to change a field's type (``int`` -> ``float``), except from
    or to ``None``; going through ``None`` lets the schema's type win over the config
    file's (the schema checks the value afterwards).
    """
    parent, _, last = dotted.rpartition(".")
    node = get_value(config, parent) if parent else config
    current = node[last]
    if (value is not None and current is not None and type(current) is not type(value)
            and not isinstance(current, ml_collections.ConfigDict)):
        node[last] = None
    node[last] = value


def expected_type(config, dotted: str) -> type | None:
    """The type the schema gives a config key (``"optim.lr"`` -> float), or None if the
    schema does not say (an unknown section, model or source, or a None default)."""
    from experiments import schema

    section, _, key = dotted.partition(".")
    if section == "seed" and not key:
        return int
    defaults: dict = {}
    try:
        if section == "data":
            source = get_value(config, "data.name")
            defaults = {**schema.DATA_FIELDS.get(source, {}), **schema.DATA_COMMON}
        elif section == "model":
            from experiments import registry  # deferred: it imports every model family
            name = get_value(config, "model.name")
            defaults = registry.MODELS[name].defaults if name in registry.MODELS else {}
        else:
            defaults = {"train": schema.TRAIN_DEFAULTS, "optim": schema.OPTIM_DEFAULTS,
                        "sampler": schema.SAMPLER_DEFAULTS,
                        "eval": schema.EVAL_DEFAULTS}.get(section, {})
    except (KeyError, AttributeError, TypeError):
        return None
    if key not in defaults:
        return None
    default = defaults[key]
    if isinstance(default, config_dict.FieldReference):
        return default.get_type()
    return None if default is None else type(default)


def parse_value(dotted: str, text: str, expected: type | None):
    """A command-line value as the schema's type: ``None`` literals (`NULL_LITERALS`) are
    None for any key; ``true``/``false``/``yes``/``no``/``1``/``0`` for bools; numbers for
    ints and floats; a Python literal for tuples; anything else (or no known type) as
    ml_collections reads it (a Python literal, else the string).

    Raises:
      ConfigError: the text is not a value of the expected type (naming the key).
    """
    if text in NULL_LITERALS:
        return None
    try:
        if expected is bool:
            lowered = text.lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError
        if expected is int:
            return int(text)
        if expected is float:
            return float(text)
        if expected is str:
            return text
        if expected is tuple:
            value = ast.literal_eval(text)
            if not isinstance(value, (tuple, list)):
                raise ValueError
            return tuple(value)
    except (ValueError, SyntaxError):
        raise ConfigError(f"--config.{dotted}={text!r}: config.{dotted} expects "
                          f"{expected.__name__}" + (" (true or false)" if expected is bool
                                                    else "") + ", or None where allowed"
                          ) from None
    try:
        return ast.literal_eval(text.capitalize() if text in ("true", "false") else text)
    except (ValueError, SyntaxError):
        return text
