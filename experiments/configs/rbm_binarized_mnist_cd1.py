"""``rbm_binarized_mnist`` trained with CD-1 (chains restart at the data every step)."""
from experiments.configs import rbm_binarized_mnist


def get_config():
    return rbm_binarized_mnist.get_config("cd1")
