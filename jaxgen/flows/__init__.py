"""Normalizing flows: bijectors (one per file), composition, multi-scale, models.

Every bijector has ``forward_and_log_det(x) -> (y, log_det [B])`` and
``inverse_and_log_det(y) -> (x, log_det [B])`` with analytic log-determinants summed over
the event (see `jaxgen.flows.base`). Flows are written in the normalizing direction
(data -> latent); `TransformedDistribution(base, Inverse(flow))` is the model.
"""
from jaxgen.flows.actnorm import ActNorm, initialize
from jaxgen.flows.additive_coupling import AdditiveCoupling
from jaxgen.flows.affine_coupling import AffineCoupling
from jaxgen.flows.base import (Bijector, Chain, Constant, InitFlag, Inverse, chain_in_order,
                               sum_except_batch)
from jaxgen.flows.batch_norm import BatchNorm
from jaxgen.flows.conv1x1 import Conv1x1, Conv1x1LU
from jaxgen.flows.distributions import (BASE_DISTRIBUTIONS, StandardLogistic, StandardNormal,
                                        TransformedDistribution)
from jaxgen.flows.elementwise_affine import ElementwiseAffine
from jaxgen.flows.logit import Logit
from jaxgen.flows.masked_autoregressive import MaskedAutoregressive
from jaxgen.flows.masks import MASK_KINDS, make_mask
from jaxgen.flows.multiscale import MultiScale
from jaxgen.flows.permutation import Permutation
from jaxgen.flows.repeat import Repeat
from jaxgen.flows.reshape import Reshape
from jaxgen.flows.scaling import Scaling
from jaxgen.flows.sigmoid import Sigmoid
from jaxgen.flows.spline_coupling import SplineCoupling, rational_quadratic_spline
from jaxgen.flows.squeeze import Squeeze, squeeze, unsqueeze

__all__ = [
    "ActNorm", "AdditiveCoupling", "AffineCoupling", "BASE_DISTRIBUTIONS", "BatchNorm",
    "Bijector", "Chain", "Constant", "Conv1x1", "Conv1x1LU", "ElementwiseAffine", "InitFlag",
    "Inverse", "Logit", "MASK_KINDS", "MaskedAutoregressive", "MultiScale", "Permutation", "Repeat", "Reshape",
    "Scaling", "Sigmoid", "SplineCoupling", "Squeeze", "StandardLogistic", "StandardNormal",
    "TransformedDistribution", "chain_in_order", "initialize", "make_mask",
    "rational_quadratic_spline", "squeeze", "sum_except_batch", "unsqueeze",
]

from jaxgen.flows.models import FLOW_MODELS, MAF, Glow, NICE, RealNVP, build_flow  # noqa: E402

__all__ += ["FLOW_MODELS", "Glow", "MAF", "NICE", "RealNVP", "build_flow"]

from jaxgen.flows.variational_dequantization import (  # noqa: E402
    ConditionalDequantizer, VariationallyDequantized)

__all__ += ["ConditionalDequantizer", "VariationallyDequantized"]
