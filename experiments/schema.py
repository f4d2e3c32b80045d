"""The one config schema: sections, fields, defaults, types, resume policy, validation.

A config is a ``ml_collections.ConfigDict`` (or a plain dict, e.g. a run's ``config.json``)
with exactly the sections

* ``seed``: int; model init, batches, dequantization noise and samples derive from it.
* ``data``: ``name`` (a `jaxgen.data.SOURCES` key), that source's fields (`DATA_FIELDS`,
  documented in ``jaxgen/data/__init__.py``) and ``dequantize`` (``"none"``,
  ``"uniform"``: continuous models see discrete levels ``x`` as ``(x + u) / K``, or
  ``"variational"``: ``u ~ q(u | x)`` learned jointly, Flow++). With ``"variational"`` the
  section also takes `VARIATIONAL_FIELDS` (the dequantizer's size and the number of
  importance samples of the reported test NLL); other sections are refused them, so the
  configs of every other run are unchanged.
* ``model``: ``name`` (an `experiments.registry.MODELS` key) and that model's fields.
* ``train``: `TRAIN_DEFAULTS` (the fields of `jaxgen.training.TrainSettings`).
* ``optim``: `OPTIM_DEFAULTS` (the fields of `jaxgen.training.OptimSettings`).
* ``sampler``: ``num_samples`` drawn (and timed) after training, ``timing_repeats``.
* ``eval``: ``batch_size`` of the test/valid evaluation, ``num_plot_samples`` and
  ``plot_ncols`` of ``samples.png``.

`validate` checks all of it once, before any compute, and turns the config into typed
`RunSettings`; nothing downstream reads a ConfigDict again.

Resume policy (one, used by the workdir check and by the training loop's checkpoint check):
a run may resume with a config that differs from its ``config.json`` only in
`RESUMABLE_KEYS` (derived from `jaxgen.training.TrainSettings.RESUMABLE`); if it differs
only in `DISPLAY_KEYS`, a finished run's stored results are returned as they are.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import ml_collections
import numpy as np
from ml_collections import config_dict

from jaxgen.data import SOURCES
from jaxgen.data.preprocessing import DEQUANTIZE
from jaxgen.training import OptimSettings, TrainSettings
from jaxgen.training.loop import differing_keys  # noqa: F401  (the one config diff)

SECTIONS = ("seed", "data", "model", "train", "optim", "sampler", "eval")


class ConfigError(ValueError):
    """A config is malformed; the message names the offending key."""


def _optional(type_):
    return config_dict.placeholder(type_)


# Fields each data source reads (see jaxgen/data/__init__.py), with their defaults.
DATA_FIELDS = {
    "digits": dict(binarize=False),
    "toy2d": dict(toy_name="moons", num_train=50_000, num_valid=10_000, num_test=10_000,
                  seed=0),
    "npz": dict(path=_optional(str), train_key="train", valid_key="valid", test_key="test",
                num_levels=_optional(int), valid_fraction=0.1, seed=0),
    "tfds": dict(tfds_name="mnist", data_dir=_optional(str), train_split="train[:90%]",
                 valid_split="train[90%:]", test_split="test", image_key="image",
                 num_levels=_optional(int), download=False, label_key="label"),
}
# Fields every data section has (``conditional``: keep the class labels, train p(x | y)).
DATA_COMMON = dict(dequantize="none", conditional=False)
# Fields of data sections with dequantize="variational" only (see
# jaxgen.flows.variational_dequantization): q(u | x)'s couplings, width, embedding width,
# and S of the importance-weighted test NLL. Dequantization is a data-section choice (what
# stands between the stored levels and the density, for any continuous model), so its
# settings sit beside it.
VARIATIONAL_FIELDS = dict(dequantizer_couplings=4, dequantizer_hidden_channels=32,
                          dequantizer_context_features=16, iw_samples=16)
# Fields that may also be None although their default is not (the loader gives None a
# meaning: ``valid_key=None`` carves the validation split from train).
NULLABLE_KEYS = ("data.valid_key",)

_NOT_IN_SECTION = ("seed", "optim")
TRAIN_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainSettings)
                  if f.name not in _NOT_IN_SECTION}
OPTIM_DEFAULTS = {f.name: f.default for f in dataclasses.fields(OptimSettings)}
SAMPLER_DEFAULTS = dict(num_samples=100, timing_repeats=5)
EVAL_DEFAULTS = dict(batch_size=1000, num_plot_samples=64, plot_ncols=8)

RESUMABLE_KEYS = tuple(f"train.{name}" for name in TrainSettings.RESUMABLE)
DISPLAY_KEYS = ("train.progress",)  # change nothing a run computes


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
    num_samples: int = 100
    timing_repeats: int = 5


@dataclasses.dataclass(frozen=True)
class EvalSettings:
    batch_size: int = 1000
    num_plot_samples: int = 64
    plot_ncols: int = 8


@dataclasses.dataclass(frozen=True)
class RunSettings:
    """A validated config, typed.

    Attributes:
      seed: the run's seed.
      data: the data section as a plain dict (`jaxgen.data.load_dataset` reads it).
      model_name: ``config.model.name``.
      model: the model's fields (read-only, attribute access; lists are tuples).
      train: the loop's settings (seed and optimizer included).
      sampler, eval: what happens after training.
      config: the whole config as JSON data (what ``config.json`` holds).
    """

    seed: int
    data: dict
    model_name: str
    model: Any
    train: TrainSettings
    sampler: SamplerSettings
    eval: EvalSettings
    config: dict


def config_to_dict(config) -> dict:
    """The config as plain JSON data (tuples become lists, placeholders ``None``)."""
    raw = config.to_dict() if hasattr(config, "to_dict") else dict(config)
    return json.loads(json.dumps(raw))


def run_id(config: dict) -> dict:
    """What a resumed run must share with its checkpoints: the config without
    `RESUMABLE_KEYS`."""
    return without_keys(config, RESUMABLE_KEYS)


def _data_defaults(data: dict) -> dict:
    """The data section's fields and defaults: its source's, the common ones and, with
    ``dequantize="variational"``, the dequantizer's."""
    defaults = {**DATA_FIELDS.get(data.get("name"), {}), **DATA_COMMON}
    if data.get("dequantize") == "variational":
        defaults.update(VARIATIONAL_FIELDS)
    return defaults


def _plain_default(value):
    """A field default as it appears in ``config.json`` (placeholders: their value, None)."""
    if isinstance(value, config_dict.FieldReference):
        value = value.get()
    return json.loads(json.dumps(value))


def section_defaults(config: dict) -> dict:
    """``{section: {field: default}}`` of a validated config's sections (the model's and the
    data source's own fields included), as ``config.json`` writes them."""
    from experiments import registry  # deferred: the registry imports every model family

    spec = registry.MODELS.get(config["model"].get("name"))
    defaults = dict(data=_data_defaults(config["data"]), model=dict(spec.defaults) if spec else {},
                    train=TRAIN_DEFAULTS, optim=OPTIM_DEFAULTS, sampler=SAMPLER_DEFAULTS,
                    eval=EVAL_DEFAULTS)
    return {section: {k: _plain_default(v) for k, v in fields.items()}
            for section, fields in defaults.items()}


def added_default_keys(stored: dict, config: dict) -> list[str]:
    """Dotted keys that ``config`` (validated, as JSON data) has, a run's stored
    ``config.json`` lacks, and whose value in ``config`` is the field's default: fields added
    to jaxgen after that run was started. A new field's default keeps the earlier behaviour,
    so the stored run is the run of ``config`` without them, and may resume."""
    defaults = section_defaults(config)
    return [f"{section}.{name}" for section, fields in defaults.items()
            if isinstance(stored.get(section), dict) and isinstance(config.get(section), dict)
            for name, default in fields.items()
            if name in config[section] and name not in stored[section]
            and config[section][name] == default]


def without_keys(config: dict, keys) -> dict:
    """A copy of ``config`` (JSON data) without the dotted ``keys``."""
    out = json.loads(json.dumps(config))
    for key in keys:
        section, _, name = key.partition(".")
        out.get(section, {}).pop(name, None)
    return out


def _check_keys(section: str | None, values: dict, allowed) -> None:
    where = "config" if section is None else f"config.{section}"
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown key(s) {[f'{where}.{k}' for k in unknown]}; "
                          f"valid keys of {where}: {sorted(allowed)}")


def _type_ok(value, expected: type) -> bool:
    if expected is bool:
        return isinstance(value, (bool, np.bool_))
    if isinstance(value, (bool, np.bool_)):
        return False
    if expected is int:
        return isinstance(value, (int, np.integer))
    if expected is float:
        return isinstance(value, (int, float, np.integer, np.floating))
    if expected is tuple:
        return isinstance(value, (tuple, list))
    return isinstance(value, expected)


def _typed(section: str, values: dict, defaults: dict) -> dict:
    """``values`` checked against the defaults' types (ints are fine where floats are
    expected, lists where tuples are: JSON has no tuples), with ``defaults`` filled in;
    ``None`` only where the default is optional (a placeholder or None)."""
    out = {}
    for key, default in defaults.items():
        if key not in values:
            out[key] = None if isinstance(default, config_dict.FieldReference) else default
            continue
        value = values[key]
        optional = (default is None or isinstance(default, config_dict.FieldReference)
                    or f"{section}.{key}" in NULLABLE_KEYS)
        expected = (default.get_type() if isinstance(default, config_dict.FieldReference)
                    else type(default))
        if not (value is None and optional or default is None):
            if value is None or not _type_ok(value, expected):
                raise ConfigError(f"config.{section}.{key}={value!r} has type "
                                  f"{type(value).__name__}, expected {expected.__name__}")
        if expected is tuple and isinstance(value, list):
            value = tuple(value)
        if expected is float and value is not None:
            value = float(value)
        out[key] = value
    return out


def _settings(section: str, cls, values: dict):
    try:
        return cls(**values)
    except ValueError as err:
        message = str(err)
        raise ConfigError(message if message.startswith("config.") else
                          f"config.{message}" if message.startswith((f"{section}.",)) else
                          f"config.{section}: {message}") from None


def _positive(section: str, values: dict) -> None:
    for key, value in values.items():
        if not value > 0:
            raise ConfigError(f"config.{section}.{key} must be positive, got {value!r}")


def as_plain_dict(config) -> dict:
    """A config (``ConfigDict``, ``FrozenConfigDict`` or dict) as nested plain dicts."""
    if isinstance(config, (ml_collections.ConfigDict, ml_collections.FrozenConfigDict)):
        return config.to_dict()
    if isinstance(config, dict):
        return {k: as_plain_dict(v) if isinstance(v, (dict, ml_collections.ConfigDict))
                else v for k, v in config.items()}
    raise ConfigError(f"a config must be a ConfigDict or a dict, got {type(config).__name__}")


def validate(config) -> RunSettings:
    """Checks every section, key, type and value a run reads, before any compute.

    Returns:
      The typed `RunSettings`.

    Raises:
      ConfigError: naming the offending key (``config.train.nonsense``) or value; for an
        ``npz`` source, also when ``config.data.path`` does not exist.
    """
    from experiments import registry  # deferred: the registry imports every model family

    if isinstance(config, RunSettings):
        return config
    raw = as_plain_dict(config)
    _check_keys(None, raw, SECTIONS)
    missing = [s for s in SECTIONS if s not in raw]
    if missing:
        raise ConfigError(f"config is missing section(s) {missing}")
    seed = raw["seed"]
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ConfigError(f"config.seed must be an int, got {seed!r}")
    for section in SECTIONS[1:]:
        if not isinstance(raw[section], dict):
            raise ConfigError(f"config.{section} must be a section (a dict), got "
                              f"{type(raw[section]).__name__}")

    data = raw["data"]
    source = data.get("name")
    if source not in SOURCES or source not in DATA_FIELDS:
        raise ConfigError(f"config.data.name={source!r} is not a data source; known: "
                          f"{sorted(SOURCES)}")
    data_defaults = _data_defaults(data)
    if data.get("dequantize") != "variational" and set(VARIATIONAL_FIELDS) & set(data):
        raise ConfigError(f"config.data.{sorted(set(VARIATIONAL_FIELDS) & set(data))[0]} is a "
                          "field of variational dequantization only, but "
                          f"config.data.dequantize={data.get('dequantize', 'none')!r}")
    _check_keys("data", data, ["name", *data_defaults])
    data = dict(_typed("data", data, data_defaults), name=source)
    if data["dequantize"] not in DEQUANTIZE:
        raise ConfigError(f"config.data.dequantize={data['dequantize']!r} is not one of "
                          f"{DEQUANTIZE}")
    if data["dequantize"] == "variational":
        _positive("data", {key: data[key] for key in VARIATIONAL_FIELDS})
    if source == "npz":
        if not data.get("path"):
            raise ConfigError("config.data.path must name the .npz file for data source 'npz'")
        if not os.path.isfile(data["path"]):
            raise ConfigError(f"config.data.path={data['path']!r}: no such file "
                              f"(absolute: {os.path.abspath(data['path'])})")

    try:
        spec = registry.get_spec(raw["model"].get("name"))
    except ValueError as err:
        raise ConfigError(str(err)) from None
    _check_keys("model", raw["model"], ["name", *spec.defaults])
    model = dict(_typed("model", raw["model"], spec.defaults), name=raw["model"]["name"])

    _check_keys("train", raw["train"], TRAIN_DEFAULTS)
    _check_keys("optim", raw["optim"], OPTIM_DEFAULTS)
    optim = _settings("optim", OptimSettings, _typed("optim", raw["optim"], OPTIM_DEFAULTS))
    train = _settings("train", TrainSettings,
                      dict(_typed("train", raw["train"], TRAIN_DEFAULTS), seed=int(seed),
                           optim=optim))
    _check_keys("sampler", raw["sampler"], SAMPLER_DEFAULTS)
    sampler = _typed("sampler", raw["sampler"], SAMPLER_DEFAULTS)
    _positive("sampler", sampler)
    _check_keys("eval", raw["eval"], EVAL_DEFAULTS)
    evaluation = _typed("eval", raw["eval"], EVAL_DEFAULTS)
    _positive("eval", evaluation)

    normalized = {"seed": int(seed), "data": data, "model": model,
                  "train": _typed("train", raw["train"], TRAIN_DEFAULTS),
                  "optim": dataclasses.asdict(optim), "sampler": sampler, "eval": evaluation}
    return RunSettings(
        seed=int(seed), data=data, model_name=model["name"],
        model=ml_collections.FrozenConfigDict(model), train=train,
        sampler=SamplerSettings(**sampler), eval=EvalSettings(**evaluation),
        config=config_to_dict(normalized))
