"""MLP energy on 2D checkerboard, Langevin + replay buffer; see `experiments/configs/_energy.py`."""
from experiments.configs import _energy


def get_config():
    return _energy.toy_ebm_config("checkerboard")
