"""MLP energy on 2D 8gaussians trained by noise-contrastive estimation against a Gaussian
fitted to the data (covariance x 1.5^2, 4 noise draws per example; the energy's output bias
learns log Z); log Z checked by quadrature over the plane. See
`experiments/configs/_energy.py`."""
from experiments.configs import _energy


def get_config():
    return _energy.toy_ebm_config("8gaussians", estimator="nce", nce_noise_ratio=4.0,
                                  nce_noise_scale=1.5)
