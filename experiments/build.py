"""From a validated config to what a run trains: data, preprocessing, model, objective."""
from __future__ import annotations

import dataclasses

import jax
from flax import nnx

from experiments import registry, schema
from experiments.schema import ConfigError, RunSettings
from jaxgen.data import Dataset, load_dataset
from jaxgen.data.preprocessing import Preprocessing, make_preprocessing
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
      model: the freshly initialized model.
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
        registry.check_data_compatible(settings.model_name, dataset.num_levels, dequantize)
        registry.check_conditional(settings.model_name, dataset.is_conditional)
        objective = spec.objective_fn(settings.model, settings)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    preprocessing = make_preprocessing(
        dataset, dequantize, jax.random.fold_in(jax.random.key(settings.seed), _PREPROCESS_KEY))
    data = registry.ModelData(dataset.event_shape, preprocessing.model_num_levels,
                              preprocessing.init_data, preprocessing, dataset.num_classes,
                              dataset.train_labels)
    model = spec.build_fn(settings.model, data, nnx.Rngs(settings.seed))
    return Experiment(settings, dataset, preprocessing, model, objective)
