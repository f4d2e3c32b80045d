"""MADE with a mask ensemble on statically binarized MNIST (Bernoulli head): two hidden
layers of 1500 units (``model.hidden_sizes=(1500, 1500)``) plus direct input-to-output
connections, ``model.num_masks=16`` connectivities (natural ordering, the first the
deterministic one) trained connectivity-agnostically (one mask drawn per step,
`jaxgen.autoregressive.made.made_loss`) and evaluated as the ensemble
``p(x) = (1/16) sum_m p_m(x)`` (Germain et al. 2015, section 4.3), no dropout; AdamW lr 5e-4
cosine, weight decay 0.1, EMA 0.999 of the weights, as the single-mask
``made_binarized_mnist``.

Measured: docs/RESULTS.md ("Issue 14: the binarized-MNIST rows"). Data path and shared
settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import made_binarized_mnist


def get_config():
    config = made_binarized_mnist.get_config()
    config.model.hidden_sizes = (1500, 1500)
    config.model.num_masks = 16
    config.model.dropout = 0.0
    config.train.num_steps = 80000
    config.train.eval_every = 10000  # a 16-mask evaluation of the valid split takes ~10 s
    return config
