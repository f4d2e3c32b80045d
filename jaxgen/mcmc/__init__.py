"""MCMC samplers as ``(init, step)`` pairs taking ``logdensity_fn`` (blackjax's shape).

By the order of information they use:

* zero order: ``rwmh`` (random-walk Metropolis);
* first order: ``langevin`` (ULA), ``sgld`` (separate step/noise scales, gradient clipping),
  ``mala``, ``hmc``;
* second order: ``smmala`` / ``hessian_langevin`` (Hessian-preconditioned, low dimension);
* discrete: ``binary_gibbs`` (site by site), ``block_gibbs`` (RBMs),
  ``gibbs_with_gradients`` and ``discrete_mala`` (gradient-informed flips, MH-corrected);
* across modes: ``parallel_tempering`` (replica exchange over a temperature ladder,
  swap acceptance per rung and round trips as diagnostics).

``run_chains`` runs many chains (scan inside, vmap across, jit on top); ``diagnostics`` has
acceptance, ESS and split R-hat.
"""
from jaxgen.mcmc import diagnostics
from jaxgen.mcmc.discrete import (DiscreteGradientInfo, DiscreteGradientState, discrete_mala,
                                  gibbs_with_gradients)
from jaxgen.mcmc.gibbs import (BlockGibbsState, GibbsInfo, GibbsState, binary_gibbs,
                               block_gibbs)
from jaxgen.mcmc.hmc import HMCInfo, HMCState, hmc
from jaxgen.mcmc.langevin import LangevinInfo, LangevinState, langevin, sgld
from jaxgen.mcmc.mala import MALAInfo, MALAState, mala
from jaxgen.mcmc.manifold import ManifoldInfo, ManifoldState, hessian_langevin, smmala
from jaxgen.mcmc.run import ChainResult, run_chains, run_kernel, sample_chain
from jaxgen.mcmc.rwmh import RWMHInfo, RWMHState, rwmh
from jaxgen.mcmc.tempering import (PTInfo, PTState, geometric_ladder, parallel_tempering,
                                   swap_acceptance, tempered_kernel_fn)

__all__ = [
    "diagnostics", "BlockGibbsState", "GibbsInfo", "GibbsState", "binary_gibbs", "block_gibbs",
    "HMCInfo", "HMCState", "hmc", "LangevinInfo", "LangevinState", "langevin", "sgld",
    "MALAInfo", "MALAState", "mala", "ManifoldInfo", "ManifoldState", "hessian_langevin",
    "smmala", "ChainResult", "run_chains", "run_kernel", "sample_chain", "RWMHInfo",
    "RWMHState", "rwmh", "DiscreteGradientInfo", "DiscreteGradientState", "discrete_mala",
    "gibbs_with_gradients", "PTInfo", "PTState", "geometric_ladder", "parallel_tempering",
    "swap_acceptance", "tempered_kernel_fn",
]
