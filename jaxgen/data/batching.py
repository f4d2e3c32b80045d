"""On-device minibatching: the batch for a step is a pure function of (data, key, step).

Every epoch is a fresh permutation drawn from ``fold_in(key, epoch)``; step ``t`` takes the
``t % steps_per_epoch``-th slice of it (the remainder of an epoch that does not fill a batch is
dropped). Because the batch depends only on the step number, a resumed run sees exactly the
batches an uninterrupted one would, and no Python loop over examples ever runs.

Drawing a permutation costs O(N log N) (timing: docs/PERFORMANCE_NOTES.md), so the
training step caches the current epoch's order in its state and redraws it only on the
first step of an epoch (``epoch_order``/``batch_from_order``); ``batch_at_step`` is the
stateless reference that gives the same batches.

A batch is a pytree with a leading batch axis on every leaf: the ``[B, *event]`` array of an
unconditional data set, or ``Labeled(x, context)`` for a conditional one (``context`` the
``[B]`` class labels, or ``[B, F]`` vectors). Batching, preprocessing and evaluation map over
the leaves; models see the pair through `log_prob_of` (``log_prob(x, context=context)``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.checks import check_count
from jaxgen.types import Array, PRNGKey


class Labeled(NamedTuple):
    """A batch of examples with their context: ``x [B, *event]``, ``context [B]`` int class
    labels (or ``[B, F]`` vectors)."""

    x: Any
    context: Any


def inputs_of(batch) -> Any:
    """The examples of a batch (``batch.x``, or the batch itself when unlabeled)."""
    return batch.x if isinstance(batch, Labeled) else batch


def context_of(batch) -> Any:
    """The context of a batch, ``None`` when unlabeled."""
    return batch.context if isinstance(batch, Labeled) else None


def map_inputs(fn: Callable, batch):
    """``fn`` applied to the examples of a batch; the context is passed through."""
    return Labeled(fn(batch.x), batch.context) if isinstance(batch, Labeled) else fn(batch)


def log_prob_of(model, batch, key=None) -> Array:
    """``model.log_prob(x)`` of an unlabeled batch, ``model.log_prob(x, context=c)`` of a
    ``Labeled`` one: the one place a batch meets a model's ``log_prob`` -> ``[B]``.

    A model whose ``log_prob`` is a stochastic estimate declares ``log_prob_takes_key =
    True`` (e.g. `jaxgen.flows.variational_dequantization.VariationallyDequantized`) and
    gets ``key=key`` when a key is given; every other model is called without it.
    """
    kwargs = {}
    if key is not None and getattr(model, "log_prob_takes_key", False):
        kwargs["key"] = key
    if isinstance(batch, Labeled):
        return model.log_prob(batch.x, context=batch.context, **kwargs)
    return model.log_prob(batch, **kwargs)


def num_examples(data) -> int:
    """Leading size of a batch pytree (its leaves agree; checked)."""
    sizes = {int(np.shape(leaf)[0]) for leaf in jax.tree.leaves(data)}
    if len(sizes) != 1:
        raise ValueError(f"the leaves of a batch disagree on the batch size: {sorted(sizes)}")
    return sizes.pop()


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Number of full batches per epoch.

    Raises:
      TypeError: ``batch_size`` is not an integer (a float or bool is refused, not rounded).
      ValueError: ``batch_size < 1``, or the data cannot fill one batch.
    """
    batch_size = check_count("batch_size", batch_size)
    if num_examples < batch_size:
        raise ValueError(
            f"batch_size={batch_size} is larger than the training set ({num_examples} examples)")
    return num_examples // batch_size


def epoch_order(key: PRNGKey, epoch: Array, num_examples: int) -> Array:
    """The example order of ``epoch``: ``permutation(fold_in(key, epoch), N)`` -> ``[N]``."""
    return jax.random.permutation(jax.random.fold_in(key, epoch), num_examples)


def batch_from_order(data: Array, order: Array, step: Array, batch_size: int) -> Array:
    """The batch of ``step`` given its epoch's ``order`` (see ``epoch_order``) -> ``[B, ...]``."""
    per_epoch = steps_per_epoch(num_examples(data), batch_size)
    start = (step % per_epoch) * batch_size
    idx = jax.lax.dynamic_slice_in_dim(order, start, batch_size)  # [B]
    return jax.tree.map(lambda leaf: jnp.take(leaf, idx, axis=0), data)


def batch_at_step(data: Array, key: PRNGKey, step: Array, batch_size: int) -> Array:
    """Selects the shuffled minibatch for ``step`` (jit-safe; ``step`` may be traced).

    Args:
      data: ``[N, ...]`` the whole training split, already on device (or a batch pytree,
        e.g. ``Labeled(x, labels)``: every leaf is indexed alike).
      key: shuffling key; epoch ``e`` uses ``permutation(fold_in(key, e), N)``.
      step: global step number (int scalar).
      batch_size: static batch size ``B``.

    Returns:
      ``[B, ...]`` the examples of this step.
    """
    n = num_examples(data)
    per_epoch = steps_per_epoch(n, batch_size)
    order = epoch_order(key, step // per_epoch, n)  # [N]
    return batch_from_order(data, order, step, batch_size)
