"""MADE with a 10-component Gaussian-mixture head on the 2D `checkerboard` density
(jaxgen.data.toy2d): hidden 160 x 2, about the parameter count of `maf_checkerboard` /
`realnvp_checkerboard` (docs/RESULTS.md, issue 16 section). Shared settings:
`experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.toy_config("made", "checkerboard", hidden_sizes=(160, 160),
                                      head="gaussian_mixture", num_mixtures=10)
