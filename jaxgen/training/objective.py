"""`Objective`: what a model family minimizes, declared by the family, run by the loop.

A model family owns its training rule. The loop (`jaxgen.training.train`) never asks which
family it has; it calls the objective's three methods:

* ``init(model, train_data, key) -> extra``: state the loss threads from step to step
  (persistent chains, replay buffers, a scheduled-sampling counter); ``{}`` for plain MLE.
  ``train_data`` is the training split as the model sees it (after preprocessing).
* ``loss(model, batch, key, extra) -> (loss, extra, metrics)``: a scalar to minimize, the
  new state and a dict of scalar metrics. The loop has put the model in training mode
  (``model.train()``: BatchNorm uses batch statistics and updates its running averages).
* ``finalize(model, data, key) -> (model, results)``: what must happen before the model is
  evaluated (an energy model's log Z, per-mask numbers), given the data as the model sees
  it; returns a *new* model (the argument is left unchanged) and a JSON-able dict of results.

Evaluation (validation, test, finalize) runs in eval mode (``model.eval()``).
"""
from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx

from jaxgen.data.batching import log_prob_of
from jaxgen.types import Array, PRNGKey, PyTree


def copy_model(model: nnx.Module) -> nnx.Module:
    """A new module with the same graph and values and its own Variables (``finalize``
    edits the copy; ``nnx.merge(*nnx.split(m))`` would share ``m``'s Variables)."""
    return nnx.clone(model)


class Objective:
    """Base class: plain maximum likelihood, ``L = -(1/B) sum_b log p(x_b)`` nats
    (``log p(x_b | y_b)`` for a ``Labeled`` batch of a conditional data set; for a model
    with a stochastic ``log_prob``, e.g. variational dequantization, ``log p`` is its
    estimate with the step's key: the loss is the negative variational bound)."""

    def init(self, model: nnx.Module, train_data: Array, key: PRNGKey) -> PyTree:
        del model, train_data, key
        return {}

    def loss(self, model: nnx.Module, batch: Array, key: PRNGKey,
             extra: PyTree) -> tuple[Array, PyTree, dict]:
        # The key reaches only models whose log_prob is a stochastic estimate
        # (``log_prob_takes_key``: variational dequantization's bound).
        nll = -jnp.mean(log_prob_of(model, batch, key))  # [B] -> scalar
        return nll, extra, {"nll": nll}

    def finalize(self, model: nnx.Module, data: Any, key: PRNGKey) -> tuple[nnx.Module, dict]:
        del data, key
        return model, {}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in sorted(vars(self).items()))
        return f"{type(self).__name__}({fields})"


class MaximumLikelihood(Objective):
    """Mean negative log-likelihood of i.i.d. data (the default objective)."""


__all__ = ["MaximumLikelihood", "Objective", "copy_model"]
