"""Multi-scale RealNVP on uniformly dequantized 8x8 digits (17 levels), ``y = (x + u) / 17``.

Logit(alpha=0.05) -> [3 checkerboard couplings, squeeze, 3 channel couplings, factor out
half] -> 4 checkerboard couplings at 4x4x2 (``model.num_scales=2`` levels), ResNet
conditioners (``model.num_blocks=2`` blocks of ``model.hidden_channels=32`` channels), ActNorm
after each coupling. Bits/dim are reported in the discrete data's units: ``NLL + 64 ln 17`` nats
(`jaxgen.metrics.bits_per_dim(nll, 64, num_levels=17)`). Early stopping on valid.
"""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "realnvp", common.data_config("digits", dequantize="uniform"),
        train=dict(num_steps=6000, batch_size=64, steps_per_call=1, log_every=500,
                   eval_every=250, patience=6),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", grad_clip_norm=100.0,
                   weight_decay=0.0),
        architecture="multiscale", num_scales=2, hidden_channels=32, num_blocks=2,
        normalization="actnorm", init_batch_size=512)
