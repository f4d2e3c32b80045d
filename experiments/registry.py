"""Model registry: ``config.model.name`` -> how to build the model and how it trains.

Each entry (`ModelSpec`) says which data its ``log_prob`` accepts, which ``config.model``
fields it reads (with their defaults; validation rejects any other field), how to build the
model, and which training objective it uses: ``objective_fn(model_fields, settings) ->
jaxgen.training.Objective`` (default: `maximum_likelihood`, the mean NLL). A new family adds
itself with::

    @register("made", data_kind="discrete", objective_fn=made_objective, hidden_sizes=(500,))
    def _made(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
        return MADE(data.event_shape, data.num_levels, tuple(mc.hidden_sizes), rngs=rngs)
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import numpy as np
from flax import nnx

from jaxgen.baselines import DiagonalGaussian, FactorizedBernoulli, FactorizedCategorical
from jaxgen.data.preprocessing import Preprocessing
from jaxgen.training import MaximumLikelihood, Objective

# What a model's log_prob accepts:
#   "discrete":   integer levels 0..num_levels-1;
#   "binary":     integer levels in {0, 1};
#   "continuous": floats; discrete data are seen through uniform dequantization.
DATA_KINDS = ("discrete", "binary", "continuous")


class ModelData(NamedTuple):
    """The data as the model sees it (after preprocessing), for building it.

    Attributes:
      event_shape: shape of one example.
      num_levels: levels of the model's discrete inputs, ``None`` for float inputs.
      train: ``[N, *event_shape]`` training inputs as the model sees them
        (``preprocessing.init_data``), for data-dependent initialization.
      preprocessing: the run's `Preprocessing` (``preprocessing.dequantized``: the inputs are
        dequantized levels in ``[0, 1)``, so a flow starts with a logit layer).
      num_classes: classes of a conditional data set (``config.data.conditional``): build
        ``p(x | y)``; ``None`` for an unconditional model.
      train_labels: ``[N]`` labels of ``train`` (conditional), else ``None``.
    """

    event_shape: tuple[int, ...]
    num_levels: int | None
    train: np.ndarray
    preprocessing: Preprocessing
    num_classes: int | None = None
    train_labels: np.ndarray | None = None


def maximum_likelihood(model_fields, settings) -> Objective:
    """The default objective: mean negative log-likelihood."""
    del model_fields, settings
    return MaximumLikelihood()


class ModelSpec(NamedTuple):
    """A registry entry.

    Attributes:
      build_fn: ``build_fn(model_fields, data: ModelData, rngs) -> model``.
      data_kind: one of `DATA_KINDS`.
      defaults: the ``config.model`` fields and their defaults.
      description: first line of the builder's docstring.
      objective_fn: ``objective_fn(model_fields, settings: RunSettings) -> Objective``.
      conditional: the model can be built class-conditional (``data.num_classes``) and
        takes ``log_prob(x, context=labels)``.
      data_kind_fn: ``data_kind_fn(model_fields) -> kind`` for a model whose data kind
        depends on its config (an autoregressive model's ``head``: discrete levels or real
        values); ``None``: always ``data_kind``.
    """

    build_fn: Callable[[Any, ModelData, nnx.Rngs], nnx.Module]
    data_kind: str
    defaults: dict
    description: str
    objective_fn: Callable[[Any, Any], Objective] = maximum_likelihood
    conditional: bool = False
    data_kind_fn: Callable[[Any], str] | None = None

    def kind_of(self, model_fields=None) -> str:
        """The data kind of the model built from ``model_fields`` (``None``: the default)."""
        if self.data_kind_fn is None or model_fields is None:
            return self.data_kind
        return self.data_kind_fn(model_fields)


MODELS: dict[str, ModelSpec] = {}


def register(name: str, *, data_kind: str, objective_fn: Callable = maximum_likelihood,
             conditional: bool = False, data_kind_fn: Callable | None = None, **defaults):
    """Decorator adding ``build_fn`` to `MODELS` under ``name`` with its config defaults
    and its training objective (``data_kind``: the kind with the default fields;
    ``data_kind_fn(model_fields)``: the kind for a given config, see `ModelSpec`)."""
    if data_kind not in DATA_KINDS:
        raise ValueError(f"data_kind must be one of {DATA_KINDS}, got {data_kind!r}")

    def add(build_fn):
        if name in MODELS:
            raise ValueError(f"model {name!r} is already registered")
        doc = (build_fn.__doc__ or "").strip().splitlines()
        MODELS[name] = ModelSpec(build_fn, data_kind, dict(defaults), doc[0] if doc else "",
                                 objective_fn, bool(conditional), data_kind_fn)
        return build_fn

    return add


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"config.model.name={name!r} is not a registered model; "
                         f"known models: {sorted(MODELS)}")
    return MODELS[name]


def check_conditional(name: str, conditional: bool) -> None:
    """Raises ValueError when ``config.data.conditional`` asks model ``name`` for
    ``p(x | y)`` and it has no context input (naming the models that do)."""
    if conditional and not get_spec(name).conditional:
        takers = sorted(n for n, spec in MODELS.items() if spec.conditional)
        raise ValueError(f"config.data.conditional=True but config.model.name={name!r} takes "
                         f"no context; conditional models: {takers} (or set "
                         "config.data.conditional=False)")


def check_data_compatible(name: str, num_levels: int | None, dequantize: str,
                          model_fields=None) -> None:
    """Raises ValueError, naming the config keys, if model ``name`` cannot fit the data.

    Args:
      name: registered model name.
      num_levels: the data set's ``num_levels`` (None for continuous data).
      dequantize: ``config.data.dequantize``.
      model_fields: ``config.model`` (its ``head`` decides the data kind of an
        autoregressive model, `ModelSpec.kind_of`); ``None``: the registered default kind.
    """
    spec = get_spec(name)
    kind = spec.kind_of(model_fields)
    data = "continuous data" if num_levels is None else f"discrete data ({num_levels} levels)"
    head = None if model_fields is None else model_fields.get("head")
    if spec.data_kind_fn is not None and head is not None:
        if kind == "continuous" and num_levels is not None and dequantize == "none":
            raise ValueError(
                f"config.model.head={head!r} is a density over real values but the data are "
                f"{data}: use a discrete head (config.model.head='auto') or set "
                "config.data.dequantize='uniform'")
        if kind != "continuous" and (num_levels is None or dequantize != "none"):
            raise ValueError(
                f"config.model.name={name!r} with config.model.head={head!r} models discrete "
                f"levels but the model would see "
                f"{data if dequantize == 'none' else 'dequantized floats'}; set "
                f"config.model.head to a continuous head {_continuous_heads()}"
                + ("" if dequantize == "none" else " or config.data.dequantize='none'"))
    if kind == "continuous":
        if num_levels is not None and dequantize == "none":
            raise ValueError(f"config.model.name={name!r} is a continuous model but the data "
                             f"are {data}: set config.data.dequantize='uniform'")
        if num_levels is None and dequantize != "none":
            raise ValueError(f"config.data.dequantize={dequantize!r} needs discrete data, got "
                             "continuous data: set config.data.dequantize='none'")
        return
    if num_levels is None or dequantize != "none":
        raise ValueError(f"config.model.name={name!r} models discrete levels but the model "
                         f"would see {data if dequantize == 'none' else 'dequantized floats'}"
                         + ("; set config.data.dequantize='none'" if dequantize != "none"
                            else ""))
    if kind == "binary" and num_levels != 2:
        raise ValueError(f"config.model.name={name!r} needs binary data but the data have "
                         f"{num_levels} levels (for digits set config.data.binarize=True)")


def _continuous_heads() -> tuple[str, ...]:
    from jaxgen.autoregressive.continuous_heads import CONTINUOUS_HEADS
    return CONTINUOUS_HEADS


# ------------------------------------------------------------------------------------------
# Baselines.


@register("factorized_categorical", data_kind="discrete", init_from_counts=False,
          pseudocount=1.0)
def _factorized_categorical(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """One categorical per dimension; ``init_from_counts`` starts at the smoothed MLE."""
    if model_config.init_from_counts:
        return FactorizedCategorical.from_counts(data.train, data.num_levels,
                                                 float(model_config.pseudocount), rngs=rngs)
    return FactorizedCategorical(data.event_shape, data.num_levels, rngs=rngs)


@register("factorized_bernoulli", data_kind="binary", init_from_counts=False, pseudocount=1.0)
def _factorized_bernoulli(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """One Bernoulli per dimension; ``init_from_counts`` starts at the smoothed MLE."""
    if model_config.init_from_counts:
        return FactorizedBernoulli.from_counts(data.train, float(model_config.pseudocount),
                                               rngs=rngs)
    return FactorizedBernoulli(data.event_shape, rngs=rngs)


@register("diagonal_gaussian", data_kind="continuous", init_from_moments=False)
def _diagonal_gaussian(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Diagonal Gaussian; ``init_from_moments`` starts at the closed-form MLE."""
    if model_config.init_from_moments:
        return DiagonalGaussian.from_moments(data.train, rngs=rngs)
    return DiagonalGaussian(data.event_shape, rngs=rngs)


# ------------------------------------------------------------------------------------------
# Other families: every module of experiments/families registers its own builders.


def _import_families() -> None:
    import importlib
    import pkgutil

    import experiments.families as families

    for module in sorted(m.name for m in pkgutil.iter_modules(families.__path__)):
        importlib.import_module(f"experiments.families.{module}")


_import_families()

