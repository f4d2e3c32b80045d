"""Pure train / eval step functions (jit-compiled by the loop, not here).

A loss function has one of two signatures:

* ``loss_fn(model, batch, key) -> (loss, metrics)``  (stateless; the default is the mean NLL)
* ``loss_fn(model, batch, key, extra) -> (loss, (metrics, new_extra))``  when ``train`` is
  given ``extra_init`` (persistent MCMC chains, replay buffers).

``loss`` is a scalar; ``metrics`` a dict of scalars.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jaxgen.data.batching import batch_at_step, batch_from_order, epoch_order, steps_per_epoch
from jaxgen.training.state import TrainState, merge_model, split_model

LossFn = Callable


def nll_loss(model, batch, key):
    """Mean negative log-likelihood in nats: ``-(1/B) sum_b log p(x_b)``."""
    del key
    log_prob = model.log_prob(batch)  # [B]
    loss = -jnp.mean(log_prob)
    return loss, {"nll": loss}


def make_train_step(graphdef, optimizer: optax.GradientTransformation, *, batch_size: int,
                    loss_fn: LossFn | None = None, has_extra: bool = False,
                    preprocess_fn: Callable | None = None, ema_decay: float = 0.0,
                    batch_sharding=None, steps_per_call: int = 1):
    """Builds ``train_steps(state, train_data, shuffle_key, step_key) -> (state, metrics)``.

    One call runs ``steps_per_call`` optimizer steps in a ``lax.scan`` (fewer dispatches for
    small models). Step ``t`` uses the batch ``batch_at_step(train_data, shuffle_key, t)`` and
    the key ``fold_in(step_key, t)``. A non-finite loss or gradient skips the update and
    records the step in ``state.bad_step``. Returned metrics are those of the last step.
    """
    loss_fn = nll_loss if loss_fn is None else loss_fn

    def one_step(state: TrainState, train_data, shuffle_key, step_key):
        key = jax.random.fold_in(step_key, state.step)
        order = state.data_order
        if order is None:
            batch = batch_at_step(train_data, shuffle_key, state.step, batch_size)
        else:
            per_epoch = steps_per_epoch(train_data.shape[0], batch_size)
            order = jax.lax.cond(
                state.step % per_epoch == 0,
                lambda: epoch_order(shuffle_key, state.step // per_epoch,
                                    train_data.shape[0]).astype(jnp.int32),
                lambda: order)
            batch = batch_from_order(train_data, order, state.step, batch_size)
        if batch_sharding is not None:
            batch = jax.lax.with_sharding_constraint(batch, batch_sharding)
        if preprocess_fn is not None:
            key, pre_key = jax.random.split(key)
            batch = preprocess_fn(pre_key, batch)

        def objective(params):
            model = merge_model(graphdef, params, state.model_state)
            if has_extra:
                loss, (metrics, new_extra) = loss_fn(model, batch, key, state.extra)
            else:
                loss, metrics = loss_fn(model, batch, key)
                new_extra = state.extra
            _, _, new_model_state = split_model(model)
            return loss, (metrics, new_model_state, new_extra)

        (loss, (metrics, new_model_state, new_extra)), grads = jax.value_and_grad(
            objective, has_aux=True)(state.params)
        # The finiteness check rides on the gradient norm (a sum of squares is finite iff
        # every entry is, up to overflow past ~1e19, which is divergence anyway), and the
        # update runs inside a ``lax.cond``: a good step pays no select over the parameters
        # and optimizer state (measured ~1 ms of a 5 ms RBM step when it was a jnp.where).
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
            new_ema = jax.tree.map(lambda e, p: ema_decay * e + (1.0 - ema_decay) * p,
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
        metrics = dict(metrics, loss=loss, grad_norm=grad_norm)
        return new_state, metrics

    def train_steps(state, train_data, shuffle_key, step_key):
        if steps_per_call == 1:
            return one_step(state, train_data, shuffle_key, step_key)
        state, metrics = jax.lax.scan(
            lambda s, _: one_step(s, train_data, shuffle_key, step_key), state, None,
            length=steps_per_call)
        return state, jax.tree.map(lambda m: m[-1], metrics)

    return train_steps


def make_log_prob_fn(graphdef, preprocess_fn: Callable | None = None):
    """``log_prob(params, model_state, batch, key) -> [B]`` for evaluation."""

    def log_prob(params, model_state, batch, key):
        if preprocess_fn is not None:
            batch = preprocess_fn(key, batch)
        model = merge_model(graphdef, params, model_state)
        return model.log_prob(batch)

    return log_prob
