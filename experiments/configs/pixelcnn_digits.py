"""PixelCNN on 8x8 digits (17-level categorical per pixel); trains in about a minute on
2 CPU cores. Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.digits_config("pixelcnn", num_steps=1000, steps_per_call=1,
        hidden_channels=32, num_layers=3, first_kernel_size=5)
