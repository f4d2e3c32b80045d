"""Factorized categorical (one 17-way multinomial per pixel) on 8x8 digits, by gradient MLE.

Set ``--config.model.init_from_counts=True`` to start from the smoothed counting MLE.
"""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits"),
        model=common.model_config("factorized_categorical"),
        train=dict(num_steps=2000, batch_size=128, steps_per_call=100, log_every=500,
                   eval_every=500),
        optim=dict(name="adam", lr=0.05, schedule="cosine", end_lr_factor=0.01),
    )
