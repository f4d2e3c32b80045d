"""Normalizing flows in the registry: ``nice``, ``realnvp``, ``glow`` (`jaxgen.flows`)."""
from __future__ import annotations

import types

from flax import nnx

from experiments.registry import ModelData, register
from jaxgen.flows.models import GLOW_DEFAULTS, NICE_DEFAULTS, REALNVP_DEFAULTS, build_flow


def _flow_data(data: ModelData):
    # On dequantized discrete data the flow starts with RealNVP's logit layer; build_flow
    # keys that on num_levels and takes the (already dequantized, float) training inputs.
    return types.SimpleNamespace(event_shape=data.event_shape, num_levels=data.dequantized_levels,
                                 train=data.train)


@register("nice", data_kind="continuous", **NICE_DEFAULTS)
def _nice(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """NICE: additive couplings and a diagonal scaling, logistic base (Dinh et al. 2014)."""
    return build_flow(model_config, _flow_data(data), rngs=rngs)


@register("realnvp", data_kind="continuous", **REALNVP_DEFAULTS)
def _realnvp(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """RealNVP: affine couplings, vector or multi-scale (Dinh et al. 2017)."""
    return build_flow(model_config, _flow_data(data), rngs=rngs)


@register("glow", data_kind="continuous", **GLOW_DEFAULTS)
def _glow(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Glow: ActNorm, LU 1x1 convolution, affine coupling; K steps x L levels (Kingma &
    Dhariwal 2018)."""
    return build_flow(model_config, _flow_data(data), rngs=rngs)
