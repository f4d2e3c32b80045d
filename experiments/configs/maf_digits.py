"""MAF on uniformly dequantized 8x8 digits (17 levels), flattened to 64 dimensions:
Logit(alpha=0.05) -> ActNorm -> ``model.num_layers=5`` affine masked autoregressive layers
(MADE conditioners 256 x 2). Bits/dim in the discrete data's units (``NLL + 64 ln 17``
nats). Sampling is sequential (64 conditioner passes per layer)."""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "maf", common.data_config("digits", dequantize="uniform"),
        train=dict(num_steps=3000, batch_size=64, steps_per_call=50, log_every=500,
                   eval_every=250, patience=6),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", grad_clip_norm=100.0),
        num_layers=5, hidden_features=256, num_hidden_layers=2, init_batch_size=512)
