"""Class-conditional `nade_digits`: the same model and training, with
``data.conditional=True``, so it learns log p(x | y) for the digit class y (10 classes; the
class embedding starts NADE's hidden running sum, ``a_0 = c + E[y]``). Sampling without a
context draws class ``i mod 10`` for sample ``i``."""
from experiments.configs import nade_digits


def get_config():
    config = nade_digits.get_config()
    config.data.conditional = True
    return config
