"""MAF on the 2D `moons` density (jaxgen.data.toy2d): ``model.num_layers=8`` affine
masked autoregressive layers (MADE conditioners 64 x 2, alternating orderings), about the
parameter count of `realnvp_moons` (8 affine couplings, MLPs 64 x 2)."""
from experiments.configs import _flows


def get_config():
    return _flows.toy_config("maf", "moons")
