"""Causal transformer (Image-GPT style) on statically binarized MNIST (paper-size model, Bernoulli head).

Reads an .npz with train/valid/test arrays; the default path is the shared
copy next to the repository (run from the repository root) and is set only here, in the
config: --config.data.path=/elsewhere/binarized_mnist.npz points to another copy.
"""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("npz", path="../shared/data/binarized_mnist.npz", num_levels=2),
        model=common.model_config("transformer", d_model=128, num_heads=4, num_layers=4),
        train=dict(num_steps=20000, batch_size=100, steps_per_call=100, log_every=1000,
                   eval_every=2500, progress=False),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", end_lr_factor=0.05),
        sampler=dict(num_samples=16, timing_repeats=2),
        eval=dict(num_plot_samples=16, plot_ncols=4),
    )
