"""Bernoulli RBM (784 x ``model.num_hidden=500``) on binarized MNIST, PCD-1 with persistent
hidden states (``model.persist_hidden=True``) and the centered gradient
(``model.centering=True``: offsets at the data mean and a moving average of the hidden
activations, `jaxgen.energy.losses.centered_parameters`), SGD with momentum, weight decay
and a cosine learning rate over ``train.num_steps=600000`` steps; test log-likelihood by
AIS (``model.ais_num_temps=15000`` temperatures, ``model.ais_num_runs=100`` runs).

Measured (docs/ENERGY_RESULTS.md, 2-core Xeon, nothing else running): 85.74 test nats (AIS
log Z 1442.996 +- 0.077, ESS 63.1 of 100; a second AIS with 50,000 temperatures and another
key: 1443.078 +- 0.048, ESS 81.7, 85.82 nats) after 1,406 s of training (427 steps/s). The
same config without centering gave 87.23 at 600k steps (88.17 at 250k); at 50k steps
centering gave 87.57 against 92.95: the centered gradient is the lever, steps the second.

Knobs (measured on the 2-core CPU, 10k-step screens, see docs/ENERGY_RESULTS.md): the loss is
a batch MEAN, so ``optim.lr`` is per-example; with momentum 0.9 the effective step is
``lr / (1 - 0.9)``. lr 0.005 beat 0.02 (103.0 vs 114.5 nats at 10k steps) and 0.002/0.001
(107.8/115.7); with centering at 50k steps, 0.005 beat 0.01 (87.57 vs 87.85). Weight decay
acts on the couplings only (``model.weight_decay``, in the loss), not on the biases, whose
visible part starts at the data's base-rate logits (``optim.weight_decay`` would decay them
too). 500 persistent chains were no better than 100. For an accelerator, the same config
with ``--config.train.num_steps`` larger (the schedule follows) and
``--config.train.steps_per_call`` 1000+.

Variants: ``rbm_binarized_mnist_cd1``, ``rbm_binarized_mnist_cd10`` (100k steps, no
persistent chains, so no centering). The data path is the shared copy next to the
repository (run from the repository root); ``--config.data.path=...`` points elsewhere.
"""
from experiments.configs import common


def get_config(variant: str = "pcd"):
    loss, steps = {"pcd": ("pcd", 1), "cd1": ("cd", 1), "cd10": ("cd", 10)}[variant]
    # persistent hidden states (and centering, which needs them) are PCD-only options; the
    # CD variants keep 100k steps
    pcd = variant == "pcd"
    return common.get_config(
        data=common.data_config("npz", path="../shared/data/binarized_mnist.npz", num_levels=2),
        model=common.model_config("rbm", num_hidden=500, loss=loss, cd_steps=steps,
                                  num_chains=100, ais_num_temps=15000, ais_num_runs=100,
                                  ais_schedule="piecewise", sample_steps=1000,
                                  weight_decay=1e-4, persist_hidden=pcd, centering=pcd),
        train=dict(num_steps=600000 if pcd else 100000, batch_size=100, steps_per_call=1000,
                   log_every=10000, eval_every=0),
        optim=dict(name="sgd", lr=0.005, momentum=0.9, weight_decay=0.0, schedule="cosine",
                   end_lr_factor=0.0),
        eval=dict(num_plot_samples=64),
    )
