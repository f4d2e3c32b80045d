"""NADE on 8x8 digits (17-level categorical per pixel); trains in about a minute on 2 CPU
cores."""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits"),
        model=common.model_config("nade", hidden_size=128),
        train=dict(num_steps=1500, batch_size=64, steps_per_call=50, log_every=250,
                   eval_every=250, progress=False),
        optim=dict(name="adam", lr=2e-3, schedule="cosine", end_lr_factor=0.05),
        sampler=dict(num_samples=16, timing_repeats=2),
        eval=dict(num_plot_samples=16, plot_ncols=8),
    )
