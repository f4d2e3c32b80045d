"""Diagonal Gaussian on the 2D two-moons density (a deliberately poor fit: one blob)."""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("toy2d", toy_name="moons"),
        model=common.model_config("diagonal_gaussian"),
        train=dict(num_steps=1000, batch_size=256, steps_per_call=100, log_every=500,
                   eval_every=500),
        optim=dict(name="adam", lr=0.02, schedule="cosine", end_lr_factor=0.01),
        eval=dict(num_plot_samples=2000),
    )
