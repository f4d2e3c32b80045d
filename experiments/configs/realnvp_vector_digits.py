"""Vector RealNVP on uniformly dequantized 8x8 digits (17 levels): the demo's flow.

Logit (``model.logit_alpha=0.05``) on the flattened 64-d image, then
``model.num_couplings=6`` affine couplings (alternating halves) with MLP conditioners of
``model.num_hidden_layers=2`` hidden layers of ``model.hidden_features=64`` units, ActNorm
between couplings (``model.normalization=actnorm``). `experiments/benchmarks/flows.py` times
the same layout at 8 couplings of 256 units. Trains in about a minute on 2 CPU cores; bits/dim
in the discrete data's units (``NLL + 64 ln 17`` nats). Early stopping on valid.
"""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "realnvp", common.data_config("digits", dequantize="uniform"),
        train=dict(num_steps=3000, batch_size=128, steps_per_call=50, log_every=500,
                   eval_every=250, patience=4),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", grad_clip_norm=100.0,
                   weight_decay=1e-4),
        architecture="vector", num_couplings=6, hidden_features=64, num_hidden_layers=2,
        normalization="actnorm")
