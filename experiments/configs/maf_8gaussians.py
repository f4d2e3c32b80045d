"""MAF on the 2D `8gaussians` density (jaxgen.data.toy2d): ``model.num_layers=12`` affine
masked autoregressive layers with MADE conditioners 48 x 2 (alternating orderings): 32,332
parameters, fewer than `realnvp_8gaussians` (8 couplings, MLP 64 x 2: 35,388). Five seeds
each (docs/RESULTS.md, issue 16 section): 2.9234 against RealNVP's 2.9397 mean test nats;
the 8 x 64 layout (36,916) gave 2.9499."""
from experiments.configs import _flows


def get_config():
    return _flows.toy_config("maf", "8gaussians", num_layers=12, hidden_features=48)
