"""Flow models: NICE, RealNVP (vectors and multi-scale images), Glow, MAF / IAF;
`build_flow`.

Every model is a `TransformedDistribution` over the data's event shape (``log_prob(x) ->
[B]`` in nats, ``sample(key, n, temperature=1.0)``), built from a normalizing chain written
in the papers' order (data -> latent). On discrete data the model sees uniformly dequantized
values ``y = (x + u) / K`` in ``[0, 1)`` (`jaxgen.data.preprocessing.Preprocessing`) and starts with RealNVP's `Logit` layer, so its density is on
``[0, 1)^D`` and ``NLL_discrete <= NLL + D log K`` (`jaxgen.metrics.bits_per_dim` with
``num_levels=K``).

Deep stacks of identical layers (Glow's K steps per level, RealNVP's vector coupling pairs)
go through `Repeat` (one traced layer, ``lax.scan`` over stacked parameters).
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import check_count, check_finite
from jaxgen.flows.actnorm import ActNorm, initialize
from jaxgen.flows.additive_coupling import AdditiveCoupling
from jaxgen.flows.affine_coupling import AffineCoupling
from jaxgen.flows.base import Bijector, Inverse, chain_in_order
from jaxgen.flows.batch_norm import BatchNorm
from jaxgen.flows.conv1x1 import Conv1x1, Conv1x1LU
from jaxgen.flows.coupling_utils import conditioner_features
from jaxgen.flows.distributions import (StandardLogistic, StandardNormal,
                                        TransformedDistribution, context_width)
from jaxgen.flows.logit import Logit
from jaxgen.flows.masked_autoregressive import MaskedAutoregressive
from jaxgen.flows.multiscale import MultiScale
from jaxgen.flows.repeat import Repeat
from jaxgen.flows.reshape import Reshape
from jaxgen.flows.scaling import Scaling
from jaxgen.flows.spline_coupling import SplineCoupling
from jaxgen.nn.mlp import MLP
from jaxgen.nn.resnet import GlowCNN, ResNet

NORMALIZATIONS = ("none", "actnorm", "batchnorm")


def _data_layers(event_shape, logit_alpha, flatten: bool) -> list[Bijector]:
    """Logit (for data in [0, 1]) and flattening, in the normalizing direction."""
    layers: list[Bijector] = []
    if logit_alpha is not None:
        layers.append(Logit(float(logit_alpha)))
    if flatten and len(event_shape) != 1:
        layers.append(Reshape(event_shape, (math.prod(event_shape),)))
    return layers


def _norm_layer(kind: str, num_channels: int) -> list[Bijector]:
    if kind not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {kind!r}")
    if kind == "actnorm":
        return [ActNorm(num_channels)]
    if kind == "batchnorm":
        return [BatchNorm(num_channels)]
    return []


class NICE(TransformedDistribution):
    """NICE (Dinh et al., 2014): additive couplings on alternating halves, a diagonal
    scaling, a standard logistic prior.

    Normalizing direction: ``[Logit] -> [flatten] -> AdditiveCoupling x num_couplings
    -> Scaling``. ``log p(x) = log p_logistic(h) + sum(log_scale)`` (+ the logit's log-det).

    Args:
      event_shape: shape of one example (images are flattened).
      num_couplings: number of additive couplings (4 in the paper).
      hidden_features, num_hidden_layers: the MLP conditioners (1000 x 5 in the paper).
      logit_alpha: apply `Logit(alpha)` first (data in [0, 1]); None for real data.
      num_classes, context_features: conditional flow (`TransformedDistribution`).
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], *, num_couplings: int = 4,
                 hidden_features: int = 256, num_hidden_layers: int = 4,
                 logit_alpha: float | None = None, num_classes: int | None = None,
                 context_features: int | None = None, rngs: nnx.Rngs):
        event_shape = tuple(event_shape)
        d = math.prod(event_shape)
        cf = context_width(num_classes, context_features) or 0
        layers = _data_layers(event_shape, logit_alpha, flatten=True)
        for i in range(num_couplings):
            layers.append(AdditiveCoupling(
                MLP(d + cf, hidden_features, d, num_hidden_layers, rngs=rngs), "alternate",
                i % 2))
        layers.append(Scaling((d,)))
        super().__init__(StandardLogistic((d,)), Inverse(chain_in_order(layers)), event_shape,
                         num_classes=num_classes, context_features=context_features, rngs=rngs)


class RealNVP(TransformedDistribution):
    """RealNVP (Dinh et al., 2017) with a standard normal prior.

    ``architecture="vector"``: ``[Logit] -> [flatten] -> [ActNorm] -> (AffineCoupling(half)
    -> norm -> AffineCoupling(other half) -> norm) x num_couplings/2`` with MLP
    conditioners that see only the conditioning half (``ceil(D/2) -> 2 floor(D/2)``). The
    pairs are separate modules by default; ``scan_couplings=True`` stacks and scans them
    (`Repeat`): fewer traced layers where the scan stays rolled (GPU/TPU); on CPU, where
    `jaxgen.nn.layer_scan` unrolls it, separate modules avoid slicing each weight out of its
    stack (docs/FLOWS_BENCHMARK.md).

    ``architecture="multiscale"`` (images ``[H, W, C]``): ``num_scales`` levels; each but the
    last is 3 checkerboard couplings, squeeze, 3 channel-wise couplings, then half the
    channels are factored out (`MultiScale`); the last level is 4 checkerboard couplings.
    Conditioners are small ResNets.

    ``coupling="spline"`` swaps affine couplings for rational-quadratic spline couplings
    (neural spline flows) in either architecture.

    Args:
      event_shape: shape of one example.
      architecture: "vector" or "multiscale".
      num_couplings: vector: number of couplings (even).
      hidden_features, num_hidden_layers: vector: the MLP conditioners.
      num_scales, hidden_channels, num_blocks: multiscale: levels and ResNet size.
      normalization: "none", "actnorm" or "batchnorm" after every coupling (BatchNorm
        uses batch statistics and updates its running averages in training mode, which the
        training loop switches on for every step, and its running averages in eval mode).
      scale_fn: the affine couplings' log-scale bound (`AffineCoupling`).
      coupling: "affine" or "spline".
      num_bins, spline_bound: spline couplings.
      logit_alpha: apply `Logit(alpha)` first (data in [0, 1]); None for real data.
      scan_couplings: vector: stack the coupling pairs and scan them (`Repeat`).
      num_classes, context_features: conditional flow: every coupling's conditioner reads
        the context (`TransformedDistribution`).
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], *, architecture: str = "vector",
                 num_couplings: int = 8, hidden_features: int = 256, num_hidden_layers: int = 2,
                 num_scales: int = 2, hidden_channels: int = 32, num_blocks: int = 2,
                 normalization: str = "actnorm", scale_fn: str = "tanh",
                 coupling: str = "affine", num_bins: int = 8, spline_bound: float = 4.0,
                 logit_alpha: float | None = None, scan_couplings: bool = False,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs):
        event_shape = tuple(event_shape)
        cf = context_width(num_classes, context_features) or 0
        if coupling not in ("affine", "spline"):
            raise ValueError(f"coupling must be 'affine' or 'spline', got {coupling!r}")
        self.coupling_kind = coupling

        def make_coupling(net_fn, channels, mask, parity):
            # net_fn(c_in, c_out) -> conditioner from c_in channels to c_out channels
            c_in, c_out = conditioner_features(mask, channels, parity)
            c_in += cf  # the context's channels (`with_context`)
            if coupling == "spline":
                k = SplineCoupling.params_per_entry(num_bins)
                return SplineCoupling(net_fn(c_in, k * c_out), num_bins, spline_bound, mask,
                                      parity)
            return AffineCoupling(net_fn(c_in, 2 * c_out), channels, mask, parity, scale_fn)

        layers = _data_layers(event_shape, logit_alpha, flatten=architecture == "vector")
        if architecture == "vector":
            d = math.prod(event_shape)
            if num_couplings < 2 or num_couplings % 2:
                raise ValueError(f"num_couplings must be even and >= 2, got {num_couplings}")
            layers += _norm_layer("actnorm" if normalization == "actnorm" else "none", d)

            def pair(rngs):
                mlp = lambda c_in, c_out: MLP(c_in, hidden_features, c_out, num_hidden_layers,
                                              rngs=rngs)
                return chain_in_order(
                    [make_coupling(mlp, d, "half", 0)] + _norm_layer(normalization, d)
                    + [make_coupling(mlp, d, "half", 1)] + _norm_layer(normalization, d))

            if scan_couplings:
                layers.append(Repeat(pair, num_couplings // 2, rngs=rngs))
            else:
                layers += [pair(rngs) for _ in range(num_couplings // 2)]
            base_shape: tuple = (d,)
        elif architecture == "multiscale":
            if len(event_shape) != 3:
                raise ValueError(f"multiscale RealNVP needs images (H, W, C), got {event_shape}")

            def couplings(shape, mask, count):
                c = shape[-1]
                resnet = lambda c_in, c_out: ResNet(c_in, hidden_channels, c_out, num_blocks,
                                                    rngs=rngs)
                out = []
                for i in range(count):
                    out += [make_coupling(resnet, c, mask, i % 2)] + _norm_layer(normalization, c)
                return chain_in_order(out)

            def level(shape, index):
                h, w, c = shape
                if index == num_scales - 1:
                    return couplings(shape, "checkerboard", 4)
                if h % 2 or w % 2:
                    raise ValueError(f"level {index} of {num_scales} at shape {shape} cannot "
                                     "be squeezed; use fewer num_scales")
                inner = level((h // 2, w // 2, 2 * c), index + 1)
                return MultiScale(before=couplings(shape, "checkerboard", 3),
                                  after=couplings((h // 2, w // 2, 4 * c), "channel", 3),
                                  inner=inner)

            layers.append(level(event_shape, 0))
            base_shape = event_shape
        else:
            raise ValueError(f"architecture must be 'vector' or 'multiscale', got "
                             f"{architecture!r}")
        super().__init__(StandardNormal(base_shape), Inverse(chain_in_order(layers)),
                         event_shape, num_classes=num_classes,
                         context_features=context_features, rngs=rngs)


class Glow(TransformedDistribution):
    """Glow (Kingma & Dhariwal, 2018): ``num_scales`` levels of squeeze -> ``num_steps`` x
    (ActNorm -> invertible 1x1 conv -> affine coupling) -> split, standard normal prior.

    The K steps of a level are stacked and scanned (`Repeat`). Every level but the last
    factors out half its channels (`MultiScale`); the last one squeezes only if its height
    and width are even (28x28 MNIST: 14x14x4 -> 7x7x8 -> 7x7x4 without a third squeeze).
    Call `jaxgen.flows.initialize` (done by `build_flow`) for ActNorm's data init.
    On vectors ``(D,)`` (2D densities) it is ``num_scales * num_steps`` steps of ActNorm ->
    1x1 conv (a learned linear map) -> half-mask affine coupling with MLP conditioners of
    width ``hidden_channels``.

    Args:
      event_shape: ``(H, W, C)``.
      num_scales: L levels.
      num_steps: K steps per level.
      hidden_channels: width of the coupling CNNs (512 in the paper).
      lu_decomposed: LU-parameterized 1x1 convolutions (else plain, slogdet).
      scale_fn: the couplings' log-scale bound (default Glow's sigmoid).
      logit_alpha: apply `Logit(alpha)` first (data in [0, 1]); None for real data.
      num_classes, context_features: conditional flow: every coupling's conditioner reads
        the context (`TransformedDistribution`).
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], *, num_scales: int = 2, num_steps: int = 8,
                 hidden_channels: int = 64, lu_decomposed: bool = True,
                 scale_fn: str = "sigmoid", logit_alpha: float | None = None,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs):
        event_shape = tuple(event_shape)
        cf = context_width(num_classes, context_features) or 0
        context = dict(num_classes=num_classes, context_features=context_features, rngs=rngs)
        conv = Conv1x1LU if lu_decomposed else Conv1x1
        if len(event_shape) == 1:  # vectors (2D densities): K steps, MLP conditioners
            d = event_shape[0]

            def vector_step(rngs):
                c_in, c_out = conditioner_features("half", d, 0)
                mlp = MLP(c_in + cf, hidden_channels, 2 * c_out, 2, rngs=rngs)
                return chain_in_order([ActNorm(d), conv(d, rngs=rngs),
                                       AffineCoupling(mlp, d, "half", 0, scale_fn)])

            layers = _data_layers(event_shape, logit_alpha, flatten=False)
            layers.append(Repeat(vector_step, num_steps * num_scales, rngs=rngs))
            super().__init__(StandardNormal(event_shape), Inverse(chain_in_order(layers)),
                             event_shape, **context)
            return
        if len(event_shape) != 3:
            raise ValueError(f"Glow needs images (H, W, C) or vectors (D,), got event shape "
                             f"{event_shape}")

        def steps(c):
            def step(rngs):
                return chain_in_order([
                    ActNorm(c), conv(c, rngs=rngs),
                    AffineCoupling(GlowCNN(c // 2 + cf, hidden_channels, 2 * (c - c // 2),
                                           rngs=rngs),
                                   c, "channel", 0, scale_fn)])
            return Repeat(step, num_steps, rngs=rngs)

        def level(shape, index):
            h, w, c = shape
            last = index == num_scales - 1
            if h % 2 or w % 2:
                if not last:
                    raise ValueError(f"Glow level {index} of {num_scales} at shape {shape} "
                                     "cannot be squeezed; use fewer num_scales")
                return steps(c)
            if last:
                return MultiScale(after=steps(4 * c), split=False)
            return MultiScale(after=steps(4 * c), inner=level((h // 2, w // 2, 2 * c), index + 1))

        layers = _data_layers(event_shape, logit_alpha, flatten=False) + [level(event_shape, 0)]
        super().__init__(StandardNormal(event_shape), Inverse(chain_in_order(layers)),
                         event_shape, **context)


class MAF(TransformedDistribution):
    """Masked autoregressive flow (Papamakarios et al., 2017) on vectors (images are
    flattened), standard normal prior.

    Normalizing direction: ``[Logit] -> [flatten] -> [ActNorm] -> MaskedAutoregressive x
    num_layers`` with alternating natural / reversed orderings (`MaskedAutoregressive`):
    ``log_prob`` is one pass per layer, ``sample`` ``D`` passes per layer (a ``lax.scan``).
    ``inverse_autoregressive=True`` gives IAF (Kingma et al., 2016): the same layers
    inverted, so sampling is one pass per layer and ``log_prob`` sequential.
    ``normalization`` (``"none"``, ``"actnorm"`` or ``"batchnorm"``) puts that layer after
    every autoregressive layer, as the MAF paper puts BatchNorm between its MADEs and as
    RealNVP does between couplings.

    Args:
      event_shape: shape of one example.
      num_layers: autoregressive layers.
      hidden_features, num_hidden_layers: each layer's MADE conditioner.
      transform: ``"affine"`` or ``"spline"`` (rational-quadratic; ``num_bins``, ``bound``).
      normalization: ``"none"``, ``"actnorm"`` or ``"batchnorm"`` after every layer.
      input_actnorm: the ActNorm in front (data-initialized to zero mean, unit variance).
        Without it the first layer sees the data's own scale, which matters for splines:
        their ``num_bins`` bins cover ``[-bound, bound]`` of the layer's input.
      inverse_autoregressive: IAF instead of MAF.
      logit_alpha: apply `Logit(alpha)` first (data in [0, 1]); None for real data.
      num_classes, context_features: conditional flow: every layer's conditioner reads the
        context (`TransformedDistribution`).
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], *, num_layers: int = 5,
                 hidden_features: int = 64, num_hidden_layers: int = 2,
                 transform: str = "affine", num_bins: int = 8, bound: float = 4.0,
                 normalization: str = "none", input_actnorm: bool = True,
                 inverse_autoregressive: bool = False, logit_alpha: float | None = None,
                 num_classes: int | None = None, context_features: int | None = None,
                 rngs: nnx.Rngs):
        event_shape = tuple(event_shape)
        d = math.prod(event_shape)
        cf = context_width(num_classes, context_features)
        # the layers see the (embedded) context as a vector of width cf
        layer_ctx = dict(context_features=cf)
        layers = _data_layers(event_shape, logit_alpha, flatten=True)
        layers += [ActNorm(d)] if input_actnorm else []
        for i in range(check_count("num_layers", num_layers)):
            layer = MaskedAutoregressive(
                d, (hidden_features,) * check_count("num_hidden_layers", num_hidden_layers),
                transform=transform, ordering="natural" if i % 2 == 0 else "reversed",
                num_bins=num_bins, bound=bound, rngs=rngs, **layer_ctx)
            layers.append(Inverse(layer) if inverse_autoregressive else layer)
            layers += _norm_layer(normalization, d)
        super().__init__(StandardNormal((d,)), Inverse(chain_in_order(layers)), event_shape,
                         num_classes=num_classes, context_features=context_features, rngs=rngs)


# ------------------------------------------------------------------------------------------
# Building.

NICE_DEFAULTS = dict(num_couplings=4, hidden_features=256, num_hidden_layers=4,
                     logit_alpha=0.05)
REALNVP_DEFAULTS = dict(architecture="vector", num_couplings=8, hidden_features=256,
                        num_hidden_layers=2, num_scales=2, hidden_channels=32, num_blocks=2,
                        normalization="actnorm", scale_fn="tanh", coupling="affine",
                        num_bins=8, spline_bound=4.0, logit_alpha=0.05, scan_couplings=False)
GLOW_DEFAULTS = dict(num_scales=2, num_steps=8, hidden_channels=64, lu_decomposed=True,
                     scale_fn="sigmoid", logit_alpha=0.05)
MAF_DEFAULTS = dict(num_layers=5, hidden_features=64, num_hidden_layers=2, transform="affine",
                    num_bins=8, bound=4.0, normalization="none", input_actnorm=True,
                    logit_alpha=0.05)
FLOW_MODELS = {"nice": (NICE, NICE_DEFAULTS), "realnvp": (RealNVP, REALNVP_DEFAULTS),
               "glow": (Glow, GLOW_DEFAULTS), "maf": (MAF, MAF_DEFAULTS),
               "iaf": (functools.partial(MAF, inverse_autoregressive=True), MAF_DEFAULTS)}


def build_flow(name: str, event_shape: Sequence[int], init_batch, *, unit_interval: bool,
               rngs: nnx.Rngs, num_classes: int | None = None, init_context=None,
               **fields) -> TransformedDistribution:
    """Builds the flow ``name`` and runs its data-dependent initialization.

    Args:
      name: ``nice``, ``realnvp``, ``glow``, ``maf`` or ``iaf`` (`FLOW_MODELS`).
      event_shape: shape of one example.
      init_batch: ``[B, *event_shape]`` float inputs as the model sees them (e.g. the first
        examples of `jaxgen.data.preprocessing.Preprocessing.init_data`): every ActNorm is
        initialized on it.
      unit_interval: the inputs are dequantized levels in ``[0, 1)``: the flow starts with
        ``Logit(logit_alpha)``; otherwise ``logit_alpha`` is ignored.
      rngs: NNX random streams.
      num_classes: build a class-conditional flow ``p(x | y)``, ``y in [0, num_classes)``.
      init_context: ``[B]`` labels of ``init_batch`` (conditional flows; default: class
        ``i mod num_classes`` for example ``i``).
      **fields: the model's keyword arguments (defaults: ``NICE_DEFAULTS`` ...).

    Raises:
      ValueError: unknown name or field; integer ``init_batch`` (dequantize first); NaN/inf
        in ``init_batch``.
    """
    if name not in FLOW_MODELS:
        raise ValueError(f"{name!r} is not a flow; known: {sorted(FLOW_MODELS)}")
    cls, defaults = FLOW_MODELS[name]
    unknown = sorted(set(fields) - set(defaults))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} for flow {name!r}; valid: "
                         f"{sorted(defaults)}")
    fields = {**defaults, **fields}
    if not unit_interval:
        fields["logit_alpha"] = None
    batch = np.asarray(init_batch)
    if not np.issubdtype(batch.dtype, np.floating):
        raise ValueError(f"a flow's init_batch must hold float inputs as the model sees them, "
                         f"got dtype {batch.dtype} (dequantize discrete levels first)")
    check_finite(batch, "build_flow: init_batch")
    model = cls(tuple(event_shape), rngs=rngs, num_classes=num_classes, **fields)
    context = None
    if num_classes is not None:
        context = (jnp.arange(batch.shape[0]) % num_classes if init_context is None
                   else jnp.asarray(init_context)[:batch.shape[0]])
    initialize(model, jnp.asarray(batch, jnp.float32), context=context)
    return model


__all__ = ["FLOW_MODELS", "GLOW_DEFAULTS", "Glow", "MAF", "MAF_DEFAULTS", "NICE", "NICE_DEFAULTS", "NORMALIZATIONS",
           "REALNVP_DEFAULTS", "RealNVP", "build_flow"]
