"""Shared types and protocols.

Every model in jaxgen answers the same two questions, so training and evaluation code never
asks which family it has:

* ``log_prob(x) -> [B]``: log-likelihood of each example, in nats (unnormalized for EBMs).
* ``sample(key, n) -> x``: ``n`` independent draws, shaped ``[n, *event_shape]``.

Arrays carry a leading batch axis. Images are ``[B, H, W, C]`` (channels last); discrete
data are integer arrays holding level indices ``0 .. num_levels-1``; continuous data are
float32.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol, runtime_checkable

import jax

Array = jax.Array
PRNGKey = jax.Array  # a typed key from jax.random.key (raw uint32 keys are accepted too)
PyTree = Any
Shape = tuple[int, ...]


@runtime_checkable
class Distribution(Protocol):
    """What every jaxgen model exposes."""

    event_shape: Shape

    def log_prob(self, x: Array) -> Array:  # [B, *event_shape] -> [B]
        ...

    def sample(self, key: PRNGKey, n: int) -> Array:  # -> [n, *event_shape]
        ...


class SamplingAlgorithm(NamedTuple):
    """An MCMC kernel as an ``(init, step)`` pair (blackjax's shape).

    ``state = init(position)``; ``state, info = step(key, state)``.
    """

    init: Callable[..., Any]
    step: Callable[..., Any]


__all__ = ["Array", "PRNGKey", "PyTree", "Shape", "Distribution", "SamplingAlgorithm"]
