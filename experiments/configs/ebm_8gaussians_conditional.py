"""Class-conditional `ebm_8gaussians`: the same MLP energy and Langevin + replay-buffer
training with ``data.conditional=True``, so it learns ``E(x, y)`` and
``log p(x | y) = -E(x, y) - log Z(y)`` for the mixture component ``y in 0..7`` of each point
(`jaxgen.data.toy2d`: 8gaussians' labels are its components). Each class's negatives run on
``E(., y)`` from that class's replay buffer; ``log Z(y)`` is computed per class by the same
whole-plane quadrature. Sampling without a context draws class ``i mod 8`` for sample ``i``."""
from experiments.configs import ebm_8gaussians


def get_config():
    config = ebm_8gaussians.get_config()
    config.data.conditional = True
    return config
