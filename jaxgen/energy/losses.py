"""Maximum-likelihood training of energy-based models: positive minus negative phase.

For ``p(x) = exp(-E_theta(x)) / Z(theta)`` the log-likelihood gradient is::

    grad_theta E_data[-log p(x)] = E_data[grad E(x)] - E_model[grad E(x)]
                                   (positive phase)    (negative phase)

The negative phase is estimated with samples ``x-`` of (approximately) the model, held
fixed (``stop_gradient``), so the surrogate loss
``L = mean_b E(x+_b) - mean_m E(x-_m)`` has exactly that gradient:

* **MLE** (``contrastive_loss``): given negatives from any sampler;
* **CD-k** (``cd_loss``): ``x-`` = ``k`` steps of the model's MCMC kernel from the data;
* **PCD** (``pcd_loss``): ``x-`` = ``k`` steps from persistent chains carried between
  optimizer steps in the train state (``extra = {"chains": [C, *event_shape]}``).

Models expose ``energy(x) -> [B]`` (the free energy for RBMs) and
``transition(key, x) -> x`` (one step of an MCMC kernel leaving their law invariant: a
Gibbs sweep for Boltzmann machines). The losses plug into ``jaxgen.training.train``::

    train(rbm, data, config, loss_fn=pcd_loss(1), extra_init=pcd_init(key, data.train, 100))
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.types import Array, PRNGKey


def run_transitions(model, key: PRNGKey, x: Array, num_steps: int) -> Array:
    """``num_steps`` applications of ``model.transition`` with ``lax.scan``."""
    def body(x, k):
        return model.transition(k, x), None

    x, _ = jax.lax.scan(body, x, jax.random.split(key, int(num_steps)))
    return x


def contrastive_loss(model, positive: Array, negative: Array) -> tuple[Array, dict]:
    """``L = mean E(x+) - mean E(stop_grad(x-))``; its gradient is the MLE gradient estimate.

    Args:
      model: has ``energy(x) -> [B]``.
      positive: ``[B, *event_shape]`` data.
      negative: ``[M, *event_shape]`` model samples.

    Returns:
      ``(loss, metrics)`` with ``positive_energy``, ``negative_energy`` (means).
    """
    e_pos = jnp.mean(model.energy(positive))
    e_neg = jnp.mean(model.energy(jax.lax.stop_gradient(negative)))
    return e_pos - e_neg, {"positive_energy": e_pos, "negative_energy": e_neg}


def cd_loss(num_steps: int = 1):
    """CD-k: negatives are ``k`` kernel steps started at the batch.

    Returns:
      ``loss_fn(model, batch, key) -> (loss, metrics)``; metrics add
      ``reconstruction_error``, the mean squared difference of the batch and its negatives.
    """
    if int(num_steps) < 1:
        raise ValueError(f"CD needs num_steps >= 1, got {num_steps}")

    def loss_fn(model, batch, key):
        negative = jax.lax.stop_gradient(run_transitions(model, key, batch, num_steps))
        loss, metrics = contrastive_loss(model, batch, negative)
        diff = (jnp.asarray(batch, jnp.float32) - negative.astype(jnp.float32))
        metrics["reconstruction_error"] = jnp.mean(diff ** 2)
        return loss, metrics

    return loss_fn


def pcd_init(key: PRNGKey, data, num_chains: int) -> dict:
    """Persistent chains for ``pcd_loss``: ``{"chains": [C, *event_shape]}`` drawn from the
    data's per-dimension base rates (binary data) or its moments (real data)."""
    data = np.asarray(data)
    shape = (int(num_chains), *data.shape[1:])
    if np.issubdtype(data.dtype, np.integer):
        p = jnp.asarray(data.mean(0), jnp.float32)
        return {"chains": jax.random.bernoulli(key, p, shape).astype(data.dtype)}
    mean, std = data.mean(0), data.std(0) + 1e-3
    noise = jax.random.normal(key, shape)
    return {"chains": (mean + std * noise).astype(data.dtype)}


def pcd_loss(num_steps: int = 1):
    """Persistent CD: negatives are ``k`` kernel steps from the persistent chains.

    Returns:
      ``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))`` for
      ``train(..., extra_init=pcd_init(...))``.
    """
    if int(num_steps) < 1:
        raise ValueError(f"PCD needs num_steps >= 1, got {num_steps}")

    def loss_fn(model, batch, key, extra):
        chains = jax.lax.stop_gradient(run_transitions(model, key, extra["chains"], num_steps))
        loss, metrics = contrastive_loss(model, batch, chains)
        return loss, (metrics, dict(extra, chains=chains))

    return loss_fn





def langevin_replay_loss(num_steps: int = 20, reinit_prob: float = 0.05,
                         energy_reg: float = 0.1, grad_clip: float | None = 0.1):
    """Neural-EBM loss with short-run Langevin negatives from a replay buffer.

    Negatives: starts from ``sample_replay`` (``reinit_prob`` of them fresh noise from the
    model's box), ``num_steps`` SGLD-style steps (``model.step_size``, ``model.noise_scale``,
    per-chain gradient clipping at ``grad_clip``), written back to the buffer. Loss::

        L = mean E(x+) - mean E(x-) + energy_reg * (mean E(x+)^2 + mean E(x-)^2)

    (the regularizer keeps energies near 0 and the landscape smooth).

    Returns:
      ``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))`` with
      ``extra = {"buffer": [N, *event_shape]}`` (``init_replay_buffer(key, N, model.noise)``).
    """
    from jaxgen.energy.replay_buffer import push_replay, sample_replay

    def loss_fn(model, batch, key, extra):
        k_start, k_run = jax.random.split(key)
        starts, idx = sample_replay(k_start, extra["buffer"], batch.shape[0], reinit_prob,
                                    model.noise)
        negative = jax.lax.stop_gradient(model.langevin(k_run, starts, num_steps, grad_clip))
        e_pos = model.energy(batch)
        e_neg = model.energy(negative)
        reg = energy_reg * (jnp.mean(e_pos ** 2) + jnp.mean(e_neg ** 2))
        loss = jnp.mean(e_pos) - jnp.mean(e_neg) + reg
        metrics = {"positive_energy": jnp.mean(e_pos), "negative_energy": jnp.mean(e_neg),
                   "energy_reg": reg}
        return loss, (metrics, dict(extra, buffer=push_replay(extra["buffer"], idx, negative)))

    return loss_fn

__all__ = ["run_transitions", "contrastive_loss", "cd_loss", "pcd_init", "pcd_loss",
           "langevin_replay_loss"]
