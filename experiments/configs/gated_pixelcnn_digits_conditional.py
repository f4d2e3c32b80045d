"""Class-conditional `gated_pixelcnn_digits`: the same model and training, with
``data.conditional=True``, so it learns log p(x | y) for the digit class y (10 classes;
the labels travel with each batch and reach ``log_prob(x, context=y)``). Sampling
without a context draws class ``i mod 10`` for sample ``i``."""
from experiments.configs import gated_pixelcnn_digits


def get_config():
    config = gated_pixelcnn_digits.get_config()
    config.data.conditional = True
    return config
