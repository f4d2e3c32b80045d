"""Causal transformer (Image-GPT style) on statically binarized MNIST (paper-size model, Bernoulli head).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.binarized_mnist_config("transformer", num_steps=20000, steps_per_call=100,
        d_model=128, num_heads=4, num_layers=4)
