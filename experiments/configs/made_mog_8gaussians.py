"""MADE with a Gaussian-mixture head (``model.head=gaussian_mixture``,
``model.num_mixtures=10``) on the 2D `8gaussians` density (jaxgen.data.toy2d):
``model.hidden_sizes=(160, 160)``, about the parameter count of `maf_8gaussians` /
`realnvp_8gaussians`, with their training settings (``train.num_steps=4000``;
docs/RESULTS.md, issue 16 section). In 2D the first coordinate's density is the head's
unconditional mixture and the second's a mixture whose parameters the masked MLP reads from
the first. Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.toy_config("made", "8gaussians", hidden_sizes=(160, 160),
                                      head="gaussian_mixture", num_mixtures=10)
