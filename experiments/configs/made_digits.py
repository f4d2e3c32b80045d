"""MADE on 8x8 digits (17-level categorical per pixel); trains in about a minute on
2 CPU cores. Shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.digits_config("made", num_steps=1500, steps_per_call=50,
        hidden_sizes=(256,))
