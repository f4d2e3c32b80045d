"""Autoregressive models: ``log p(x) = sum_i log p(x_i | x_{<i})`` in raster order.

Every model has ``event_shape``, ``log_prob(x) -> [B]`` (int levels in), ``sample(key, n)``
(fast where a cache exists) and ``sample_naive(key, n)`` (one full pass per position), and
``params_from_inputs(encode(x))``, the teacher-forced pass whose Jacobian proves the
autoregressive property.
"""
from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.gated_pixelcnn import GatedPixelCNN
from jaxgen.autoregressive.heads import (BernoulliHead, CategoricalHead,
                                         DiscretizedLogisticMixtureHead, make_head)
from jaxgen.autoregressive.made import MADE, connectivity_agnostic_loss
from jaxgen.autoregressive.nade import NADE
from jaxgen.autoregressive.pixelcnn import PixelCNN
from jaxgen.autoregressive.pixelrnn import DiagonalBiLSTM, RowLSTM
from jaxgen.autoregressive.rnn import LSTMModel
from jaxgen.autoregressive.transformer import CausalTransformer

__all__ = ["AutoregressiveModel", "BernoulliHead", "CategoricalHead", "CausalTransformer",
           "DiagonalBiLSTM", "DiscretizedLogisticMixtureHead", "GatedPixelCNN", "LSTMModel",
           "MADE", "NADE", "PixelCNN", "RowLSTM", "connectivity_agnostic_loss", "make_head"]
