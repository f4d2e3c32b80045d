"""Factorized categorical (2 levels per pixel) on statically binarized MNIST (50k/10k/10k).

Reads an ``.npz`` with ``train``/``valid``/``test`` arrays; the default path is the shared
copy next to the repository (run from the repository root) and is set only here, in the
config: ``--config.data.path=/elsewhere/binarized_mnist.npz`` points to another copy.
"""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("npz", path="../shared/data/binarized_mnist.npz", num_levels=2),
        model=common.model_config("factorized_categorical"),
        train=dict(num_steps=2000, batch_size=256, steps_per_call=100, log_every=500,
                   eval_every=500),
        optim=dict(name="adam", lr=0.05, schedule="cosine", end_lr_factor=0.01),
        eval=dict(num_plot_samples=64),
    )
