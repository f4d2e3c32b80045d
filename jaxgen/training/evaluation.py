"""Mean negative log-likelihood of a model on a split, batched and sharded."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.checks import check_count, check_finite
from jaxgen.data.batching import Labeled, inputs_of, num_examples
from jaxgen.training import sharding as shd
from jaxgen.training.state import split_model
from jaxgen.training.steps import make_log_prob_fn


@functools.lru_cache(maxsize=64)
def _jitted_log_prob(graphdef, preprocess_fn):
    return jax.jit(make_log_prob_fn(graphdef, preprocess_fn))


def evaluate_nll(model: nnx.Module, data, *, batch_size: int = 1000, preprocessing=None,
                 key=None, mesh=None) -> float:
    """Mean negative log-likelihood (nats per example) of ``model`` on ``data``, in the
    units of the model's inputs (add ``preprocessing.nll_offset_nats`` for the stored data's).
    ``data`` is an array, or ``Labeled(x, context)`` for a conditional model
    (``-log p(x | context)``; e.g. ``dataset.split_data("test")``).

    Batches are padded to ``batch_size`` (one compilation for the whole split) and sharded
    over the mesh; the model runs in eval mode. ``preprocessing(key, batch)`` (e.g.
    dequantization) gets ``fold_in(key, batch_index)``, so repeated evaluations agree.

    Raises:
      TypeError / ValueError: ``batch_size`` not an integer >= 1.
      ValueError: NaN/inf in ``data``, an empty split, or a NaN log-probability (naming how many examples gave
        one); an example of probability zero gives an infinite NLL, not an error.
    """
    batch_size = check_count("evaluate_nll: batch_size", batch_size)
    data = (Labeled(np.asarray(data.x), np.asarray(data.context)) if isinstance(data, Labeled)
            else np.asarray(data))
    check_finite(inputs_of(data), "evaluate_nll: data")
    num_examples(data)  # the labels match the examples
    graphdef, params, model_state = split_model(model)
    preprocess_fn = preprocessing if preprocessing is not None and preprocessing.active else None
    return evaluate_with(_jitted_log_prob(graphdef, preprocess_fn), params, model_state,
                         data, batch_size,
                         jax.random.key(0) if key is None else key,
                         shd.make_mesh() if mesh is None else mesh)


@functools.partial(jax.jit, static_argnums=1)
def _sums(lp, valid: int):
    """``(sum of lp[:valid], number of NaNs in lp[:valid])``, replicated scalars."""
    mask = jnp.arange(lp.shape[0]) < valid
    return (jnp.sum(jnp.where(mask, lp, 0.0).astype(jnp.float32)),
            jnp.sum(mask & jnp.isnan(lp)))


def evaluate_with(log_prob_fn: Callable, params, model_state, data: np.ndarray,
                  batch_size: int, key, mesh, *, placed: bool = False) -> float:
    """`evaluate_nll` with a compiled ``log_prob_fn(params, model_state, batch, key)``
    (``data``: a batch pytree of numpy arrays; ``placed``: the parameters, model state
    and key are already on ``mesh``, as in the training loop, else they are replicated
    onto it)."""
    n = num_examples(data)
    if n == 0:
        raise ValueError("cannot evaluate on an empty split")
    n_dev = mesh.devices.size
    batch_size = min(batch_size, -(-n // n_dev) * n_dev)
    batch_size = -(-batch_size // n_dev) * n_dev
    sharding = shd.batch_sharded(mesh)
    if not placed:
        params, model_state, key = shd.put((params, model_state, key), shd.replicated(mesh))
    total, num_bad = 0.0, 0

    def pad_to(leaf, valid):  # pad with copies of the first example, masked out below
        if valid == batch_size:
            return leaf
        return np.concatenate([leaf, np.repeat(leaf[:1], batch_size - valid, axis=0)], axis=0)

    for i, start in enumerate(range(0, n, batch_size)):
        valid = min(batch_size, n - start)
        chunk = jax.tree.map(lambda leaf: pad_to(leaf[start:start + batch_size], valid), data)
        lp = log_prob_fn(params, model_state, shd.put(chunk, sharding),
                         jax.random.fold_in(key, i))
        chunk_total, chunk_bad = _sums(lp, valid)
        total += float(chunk_total)
        num_bad += int(chunk_bad)
    if num_bad:
        raise ValueError(f"log_prob is NaN on {num_bad} of {n} examples "
                         "(NaN/inf in the data or in the model's parameters)")
    return -total / n
