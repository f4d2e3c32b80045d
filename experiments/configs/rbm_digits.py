"""Bernoulli RBM (64 visible x ``model.num_hidden=16`` hidden) on binarized 8x8 digits,
PCD-1 (``model.loss=pcd``, ``model.cd_steps=1``) with momentum ``optim.momentum=0.9``.

With 16 hidden units ``log Z`` is exact (2^16 hidden states enumerated), so the test NLL is
exact. Validation during training is off (``train.eval_every=0``): the unnormalized
log-likelihood cannot select checkpoints; the final parameters are evaluated once ``log Z``
is known.
"""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits", binarize=True),
        model=common.model_config("rbm", num_hidden=16, loss="pcd", cd_steps=1, num_chains=100,
                                  sample_steps=500),
        train=dict(num_steps=6000, batch_size=50, steps_per_call=200, log_every=1000,
                   eval_every=0),
        optim=dict(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                   end_lr_factor=0.0),
    )
