"""NADE on statically binarized MNIST (paper-size model: 500 hidden units, Bernoulli head),
sized for 30 minutes on 2 CPU cores: ``train.num_steps=16000`` at batch 100 (32 epochs),
Adam 1e-3 cosine to 5% of it, evaluated with an EMA of the weights (``train.ema_decay=0.999``).

Measured (docs/RESULTS.md, issue 14): 89.02 test nats (valid 89.74) in 1,653 s of training
(9.75 steps/s) on the quiet 2-core Xeon; without the EMA 89.04 (valid 89.76). The paper's
88.86 (Larochelle & Murray 2011) is 0.16 nats lower. Valid NLL was still falling at the last
step (94.09, 90.64, 89.90, 89.74 at 4k, 8k, 12k, 16k steps), so an accelerator run is this
config with ``--config.train.num_steps`` larger (the schedule follows).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    config = _autoregressive.binarized_mnist_config("nade", num_steps=16000, steps_per_call=100,
                                                    hidden_size=500)
    config.train.eval_every = 4000
    config.train.ema_decay = 0.999
    return config
