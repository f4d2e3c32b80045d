"""NADE on statically binarized MNIST (paper-size model, Bernoulli head).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.binarized_mnist_config("nade", num_steps=30000, steps_per_call=100,
        hidden_size=500)
