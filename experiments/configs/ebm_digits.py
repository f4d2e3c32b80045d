"""Small conv energy (``model.channels=(32, 64)``) on dequantized 8x8 digits ((x + u) / 17 in
[0, 1]), short-run SGLD-style Langevin (``model.step_size=0.01`` on the gradient,
``model.noise_scale=0.005``, ``model.langevin_steps=40``) from a replay buffer
(``model.buffer_size=2000``) with 5% reinitialization (``model.reinit_prob=0.05``); log Z
by AIS (geometric path from a Gaussian at the data's moments, MALA transitions). NLL in nats
of the discrete data through the dequantization bound."""
from experiments.configs import common


def get_config():
    return common.get_config(
        data=common.data_config("digits", dequantize="uniform"),
        model=common.model_config("ebm_conv", channels=(32, 64), langevin_steps=40,
                                  step_size=0.01, noise_scale=0.005, reinit_prob=0.05,
                                  energy_reg=0.1, buffer_size=2000, noise_margin=0.0,
                                  sample_steps=100, ais_num_temps=1000, ais_num_runs=100,
                                  ais_step_size=0.0005),
        train=dict(num_steps=1000, batch_size=64, steps_per_call=1, log_every=500,
                   eval_every=0),
        optim=dict(name="adam", lr=1e-3, b1=0.0, b2=0.999),
        eval=dict(num_plot_samples=64),
    )
