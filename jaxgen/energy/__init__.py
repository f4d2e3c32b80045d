"""Energy-based models: Boltzmann machines, RBMs, neural energies, their training losses
(CD-k, PCD, MLE as positive minus negative phase), replay buffers, AIS for ``log Z``, and
quadrature over the plane for the ``log Z`` of 2D energies."""
from jaxgen.energy import ais, losses, quadrature, replay_buffer
from jaxgen.energy.boltzmann import FullyVisibleBM
from jaxgen.energy.neural import ConvEnergy, MLPEnergy
from jaxgen.energy.partition import (LogPartition, all_binary_states, binary_states,
                                     logsumexp_over_states)
from jaxgen.energy.rbm import BernoulliRBM, GaussianBernoulliRBM

__all__ = ["ais", "losses", "quadrature", "replay_buffer", "ConvEnergy", "MLPEnergy", "FullyVisibleBM", "BernoulliRBM", "GaussianBernoulliRBM", "LogPartition",
           "all_binary_states", "binary_states", "logsumexp_over_states"]
