"""Fully visible Boltzmann machine (64 units) on binarized 8x8 digits, PCD-1 with site-by-site
Gibbs sweeps; ``log Z`` by AIS (2^64 states are too many to enumerate)."""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits", binarize=True),
        model=common.model_config("fvbm", loss="pcd", cd_steps=1, num_chains=100,
                                  ais_num_temps=2000, ais_num_runs=100, ais_schedule="linear",
                                  sample_sweeps=200),
        train=dict(num_steps=3000, batch_size=50, steps_per_call=100, log_every=1000,
                   eval_every=0),
        optim=dict(name="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4, schedule="cosine",
                   end_lr_factor=0.0),
    )
