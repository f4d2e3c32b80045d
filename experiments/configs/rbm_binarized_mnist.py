"""Bernoulli RBM (784 x 500) on binarized MNIST, PCD-1, SGD with momentum, weight decay and a
decaying learning rate; test log-likelihood by AIS (15,000 temperatures, 100 runs).

Variants: ``rbm_binarized_mnist_cd1``, ``rbm_binarized_mnist_cd10``. The data path is the
shared copy next to the repository (run from the repository root);
``--config.data.path=...`` points elsewhere.
"""
from experiments.configs import common


def get_config(variant: str = "pcd"):
    loss, steps = {"pcd": ("pcd", 1), "cd1": ("cd", 1), "cd10": ("cd", 10)}[variant]
    return common.get_config(
        data=common.data_config("npz", path="../shared/data/binarized_mnist.npz", num_levels=2),
        model=common.model_config("rbm", num_hidden=500, loss=loss, cd_steps=steps,
                                  num_chains=100, ais_num_temps=15000, ais_num_runs=100,
                                  ais_schedule="piecewise", sample_steps=1000),
        train=dict(num_steps=50000, batch_size=100, steps_per_call=500, log_every=5000,
                   eval_every=0, progress=False),
        optim=dict(name="sgd", lr=0.02, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                   end_lr_factor=0.0),
        eval=dict(num_plot_samples=64),
    )
