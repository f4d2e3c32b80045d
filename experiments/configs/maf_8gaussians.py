"""MAF on the 2D `8gaussians` density (jaxgen.data.toy2d): ``model.num_layers=8`` affine
masked autoregressive layers (MADE conditioners 64 x 2, alternating orderings), about the
parameter count of `realnvp_8gaussians` (docs/RESULTS.md, issue 16 section)."""
from experiments.configs import _flows


def get_config():
    return _flows.toy_config("maf", "8gaussians")
