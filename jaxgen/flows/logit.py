"""RealNVP's logit pre-processing of data in ``[0, 1]`` as a bijector."""
from __future__ import annotations

from jaxgen.data.preprocessing import inverse_logit_transform, logit_transform
from jaxgen.flows.base import Bijector


class Logit(Bijector):
    """``y = logit(alpha + (1 - 2 alpha) x)``, ``x in [0, 1]`` (Dinh et al., 2017, 4.1).

    With ``p = alpha + (1 - 2 alpha) x``: ``dy/dx = (1 - 2 alpha) / (p (1 - p))``, so

        ``log|det J| = sum[log(1 - 2 alpha) - log p - log(1 - p)]``
                    ``= sum[log(1 - 2 alpha) + softplus(y) + softplus(-y)]``.

    ``alpha`` (0.05 in RealNVP, 1e-6 for MNIST in Glow/NSF) keeps dequantized data away from
    the boundaries where the logit explodes. Inverse: ``x = (sigmoid(y) - alpha) / (1 - 2
    alpha)``. A flow on dequantized data ``x = (levels + u) / K`` starts (in the normalizing
    direction) with this layer; its density is then on ``[0, 1]^D``.

    Args:
      alpha: in ``[0, 0.5)``.
    """

    def __init__(self, alpha: float = 0.05):
        if not 0.0 <= alpha < 0.5:
            raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)

    def forward_and_log_det(self, x):  # [B, *event], values in [0, 1]
        return logit_transform(x, self.alpha)

    def inverse_and_log_det(self, y):
        return inverse_logit_transform(y, self.alpha)


__all__ = ["Logit"]
