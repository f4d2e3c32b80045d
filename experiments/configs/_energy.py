"""Shared pieces of the energy-based configs."""
from experiments.configs import common


def toy_ebm_config(toy_name: str, estimator: str = "langevin", **model_fields):
    """MLP energy (2-128-128-1, swish) on a 2D density of `jaxgen.data.toy2d`: short-run
    Langevin (30 steps) from a replay buffer with 5% reinitialization and energy-magnitude
    regularization. log Z by quadrature over the whole plane
    (`jaxgen.energy.quadrature.log_partition_2d`): 400x400 midpoint grids on boxes doubling
    around the data (+25% of its span) until a shell holds < 1e-4 of the mass, the rest by
    Student-t importance sampling. ``results.json`` states ``log_z_std_err`` (discretization,
    tail and float32 rounding), the mass outside the data box and beyond the last box, and
    ``log_z_converged``: the test NLL is exact within ``log_z_std_err``.

    ``estimator`` (``config.model.estimator``) picks the training rule: ``langevin`` (the
    above), ``dsm`` / ``ssm`` (denoising / sliced score matching) or ``nce``
    (noise-contrastive estimation against a Gaussian fitted to the data); ``model_fields``
    override the model section (e.g. ``dsm_noise_std``)."""
    return common.get_config(
        data=common.data_config("toy2d", toy_name=toy_name, num_train=20_000, num_valid=5_000,
                                num_test=5_000),
        model=common.model_config("ebm_mlp", hidden_sizes=(128, 128), langevin_steps=30,
                                  step_size=0.005, noise_scale=0.1, reinit_prob=0.05,
                                  energy_reg=0.1, buffer_size=10000, estimator=estimator,
                                  **model_fields),
        train=dict(num_steps=3000, batch_size=256, steps_per_call=100, log_every=500,
                   eval_every=0),
        optim=dict(name="adam", lr=1e-3, b1=0.0, b2=0.999),
        sampler=dict(num_samples=500),
        eval=dict(num_plot_samples=2000),
    )
