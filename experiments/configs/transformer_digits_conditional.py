"""Class-conditional `transformer_digits`: the same model and training, with
``data.conditional=True``, so it learns log p(x | y) for the digit class y (10 classes; a
learned class embedding is added to the start token at position 0, Image-GPT style; the
labels travel with each batch and reach ``log_prob(x, context=y)``). Sampling without a
context draws class ``i mod 10`` for sample ``i``."""
from experiments.configs import transformer_digits


def get_config():
    config = transformer_digits.get_config()
    config.data.conditional = True
    return config
