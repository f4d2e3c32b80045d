"""Pure train / eval step functions (jit-compiled by the loop, not here).

The loss is the model family's `jaxgen.training.objective.Objective`; a step runs it on the
model in training mode and evaluation runs ``log_prob`` in eval mode, so a model's
train/eval behaviour (BatchNorm statistics) never depends on the caller remembering it.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxgen.data.batching import (batch_at_step, batch_from_order, epoch_order, log_prob_of,
                                  num_examples, steps_per_epoch)
from jaxgen.nn import mixed_precision
from jaxgen.training.objective import Objective
from jaxgen.training.state import TrainState, merge_model, split_model


def debiased_ema_decay(decay: float, count):
    """The decay that keeps a *bias-corrected* EMA directly (optax ``ema(debias=True)``).

    The plain EMA started at zero, ``m_t = d m_{t-1} + (1 - d) p_t``, is corrected by
    ``1 / (1 - d^t)``. Its corrected value ``a_t = m_t / (1 - d^t)`` obeys
    ``a_t = d_t a_{t-1} + (1 - d_t) p_t`` with ``d_t = d (1 - d^{t-1}) / (1 - d^t)``, so
    storing ``a_t`` needs no extra state; ``d_1 = 0`` (the first average is ``p_1``), and the
    initial parameters never enter the average (a short run with ``d = 0.999`` is not
    dominated by its random initialization).

    Args:
      decay: ``d`` in ``[0, 1)``.
      count: ``t >= 1``, the number of averaged iterates including this one.
    """
    count = jnp.asarray(count, jnp.float32)
    if decay == 0.0:
        return jnp.zeros((), jnp.float32)
    return decay * (1.0 - decay ** (count - 1.0)) / (1.0 - decay ** count)


def make_train_step(graphdef, optimizer: optax.GradientTransformation, objective: Objective,
                    *, batch_size: int, preprocess_fn: Callable | None = None,
                    ema_decay: float = 0.0, batch_sharding=None, steps_per_call: int = 1,
                    compute_dtype: str = "float32"):
    """Builds ``train_steps(state, train_data, shuffle_key, step_key) -> (state, metrics)``.

    One call runs ``steps_per_call`` optimizer steps in a ``lax.scan``. Step ``t`` uses the
    batch ``batch_at_step(train_data, shuffle_key, t)`` (or the cached epoch order), the key
    ``fold_in(step_key, t)`` (split once more for ``preprocess_fn`` when given), and
    minimizes ``objective.loss``. A non-finite loss or gradient skips the update and records
    the step in ``state.bad_step``. ``ema_decay > 0`` keeps a bias-corrected average of the
    parameters (`debiased_ema_decay`). Returned metrics are those of the last step, plus
    ``loss`` and ``grad_norm``.

    ``compute_dtype`` other than ``"float32"`` is mixed precision: the loss is traced inside
    `jaxgen.nn.mixed_precision.compute_dtype`, so the models' matrix products and
    convolutions (forward and backward) take operands in that dtype and accumulate in
    float32, while parameters, gradients, optimizer state, model state, log-determinants and
    the loss stay float32. Evaluation (`make_log_prob_fn`) is full precision.
    """
    if compute_dtype not in mixed_precision.COMPUTE_DTYPES:
        raise ValueError(f"compute_dtype must be one of {list(mixed_precision.COMPUTE_DTYPES)}, "
                         f"got {compute_dtype!r}")

    def one_step(state: TrainState, train_data, shuffle_key, step_key):
        key = jax.random.fold_in(step_key, state.step)
        order = state.data_order
        if order is None:
            batch = batch_at_step(train_data, shuffle_key, state.step, batch_size)
        else:
            n = num_examples(train_data)
            per_epoch = steps_per_epoch(n, batch_size)
            order = jax.lax.cond(
                state.step % per_epoch == 0,
                lambda: epoch_order(shuffle_key, state.step // per_epoch, n).astype(jnp.int32),
                lambda: order)
            batch = batch_from_order(train_data, order, state.step, batch_size)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        if preprocess_fn is not None:
            key, pre_key = jax.random.split(key)
            batch = preprocess_fn(pre_key, batch)

        def loss_of(params):
            model = merge_model(graphdef, params, state.model_state)
            model.train()
            with mixed_precision.compute_dtype(compute_dtype):  # read while tracing
                loss, new_extra, metrics = objective.loss(model, batch, key, state.extra)
            _, _, new_model_state = split_model(model)
            return loss, (metrics, new_model_state, new_extra)

        (loss, (metrics, new_model_state, new_extra)), grads = jax.value_and_grad(
            loss_of, has_aux=True)(state.params)
        # A sum of squares is finite iff every entry is (up to overflow, i.e. divergence),
        # so the gradient norm carries the finiteness check; the update sits in a lax.cond
        # so a good step does no select over parameters and optimizer state.
        grad_norm = optax.tree.norm(grads)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

        def apply(operands):
            grads, opt_state, params = operands
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        new_params, new_opt_state = jax.lax.cond(
            ok, apply, lambda operands: (operands[2], operands[1]),
            (grads, state.opt_state, state.params))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        new_ema = state.ema_params
        if state.ema_params is not None:
            decay = debiased_ema_decay(ema_decay, state.step + 1)
            new_ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                                   state.ema_params, new_params)
        new_state = TrainState(
            step=state.step + 1,
            params=new_params,
            model_state=keep(new_model_state, state.model_state),
            opt_state=new_opt_state,
            ema_params=new_ema,
            extra=keep(new_extra, state.extra),
            bad_step=jnp.where((state.bad_step < 0) & ~ok, state.step, state.bad_step),
            data_order=order,
        )
        return new_state, dict(metrics, loss=loss, grad_norm=grad_norm)

    def train_steps(state, train_data, shuffle_key, step_key):
        if steps_per_call == 1:
            return one_step(state, train_data, shuffle_key, step_key)
        state, metrics = jax.lax.scan(
            lambda s, _: one_step(s, train_data, shuffle_key, step_key), state, None,
            length=steps_per_call)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return train_steps


def make_log_prob_fn(graphdef, preprocess_fn: Callable | None = None):
    """``log_prob(params, model_state, batch, key) -> [B]``, the model in eval mode.

    ``preprocess_fn(key, batch)`` gets ``key``; a model with a stochastic ``log_prob``
    (``log_prob_takes_key``, see `jaxgen.data.batching.log_prob_of`) gets ``fold_in(key, 1)``.
    """

    def log_prob(params, model_state, batch, key):
        if preprocess_fn is not None:
            batch = preprocess_fn(key, batch)
        model = merge_model(graphdef, params, model_state)
        model.eval()
        return log_prob_of(model, batch, jax.random.fold_in(key, 1))

    return log_prob
