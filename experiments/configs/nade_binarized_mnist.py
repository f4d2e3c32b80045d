"""NADE on statically binarized MNIST (paper-size model: 500 hidden units, Bernoulli head),
sized for 30 minutes on 2 CPU cores: ``train.num_steps=16000`` at batch 100 (32 epochs),
Adam 1e-3 cosine to 5% of it.

Measured (docs/RESULTS.md, issue 14): 89.04 test nats (valid 89.76) in 2,131 s of training at
7.6 steps/s with the test suite running beside it (~9 steps/s alone, i.e. ~30 minutes);
the paper's 88.86 (Larochelle & Murray 2011) is 0.18 nats lower. Valid NLL was still falling
at the last step (93.34, 90.80, 89.97, 89.76 at 4k, 8k, 12k, 16k steps), so an accelerator
run is this config with ``--config.train.num_steps`` larger (the schedule follows).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    config = _autoregressive.binarized_mnist_config("nade", num_steps=16000, steps_per_call=100,
                                                    hidden_size=500)
    config.train.eval_every = 4000
    return config
