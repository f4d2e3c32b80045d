"""From a validated config to what a run trains: data, preprocessing, model, objective."""
from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from experiments import registry, schema
from experiments.schema import ConfigError, RunSettings
from jaxgen.data import Dataset, load_dataset
from jaxgen.data.preprocessing import Preprocessing, make_preprocessing
from jaxgen.flows.variational_dequantization import (ConditionalDequantizer,
                                                     VariationallyDequantized)
from jaxgen.training import Objective

# fold_in index of the key that dequantizes the data-dependent init inputs.
_PREPROCESS_KEY = 15


@dataclasses.dataclass
class Experiment:
    """Everything built from a config before training.

    Attributes:
      settings: the validated, typed config.
      dataset: the data as stored (discrete levels stay integers).
      preprocessing: what the model sees of it (dequantization, init data, NLL offset).
      model: the freshly initialized model (with ``config.data.dequantize="variational"``
        a `VariationallyDequantized` wrapper of the registered model and its dequantizer).
      objective: the model family's training objective.
    """

    settings: RunSettings
    dataset: Dataset
    preprocessing: Preprocessing
    model: nnx.Module
    objective: Objective


def build_experiment(config) -> Experiment:
    """Validates ``config`` (unless it is `RunSettings` already), loads the data, builds the
    preprocessing, the model and its objective (no training).

    Raises:
      ConfigError: a bad config, or a model that cannot fit the data, naming the keys.
    """
    settings = schema.validate(config)
    dataset = load_dataset(settings.data)
    dequantize = settings.data["dequantize"]
    spec = registry.get_spec(settings.model_name)
    try:
        registry.check_data_compatible(settings.model_name, dataset.num_levels, dequantize,
                                       settings.model)
        registry.check_conditional(settings.model_name, dataset.is_conditional)
        if dequantize == "variational" and spec.objective_fn is not registry.maximum_likelihood:
            raise ValueError(f"config.data.dequantize='variational' needs a normalized density "
                             f"trained by maximum likelihood; config.model.name="
                             f"{settings.model_name!r} trains by another objective")
        objective = spec.objective_fn(settings.model, settings)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    preprocessing = make_preprocessing(
        dataset, dequantize, jax.random.fold_in(jax.random.key(settings.seed), _PREPROCESS_KEY))
    rngs = nnx.Rngs(settings.seed)
    if dequantize == "variational":
        model = _variational_model(settings, spec, dataset, preprocessing, rngs)
    else:
        data = registry.ModelData(dataset.event_shape, preprocessing.model_num_levels,
                                  preprocessing.init_data, preprocessing, dataset.num_classes,
                                  dataset.train_labels)
        model = spec.build_fn(settings.model, data, rngs)
    return Experiment(settings, dataset, preprocessing, model, objective)


def _variational_model(settings, spec, dataset, preprocessing, rngs) -> nnx.Module:
    """The registered (continuous) model as the density on ``[0, 1)^D``, initialized on the
    uniformly dequantized training data, wrapped with ``q(u | x)``: the model of the integer
    levels that trains and evaluates (`VariationallyDequantized`)."""
    data = registry.ModelData(dataset.event_shape, None, preprocessing.density_init_data,
                              preprocessing, dataset.num_classes, dataset.train_labels)
    density = spec.build_fn(settings.model, data, rngs)
    fields = settings.data
    try:
        dequantizer = ConditionalDequantizer(
            dataset.event_shape, dataset.num_levels,
            num_couplings=fields["dequantizer_couplings"],
            hidden_channels=fields["dequantizer_hidden_channels"],
            context_features=fields["dequantizer_context_features"], rngs=rngs)
    except ValueError as err:
        raise ConfigError(f"config.data.dequantize='variational': {err}") from None
    return VariationallyDequantized(density, dequantizer, dataset.num_levels)
