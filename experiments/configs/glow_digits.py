"""Glow on uniformly dequantized 8x8 digits (17 levels), ``y = (x + u) / 17``.

Logit(alpha=0.05) -> ``model.num_scales=2`` levels (squeeze, ``model.num_steps=8`` steps
of ActNorm -> LU 1x1 conv -> affine coupling, split) with small coupling CNNs
(``model.hidden_channels=32``). Bits/dim in the discrete data's units (``NLL + 64 ln 17``
nats). Early stopping on valid.
"""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "glow", common.data_config("digits", dequantize="uniform"),
        train=dict(num_steps=6000, batch_size=64, steps_per_call=1, log_every=500,
                   eval_every=250, patience=6),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", grad_clip_norm=100.0),
        num_scales=2, num_steps=8, hidden_channels=32, init_batch_size=512)
