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
  optimizer steps in the train state (``extra = {"chains": [C, *event_shape]}``; with
  ``persist_hidden`` an RBM carries its hidden layer ``extra["hidden"]`` instead).

``cd_loss``/``pcd_loss`` take ``weight_decay``: ``lambda/2 ||W||^2`` of the couplings only
(``model.weights``), so the biases are not shrunk (optax's ``add_decayed_weights`` in the
optimizer would decay every parameter, pulling data-base-rate visible biases towards 0).

Models expose ``energy(x) -> [B]`` (the free energy for RBMs) and
``transition(key, x) -> x`` (one step of an MCMC kernel leaving their law invariant: a
Gibbs sweep for Boltzmann machines). The losses plug into ``jaxgen.training.train``::

    train(rbm, data, config, loss_fn=pcd_loss(1), extra_init=pcd_init(key, data.train, 100))
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.energy.rbm import BernoulliRBM
from jaxgen.types import Array, PRNGKey


def run_transitions(model, key: PRNGKey, x: Array, num_steps: int) -> Array:
    """``num_steps`` applications of ``model.transition`` with ``lax.scan``."""
    def body(x, k):
        return model.transition(k, x), None

    x, _ = jax.lax.scan(body, x, jax.random.split(key, int(num_steps)))
    return x


def contrastive_loss(model, positive: Array, negative: Array) -> tuple[Array, dict]:
    """``L = mean E(x+) - mean E(stop_grad(x-))``; its gradient is the MLE gradient estimate.

    Both phases go through ONE ``model.energy`` call on ``concat([x+, x-])`` (one
    ``[B + M, V] x [V, H]`` matmul forward and one backward instead of two small ones each;
    energies are per-example, so this changes nothing else).

    Args:
      model: has ``energy(x) -> [B]``.
      positive: ``[B, *event_shape]`` data.
      negative: ``[M, *event_shape]`` model samples.

    Returns:
      ``(loss, metrics)`` with ``positive_energy``, ``negative_energy`` (means).
    """
    loss, metrics, _ = _contrastive(model, positive, negative)
    return loss, metrics


def _concat_phases(positive: Array, negative: Array) -> tuple[Array, Array]:
    """``(both, negative_again)``: ``both = concat([x+, x-])`` (in the promoted dtype: float
    chains next to integer data stay float) materialized once, and the negatives read back
    from it (in their own dtype, unchanged).

    Persistent chains are both an input of the energy (through ``both``) and a carried
    state. Left to itself XLA fuses the chains' last draw (its Threefry uniforms and the
    Bernoulli threshold) into each consumer and hashes every uniform twice; reading the
    carried chains back out of one materialized ``both`` (an ``optimization_barrier``)
    draws them once (timing: docs/PERFORMANCE_NOTES.md).
    """
    dtype = jnp.promote_types(positive.dtype, negative.dtype)  # int data, float chains: float
    both = jnp.concatenate([positive.astype(dtype), negative.astype(dtype)], axis=0)
    both = jax.lax.optimization_barrier(both)
    return both, both[positive.shape[0]:].astype(negative.dtype)


def _contrastive(model, positive: Array, negative: Array) -> tuple[Array, dict, Array]:
    """`contrastive_loss`, plus the negatives as read back by `_concat_phases` (the ones to
    carry as persistent chains)."""
    positive = jnp.asarray(positive)
    negative = jax.lax.stop_gradient(jnp.asarray(negative))
    if positive.shape[1:] == negative.shape[1:]:
        both, negative = _concat_phases(positive, negative)
        energies = model.energy(both)  # [B + M]
        e_pos = jnp.mean(energies[:positive.shape[0]])
        e_neg = jnp.mean(energies[positive.shape[0]:])
    else:
        e_pos, e_neg = jnp.mean(model.energy(positive)), jnp.mean(model.energy(negative))
    return e_pos - e_neg, {"positive_energy": e_pos, "negative_energy": e_neg}, negative


def coupling_l2(model, weight_decay: float) -> Array:
    """``(lambda / 2) ||W||^2`` of ``model.weights`` (0 when ``lambda == 0``); its gradient
    ``lambda W`` is weight decay on the couplings only."""
    if not weight_decay:
        return jnp.zeros(())
    return 0.5 * float(weight_decay) * jnp.sum(jnp.square(model.weights[...]))


def cd_loss(num_steps: int = 1, weight_decay: float = 0.0):
    """CD-k: negatives are ``k`` kernel steps started at the batch.

    Args:
      num_steps: ``k``.
      weight_decay: ``lambda`` of `coupling_l2` added to the loss.

    Returns:
      ``loss_fn(model, batch, key) -> (loss, metrics)``; metrics add
      ``reconstruction_error``, the mean squared difference of the batch and its negatives.
    """
    if int(num_steps) < 1:
        raise ValueError(f"CD needs num_steps >= 1, got {num_steps}")

    def loss_fn(model, batch, key):
        negative = jax.lax.stop_gradient(run_transitions(model, key, batch, num_steps))
        loss, metrics = contrastive_loss(model, batch, negative)
        loss = loss + coupling_l2(model, weight_decay)
        diff = (jnp.asarray(batch, jnp.float32) - negative.astype(jnp.float32))
        metrics["reconstruction_error"] = jnp.mean(diff ** 2)
        return loss, metrics

    return loss_fn


@jax.custom_vjp
def centered_parameters(weights: Array, visible_bias: Array, hidden_bias: Array,
                        visible_offset: Array, hidden_offset: Array):
    """The identity on a Bernoulli RBM's ``(W [V, H], b [V], c [H])`` whose gradient is the
    centered gradient (Montavon & Mueller 2012; Melchior, Fischer & Wiskott 2016, eqs. for
    the "centered gradient" in the original parameters), for offsets ``mu [V]``, ``lambda
    [H]`` held fixed.

    An RBM with energy ``-(v - mu)^T W (h - lambda) - b'^T v - c'^T h`` is the same family
    (``b = b' - W lambda``, ``c = c' - W^T mu``); plain gradient steps in its coordinates,
    written back in ``(W, b, c)``, are the linear map of the plain loss gradients
    ``(gW, gb, gc)``::

        gW' = gW - mu gc^T - gb lambda^T
              (= -[<(v - mu)(h - lambda)^T>_data - <(v - mu)(h - lambda)^T>_model])
        gb' = gb - gW' lambda,        gc' = gc - gW'^T mu

    which this function's VJP applies. With ``mu`` the data mean and ``lambda`` the mean
    hidden activation, the Hessian of the log-likelihood is better conditioned (units that
    are on or off on average no longer shift the other layer's biases), so the same step
    size learns faster. ``mu = lambda = 0`` gives the plain gradient. The offsets get no
    gradient.
    """
    del visible_offset, hidden_offset
    return weights, visible_bias, hidden_bias


def _centered_fwd(weights, visible_bias, hidden_bias, visible_offset, hidden_offset):
    return (weights, visible_bias, hidden_bias), (visible_offset, hidden_offset)


def _centered_bwd(offsets, grads):
    mu, lam = offsets
    g_w, g_b, g_c = grads
    g_w = g_w - jnp.outer(mu, g_c) - jnp.outer(g_b, lam)  # [V, H]
    return (g_w, g_b - g_w @ lam, g_c - g_w.T @ mu, jnp.zeros_like(mu), jnp.zeros_like(lam))


centered_parameters.defvjp(_centered_fwd, _centered_bwd)


def _centered_free_energy(model, v_flat: Array, extra: dict) -> tuple[Array, Array]:
    """A Bernoulli RBM's ``(F(v) [B], c + v^T W [B, H])`` (the same values as
    ``free_energy_and_hidden_logits``) through `centered_parameters`, so its gradient is
    the centered one for ``extra["visible_offset"]``, ``extra["hidden_offset"]``. The
    products are float32 whatever the model's ``precision`` (which speeds up its Gibbs
    sweeps, not its gradient)."""
    if not isinstance(model, BernoulliRBM):
        raise ValueError("pcd_loss(centering=True) is written for a BernoulliRBM, got a "
                         f"{type(model).__name__}")
    if "visible_offset" not in extra or "hidden_offset" not in extra:
        raise ValueError("pcd_loss(centering=True) needs extra['visible_offset'] and "
                         "extra['hidden_offset'] from pcd_init(..., model=rbm, "
                         f"centering=True); got extra keys {sorted(extra)}")
    w, b, c = centered_parameters(model.weights[...], model.visible_bias[...],
                                  model.hidden_bias[...],
                                  jax.lax.stop_gradient(extra["visible_offset"]),
                                  jax.lax.stop_gradient(extra["hidden_offset"]))
    logits = v_flat @ w + c  # [B, H]
    return -(v_flat @ b) - jnp.sum(jax.nn.softplus(logits), axis=-1), logits


def pcd_init(key: PRNGKey, data, num_chains: int, model=None, centering: bool = False) -> dict:
    """Persistent chains for ``pcd_loss``: ``{"chains": [C, *event_shape]}`` drawn from the
    data's per-dimension base rates (binary data) or its moments (real data).

    Given an RBM ``model``, also ``"hidden": [C, H]`` drawn from ``p(h | chains)`` under its
    current parameters (key ``fold_in(key, 1)``; the chains are unchanged), the state that
    ``pcd_loss(persist_hidden=True)`` needs; with ``centering`` (binary data and an RBM),
    the offsets ``"visible_offset" [V]`` (the data mean) and ``"hidden_offset" [H]`` (0.5)
    that ``pcd_loss(centering=True)`` reads.
    """
    data = np.asarray(data)
    shape = (int(num_chains), *data.shape[1:])
    if np.issubdtype(data.dtype, np.integer):
        p = jnp.asarray(data.mean(0), jnp.float32)
        extra = {"chains": jax.random.bernoulli(key, p, shape).astype(data.dtype)}
    else:
        mean, std = data.mean(0), data.std(0) + 1e-3
        noise = jax.random.normal(key, shape)
        extra = {"chains": (mean + std * noise).astype(data.dtype)}
    if model is not None:
        extra["hidden"] = model.sample_hidden(jax.random.fold_in(key, 1),
                                              model.flatten(extra["chains"]))
    if centering:
        if not isinstance(model, BernoulliRBM) or not np.issubdtype(data.dtype, np.integer):
            raise ValueError("pcd_init(centering=True) needs binary (integer) data and the "
                             f"BernoulliRBM (model=...); got dtype {data.dtype} and model {model!r}")
        extra["visible_offset"] = jnp.asarray(data.reshape(data.shape[0], -1).mean(0),
                                              jnp.float32)  # [V]
        extra["hidden_offset"] = jnp.full((model.num_hidden,), 0.5, jnp.float32)  # [H]
    return extra


def pcd_loss(num_steps: int = 1, weight_decay: float = 0.0, persist_hidden: bool = False,
             centering: bool = False, centering_rate: float = 0.01):
    """Persistent CD: negatives are ``k`` kernel steps from the persistent chains.

    With ``persist_hidden`` (RBMs; ``extra`` from ``pcd_init(..., model=rbm)``) the
    persistent state is the hidden layer ``h`` (scikit-learn's ``BernoulliRBM`` does this):
    a step draws ``v ~ p(v | h; theta_t)`` (then ``k - 1`` full sweeps), takes the gradient at
    ``v``, and draws the next ``h ~ p(h | v; theta_t)`` from the hidden logits that the
    free-energy forward pass already computed. One ``[C, V] x [V, H]`` matmul of the sweep is
    saved (5 matmul-equivalents per PCD-1 step instead of 6). Per step the chain still makes
    one full Gibbs sweep, every half-step under the step's current parameters, and the
    gradient estimator (``v^T sigmoid(c + v^T W)`` at the negatives) is the same; what differs
    is which layer carries over between updates: the default draws ``h`` from the carried
    ``v`` under ``theta_t``; here ``h`` was drawn under ``theta_{t-1}``. At fixed parameters
    the two chains have the same law; under learning they differ by ``O(lr)`` (both lag
    the model). Opt-in, so existing training runs keep their chains.

    Args:
      num_steps: ``k`` kernel steps per optimizer step.
      weight_decay: ``lambda`` of `coupling_l2` added to the loss.
      persist_hidden: carry the hidden layer (RBMs with ``free_energy_and_hidden_logits``).
      centering: (Bernoulli RBMs, with ``persist_hidden``) follow the centered gradient
        (`centered_parameters`) with offsets ``mu = extra["visible_offset"]`` (the data
        mean, from ``pcd_init(..., centering=True)``) and ``lambda =
        extra["hidden_offset"]``, an exponential moving average (rate ``centering_rate``)
        of the data's mean hidden activation ``sigmoid(c + v^T W)``.
      centering_rate: ``nu`` of ``lambda <- (1 - nu) lambda + nu mean_b sigmoid(c + v_b^T W)``.

    Returns:
      ``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))`` for
      ``train(..., extra_init=pcd_init(...))``.
    """
    if int(num_steps) < 1:
        raise ValueError(f"PCD needs num_steps >= 1, got {num_steps}")
    if centering and not persist_hidden:
        raise ValueError("pcd_loss(centering=True) needs persist_hidden=True (the centered "
                         "gradient is written for a Bernoulli RBM's persistent-hidden step)")
    if not 0.0 < float(centering_rate) <= 1.0:
        raise ValueError(f"centering_rate must be in (0, 1], got {centering_rate!r}")

    def loss_fn(model, batch, key, extra):
        chains = jax.lax.stop_gradient(run_transitions(model, key, extra["chains"], num_steps))
        loss, metrics, chains = _contrastive(model, batch, chains)
        loss = loss + coupling_l2(model, weight_decay)
        return loss, (metrics, dict(extra, chains=chains))

    def persist_hidden_loss_fn(model, batch, key, extra):
        if "hidden" not in extra or not hasattr(model, "free_energy_and_hidden_logits"):
            raise ValueError("pcd_loss(persist_hidden=True) needs an RBM and extra['hidden'] "
                             "from pcd_init(key, data, num_chains, model=rbm); got extra keys "
                             f"{sorted(extra)} and a {type(model).__name__}")
        key_v, key_run, key_h = jax.random.split(key, 3)
        dtype = extra["chains"].dtype
        visible = model.sample_visible(key_v, extra["hidden"])  # [C, V] float32
        if int(num_steps) > 1:
            visible = model.flatten(run_transitions(
                model, key_run, model.unflatten(visible).astype(dtype), int(num_steps) - 1))
        num_data = batch.shape[0]
        both, negative = _concat_phases(model.flatten(batch),
                                        jax.lax.stop_gradient(visible))
        chains = model.unflatten(negative).astype(dtype)
        if centering:
            free, logits = _centered_free_energy(model, both, extra)
        else:
            free, logits = model.free_energy_and_hidden_logits(both)  # [B + C], [B + C, H]
        e_pos, e_neg = jnp.mean(free[:num_data]), jnp.mean(free[num_data:])
        loss = e_pos - e_neg + coupling_l2(model, weight_decay)
        hidden = model.sample_hidden_from_logits(
            key_h, jax.lax.stop_gradient(logits[num_data:]))
        metrics = {"positive_energy": e_pos, "negative_energy": e_neg}
        new_extra = dict(extra, chains=chains, hidden=hidden)
        if centering:
            data_mean = jnp.mean(jax.nn.sigmoid(jax.lax.stop_gradient(logits[:num_data])), 0)
            new_extra["hidden_offset"] = ((1.0 - centering_rate) * extra["hidden_offset"]
                                          + centering_rate * data_mean)  # [H]
        return loss, (metrics, new_extra)

    return persist_hidden_loss_fn if persist_hidden else loss_fn


def langevin_replay_loss(num_steps: int = 20, reinit_prob: float = 0.05,
                         energy_reg: float = 0.1, grad_clip: float | None = 0.1):
    """Neural-EBM loss with short-run Langevin negatives from a replay buffer.

    Negatives: starts from ``sample_replay`` (``reinit_prob`` of them fresh noise from the
    model's box), ``num_steps`` SGLD-style steps (``model.step_size``, ``model.noise_scale``,
    per-chain gradient clipping at ``grad_clip``), written back to the buffer. Loss::

        L = mean E(x+) - mean E(x-) + energy_reg * (mean E(x+)^2 + mean E(x-)^2)

    (the regularizer keeps energies near 0 and the landscape smooth).

    A ``Labeled(x, y)`` batch trains a class-conditional energy: negative ``b`` runs on
    ``E(., y_b)`` from (and back to) class ``y_b``'s buffer, so
    ``grad L = E_data[grad E(x, y)] - E_{y ~ batch, x ~ p(x | y)}[grad E(x, y)]``, the MLE
    gradient of ``log p(x | y)`` at the batch's labels.

    Returns:
      ``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))`` with
      ``extra = {"buffer": [N, *event_shape]}`` (``init_replay_buffer(key, N, model.noise)``;
      ``[K, N_k, *event_shape]`` per class for a conditional energy).
    """
    from jaxgen.data.batching import context_of, inputs_of
    from jaxgen.energy.replay_buffer import push_replay, sample_replay

    def loss_fn(model, batch, key, extra):
        x, labels = inputs_of(batch), context_of(batch)
        ctx = {} if labels is None else {"context": labels}
        k_start, k_run = jax.random.split(key)
        starts, idx = sample_replay(k_start, extra["buffer"], x.shape[0], reinit_prob,
                                    model.noise, labels)
        negative = jax.lax.stop_gradient(model.langevin(k_run, starts, num_steps, grad_clip,
                                                        **ctx))
        e_pos = model.energy(x, **ctx)
        e_neg = model.energy(negative, **ctx)
        reg = energy_reg * (jnp.mean(e_pos ** 2) + jnp.mean(e_neg ** 2))
        loss = jnp.mean(e_pos) - jnp.mean(e_neg) + reg
        metrics = {"positive_energy": jnp.mean(e_pos), "negative_energy": jnp.mean(e_neg),
                   "energy_reg": reg}
        buffer = push_replay(extra["buffer"], idx, negative, labels)
        return loss, (metrics, dict(extra, buffer=buffer))

    return loss_fn

__all__ = ["run_transitions", "contrastive_loss", "coupling_l2", "cd_loss", "pcd_init",
           "pcd_loss", "langevin_replay_loss"]
