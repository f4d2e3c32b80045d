"""Baselines with exact maximum-likelihood fits: factorized categorical / Bernoulli, and
diagonal Gaussian. Flax NNX modules exposing ``event_shape``, ``log_prob`` and ``sample``."""
from jaxgen.baselines.diagonal_gaussian import DiagonalGaussian
from jaxgen.baselines.factorized_bernoulli import FactorizedBernoulli
from jaxgen.baselines.factorized_categorical import FactorizedCategorical

__all__ = ["DiagonalGaussian", "FactorizedBernoulli", "FactorizedCategorical"]
