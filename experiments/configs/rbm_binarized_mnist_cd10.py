"""``rbm_binarized_mnist`` trained with CD-10."""
from experiments.configs import rbm_binarized_mnist


def get_config():
    return rbm_binarized_mnist.get_config("cd10")
