"""MLP energy on 2D 8gaussians trained by denoising score matching (noise std 0.1, no MCMC
in training); log Z by quadrature over the plane. See `experiments/configs/_energy.py`."""
from experiments.configs import _energy


def get_config():
    return _energy.toy_ebm_config("8gaussians", estimator="dsm", dsm_noise_std=0.1)
