"""Training objectives of the energy-based family (`jaxgen.training.objective.Objective`).

``loss`` is positive minus negative phase (`jaxgen.energy.losses`); ``finalize`` sets
``log Z`` so that the model's ``log_prob`` is normalized before it is evaluated:

* binary models (RBM, fully visible BM): exactly by enumerating ``2^n`` states when
  ``n <= exact_max_bits`` (``n = min(V, H)`` for an RBM, whose free energy sums out one
  layer), else by annealed importance sampling (its standard error and ESS are reported);
* neural energies: on 2D data by quadrature over the whole plane
  (`jaxgen.energy.quadrature.log_partition_2d`: nested doubling boxes around the data by
  the midpoint rule, the tail beyond the last box by Student-t importance sampling;
  ``log_z_method = "nested_midpoint+student_t_tail"``, with ``log_z_std_err`` from the
  discretization and the tail, and the mass outside the data box and beyond the last box
  reported), else by AIS along the geometric path from a Gaussian fitted to the data, with
  MALA transitions.

Each ``finalize`` returns a copy of the model with ``log_z`` set (the argument is unchanged)
and ``{"log_z", "log_z_method", "log_z_wall_s", "log_z_std_err", ...}``.

A class-conditional neural energy ``E(x, y)`` (``model.num_classes = K``) gets one
``log Z(y) = log int exp(-E(x, y)) dx`` per class, by the same quadrature (on the box of the
whole training set, so every class's integral covers every mode the data have; one
compilation for all classes, the label passed as a traced argument) or AIS (from a Gaussian
fitted to the class's own examples); the results hold ``[K]`` lists under the same keys
(``log_z``, ``log_z_std_err``, ...), ``log_z_converged`` true only when every class's is.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.energy.ais import (base_rate_logits, fvbm_ais, geometric_path_ais, rbm_ais,
                               temperature_schedule)
from jaxgen.energy.estimators import (GaussianNoise, dsm_loss, learned_log_z, nce_loss,
                                      ssm_loss)
from jaxgen.energy.losses import (_contrastive, cd_loss, coupling_l2, langevin_replay_loss,
                                  pcd_init, pcd_loss)
from jaxgen.energy.quadrature import log_partition_2d
from jaxgen.energy.replay_buffer import init_replay_buffer
from jaxgen.mcmc.run import jit
from jaxgen.training.objective import Objective

EXACT_MAX_BITS = 20  # enumerate 2^n states up to this n; AIS above
LOG_Z_METHODS = ("auto", "exact", "ais", "quadrature")


def _on_model(fn: Callable, model, *args):
    """``fn(model, *args)`` compiled, the model's state passed as an argument."""
    graphdef, state = nnx.split(model)
    return jit(lambda st, *a: fn(nnx.merge(graphdef, st), *a))(state, *args)


def _with_log_z(model, log_z) -> nnx.Module:
    """A copy of ``model`` with ``log_z`` set; the argument is unchanged. ``nnx.clone``, not
    `copy_model`: with flax 0.12 ``nnx.merge(*nnx.split(m))`` shares ``m``'s Variables,
    so setting the copy's ``log_z`` would set the argument's too."""
    model = nnx.clone(model)
    model.log_z[...] = jnp.asarray(log_z, jnp.float32)
    return model


def _log_z_results(method: str, log_z, wall_s: float, ais=None) -> dict:
    out = dict(log_z=float(log_z), log_z_method=method, log_z_wall_s=wall_s)
    if ais is not None:
        out.update(log_z_std_err=float(ais.log_z_std_err), ais_ess=float(ais.ess),
                   ais_log_z_base=float(ais.log_z_base))
    return out


def _per_class_results(per_class: list[dict]) -> dict:
    """One results dict of ``K`` per-class ones: every numeric entry becomes a ``[K]`` list
    under the same key; the method stays one string, ``*_converged`` is true when every
    class's is."""
    out = {}
    for key in per_class[0]:
        values = [r[key] for r in per_class]
        if key.endswith("_method"):
            out[key] = values[0]
        elif key.endswith("_converged"):
            out[key] = bool(all(values))
        else:
            out[key] = values
    return out


def _class_of(model) -> int | None:
    """``K`` of a class-conditional energy, else None."""
    return getattr(model, "num_classes", None)


@dataclasses.dataclass(frozen=True)
class BinaryLogZ:
    """How a binary energy model's ``log Z`` is computed before evaluation.

    Attributes:
      method: ``auto`` (exact up to `EXACT_MAX_BITS` summed-over bits, else AIS), ``exact``
        or ``ais``.
      ais_num_temps, ais_num_runs, ais_schedule: AIS (`temperature_schedule`).
    """

    method: str = "auto"
    ais_num_temps: int = 15000
    ais_num_runs: int = 100
    ais_schedule: str = "piecewise"

    def __post_init__(self):
        if self.method not in ("auto", "exact", "ais"):
            raise ValueError(f"log_z method for binary models must be auto, exact or ais, "
                             f"got {self.method!r}")

    def __call__(self, model, train_data, key) -> tuple[nnx.Module, dict]:
        t0 = time.perf_counter()
        if hasattr(model, "num_hidden"):  # RBM: free energy sums out the larger layer
            num_bits, ais_fn = min(model.num_visible, model.num_hidden), rbm_ais
        else:
            num_bits, ais_fn = model.num_units, fvbm_ais
        if self.method == "exact" or (self.method == "auto" and num_bits <= EXACT_MAX_BITS):
            log_z = float(_on_model(lambda m: m.exact_log_partition(), model))
            return _with_log_z(model, log_z), _log_z_results("exact", log_z,
                                                             time.perf_counter() - t0)
        betas = temperature_schedule(int(self.ais_num_temps), self.ais_schedule)
        base = base_rate_logits(train_data)
        result = _on_model(lambda m, k: ais_fn(k, m, betas, int(self.ais_num_runs), base),
                           model, key)
        jax.block_until_ready(result)
        return _with_log_z(model, result.log_z), _log_z_results(
            "ais", result.log_z, time.perf_counter() - t0, result)


class ContrastiveDivergence(Objective):
    """CD-k: negatives are ``k`` kernel steps from the batch (`jaxgen.energy.losses.cd_loss`),
    ``+ (weight_decay / 2) ||W||^2`` of the couplings; ``finalize`` computes ``log Z``."""

    def __init__(self, num_steps: int = 1, weight_decay: float = 0.0,
                 log_z: BinaryLogZ = BinaryLogZ()):
        self.num_steps, self.weight_decay, self.log_z = int(num_steps), float(weight_decay), log_z
        self._loss = cd_loss(self.num_steps, self.weight_decay)

    def loss(self, model, batch, key, extra):
        loss, metrics = self._loss(model, batch, key)
        return loss, extra, metrics

    def finalize(self, model, data, key):
        return self.log_z(model, np.asarray(data.train), key)


class PersistentContrastiveDivergence(Objective):
    """PCD-k: negatives are ``k`` kernel steps from ``num_chains`` persistent chains carried
    in ``extra`` (`jaxgen.energy.losses.pcd_loss`); ``persist_hidden`` carries an RBM's
    hidden layer instead, and ``centering`` (with it, Bernoulli RBMs) follows the centered
    gradient (`jaxgen.energy.losses.centered_parameters`). ``init`` draws the chains from
    the data's base rates."""

    def __init__(self, num_steps: int = 1, num_chains: int = 100, weight_decay: float = 0.0,
                 persist_hidden: bool = False, log_z: BinaryLogZ = BinaryLogZ(),
                 centering: bool = False):
        if int(num_chains) < 1:
            raise ValueError(f"PCD needs num_chains >= 1, got {num_chains}")
        self.num_steps, self.num_chains = int(num_steps), int(num_chains)
        self.weight_decay, self.persist_hidden = float(weight_decay), bool(persist_hidden)
        self.centering = bool(centering)
        self.log_z = log_z
        self._loss = pcd_loss(self.num_steps, self.weight_decay, self.persist_hidden,
                              centering=self.centering)

    def init(self, model, train_data, key):
        return pcd_init(key, train_data, self.num_chains,
                        model=model if self.persist_hidden else None, centering=self.centering)

    def loss(self, model, batch, key, extra):
        loss, (metrics, extra) = self._loss(model, batch, key, extra)
        return loss, extra, metrics

    def finalize(self, model, data, key):
        return self.log_z(model, np.asarray(data.train), key)


def noise_box(train_data, margin: float) -> tuple[float, float]:
    """``[min - margin * span, max + margin * span]`` of the data (one box for all axes):
    where a neural EBM's fresh Langevin chains start."""
    train_data = np.asarray(train_data, np.float32)
    lo, hi = float(np.min(train_data)), float(np.max(train_data))
    pad = margin * (hi - lo)
    return lo - pad, hi + pad


def grid_log_partition(model, low, high, grid_size: int) -> float:
    """``log sum_grid exp(-E(x)) * cell_area`` on a ``grid_size^2`` grid of the box
    ``[low, high]`` (``[2]`` each) of a 2D energy: the box's mass only.

    Not a normalizer: the mass outside the box is dropped, so this is biased low (a trained
    EBM on moons leaves ~17% of its mass outside data box + 25%, 0.16 nats), with no error
    stated. `LangevinReplay.finalize` uses `jaxgen.energy.quadrature.log_partition_2d`;
    this stays for comparisons and quick checks."""
    xs = np.linspace(low[0], high[0], grid_size, dtype=np.float32)
    ys = np.linspace(low[1], high[1], grid_size, dtype=np.float32)
    pts = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    cell = float((xs[1] - xs[0]) * (ys[1] - ys[0]))
    energies = _on_model(lambda m, x: m.energy(x), model, jnp.asarray(pts))
    return float(jax.nn.logsumexp(-energies)) + math.log(cell)


@dataclasses.dataclass(frozen=True)
class NeuralLogZ:
    """How a continuous energy's ``log Z`` is computed before evaluation: in closed form
    when the model has ``exact_log_partition`` (`jaxgen.energy.gaussian_energy`); on 2D
    data by quadrature over the plane (``method`` auto/quadrature/grid;
    `jaxgen.energy.quadrature.log_partition_2d`); else by AIS from a Gaussian fitted to
    the data with MALA transitions. Fields as in `LangevinReplay`."""

    method: str = "auto"
    grid_size: int = 400
    log_z_tol: float = 1e-4
    log_z_max_doublings: int = 12
    log_z_tail_samples: int = 2 ** 16
    ais_num_temps: int = 1000
    ais_num_runs: int = 100
    ais_schedule: str = "sigmoid"
    ais_step_size: float = 0.001

    def __post_init__(self):
        if self.method not in ("auto", "quadrature", "grid", "ais"):
            raise ValueError(f"log_z for neural energies must be auto, quadrature or ais, "
                             f"got {self.method!r}")
        if int(self.grid_size) < 8 or int(self.grid_size) % 8:
            raise ValueError(f"grid_size must be a positive multiple of 8, got "
                             f"{self.grid_size}")

    def __call__(self, model, data, key) -> tuple[nnx.Module, dict]:
        from jaxgen.mcmc.mala import mala

        t0 = time.perf_counter()
        if hasattr(model, "exact_log_partition"):
            log_z = float(_on_model(lambda m: m.exact_log_partition(), model))
            return _with_log_z(model, log_z), _log_z_results("exact", log_z,
                                                             time.perf_counter() - t0)
        train = np.asarray(data.train, np.float32).reshape(len(data.train), -1)
        shape = tuple(np.shape(data.train)[1:])
        if _class_of(model) is not None:
            return self._per_class(model, data, train, shape, key, t0)
        if shape == (2,) and self.method in ("auto", "quadrature", "grid"):
            graphdef, state = nnx.split(model)
            estimate = log_partition_2d(
                lambda x: nnx.merge(graphdef, state).energy(x), train, key,
                grid_size=int(self.grid_size), tol=float(self.log_z_tol),
                max_doublings=int(self.log_z_max_doublings),
                num_tail_samples=int(self.log_z_tail_samples))
            out = dict(estimate.results(), log_z_wall_s=time.perf_counter() - t0)
            return _with_log_z(model, estimate.log_z), out
        betas = temperature_schedule(int(self.ais_num_temps), self.ais_schedule)
        mean, std = train.mean(0), train.std(0) + 0.05

        def run(mdl, k):
            energy = lambda x: mdl.energy(x.reshape(1, *shape))[0]
            return geometric_path_ais(k, energy, mean, std,
                                      lambda f: mala(f, float(self.ais_step_size)), betas,
                                      int(self.ais_num_runs))

        result = _on_model(run, model, key)
        return _with_log_z(model, result.log_z), _log_z_results(
            "ais", result.log_z, time.perf_counter() - t0, result)

    def _per_class(self, model, data, train, shape, key, t0) -> tuple[nnx.Module, dict]:
        """``log Z(y)`` for ``y = 0 .. K-1`` of a conditional energy: quadrature over the
        plane (2D) on the whole training set's box, else AIS from a Gaussian fitted to the
        class's examples (all examples when the data carry no labels or none of ``y``)."""
        from jaxgen.mcmc.mala import mala

        num_classes = int(model.num_classes)
        keys = [jax.random.fold_in(key, y) for y in range(num_classes)]
        graphdef, state = nnx.split(model)
        if shape == (2,) and self.method in ("auto", "quadrature", "grid"):
            def energy_fn(x, y):  # [N, 2], [] int -> [N]
                mdl = nnx.merge(graphdef, state)
                return mdl.energy(x, jnp.full((x.shape[0],), y, jnp.int32))

            estimates = [log_partition_2d(
                energy_fn, train, keys[y], grid_size=int(self.grid_size),
                tol=float(self.log_z_tol), max_doublings=int(self.log_z_max_doublings),
                num_tail_samples=int(self.log_z_tail_samples),
                energy_args=(jnp.int32(y),)) for y in range(num_classes)]
            log_z = [e.log_z for e in estimates]
            out = _per_class_results([e.results() for e in estimates])
        else:
            labels = getattr(data, "train_labels", None)
            betas = temperature_schedule(int(self.ais_num_temps), self.ais_schedule)

            def run(st, k, y, mean, std):
                mdl = nnx.merge(graphdef, st)
                energy = lambda x: mdl.energy(x.reshape(1, *shape), jnp.reshape(y, (1,)))[0]
                return geometric_path_ais(k, energy, mean, std,
                                          lambda f: mala(f, float(self.ais_step_size)), betas,
                                          int(self.ais_num_runs))

            run = jit(run)
            results = []
            for y in range(num_classes):
                rows = train if labels is None else train[np.asarray(labels) == y]
                rows = train if len(rows) == 0 else rows
                results.append(run(state, keys[y], jnp.int32(y), rows.mean(0),
                                   rows.std(0) + 0.05))
            log_z = [float(r.log_z) for r in results]
            out = _per_class_results([_log_z_results("ais", r.log_z, 0.0, r)
                                      for r in results])
        out["log_z_wall_s"] = time.perf_counter() - t0
        return _with_log_z(model, np.asarray(log_z, np.float32)), out


class LangevinReplay(Objective):
    """Neural energies: short-run Langevin negatives from a replay buffer
    (`jaxgen.energy.losses.langevin_replay_loss`). ``init`` fills the buffer with uniform
    noise over `noise_box` of the training data; ``finalize`` computes ``log Z`` by
    quadrature over the plane (2D data, ``log_z`` auto/quadrature;
    `jaxgen.energy.quadrature.log_partition_2d`) or by AIS.

    Args:
      langevin_steps, reinit_prob, energy_reg, grad_clip: the loss (``grad_clip`` 0: off).
      buffer_size, noise_margin: the replay buffer.
      log_z: ``auto``, ``quadrature`` (``grid`` is an alias kept for old configs: it names
        the same whole-plane quadrature, not the former box-only sum) or ``ais``.
      grid_size, log_z_tol, log_z_max_doublings, log_z_tail_samples: the quadrature
        (cells per axis of every box, a multiple of 8; stop when the last shell holds
        less than ``log_z_tol`` of the mass; at most that many doublings; Student-t tail
        draws).
      ais_*: AIS.
    """

    def __init__(self, *, langevin_steps: int = 30, reinit_prob: float = 0.05,
                 energy_reg: float = 0.1, grad_clip: float = 0.0, buffer_size: int = 10000,
                 noise_margin: float = 0.1, log_z: str = "auto", grid_size: int = 400,
                 log_z_tol: float = 1e-4, log_z_max_doublings: int = 12,
                 log_z_tail_samples: int = 2 ** 16, ais_num_temps: int = 1000, ais_num_runs: int = 100,
                 ais_schedule: str = "sigmoid", ais_step_size: float = 0.001):
        if log_z not in ("auto", "quadrature", "grid", "ais"):
            raise ValueError(f"log_z for neural energies must be auto, quadrature or ais, "
                             f"got {log_z!r}")
        if int(grid_size) < 8 or int(grid_size) % 8:
            raise ValueError(f"grid_size must be a positive multiple of 8, got {grid_size}")
        self.langevin_steps, self.reinit_prob = int(langevin_steps), float(reinit_prob)
        self.energy_reg, self.grad_clip = float(energy_reg), float(grad_clip)
        self.buffer_size, self.noise_margin = int(buffer_size), float(noise_margin)
        self.log_z, self.grid_size = log_z, int(grid_size)
        self.log_z_tol, self.log_z_max_doublings = float(log_z_tol), int(log_z_max_doublings)
        self.log_z_tail_samples = int(log_z_tail_samples)
        self.ais_num_temps, self.ais_num_runs = int(ais_num_temps), int(ais_num_runs)
        self.ais_schedule, self.ais_step_size = ais_schedule, float(ais_step_size)
        self._loss = langevin_replay_loss(self.langevin_steps, self.reinit_prob,
                                          self.energy_reg, self.grad_clip or None)
        self._log_z = NeuralLogZ(log_z, self.grid_size, self.log_z_tol,
                                 self.log_z_max_doublings, self.log_z_tail_samples,
                                 self.ais_num_temps, self.ais_num_runs, self.ais_schedule,
                                 self.ais_step_size)

    def init(self, model, train_data, key):
        """``{"buffer": [buffer_size, *event_shape]}`` of uniform noise over `noise_box`;
        for a conditional energy one buffer per class, ``[K, ceil(buffer_size / K), ...]``."""
        lo, hi = noise_box(train_data, self.noise_margin)
        shape = tuple(np.shape(train_data)[1:])
        num_classes = _class_of(model)
        per_class = (self.buffer_size if num_classes is None
                     else -(-self.buffer_size // int(num_classes)))
        size = per_class if num_classes is None else per_class * int(num_classes)
        buffer = init_replay_buffer(
            key, size, lambda k, n: jax.random.uniform(k, (n, *shape), minval=lo, maxval=hi))
        if num_classes is not None:
            buffer = buffer.reshape(int(num_classes), per_class, *shape)
        return {"buffer": buffer}

    def loss(self, model, batch, key, extra):
        loss, (metrics, extra) = self._loss(model, batch, key, extra)
        return loss, extra, metrics

    def finalize(self, model, data, key):
        return self._log_z(model, data, key)


class PersistentTempering(Objective):
    """PCD whose negative phase is parallel tempering: ``num_chains`` persistent ladders of
    ``num_rungs`` tempered RBMs (`jaxgen.mcmc.tempering.parallel_tempering` over
    `jaxgen.energy.rbm.BernoulliRBM.tempering`, geometric ladder from 1 to ``min_beta``,
    tempered towards the data's base rates: the hottest rung is nearly the factorized
    base-rate distribution, which mixes at once). Each optimizer step makes ``num_steps`` PT
    steps (one block Gibbs sweep per rung, then even-odd swaps) under the current parameters;
    the cold rungs are the negatives. Metrics add the mean swap acceptance and the lowest
    rung's (``swap_acceptance_min``) and the round trips so far.

    Raises:
      ValueError: ``num_chains < 1``, ``num_rungs < 2`` or ``min_beta`` not in (0, 1).
    """

    def __init__(self, num_steps: int = 1, num_chains: int = 100, num_rungs: int = 10,
                 min_beta: float = 0.1, weight_decay: float = 0.0,
                 log_z: BinaryLogZ = BinaryLogZ()):
        from jaxgen.mcmc.tempering import geometric_ladder

        if int(num_chains) < 1 or int(num_steps) < 1:
            raise ValueError(f"PT needs num_chains >= 1 and num_steps >= 1, got {num_chains}, "
                             f"{num_steps}")
        self.betas = geometric_ladder(num_rungs, min_beta)
        self.num_steps, self.num_chains = int(num_steps), int(num_chains)
        self.num_rungs, self.min_beta = int(num_rungs), float(min_beta)
        self.weight_decay, self.log_z = float(weight_decay), log_z

    def __repr__(self) -> str:
        return (f"PersistentTempering(num_steps={self.num_steps}, num_chains={self.num_chains}, "
                f"num_rungs={self.num_rungs}, min_beta={self.min_beta}, "
                f"weight_decay={self.weight_decay}, log_z={self.log_z!r})")

    def init(self, model, train_data, key):
        from jaxgen.mcmc.tempering import parallel_tempering

        if not hasattr(model, "tempering"):
            raise ValueError(f"PT training needs a BernoulliRBM, got {type(model).__name__}")
        base = jnp.asarray(base_rate_logits(train_data), jnp.float32)
        chains = pcd_init(key, train_data, self.num_chains * self.num_rungs)["chains"]
        chains = chains.reshape(self.num_chains, self.num_rungs, *chains.shape[1:])
        pt = parallel_tempering(*model.tempering(base), self.betas)
        return {"pt": jax.vmap(pt.init)(chains.astype(jnp.int32)), "base_logits": base}

    def loss(self, model, batch, key, extra):
        from jaxgen.mcmc.run import run_kernel
        from jaxgen.mcmc.tempering import parallel_tempering

        pt = parallel_tempering(*model.tempering(extra["base_logits"]), self.betas)
        keys = jax.random.split(key, self.num_chains)
        state, info = jax.vmap(lambda k, s: run_kernel(k, pt, s, self.num_steps))(
            keys, extra["pt"])
        state = jax.lax.stop_gradient(state)
        negative = state.position[:, 0].astype(jnp.asarray(batch).dtype)
        loss, metrics, _ = _contrastive(model, batch, negative)
        loss = loss + coupling_l2(model, self.weight_decay)
        attempted = jnp.sum(info.swap_attempted, axis=(0, 1))
        rate = jnp.sum(info.swap_accepted, axis=(0, 1)) / jnp.maximum(attempted, 1)
        metrics.update(swap_acceptance=jnp.mean(rate), swap_acceptance_min=jnp.min(rate),
                       round_trips=jnp.sum(state.round_trips).astype(jnp.float32))
        return loss, dict(extra, pt=state), metrics

    def finalize(self, model, data, key):
        return self.log_z(model, np.asarray(data.train), key)


class _ContinuousEstimator(Objective):
    """Shared: ``finalize`` computes ``log Z`` with `NeuralLogZ`."""

    def __init__(self, log_z: NeuralLogZ):
        self.log_z = log_z

    def finalize(self, model, data, key):
        return self.log_z(model, data, key)


class DenoisingScoreMatching(_ContinuousEstimator):
    """``1/2 E||sigma s(x + sigma eps) + eps||^2`` (`jaxgen.energy.estimators.dsm_loss`):
    no sampling in training; ``finalize`` computes ``log Z`` (`NeuralLogZ`)."""

    def __init__(self, noise_std: float = 0.1, log_z: NeuralLogZ = NeuralLogZ()):
        if not float(noise_std) > 0:
            raise ValueError(f"dsm_noise_std must be > 0, got {noise_std}")
        super().__init__(log_z)
        self.noise_std = float(noise_std)

    def loss(self, model, batch, key, extra):
        loss, metrics = dsm_loss(model, batch, key, self.noise_std)
        return loss, extra, metrics


class SlicedScoreMatching(_ContinuousEstimator):
    """``E[v^T (grad s) v + 1/2 ||s||^2]`` with ``num_projections`` Gaussian ``v``
    (`jaxgen.energy.estimators.ssm_loss`); ``finalize`` computes ``log Z``."""

    def __init__(self, num_projections: int = 1, log_z: NeuralLogZ = NeuralLogZ()):
        if int(num_projections) < 1:
            raise ValueError(f"ssm_projections must be >= 1, got {num_projections}")
        super().__init__(log_z)
        self.num_projections = int(num_projections)

    def loss(self, model, batch, key, extra):
        loss, metrics = ssm_loss(model, batch, key, self.num_projections)
        return loss, extra, metrics


class NoiseContrastiveEstimation(_ContinuousEstimator):
    """NCE against a Gaussian fitted to the training data, its covariance widened by
    ``noise_scale^2`` (`jaxgen.energy.estimators.nce_loss`, ``noise_ratio`` noise draws per
    example). ``init`` fits the noise (``extra = {"noise_mean", "noise_scale_tril"}``);
    ``finalize`` computes ``log Z`` independently (`NeuralLogZ`) and reports NCE's own
    normalizer ``nce_learned_log_z`` (``c``; 0 when the energy's bias carries it, in which
    case ``log_z`` itself is NCE's normalization error) next to it."""

    def __init__(self, noise_ratio: float = 1.0, noise_scale: float = 1.0,
                 log_z: NeuralLogZ = NeuralLogZ()):
        if not float(noise_ratio) > 0 or not float(noise_scale) > 0:
            raise ValueError(f"nce_noise_ratio and nce_noise_scale must be > 0, got "
                             f"{noise_ratio}, {noise_scale}")
        super().__init__(log_z)
        self.noise_ratio, self.noise_scale = float(noise_ratio), float(noise_scale)

    def init(self, model, train_data, key):
        del model, key
        noise = GaussianNoise.fit(train_data, self.noise_scale)
        return {"noise_mean": noise.mean, "noise_scale_tril": noise.scale_tril}

    def loss(self, model, batch, key, extra):
        noise = GaussianNoise(extra["noise_mean"], extra["noise_scale_tril"])
        loss, metrics = nce_loss(model, batch, key, noise, self.noise_ratio)
        return loss, extra, metrics

    def finalize(self, model, data, key):
        new, results = self.log_z(model, data, key)
        learned = float(_on_model(learned_log_z, model))
        gap = (np.asarray(results["log_z"], np.float64) - learned).tolist()  # [K] if conditional
        results.update(nce_learned_log_z=learned, nce_log_z_gap=gap)
        return new, results


ESTIMATORS = ("langevin", "dsm", "ssm", "nce")


__all__ = ["BinaryLogZ", "ContrastiveDivergence", "DenoisingScoreMatching", "ESTIMATORS",
           "EXACT_MAX_BITS", "LangevinReplay", "NeuralLogZ", "NoiseContrastiveEstimation",
           "PersistentContrastiveDivergence", "PersistentTempering", "SlicedScoreMatching",
           "grid_log_partition", "noise_box"]
