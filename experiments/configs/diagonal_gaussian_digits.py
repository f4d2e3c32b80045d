"""Diagonal Gaussian on uniformly dequantized 8x8 digits, ``y = (x + u) / 17``.

The NLL is reported in the discrete data's units: the dequantization bound
``-log P(x) <= E_u[-log p(y)] + D log 17`` (see `jaxgen.metrics.bits_per_dim`).
"""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits", dequantize="uniform"),
        model=common.model_config("diagonal_gaussian"),
        train=dict(num_steps=2000, batch_size=128, steps_per_call=100, log_every=500,
                   eval_every=500),
        optim=dict(name="adam", lr=0.02, schedule="cosine", end_lr_factor=0.01),
    )
