"""Causal transformer with a Gaussian-mixture head (``model.head=gaussian_mixture``,
``model.num_mixtures=10``) on the 2D `8gaussians` density (jaxgen.data.toy2d): 2 tokens,
``model.num_layers=2``, ``model.d_model=32``, ``model.num_heads=2`` (the value enters
through a linear embedding), ``train.num_steps=4000``. Shared settings:
`experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.toy_config("transformer", "8gaussians", d_model=32, num_heads=2,
                                      num_layers=2, head="gaussian_mixture", num_mixtures=10)
