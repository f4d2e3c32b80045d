"""Annealed importance sampling (Neal 2001) for ``log Z`` of energy-based models.

Intermediate densities ``f_k`` (unnormalized, log) go from a base ``f_0`` with known
``Z_0`` to the target ``f_K`` along ``0 = beta_0 < ... < beta_K = 1``. Each run draws
``x_0 ~ p_0`` and, for ``k = 1..K``, adds ``f_k(x) - f_{k-1}(x)`` to its log weight and then
moves ``x`` with a kernel leaving ``p_k`` invariant. ``E[w] = Z_K / Z_0``, so::

    log Z_K ~= log Z_0 + log (1/R) sum_r w_r          (log-mean-exp over R runs)

The estimate is unbiased for ``Z`` (a stochastic lower bound on ``log Z`` in expectation).
Its error bar comes from the delta method: with ``w~ = w / max w``,
``se(log Z) = std(w~) / (sqrt(R) mean(w~))``; ``ess = (sum w)^2 / sum w^2``.

Paths provided:

* Bernoulli RBM (Salakhutdinov & Murray 2008): the base has visible biases ``b_A``
  (data base rates) and no couplings; all energies are scaled,
  ``f_beta(v) = (1-beta) b_A^T v + beta b^T v + sum_j softplus(beta (c_j + (v^T W)_j))``,
  ``log Z_0 = sum_i softplus(b_A,i) + H log 2``; the kernel is block Gibbs on
  ``p_beta(v, h)``.
* Gaussian-Bernoulli RBM: base ``N(b, sigma^2) x Bernoulli(1/2)^H``; only the coupling and
  hidden bias are scaled by ``beta``.
* Any energy on ``R^D`` (``geometric_path_ais``): a Gaussian base, the geometric path
  ``f_beta = (1-beta) log p_0 - beta E``, and any ``(init, step)`` kernel (MALA, HMC...).

These functions are pure (jit them at the call site: ``jaxgen.mcmc.run.jit``).
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.energy.rbm import BernoulliRBM, GaussianBernoulliRBM
from jaxgen.mcmc import rng
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class AISResult(NamedTuple):
    """What AIS returns.

    Attributes:
      log_z: ``log Z_0 + log mean exp(log_weights)``.
      log_z_std_err: delta-method standard error of ``log_z``.
      log_weights: ``[R]`` log importance weights ``log(Z_K/Z_0)`` per run.
      ess: effective sample size of the weights, ``(sum w)^2 / sum w^2``.
      log_z_base: ``log Z_0``.
    """

    log_z: Array
    log_z_std_err: Array
    log_weights: Array
    ess: Array
    log_z_base: Array


def temperature_schedule(num_temps: int, kind: str = "linear", *,
                         sigmoid_scale: float = 4.0) -> np.ndarray:
    """Inverse temperatures ``beta_0 = 0 < ... < beta_{K} = 1``, ``num_temps = K + 1``.

    Args:
      num_temps: number of betas (>= 2).
      kind: ``"linear"``; ``"sigmoid"`` (Grosse et al. 2015: ``sigma(delta (2t-1))``
        rescaled to [0, 1], dense at both ends); ``"piecewise"`` (Salakhutdinov & Murray:
        1/30 of the temperatures on [0, .5], 4/15 on [.5, .9], 2/3 on [.9, 1]).
      sigmoid_scale: ``delta`` of the sigmoid schedule.
    """
    if num_temps < 2:
        raise ValueError(f"num_temps must be >= 2, got {num_temps}")
    t = np.linspace(0.0, 1.0, num_temps)
    if kind == "linear":
        betas = t
    elif kind == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-sigmoid_scale * (2 * t - 1)))
        betas = (s - s[0]) / (s[-1] - s[0])
    elif kind == "piecewise":
        n1, n2 = max(1, num_temps // 30), max(1, (4 * num_temps) // 15)
        n3 = max(2, num_temps - n1 - n2)
        betas = np.concatenate([np.linspace(0, 0.5, n1, endpoint=False),
                                np.linspace(0.5, 0.9, n2, endpoint=False),
                                np.linspace(0.9, 1.0, n3)])
    else:
        raise ValueError(f"kind must be linear, sigmoid or piecewise, got {kind!r}")
    return betas.astype(np.float32)


def log_mean_exp_with_error(log_weights: Array) -> tuple[Array, Array, Array]:
    """``(log mean exp(lw), delta-method std error, ESS)`` of ``[R]`` log weights."""
    log_weights = jnp.asarray(log_weights)
    num_runs = log_weights.shape[0]
    shifted = jnp.exp(log_weights - jnp.max(log_weights))  # [R] in (0, 1]
    mean = jnp.mean(shifted)
    log_mean = jnp.log(mean) + jnp.max(log_weights)
    std_err = jnp.std(shifted, ddof=1) / (math.sqrt(num_runs) * mean)
    ess = jnp.sum(shifted) ** 2 / jnp.sum(shifted ** 2)
    return log_mean, std_err, ess


def ais(key: PRNGKey, sample_base_fn: Callable[[PRNGKey, int], Array], log_z_base: Array,
        path_logdensity_fn: Callable[[Array, Array], Array],
        transition_fn: Callable[[PRNGKey, Array, Array], Array], betas, num_runs: int
        ) -> AISResult:
    """Generic AIS over a batch of runs.

    Args:
      key: PRNG key.
      sample_base_fn: ``(key, R) -> x [R, ...]`` exact draws of ``p_0``.
      log_z_base: ``log Z_0`` of ``exp(path_logdensity_fn(., 0))``.
      path_logdensity_fn: ``(x [R, ...], beta) -> [R]`` log ``f_beta(x)`` (unnormalized).
      transition_fn: ``(key, x [R, ...], beta) -> x``, a kernel leaving ``p_beta`` invariant.
      betas: ``[K+1]`` increasing from 0 to 1.
      num_runs: ``R``.

    Returns:
      ``AISResult``.
    """
    betas = jnp.asarray(betas, jnp.float32)
    key_base, key_run = jax.random.split(key)
    x = sample_base_fn(key_base, int(num_runs))

    def body(carry, inputs):
        x, log_w = carry
        k, beta_prev, beta = inputs
        log_w = log_w + path_logdensity_fn(x, beta) - path_logdensity_fn(x, beta_prev)
        return (transition_fn(k, x, beta), log_w), None

    keys = jax.random.split(key_run, betas.shape[0] - 1)
    (_, log_w), _ = jax.lax.scan(body, (x, jnp.zeros((int(num_runs),))),
                                 (keys, betas[:-1], betas[1:]))
    log_ratio, std_err, ess = log_mean_exp_with_error(log_w)
    log_z_base = jnp.asarray(log_z_base, jnp.float32)
    return AISResult(log_z_base + log_ratio, std_err, log_w, ess, log_z_base)


def base_rate_logits(data, pseudocount: float = 1.0) -> np.ndarray:
    """Logits of ``p_i = (sum_n x_ni + a) / (N + 2a)``: the base-rate model of binary data,
    ``[V]`` (data ``[N, *event_shape]``)."""
    x = np.asarray(data).reshape(len(data), -1).astype(np.float64)
    p = (x.sum(0) + pseudocount) / (x.shape[0] + 2.0 * pseudocount)
    return np.log(p / (1 - p)).astype(np.float32)


def rbm_ais(key: PRNGKey, rbm, betas, num_runs: int,
            base_visible_logits: Array | None = None) -> AISResult:
    """AIS estimate of an RBM's ``log Z`` (Bernoulli or Gaussian-Bernoulli), see module doc.

    Args:
      key: PRNG key.
      rbm: ``BernoulliRBM`` or ``GaussianBernoulliRBM``.
      betas: ``[K+1]`` schedule (``temperature_schedule``).
      num_runs: parallel AIS runs ``R``.
      base_visible_logits: ``b_A [V]`` of the Bernoulli base (default 0: uniform); use
        ``base_rate_logits(train_data)`` for a base close to the data.
    """
    w, c = rbm.weights[...], rbm.hidden_bias[...]
    num_visible, num_hidden = rbm.num_visible, rbm.num_hidden
    if isinstance(rbm, GaussianBernoulliRBM):
        b, sigma, log_sigma = rbm.visible_bias[...], rbm.sigma(), rbm.log_sigma[...]

        def path(v, beta):  # [R, V] -> [R]
            quad = 0.5 * jnp.sum(((v - b) / sigma) ** 2, axis=-1)
            return -quad + jnp.sum(jax.nn.softplus(beta * ((v / sigma) @ w + c)), axis=-1)

        def transition(k, v, beta):
            k_h, k_v = jax.random.split(k)
            p_h = jax.nn.sigmoid(beta * ((v / sigma) @ w + c))
            h = rng.bernoulli_from_probs(k_h, p_h)
            mean = b + sigma * beta * (h @ w.T)
            return mean + sigma * rng.normal(k_v, mean.shape)

        def sample_base(k, n):
            return b + sigma * rng.normal(k, (n, num_visible))

        log_z_base = (jnp.sum(0.5 * math.log(2 * math.pi) + log_sigma)
                      + num_hidden * math.log(2.0))
    elif isinstance(rbm, BernoulliRBM):
        b = rbm.visible_bias[...]
        b_a = (jnp.zeros((num_visible,)) if base_visible_logits is None
               else jnp.asarray(base_visible_logits, jnp.float32).reshape(num_visible))

        def path(v, beta):
            return (v @ ((1 - beta) * b_a + beta * b)
                    + jnp.sum(jax.nn.softplus(beta * (v @ w + c)), axis=-1))

        def transition(k, v, beta):
            k_h, k_v = jax.random.split(k)
            p_h = jax.nn.sigmoid(beta * (v @ w + c))
            h = rng.bernoulli_from_probs(k_h, p_h)
            p_v = jax.nn.sigmoid((1 - beta) * b_a + beta * (h @ w.T + b))
            return rng.bernoulli_from_probs(k_v, p_v)

        def sample_base(k, n):
            return rng.bernoulli_from_probs(
                k, jnp.broadcast_to(jax.nn.sigmoid(b_a), (n, num_visible)))

        log_z_base = jnp.sum(jax.nn.softplus(b_a)) + num_hidden * math.log(2.0)
    else:
        raise TypeError(f"rbm_ais needs a BernoulliRBM or GaussianBernoulliRBM, got "
                        f"{type(rbm).__name__}")
    return ais(key, sample_base, log_z_base, path, transition, betas, num_runs)


def fvbm_ais(key: PRNGKey, fvbm, betas, num_runs: int,
             base_logits: Array | None = None) -> AISResult:
    """AIS for a fully visible BM from an independent Bernoulli base ``b_A``:
    ``f_beta(x) = (1-beta) b_A^T x + beta (x^T J x / 2 + b^T x)``,
    ``log Z_0 = sum_i softplus(b_A,i)``; the kernel is one site-by-site Gibbs sweep with
    log-odds ``(1-beta) b_A,i + beta (J_i x + b_i)``."""
    j, b = fvbm.coupling(), fvbm.bias[...]
    d = fvbm.num_units
    b_a = (jnp.zeros((d,)) if base_logits is None
           else jnp.asarray(base_logits, jnp.float32).reshape(d))

    def path(x, beta):  # [R, D] -> [R]
        return x @ ((1 - beta) * b_a + beta * b) + 0.5 * beta * jnp.einsum("ri,ij,rj->r", x, j, x)

    def transition(k, x, beta):
        u = rng.uniform(k, x.shape)  # [R, D]

        def site(x, i):
            logit = (1 - beta) * b_a[i] + beta * (x @ j[i] + b[i])  # [R]
            return x.at[:, i].set((u[:, i] < jax.nn.sigmoid(logit)).astype(x.dtype)), None

        x, _ = jax.lax.scan(site, x, jnp.arange(d))
        return x

    def sample_base(k, n):
        return rng.bernoulli_from_probs(k, jnp.broadcast_to(jax.nn.sigmoid(b_a), (n, d)))

    return ais(key, sample_base, jnp.sum(jax.nn.softplus(b_a)), path, transition, betas,
               num_runs)


def geometric_path_ais(key: PRNGKey, energy_fn: Callable[[Array], Array], base_mean: Array,
                       base_std: Array, make_kernel: Callable[[Callable], SamplingAlgorithm],
                       betas, num_runs: int, steps_per_temp: int = 1) -> AISResult:
    """AIS for ``Z = int exp(-E(x)) dx`` on ``R^D`` from a diagonal Gaussian base.

    ``f_beta(x) = (1 - beta) log N(x; mu, s^2) - beta E(x)`` (``log Z_0 = 0``); at each
    temperature every run takes ``steps_per_temp`` steps of ``make_kernel(log f_beta)``.

    Args:
      key: PRNG key.
      energy_fn: ``x [D] -> E(x)`` for ONE point (scalar).
      base_mean, base_std: ``[D]`` of the Gaussian base (e.g. the data's moments).
      make_kernel: ``logdensity_fn -> SamplingAlgorithm``, e.g.
        ``lambda f: mcmc.mala(f, 0.01)``; its state must have ``.position``.
      betas, num_runs: schedule and ``R``.
      steps_per_temp: kernel steps per temperature.
    """
    mu = jnp.asarray(base_mean, jnp.float32)
    std = jnp.asarray(base_std, jnp.float32)

    def base_logdensity(x):
        return jnp.sum(-0.5 * ((x - mu) / std) ** 2 - jnp.log(std) - 0.5 * math.log(2 * math.pi))

    def single_path(x, beta):
        return (1 - beta) * base_logdensity(x) - beta * energy_fn(x)

    def transition(k, x, beta):
        kernel = make_kernel(lambda y: single_path(y, beta))

        def one(kk, xi):
            state = kernel.init(xi)
            state, _ = jax.lax.scan(lambda s, k2: kernel.step(k2, s), state,
                                    jax.random.split(kk, int(steps_per_temp)))
            return state.position

        return jax.vmap(one)(jax.random.split(k, x.shape[0]), x)

    def sample_base(k, n):
        return mu + std * rng.normal(k, (n, mu.shape[0]))

    path = jax.vmap(single_path, in_axes=(0, None))
    return ais(key, sample_base, 0.0, path, transition, betas, num_runs)


__all__ = ["AISResult", "temperature_schedule", "log_mean_exp_with_error", "ais",
           "base_rate_logits", "rbm_ais", "fvbm_ais", "geometric_path_ais"]
