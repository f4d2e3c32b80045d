"""MAF on the 2D `checkerboard` density (jaxgen.data.toy2d) with rational-quadratic spline
transforms (``model.transform=spline``, 16 bins on [-4.5, 4.5]) in ``model.num_layers=3``
masked autoregressive layers: about the parameter count of `realnvp_checkerboard` (4 spline
couplings). The true entropy is ln 32 = 3.47 nats."""
from experiments.configs import _flows


def get_config():
    return _flows.toy_config("maf", "checkerboard", transform="spline", num_layers=3,
                             num_bins=16, bound=4.5)
