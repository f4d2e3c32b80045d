"""Shared pieces of the autoregressive configs (``<model>_{digits,binarized_mnist}.py``,
``<model>_<head>_<toy>.py``).

``digits``: 17-level categorical per pixel on 8x8 digits, sized to train in about a minute
on 2 CPU cores. ``binarized_mnist``: the paper-size model with a Bernoulli head on the
statically binarized MNIST npz (train/valid/test arrays); its default path, the shared copy
next to the repository (run from the repository root), is set only here, in the configs:
``--config.data.path=/elsewhere/binarized_mnist.npz`` points to another copy.

2D densities (``toy_config``): a continuous head (Gaussian/logistic mixture) on the real
values of a `jaxgen.data.toy2d` density, with the flows' toy training settings
(`experiments/configs/_flows.py`: 4,000 steps, batch 256, Adam 3e-3 cosine, clip 10), so
the test NLLs compare with ``maf_<toy>`` / ``realnvp_<toy>`` at a similar parameter count.

``steps_per_call`` is 1 for convolutional/recurrent models (see `jaxgen.nn.layer_scan`: on
CPU, XLA computes their gradients inside a scan far more slowly) and larger for dense ones.
"""
from experiments.configs import common

BINARIZED_MNIST_PATH = "../shared/data/binarized_mnist.npz"


def digits_config(model: str, *, num_steps: int, steps_per_call: int, **model_fields):
    return common.get_config(
        data=common.data_config("digits"),
        model=common.model_config(model, **model_fields),
        train=dict(num_steps=num_steps, batch_size=64, steps_per_call=steps_per_call,
                   log_every=250, eval_every=250),
        optim=dict(name="adam", lr=2e-3, schedule="cosine", end_lr_factor=0.05),
        sampler=dict(num_samples=16, timing_repeats=2),
        eval=dict(num_plot_samples=16, plot_ncols=8),
    )


def binarized_mnist_config(model: str, *, num_steps: int, steps_per_call: int,
                           **model_fields):
    return common.get_config(
        data=common.data_config("npz", path=BINARIZED_MNIST_PATH, num_levels=2),
        model=common.model_config(model, **model_fields),
        train=dict(num_steps=num_steps, batch_size=100, steps_per_call=steps_per_call,
                   log_every=1000, eval_every=2500),
        optim=dict(name="adam", lr=1e-3, schedule="cosine", end_lr_factor=0.05),
        sampler=dict(num_samples=16, timing_repeats=2),
        eval=dict(num_plot_samples=16, plot_ncols=4),
    )


TOY_TRAIN = dict(num_steps=4000, batch_size=256, steps_per_call=100, log_every=1000,
                 eval_every=1000)
TOY_OPTIM = dict(name="adam", lr=3e-3, schedule="cosine", grad_clip_norm=10.0)


def toy_config(model: str, toy_name: str, **model_fields):
    """An autoregressive model with a continuous head on the 2D density ``toy_name``."""
    return common.get_config(
        data=common.data_config("toy2d", toy_name=toy_name),
        model=common.model_config(model, **model_fields),
        train=TOY_TRAIN, optim=TOY_OPTIM,
        sampler=dict(num_samples=100, timing_repeats=2),
        eval=dict(batch_size=5000, num_plot_samples=2000, plot_ncols=8))
