"""Distributions as pure functions of parameter arrays: log-probabilities and samplers.

Every function is jit/vmap-safe except `build_alias_table` (a NumPy setup step on concrete
probabilities). Log-probabilities are elementwise, in nats; models sum them over their event
axes. Samplers take ``shape=None`` (one draw per parameter entry) or an output shape that
contains the parameters' batch shape under broadcasting, like `jax.random.categorical`.
"""
from jaxgen.distributions.bernoulli import bernoulli_log_prob, sample_bernoulli
from jaxgen.distributions.categorical import (AliasTable, build_alias_table,
                                              categorical_log_prob, sample_alias,
                                              sample_gumbel_max, sample_inverse_cdf)
from jaxgen.distributions.gaussian import gaussian_log_prob, kl_diag_gaussian, sample_gaussian
from jaxgen.distributions.logistic import logistic_log_prob, sample_logistic

__all__ = [
    "AliasTable", "bernoulli_log_prob", "build_alias_table", "categorical_log_prob",
    "gaussian_log_prob", "kl_diag_gaussian", "logistic_log_prob", "sample_alias",
    "sample_bernoulli", "sample_gaussian", "sample_gumbel_max", "sample_inverse_cdf",
    "sample_logistic",
]
