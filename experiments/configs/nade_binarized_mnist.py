"""NADE on statically binarized MNIST (paper-size model: 500 hidden units, Bernoulli head),
sized for 30 minutes on 2 CPU cores: ``train.num_steps=17500`` at batch 100 (35 epochs),
Adam 1e-3 cosine to 5% of it, evaluated with an EMA of the weights (``train.ema_decay=0.999``).

NADE's step is mostly one thread on XLA:CPU (``[B, H]``-sized ops, one position per scan
step), so on a 2-core CPU run it data-parallel over two host devices, 50 examples each
(the same `jax.sharding` mesh as on accelerators)::

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python -m experiments.main \\
        --config experiments/configs/nade_binarized_mnist.py --workdir runs/nade

Measured (docs/RESULTS.md, issue 14; quiet 2-core Xeon): 88.87 test nats (valid 89.58) in
1,478 s of training at 12.0 steps/s on two host devices; the paper's 88.86 (Larochelle &
Murray 2011). On one device the same steps take ~32 minutes (9.1-9.8 steps/s); 16k steps
there gave 89.02. Valid NLL was still falling at the last step (95.13, 91.00, 89.97, 89.67,
89.58 at 3.5k-step intervals), so an accelerator run is this config with
``--config.train.num_steps`` larger (the schedule follows).

Data path and shared settings: `experiments/configs/_autoregressive.py`."""
from experiments.configs import _autoregressive


def get_config():
    config = _autoregressive.binarized_mnist_config("nade", num_steps=17500, steps_per_call=100,
                                                    hidden_size=500)
    config.train.eval_every = 3500
    config.train.ema_decay = 0.999
    return config
