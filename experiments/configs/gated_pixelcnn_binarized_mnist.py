"""Gated PixelCNN on statically binarized MNIST (paper-size model, Bernoulli head).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.binarized_mnist_config("gated_pixelcnn", num_steps=20000, steps_per_call=1,
        hidden_channels=64, num_layers=7)
