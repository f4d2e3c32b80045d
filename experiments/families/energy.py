"""Energy-based models in the registry: RBM, fully visible BM, neural energies.

Their ``log_prob`` is unnormalized (``-E(x) - log_z``), so each builder carries
``run_hooks`` (read by `experiments.run`): ``train_kwargs`` gives the training loss (CD-k or
PCD, persistent chains in the train state) and ``prepare_eval`` sets ``log_z`` before the
test NLL is computed -- exactly by enumeration when the model is small enough, else by AIS
(its error bar and ESS go to ``results.json``), or, for 2D neural energies, by normalizing
the density on a grid.
"""
from __future__ import annotations

import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.registry import ModelData, RunHooks, register
from jaxgen.energy import BernoulliRBM, FullyVisibleBM
from jaxgen.energy.ais import base_rate_logits, fvbm_ais, rbm_ais, temperature_schedule
from jaxgen.energy.losses import cd_loss, pcd_init, pcd_loss
from jaxgen.mcmc.run import jit

EXACT_MAX_BITS = 20  # enumerate 2^n states up to this n; AIS above




def _contrastive_train_kwargs(config, dataset, model=None) -> dict:
    m = config.model
    weight_decay = float(m.weight_decay)  # couplings only (the optimizer's decays everything)
    persist_hidden = bool(m.get("persist_hidden", False))
    if persist_hidden and m.loss != "pcd":
        raise ValueError("config.model.persist_hidden=True needs config.model.loss='pcd', got "
                         f"{m.loss!r}")
    if m.loss == "cd":
        return dict(loss_fn=cd_loss(int(m.cd_steps), weight_decay))
    if m.loss == "pcd":
        key = jax.random.fold_in(jax.random.key(int(config.seed)), 21)
        if persist_hidden and model is None:
            raise ValueError("config.model.persist_hidden=True needs the model to draw the "
                             "initial hidden layer of the persistent chains")
        return dict(loss_fn=pcd_loss(int(m.cd_steps), weight_decay, persist_hidden),
                    extra_init=pcd_init(key, dataset.train, int(m.num_chains),
                                        model=model if persist_hidden else None))
    raise ValueError(f"config.model.loss must be 'cd' or 'pcd', got {m.loss!r}")


def _jit_on_model(fn: Callable, model, *args):
    """``fn(model, *args)`` compiled, the model's state passed as an argument."""
    graphdef, state = nnx.split(model)
    return jit(lambda st, *a: fn(nnx.merge(graphdef, st), *a))(state, *args)


def _log_z_results(method, log_z, wall_s, ais=None) -> dict:
    out = dict(log_z=float(log_z), log_z_method=method, log_z_wall_s=wall_s)
    if ais is not None:
        out.update(log_z_std_err=float(ais.log_z_std_err), ais_ess=float(ais.ess),
                   ais_log_z_base=float(ais.log_z_base))
    return out


def _normalize_binary(config, dataset, model, key, num_bits: int, ais_fn) -> tuple:
    m = config.model
    t0 = time.perf_counter()
    use_exact = m.log_z == "exact" or (m.log_z == "auto" and num_bits <= EXACT_MAX_BITS)
    if use_exact:
        log_z = float(_jit_on_model(lambda mdl: mdl.exact_log_partition(), model))
        model.log_z[...] = jnp.asarray(log_z, jnp.float32)
        return model, _log_z_results("exact", log_z, time.perf_counter() - t0)
    betas = temperature_schedule(int(m.ais_num_temps), m.ais_schedule)
    base = base_rate_logits(dataset.train)
    result = _jit_on_model(lambda mdl, k: ais_fn(k, mdl, betas, int(m.ais_num_runs), base),
                           model, key)
    jax.block_until_ready(result)
    model.log_z[...] = jnp.asarray(result.log_z, jnp.float32)
    return model, _log_z_results("ais", result.log_z, time.perf_counter() - t0, result)


def _rbm_prepare_eval(config, dataset, model, key):
    return _normalize_binary(config, dataset, model, key,
                             min(model.num_visible, model.num_hidden), rbm_ais)


def _fvbm_prepare_eval(config, dataset, model, key):
    return _normalize_binary(config, dataset, model, key, model.num_units, fvbm_ais)


_CONTRASTIVE = dict(loss="pcd", cd_steps=1, num_chains=100, log_z="auto", ais_num_temps=15000,
                    ais_num_runs=100, ais_schedule="piecewise", init_base_rates=True,
                    weight_decay=0.0)


@register("rbm", data_kind="binary", num_hidden=500, init_scale=0.01, sample_steps=1000,
          persist_hidden=False, **_CONTRASTIVE)
def _rbm(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Bernoulli RBM trained by CD-k/PCD; log Z exact (small) or by AIS."""
    model = BernoulliRBM(data.event_shape, int(model_config.num_hidden), rngs=rngs,
                         init_scale=float(model_config.init_scale),
                         sample_steps=int(model_config.sample_steps))
    if model_config.init_base_rates:  # visible biases at the data's log-odds (Hinton 2010)
        model.visible_bias[...] = jnp.asarray(base_rate_logits(data.train))
    return model


_rbm.run_hooks = RunHooks(_contrastive_train_kwargs, _rbm_prepare_eval)


@register("fvbm", data_kind="binary", init_scale=0.01, sample_sweeps=200,
          **dict(_CONTRASTIVE, ais_num_temps=2000, ais_schedule="linear"))
def _fvbm(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Fully visible Boltzmann machine trained by CD-k/PCD (site Gibbs); log Z exact or AIS."""
    model = FullyVisibleBM(data.event_shape, rngs=rngs, init_scale=float(model_config.init_scale),
                           sample_sweeps=int(model_config.sample_sweeps))
    if model_config.init_base_rates:
        model.bias[...] = jnp.asarray(base_rate_logits(data.train))
    return model


_fvbm.run_hooks = RunHooks(_contrastive_train_kwargs, _fvbm_prepare_eval)


# ------------------------------------------------------------------------------------------
# Neural energies: short-run Langevin from a replay buffer.


def _noise_box(train: np.ndarray, margin: float) -> tuple[float, float]:
    lo, hi = float(np.min(train)), float(np.max(train))
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def _neural_train_kwargs(config, dataset, model=None) -> dict:
    from jaxgen.energy.losses import langevin_replay_loss
    from jaxgen.energy.replay_buffer import init_replay_buffer

    m = config.model
    lo, hi = _noise_box(np.asarray(dataset.train, np.float32), float(m.noise_margin))
    key = jax.random.fold_in(jax.random.key(int(config.seed)), 22)
    shape = dataset.event_shape
    buffer = init_replay_buffer(
        key, int(m.buffer_size),
        lambda k, n: jax.random.uniform(k, (n, *shape), minval=lo, maxval=hi))
    loss = langevin_replay_loss(int(m.langevin_steps), float(m.reinit_prob),
                                float(m.energy_reg), float(m.grad_clip) or None)
    return dict(loss_fn=loss, extra_init={"buffer": buffer})


def grid_log_partition(model, low, high, grid_size: int) -> float:
    """``log Z ~= log sum_grid exp(-E(x)) * cell_area`` on a ``grid_size^2`` grid of the box
    ``[low, high]`` (``[2]`` each) of a 2D energy (mass outside the box is ignored)."""
    xs = np.linspace(low[0], high[0], grid_size, dtype=np.float32)
    ys = np.linspace(low[1], high[1], grid_size, dtype=np.float32)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    cell = float((xs[1] - xs[0]) * (ys[1] - ys[0]))
    energies = _jit_on_model(lambda mdl, x: mdl.energy(x), model, jnp.asarray(pts))
    return float(jax.nn.logsumexp(-energies)) + math.log(cell)


def _neural_prepare_eval(config, dataset, model, key):
    from jaxgen.energy.ais import geometric_path_ais
    from jaxgen.mcmc.mala import mala

    m = config.model
    t0 = time.perf_counter()
    data = np.asarray(dataset.train, np.float32).reshape(len(dataset.train), -1)
    if dataset.event_shape == (2,) and m.log_z in ("auto", "grid"):
        span = data.max(0) - data.min(0)
        low, high = data.min(0) - 0.25 * span, data.max(0) + 0.25 * span
        log_z = grid_log_partition(model, low, high, int(m.grid_size))
        model.log_z[...] = jnp.asarray(log_z, jnp.float32)
        out = _log_z_results("grid", log_z, time.perf_counter() - t0)
        out["log_z_grid_box"] = [low.tolist(), high.tolist()]
        return model, out
    betas = temperature_schedule(int(m.ais_num_temps), m.ais_schedule)
    mean, std = data.mean(0), data.std(0) + 0.05
    shape = dataset.event_shape

    def run(mdl, k):
        energy = lambda x: mdl.energy(x.reshape(1, *shape))[0]
        return geometric_path_ais(k, energy, mean, std,
                                  lambda f: mala(f, float(m.ais_step_size)), betas,
                                  int(m.ais_num_runs))

    result = _jit_on_model(run, model, key)
    model.log_z[...] = jnp.asarray(result.log_z, jnp.float32)
    return model, _log_z_results("ais", result.log_z, time.perf_counter() - t0, result)


_NEURAL = dict(langevin_steps=30, step_size=0.005, noise_scale=0.1, grad_clip=0.0,
               reinit_prob=0.05, energy_reg=0.1, buffer_size=10000, noise_margin=0.1,
               sample_steps=200, log_z="auto", grid_size=400, ais_num_temps=1000,
               ais_num_runs=100, ais_schedule="sigmoid", ais_step_size=0.001)


def _neural_common(model_config, data: ModelData) -> dict:
    lo, hi = _noise_box(np.asarray(data.train, np.float32), float(model_config.noise_margin))
    return dict(noise_low=lo, noise_high=hi, sample_steps=int(model_config.sample_steps),
                step_size=float(model_config.step_size),
                noise_scale=float(model_config.noise_scale))


@register("ebm_mlp", data_kind="continuous", hidden_sizes=(128, 128), **_NEURAL)
def _ebm_mlp(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """MLP energy trained with short-run Langevin + replay buffer; log Z on a grid (2D)/AIS."""
    from jaxgen.energy.neural import MLPEnergy
    return MLPEnergy(data.event_shape, tuple(model_config.hidden_sizes), rngs=rngs,
                     **_neural_common(model_config, data))


_ebm_mlp.run_hooks = RunHooks(_neural_train_kwargs, _neural_prepare_eval)


@register("ebm_conv", data_kind="continuous", channels=(32, 64), **_NEURAL)
def _ebm_conv(model_config, data: ModelData, rngs: nnx.Rngs) -> nnx.Module:
    """Small conv energy for images, short-run Langevin + replay buffer; log Z by AIS."""
    from jaxgen.energy.neural import ConvEnergy
    return ConvEnergy(data.event_shape, tuple(model_config.channels), rngs=rngs,
                      **_neural_common(model_config, data))


_ebm_conv.run_hooks = RunHooks(_neural_train_kwargs, _neural_prepare_eval)
