"""The train state: everything a step reads and writes, as one pytree.

Keys are not stored: a step's key is ``fold_in(base_key, step)`` with ``base_key`` derived
from the config seed, so a restored state replays the same random stream.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.types import PyTree


class TrainState(NamedTuple):
    """Pytree carried from step to step.

    Attributes:
      step: int32 scalar, number of optimizer steps taken.
      params: ``nnx.State`` of the model's ``nnx.Param`` variables (what is optimized).
      model_state: ``nnx.State`` of the other variables (running statistics, init flags...).
      opt_state: the optax optimizer state.
      ema_params: exponential moving average of ``params`` (same structure), or ``None``.
      extra: user pytree threaded through the loss (persistent MCMC chains, replay buffers).
      bad_step: int32 scalar, first step whose loss or gradient was non-finite, -1 if none.
        Such a step leaves params untouched; the loop raises when it sees ``bad_step >= 0``.
      data_order: ``[N]`` int32, the current epoch's example order (a cache of
        ``jaxgen.data.batching.epoch_order``, redrawn at each epoch's first step), or ``None``
        to draw the permutation every step.
    """

    step: jax.Array
    params: Any
    model_state: Any
    opt_state: Any
    ema_params: Any
    extra: PyTree
    bad_step: jax.Array
    data_order: Any = None


def split_model(model: nnx.Module):
    """``graphdef, params, model_state = split_model(model)``: trainables vs the rest."""
    return nnx.split(model, nnx.Param, ...)


def merge_model(graphdef, params, model_state) -> nnx.Module:
    """The module back from `split_model`'s parts, with fresh Variables (``copy=True``), so
    that a layer mutating its state inside a trace (BatchNorm's running averages in a train
    step) writes to Variables of that trace, never to the caller's."""
    return nnx.merge(graphdef, params, model_state, copy=True)


def count_params(model_or_params) -> int:
    """Number of scalar parameters (``nnx.Param`` leaves) of a model or a params pytree."""
    params = (nnx.state(model_or_params, nnx.Param)
              if isinstance(model_or_params, nnx.Module) else model_or_params)
    return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(params)))


def init_train_state(params, model_state, optimizer, *, ema: bool = False,
                     extra: PyTree = None, num_examples: int | None = None) -> TrainState:
    """Fresh state at step 0 (``num_examples`` enables the cached epoch order)."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=optimizer.init(params),
        ema_params=jax.tree.map(jnp.copy, params) if ema else None,
        extra={} if extra is None else extra,
        bad_step=jnp.full((), -1, jnp.int32),
        data_order=None if num_examples is None else jnp.zeros((num_examples,), jnp.int32),
    )
