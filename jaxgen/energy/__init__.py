"""Energy-based models: Boltzmann machines, RBMs, neural energies, their training losses
(CD-k, PCD, MLE as positive minus negative phase), replay buffers, and AIS for ``log Z``."""
from jaxgen.energy import ais, losses, replay_buffer
from jaxgen.energy.boltzmann import FullyVisibleBM
from jaxgen.energy.neural import ConvEnergy, MLPEnergy
from jaxgen.energy.partition import (LogPartition, all_binary_states, binary_states,
                                     logsumexp_over_states)
from jaxgen.energy.rbm import BernoulliRBM, GaussianBernoulliRBM

__all__ = ["ais", "losses", "replay_buffer", "ConvEnergy", "MLPEnergy", "FullyVisibleBM", "BernoulliRBM", "GaussianBernoulliRBM", "LogPartition",
           "all_binary_states", "binary_states", "logsumexp_over_states"]
