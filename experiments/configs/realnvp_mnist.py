"""realnvp on MNIST (tfds, 28x28x1, 256 levels, uniformly dequantized), sized for
accelerators: ``model.num_scales=3`` levels, ResNet conditioners of ``model.num_blocks=8``
blocks of ``model.hidden_channels=64`` channels, ``model.normalization=batchnorm``. Bits/dim in
8-bit units (``NLL + D ln 256``)."""
from experiments.configs import _flows, common


def get_config():
    return _flows.image_config(
        "realnvp", common.data_config("tfds", tfds_name="mnist", dequantize="uniform"),
        train=dict(num_steps=100_000, batch_size=64, steps_per_call=1, log_every=1000,
                   eval_every=5000, checkpoint_every=5000, patience=10, progress=True),
        optim=dict(name="adam", lr=1e-3, schedule="warmup_cosine", warmup_steps=1000,
                   grad_clip_norm=100.0),
        architecture="multiscale", num_scales=3, hidden_channels=64, num_blocks=8,
        normalization="batchnorm", logit_alpha=1e-6)
