"""Normalizing flows in the registry: ``nice``, ``realnvp``, ``glow``, ``maf``
(`jaxgen.flows`; IAF is ``build_flow("iaf", ...)`` / ``MAF(inverse_autoregressive=True)``,
whose sequential density makes it a poor density-training model).

Each trains by maximum likelihood (the loop puts BatchNorm layers in training mode for
every step and in eval mode for evaluation); ``init_batch_size`` training inputs, as the
model sees them, initialize every ActNorm. With ``config.data.conditional`` each builds
``p(x | y)`` (a class embedding read by every coupling's conditioner).
"""
from __future__ import annotations

from flax import nnx

from experiments.registry import ModelData, register
from jaxgen.flows.models import FLOW_MODELS, build_flow

_INIT = dict(init_batch_size=512)


def _build(name: str, mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    fields = {key: mc[key] for key in FLOW_MODELS[name][1]}
    n = int(mc.init_batch_size)
    return build_flow(name, data.event_shape, data.train[:n],
                      unit_interval=data.preprocessing.dequantized, rngs=rngs,
                      num_classes=data.num_classes,
                      init_context=None if data.train_labels is None else data.train_labels[:n],
                      **fields)


@register("nice", data_kind="continuous", conditional=True, **FLOW_MODELS["nice"][1], **_INIT)
def _nice(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """NICE: additive couplings and a diagonal scaling, logistic base (Dinh et al. 2014)."""
    return _build("nice", mc, data, rngs)


@register("realnvp", data_kind="continuous", conditional=True, **FLOW_MODELS["realnvp"][1], **_INIT)
def _realnvp(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """RealNVP: affine couplings, vector or multi-scale (Dinh et al. 2017)."""
    return _build("realnvp", mc, data, rngs)


@register("glow", data_kind="continuous", conditional=True, **FLOW_MODELS["glow"][1], **_INIT)
def _glow(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Glow: ActNorm, LU 1x1 convolution, affine coupling; K steps x L levels (Kingma &
    Dhariwal 2018)."""
    return _build("glow", mc, data, rngs)


@register("maf", data_kind="continuous", conditional=True, **FLOW_MODELS["maf"][1], **_INIT)
def _maf(mc, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """MAF: masked autoregressive layers over MADE conditioners; one-pass density,
    sequential sampling (Papamakarios et al. 2017)."""
    return _build("maf", mc, data, rngs)

