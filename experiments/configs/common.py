"""The config schema shared by every experiment: sections, fields and their defaults.

A config is a ``ml_collections.ConfigDict`` with exactly the sections

* ``seed``: int; model init, batches, dequantization noise and samples derive from it.
* ``data``: ``name`` (a `jaxgen.data.SOURCES` key), that source's fields (`DATA_FIELDS`,
  documented in ``jaxgen/data/__init__.py``) and ``dequantize`` (``"none"`` or
  ``"uniform"``: continuous models see discrete levels ``x`` as ``(x + u) / K``).
* ``model``: ``name`` (an `experiments.registry.MODELS` key) and that model's fields.
* ``train``: exactly `jaxgen.training.TRAIN_DEFAULTS`.
* ``optim``: `OPTIM_DEFAULTS` (read by `jaxgen.training.optim.make_optimizer`).
* ``sampler``: ``num_samples`` drawn (and timed) after training, ``timing_repeats``.
* ``eval``: ``batch_size`` of the test/valid evaluation, ``num_plot_samples`` and
  ``plot_ncols`` of ``samples.png``.

Every field a run may read is present in the config, so ``--config.a.b=value`` can override
it and a misspelt key fails (ml_collections rejects unknown override keys; `experiments.run`
rejects unknown keys in config files).
"""
from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from jaxgen.training import TRAIN_DEFAULTS

SECTIONS = ("seed", "data", "model", "train", "optim", "sampler", "eval")
DEQUANTIZE = ("none", "uniform")


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
                 num_levels=_optional(int), download=False),
}
# Fields every data section has, read by experiments.run.
DATA_COMMON = dict(dequantize="none")

OPTIM_DEFAULTS = dict(name="adam", lr=1e-3, schedule="constant", warmup_steps=0,
                      end_lr_factor=0.0, decay_rate=0.1, b1=0.9, b2=0.999, momentum=0.0,
                      weight_decay=0.0, grad_clip_norm=0.0)
SAMPLER_DEFAULTS = dict(num_samples=100, timing_repeats=5)
EVAL_DEFAULTS = dict(batch_size=1000, num_plot_samples=64, plot_ncols=8)


def _with_overrides(section: str, defaults: dict, overrides: dict) -> ml_collections.ConfigDict:
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ConfigError(f"unknown config.{section} key(s) {unknown}; valid keys: "
                          f"{sorted(defaults)}")
    return ml_collections.ConfigDict({**defaults, **overrides})


def data_config(name: str, **fields) -> ml_collections.ConfigDict:
    """``config.data`` for source ``name``: its fields at their defaults, then ``fields``."""
    if name not in DATA_FIELDS:
        raise ConfigError(f"config.data.name={name!r} is not a data source; known: "
                          f"{sorted(DATA_FIELDS)}")
    section = _with_overrides("data", {**DATA_FIELDS[name], **DATA_COMMON}, fields)
    section.name = name
    return section


def model_config(name: str, **fields) -> ml_collections.ConfigDict:
    """``config.model`` for registered model ``name``: its defaults, then ``fields``."""
    from experiments.registry import get_spec  # deferred: the registry imports the models

    try:
        spec = get_spec(name)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    section = _with_overrides("model", spec.defaults, fields)
    section.name = name
    return section


def get_config(*, data: ml_collections.ConfigDict, model: ml_collections.ConfigDict,
               seed: int = 0, train: dict | None = None, optim: dict | None = None,
               sampler: dict | None = None, eval: dict | None = None  # noqa: A002
               ) -> ml_collections.ConfigDict:
    """A complete experiment config: every section, each field at its default or override.

    Args:
      data: from `data_config`.
      model: from `model_config`.
      seed: the run's seed.
      train, optim, sampler, eval: overrides of `TRAIN_DEFAULTS`, `OPTIM_DEFAULTS`,
        `SAMPLER_DEFAULTS`, `EVAL_DEFAULTS` (unknown keys raise `ConfigError`).
    """
    config = ml_collections.ConfigDict()
    config.seed = seed
    config.data = data
    config.model = model
    config.train = _with_overrides("train", TRAIN_DEFAULTS, train or {})
    config.optim = _with_overrides("optim", OPTIM_DEFAULTS, optim or {})
    config.sampler = _with_overrides("sampler", SAMPLER_DEFAULTS, sampler or {})
    config.eval = _with_overrides("eval", EVAL_DEFAULTS, eval or {})
    return config
