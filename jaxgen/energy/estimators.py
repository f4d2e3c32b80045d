"""Training energies without MCMC: denoising and sliced score matching, noise-contrastive
estimation.

For ``p(x) = exp(-E(x)) / Z`` the score ``s(x) = grad_x log p(x) = -grad_x E(x)`` does not
involve ``Z``, and NCE learns ``Z`` as a number; none of the three needs samples of the
model.

* **Denoising score matching** (Vincent 2011): for ``x~ = x + sigma eps``,
  ``eps ~ N(0, I)``, minimize ``L = 1/2 E || sigma s(x~) + eps ||^2``
  (``sigma^2``-weighted ``|| s(x~) - grad log q(x~ | x) ||^2``). Its minimizer is the score
  of the *noised* data ``p_data * N(0, sigma^2 I)``: for Gaussian data ``N(mu, Sigma)`` and a
  Gaussian energy, the fit is ``N(mu, Sigma + sigma^2 I)`` (a bias of ``sigma^2``, the
  price of not differentiating the score).
* **Sliced score matching** (Song et al. 2019, the variance-reduced form):
  ``L = E_x E_v [ v^T (grad_x s(x)) v + 1/2 ||s(x)||^2 ]``, ``v ~ N(0, I)``;
  ``E_v[v^T J v] = tr J``, so this is Hyvarinen's score matching
  ``E[tr grad s + 1/2 ||s||^2]`` with the trace estimated by ``num_projections``
  Jacobian-vector products (one forward-over-reverse pass each, not ``D``). Consistent: for
  a Gaussian energy its minimizer is the sample mean and covariance.
* **Noise-contrastive estimation** (Gutmann & Hyvarinen 2010): with noise ``q`` and ``nu``
  noise draws per data point, a logistic classifier on
  ``G(x) = log p_theta(x) - log(nu q(x))``, ``log p_theta = -E(x) - c`` with ``c`` a learned
  scalar (the model's ``learned_log_z`` when it has one; a network with a free output bias
  learns it in that bias instead)::

      L = -E_data[log sigmoid(G(x))] - nu E_q[log sigmoid(-G(y))]

  At the optimum ``p_theta = p_data`` and ``c = log Z`` (for a model family containing the
  data law): NCE learns the normalizer.

Every loss takes a model with ``energy(x) -> [B]`` (per-example energies: the score of a
batch is the gradient of their sum) and returns ``(loss, metrics)``. A ``Labeled(x, y)``
batch (`jaxgen.data.batching`) trains a class-conditional energy ``E(x, y)``: the score is
``-grad_x E(x, y)`` at the example's own label, and NCE's noise draws take the batch's labels
(noise draw ``m`` gets ``y_{m mod B}``), so each class's ``exp(-E(., y))`` is fitted to
``p(x | y)`` against the same class-free noise ``q``.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.data.batching import context_of, inputs_of
from jaxgen.types import Array, PRNGKey


def _ctx(context) -> dict:
    """``energy``'s keyword arguments: ``{}`` unconditional, else ``{"context": y}``."""
    return {} if context is None else {"context": context}


def score(model, x: Array, context=None) -> Array:
    """``s(x) = -grad_x E(x)`` (``-grad_x E(x, y)`` given labels ``context [B]``):
    ``[B, *event_shape] -> same`` (examples are independent, so this is the gradient of
    ``sum_b E(x_b)``)."""
    return -jax.grad(lambda v: jnp.sum(model.energy(v, **_ctx(context))))(x)


def _per_example(a: Array) -> Array:  # [B, ...] -> [B]
    return jnp.sum(a.reshape(a.shape[0], -1), axis=-1)


def dsm_loss(model, batch: Array, key: PRNGKey, noise_std: float) -> tuple[Array, dict]:
    """Denoising score matching, ``L = 1/2 mean_b ||sigma s(x_b + sigma eps_b) + eps_b||^2``.

    Args:
      model: has ``energy(x) -> [B]``.
      batch: ``[B, *event_shape]`` float data, or ``Labeled(x, y)``.
      key: for ``eps``.
      noise_std: ``sigma > 0``.
    """
    x, context = jnp.asarray(inputs_of(batch), jnp.float32), context_of(batch)
    eps = jax.random.normal(key, x.shape)
    residual = noise_std * score(model, x + noise_std * eps, context) + eps
    loss = 0.5 * jnp.mean(_per_example(residual ** 2))
    return loss, {"dsm": loss}


def ssm_loss(model, batch: Array, key: PRNGKey, num_projections: int = 1
             ) -> tuple[Array, dict]:
    """Sliced score matching (variance-reduced):
    ``L = mean_b [ mean_m v_m^T (grad s(x_b)) v_m + 1/2 ||s(x_b)||^2 ]``, ``v ~ N(0, I)``.

    ``(grad s) v`` is one ``jax.jvp`` of the score per projection (the examples' Jacobians
    are block diagonal, so one jvp of the batch gives every example's product).
    """
    x, context = jnp.asarray(inputs_of(batch), jnp.float32), context_of(batch)
    vs = jax.random.normal(key, (int(num_projections), *x.shape))
    score_fn = lambda v: score(model, v, context)
    s = score_fn(x)

    def curvature(v):  # [B]: v^T (grad s) v per example
        _, jv = jax.jvp(score_fn, (x,), (v,))
        return _per_example(v * jv)

    trace = jnp.mean(jax.vmap(curvature)(vs), axis=0)  # [B]
    norm = 0.5 * _per_example(s ** 2)
    loss = jnp.mean(trace + norm)
    return loss, {"ssm_trace": jnp.mean(trace), "ssm_score_norm": jnp.mean(norm)}


class GaussianNoise(NamedTuple):
    """NCE's noise ``q = N(mean, L L^T)`` on flattened examples.

    Attributes: mean ``[D]``; scale_tril ``L`` ``[D, D]`` lower triangular."""

    mean: Array
    scale_tril: Array

    @classmethod
    def fit(cls, data, scale: float = 1.0, jitter: float = 1e-4) -> "GaussianNoise":
        """The data's mean and covariance, the covariance times ``scale^2`` (a wider noise
        covers the data's tails) plus ``jitter * I``."""
        data = np.asarray(data, np.float64).reshape(len(data), -1)
        if data.shape[0] < 2 or not np.all(np.isfinite(data)):
            raise ValueError(f"GaussianNoise.fit needs >= 2 finite examples, got shape "
                             f"{data.shape}")
        cov = np.atleast_2d(np.cov(data, rowvar=False)) * float(scale) ** 2
        cov = cov + jitter * np.eye(cov.shape[0])
        return cls(jnp.asarray(data.mean(0), jnp.float32),
                   jnp.asarray(np.linalg.cholesky(cov), jnp.float32))

    def sample(self, key: PRNGKey, n: int) -> Array:
        """``[n, D]``."""
        z = jax.random.normal(key, (int(n), self.mean.shape[0]))
        return self.mean + z @ self.scale_tril.T

    def log_prob(self, x: Array) -> Array:
        """``[n, D] -> [n]``."""
        z = jax.scipy.linalg.solve_triangular(self.scale_tril, (x - self.mean).T, lower=True).T
        d = self.mean.shape[0]
        log_det = jnp.sum(jnp.log(jnp.abs(jnp.diag(self.scale_tril))))
        return -0.5 * jnp.sum(z ** 2, -1) - log_det - 0.5 * d * math.log(2 * math.pi)


def learned_log_z(model) -> Array:
    """NCE's normalizer ``c``: the model's ``learned_log_z`` parameter, else 0 (the
    energy's own bias carries it)."""
    if hasattr(model, "learned_log_z"):
        return model.learned_log_z[...]
    return jnp.zeros(())


def nce_loss(model, batch: Array, key: PRNGKey, noise: GaussianNoise,
             noise_ratio: float = 1.0) -> tuple[Array, dict]:
    """Noise-contrastive estimation with ``nu = noise_ratio`` noise draws per example:
    ``L = -mean_b log sigmoid(G(x_b)) - nu mean_m log sigmoid(-G(y_m))``,
    ``G = -E - c - log nu - log q``.

    Both sets go through one ``model.energy`` call. Metrics: ``nce_accuracy`` (the
    classifier's), ``learned_log_z`` (``c``).
    """
    x, labels = jnp.asarray(inputs_of(batch), jnp.float32), context_of(batch)
    num_noise = max(1, int(round(noise_ratio * x.shape[0])))
    nu = num_noise / x.shape[0]
    y = noise.sample(key, num_noise).reshape(num_noise, *x.shape[1:])
    both = jnp.concatenate([x, y], axis=0)
    context = None
    if labels is not None:  # noise draw m takes the label of example m mod B
        labels = jnp.asarray(labels)
        context = jnp.concatenate([labels, labels[jnp.arange(num_noise) % x.shape[0]]])
    c = learned_log_z(model)
    logits = (-model.energy(both, **_ctx(context)) - c - math.log(nu)
              - noise.log_prob(both.reshape(both.shape[0], -1)))  # [B + M]
    g_data, g_noise = logits[:x.shape[0]], logits[x.shape[0]:]
    loss = -jnp.mean(jax.nn.log_sigmoid(g_data)) - nu * jnp.mean(jax.nn.log_sigmoid(-g_noise))
    accuracy = 0.5 * (jnp.mean(g_data > 0) + jnp.mean(g_noise < 0))
    return loss, {"nce": loss, "nce_accuracy": accuracy, "learned_log_z": c}


__all__ = ["GaussianNoise", "dsm_loss", "learned_log_z", "nce_loss", "score", "ssm_loss"]
