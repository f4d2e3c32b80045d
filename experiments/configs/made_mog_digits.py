"""MADE with a Gaussian-mixture head (``model.head=gaussian_mixture``,
``model.num_mixtures=10``) on uniformly dequantized 8x8 digits
(``data.dequantize=uniform``: the density of ``(x + u) / 17``; the reported NLL is the bound
in the discrete digits' nats), otherwise `made_digits` (``model.hidden_sizes=(256,)``,
``train.num_steps=1500``). Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    config = _autoregressive.digits_config("made", num_steps=1500, steps_per_call=50,
                                           hidden_sizes=(256,), head="gaussian_mixture",
                                           num_mixtures=10)
    config.data.dequantize = "uniform"
    return config
