"""Causal transformer (Image-GPT style) on statically binarized MNIST (paper-size model, Bernoulli head).

``model.query_chunk=112``: attention over the 784 tokens in 7 chunks of queries,
rematerialized in the backward pass, so the ``[100, 4, 784, 784]`` scores (batch, heads:
``train.batch_size=100``, ``model.num_heads=4``) never exist at once: XLA's peak memory
estimate of the train step is 5.05 GB instead of 16.4 GB
(``--config.model.query_chunk=0`` restores the one-pass attention).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    return _autoregressive.binarized_mnist_config("transformer", num_steps=20000, steps_per_call=100,
        d_model=128, num_heads=4, num_layers=4, query_chunk=112)
