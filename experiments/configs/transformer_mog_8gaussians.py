"""Causal transformer with a 10-component Gaussian-mixture head on the 2D `8gaussians`
density (jaxgen.data.toy2d): 2 tokens, 2 layers, d_model 32 (the value enters through a
linear embedding). Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.toy_config("transformer", "8gaussians", d_model=32, num_heads=2,
                                      num_layers=2, head="gaussian_mixture", num_mixtures=10)
