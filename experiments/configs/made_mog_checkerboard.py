"""MADE with a Gaussian-mixture head (``model.head=gaussian_mixture``,
``model.num_mixtures=10``) on the 2D `checkerboard` density (jaxgen.data.toy2d):
``model.hidden_sizes=(160, 160)``, about the parameter count of `maf_checkerboard` /
`realnvp_checkerboard`, with their training settings (``train.num_steps=4000``;
docs/RESULTS.md, issue 16 section). Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.toy_config("made", "checkerboard", hidden_sizes=(160, 160),
                                      head="gaussian_mixture", num_mixtures=10)
