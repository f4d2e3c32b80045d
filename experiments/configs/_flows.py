"""Shared pieces of the flow configs (``{nice,realnvp,glow}_<dataset>.py``).

Discrete data are uniformly dequantized, ``y = (x + u) / K``, and the flow's first layer is
RealNVP's logit, so NLLs convert to the discrete data's bits/dim by
``jaxgen.metrics.bits_per_dim(nll, D, num_levels=K)``.
"""
from experiments.configs import common

TOY_TRAIN = dict(num_steps=4000, batch_size=256, steps_per_call=100, log_every=1000,
                 eval_every=1000)
TOY_OPTIM = dict(name="adam", lr=3e-3, schedule="cosine", grad_clip_norm=10.0)

TOY_MODELS = {
    "nice": dict(num_couplings=4, hidden_features=64, num_hidden_layers=3),
    "realnvp": dict(num_couplings=8, hidden_features=64, num_hidden_layers=2),
    "glow": dict(num_scales=1, num_steps=8, hidden_channels=64),
    "maf": dict(num_layers=8, hidden_features=64, num_hidden_layers=2),
}


def toy_config(model: str, toy_name: str, **model_overrides):
    """A flow on a 2D density of `jaxgen.data.toy2d`."""
    return common.get_config(
        data=common.data_config("toy2d", toy_name=toy_name),
        model=common.model_config(model, **{**TOY_MODELS[model], **model_overrides}),
        train=TOY_TRAIN, optim=TOY_OPTIM,
        eval=dict(batch_size=5000, num_plot_samples=2000, plot_ncols=8))


def image_config(model: str, data, train: dict, optim: dict, **model_fields):
    """A flow on dequantized images (``data`` from `common.data_config`)."""
    return common.get_config(data=data, model=common.model_config(model, **model_fields),
                             train=train, optim=optim,
                             eval=dict(batch_size=500, num_plot_samples=64, plot_ncols=8))
