"""Helpers the config files use to write a complete config: every section, every field at
its default (`experiments.schema`) unless overridden.

Every field a run may read is present in the config, so ``--config.a.b=value`` can override
it and a misspelt override fails (ml_collections rejects unknown override keys). What the
config holds is checked once, by `experiments.schema.validate`, when a run starts.
"""
from __future__ import annotations

import copy

import ml_collections

from experiments import schema
from experiments.schema import ConfigError  # noqa: F401  (configs raise it)


def _section(defaults: dict, overrides: dict) -> ml_collections.ConfigDict:
    # Copies: the schema's placeholders (FieldReferences) must not be shared between
    # configs, or setting one config's field would set it in every config built later.
    return ml_collections.ConfigDict(copy.deepcopy({**defaults, **overrides}))


def data_config(name: str, **fields) -> ml_collections.ConfigDict:
    """``config.data`` for source ``name``: its fields at their defaults, then ``fields``
    (with ``dequantize="variational"`` also `experiments.schema.VARIATIONAL_FIELDS`)."""
    defaults = {**schema.DATA_FIELDS.get(name, {}), **schema.DATA_COMMON}
    if fields.get("dequantize") == "variational":  # the dequantizer's fields, overridable
        defaults.update(schema.VARIATIONAL_FIELDS)
    section = _section(defaults, fields)
    section.name = name
    return section


def model_config(name: str, **fields) -> ml_collections.ConfigDict:
    """``config.model`` for registered model ``name``: its defaults, then ``fields``."""
    from experiments.registry import MODELS  # deferred: the registry imports the models

    section = _section(MODELS[name].defaults if name in MODELS else {}, fields)
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
      train, optim, sampler, eval: overrides of `schema.TRAIN_DEFAULTS`,
        `schema.OPTIM_DEFAULTS`, `schema.SAMPLER_DEFAULTS`, `schema.EVAL_DEFAULTS`.
    """
    config = ml_collections.ConfigDict()
    config.seed = seed
    config.data = data
    config.model = model
    config.train = _section(schema.TRAIN_DEFAULTS, train or {})
    config.optim = _section(schema.OPTIM_DEFAULTS, optim or {})
    config.sampler = _section(schema.SAMPLER_DEFAULTS, sampler or {})
    config.eval = _section(schema.EVAL_DEFAULTS, eval or {})
    return config
