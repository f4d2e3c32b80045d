"""Factorized Bernoulli on statically binarized 8x8 digits (pixel level >= 8 -> 1)."""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits", binarize=True),
        model=common.model_config("factorized_bernoulli"),
        train=dict(num_steps=2000, batch_size=128, steps_per_call=100, log_every=500,
                   eval_every=500),
        optim=dict(name="adam", lr=0.05, schedule="cosine", end_lr_factor=0.01),
    )
