"""Energy-based models in the registry: RBM, fully visible BM, neural energies.

Their ``log_prob`` is unnormalized (``-E(x) - log_z``); each entry's objective
(`jaxgen.energy.objectives`) trains them (CD-k, PCD, or short-run Langevin from a replay
buffer) and, in ``finalize``, sets ``log_z`` before the test NLL is computed: exactly by
enumeration when the model is small enough, else by AIS (its error bar and ESS go to
``results.json``), or, for 2D neural energies, by quadrature over the whole plane (nested
doubling boxes plus an importance-sampled tail; `jaxgen.energy.quadrature`), whose error
and uncovered mass go to ``results.json`` too.
"""
from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from experiments.registry import ModelData, register
from jaxgen.energy import BernoulliRBM, FullyVisibleBM
from jaxgen.energy.ais import base_rate_logits
from jaxgen.energy.objectives import (ESTIMATORS, BinaryLogZ, ContrastiveDivergence,
                                      DenoisingScoreMatching, LangevinReplay, NeuralLogZ,
                                      NoiseContrastiveEstimation,
                                      PersistentContrastiveDivergence, PersistentTempering,
                                      SlicedScoreMatching, noise_box)


def contrastive_objective(mc, settings=None):
    """CD-k (``loss="cd"``), PCD-k (``"pcd"``) or, for RBMs, PCD with parallel-tempered
    persistent chains (``"pt"``: ``num_chains`` ladders of ``pt_num_rungs`` rungs down to
    ``pt_min_beta``, ``cd_steps`` PT steps per update), with couplings-only weight decay and
    ``log Z`` by enumeration or AIS (``log_z``, ``ais_*``).

    Raises:
      ValueError: naming the config key: an unknown loss or log_z method, ``pt`` for a
        model without a tempered kernel, or ``persist_hidden`` without PCD.
    """
    del settings
    losses = ("cd", "pcd", "pt") if "pt_num_rungs" in mc else ("cd", "pcd")
    if mc.loss not in losses:
        raise ValueError(f"config.model.loss must be one of {losses} for "
                         f"{mc.get('name', 'this model')}, got {mc.loss!r}")
    persist_hidden = bool(mc.get("persist_hidden", False))
    if persist_hidden and mc.loss != "pcd":
        raise ValueError("config.model.persist_hidden=True needs config.model.loss='pcd', got "
                         f"{mc.loss!r}")
    centering = bool(mc.get("centering", False))
    if centering and not persist_hidden:
        raise ValueError("config.model.centering=True needs config.model.loss='pcd' and "
                         "config.model.persist_hidden=True")
    try:
        log_z = BinaryLogZ(mc.log_z, int(mc.ais_num_temps), int(mc.ais_num_runs),
                           mc.ais_schedule)
    except ValueError as err:
        raise ValueError(f"config.model.log_z: {err}") from None
    if mc.loss == "cd":
        return ContrastiveDivergence(int(mc.cd_steps), float(mc.weight_decay), log_z)
    if mc.loss == "pt":
        try:
            return PersistentTempering(int(mc.cd_steps), int(mc.num_chains),
                                       int(mc.pt_num_rungs), float(mc.pt_min_beta),
                                       float(mc.weight_decay), log_z)
        except ValueError as err:
            raise ValueError(f"config.model (loss='pt'): {err}") from None
    return PersistentContrastiveDivergence(int(mc.cd_steps), int(mc.num_chains),
                                           float(mc.weight_decay), persist_hidden, log_z,
                                           centering=centering)


_CONTRASTIVE = dict(loss="pcd", cd_steps=1, num_chains=100, log_z="auto", ais_num_temps=15000,
                    ais_num_runs=100, ais_schedule="piecewise", init_base_rates=True,
                    weight_decay=0.0)


@register("rbm", data_kind="binary", objective_fn=contrastive_objective, num_hidden=500,
          init_scale=0.01, sample_steps=1000, persist_hidden=False, centering=False,
          pt_num_rungs=10, pt_min_beta=0.1, **_CONTRASTIVE)
def _rbm(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Bernoulli RBM trained by CD-k/PCD; log Z exact (small) or by AIS."""
    model = BernoulliRBM(data.event_shape, int(model_config.num_hidden), rngs=rngs,
                         init_scale=float(model_config.init_scale),
                         sample_steps=int(model_config.sample_steps))
    if model_config.init_base_rates:  # visible biases at the data's log-odds (Hinton 2010)
        model.visible_bias[...] = jnp.asarray(base_rate_logits(data.train))
    return model


@register("fvbm", data_kind="binary", objective_fn=contrastive_objective, init_scale=0.01,
          sample_sweeps=200, **dict(_CONTRASTIVE, ais_num_temps=2000, ais_schedule="linear"))
def _fvbm(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Fully visible Boltzmann machine trained by CD-k/PCD (site Gibbs); log Z exact or AIS."""
    model = FullyVisibleBM(data.event_shape, rngs=rngs, init_scale=float(model_config.init_scale),
                           sample_sweeps=int(model_config.sample_sweeps))
    if model_config.init_base_rates:
        model.bias[...] = jnp.asarray(base_rate_logits(data.train))
    return model


# ------------------------------------------------------------------------------------------
# Neural energies: short-run Langevin from a replay buffer (default), or score matching or
# NCE (`config.model.estimator`).

_NEURAL = dict(langevin_steps=30, step_size=0.005, noise_scale=0.1, grad_clip=0.0,
               reinit_prob=0.05, energy_reg=0.1, buffer_size=10000, noise_margin=0.1,
               sample_steps=200, log_z="auto", grid_size=400, log_z_tol=1e-4,
               log_z_max_doublings=12, log_z_tail_samples=65536, ais_num_temps=1000,
               ais_num_runs=100, ais_schedule="sigmoid", ais_step_size=0.001,
               estimator="langevin", dsm_noise_std=0.1, ssm_projections=1,
               nce_noise_ratio=1.0, nce_noise_scale=1.0)
_OBJECTIVE_FIELDS = ("langevin_steps", "reinit_prob", "energy_reg", "grad_clip", "buffer_size",
                     "noise_margin", "log_z", "grid_size", "log_z_tol", "log_z_max_doublings",
                     "log_z_tail_samples", "ais_num_temps", "ais_num_runs",
                     "ais_schedule", "ais_step_size")


_LOG_Z_FIELDS = ("grid_size", "log_z_tol", "log_z_max_doublings", "log_z_tail_samples",
                 "ais_num_temps", "ais_num_runs", "ais_schedule", "ais_step_size")


def langevin_objective(mc, settings=None):
    """The objective ``config.model.estimator`` names: ``langevin`` (`LangevinReplay`
    from the fields of the same names), ``dsm`` (denoising score matching, noise
    ``dsm_noise_std``), ``ssm`` (sliced score matching, ``ssm_projections``) or ``nce``
    (noise-contrastive estimation against a Gaussian fitted to the data, widened by
    ``nce_noise_scale``, ``nce_noise_ratio`` noise draws per example). All compute ``log Z``
    the same way after training (``log_z`` and the quadrature/AIS fields)."""
    del settings
    estimator = mc.get("estimator", "langevin")
    if estimator not in ESTIMATORS:
        raise ValueError(f"config.model.estimator must be one of {ESTIMATORS}, got "
                         f"{estimator!r}")
    try:
        if estimator == "langevin":
            return LangevinReplay(**{name: mc[name] for name in _OBJECTIVE_FIELDS})
        log_z = NeuralLogZ(mc.log_z, **{name: mc[name] for name in _LOG_Z_FIELDS})
        if estimator == "dsm":
            return DenoisingScoreMatching(float(mc.dsm_noise_std), log_z)
        if estimator == "ssm":
            return SlicedScoreMatching(int(mc.ssm_projections), log_z)
        return NoiseContrastiveEstimation(float(mc.nce_noise_ratio), float(mc.nce_noise_scale),
                                          log_z)
    except ValueError as err:
        raise ValueError(f"config.model: {err}") from None


def _neural_common(model_config, data: ModelData) -> dict:
    """Sampler settings, and ``num_classes`` of a conditional data set: the energy is then
    ``E(x, y)`` and every estimator trains ``p(x | y)`` at the batch's labels."""
    lo, hi = noise_box(data.train, float(model_config.noise_margin))
    return dict(noise_low=lo, noise_high=hi, sample_steps=int(model_config.sample_steps),
                step_size=float(model_config.step_size),
                noise_scale=float(model_config.noise_scale), num_classes=data.num_classes)


@register("ebm_mlp", data_kind="continuous", objective_fn=langevin_objective,
          conditional=True, hidden_sizes=(128, 128), **_NEURAL)
def _ebm_mlp(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """MLP energy trained with short-run Langevin + replay buffer; log Z by quadrature over
    the plane (2D) or AIS (per class when conditional)."""
    from jaxgen.energy.neural import MLPEnergy
    return MLPEnergy(data.event_shape, tuple(model_config.hidden_sizes), rngs=rngs,
                     **_neural_common(model_config, data))


@register("ebm_conv", data_kind="continuous", objective_fn=langevin_objective,
          conditional=True, channels=(32, 64), **_NEURAL)
def _ebm_conv(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Small conv energy for images, short-run Langevin + replay buffer; log Z by AIS."""
    from jaxgen.energy.neural import ConvEnergy
    return ConvEnergy(data.event_shape, tuple(model_config.channels), rngs=rngs,
                      **_neural_common(model_config, data))
