"""The bijector protocol, composition (`Chain`) and inversion (`Inverse`).

A bijector is an NNX module with two methods (distrax naming):

* ``forward_and_log_det(x) -> (y, log_det)`` with ``log_det = log|det dy/dx|``, ``[B]``;
* ``inverse_and_log_det(y) -> (x, log_det)`` with ``log_det = log|det dx/dy|``, ``[B]``.

Inputs carry a leading batch axis, ``[B, *event]`` (vectors ``[B, D]``, images
``[B, H, W, C]``); log-determinants are analytic and summed over every event axis, so
``inverse_and_log_det(forward(x))[1] == -forward_and_log_det(x)[1]``.

Conditional flows pass a context ``[B, F]`` (a class embedding or a vector) as the keyword
``context``: bijectors that use it (couplings, whose conditioners read it) or route it
(`Chain`, `Inverse`, `Repeat`, `MultiScale`) set ``takes_context = True`` and accept
``forward_and_log_det(x, context=None)``; `apply_bijector` calls every other bijector
without it, so layers that ignore the context need no change.

Flows in jaxgen are written in the *normalizing* direction (data -> latent), in the order
the papers list their layers; `jaxgen.flows.distributions.TransformedDistribution` takes the
generative bijector (latent -> data), usually ``Inverse(normalizing_chain)``.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
from flax import nnx

from jaxgen.types import Array


class Constant(nnx.Variable):
    """A fixed array that belongs to a module but is never trained (e.g. the permutation
    matrix of an LU-decomposed 1x1 convolution). Not an ``nnx.Param``: the training loop
    threads it through its steps unchanged."""


class InitFlag(nnx.Variable):
    """A boolean scalar recording that data-dependent initialization has run."""


def sum_except_batch(values: Array) -> Array:
    """``[B, *event] -> [B]``: sums every axis but the first."""
    return jnp.sum(values, axis=tuple(range(1, values.ndim)))


def num_positions(x: Array) -> int:
    """Number of spatial positions of ``x``: ``H * W`` for ``[B, H, W, C]``, 1 for ``[B, D]``."""
    n = 1
    for size in x.shape[1:-1]:
        n *= size
    return n


def updates_state(module: nnx.Module) -> bool:
    """Whether a call may write to ``module``'s variables: some submodule is in ActNorm's
    data-init pass (``data_init``) or in BatchNorm's training mode
    (``use_running_average=False``). Static: reads Python attributes only."""
    return any(getattr(m, "data_init", False) or getattr(m, "use_running_average", True) is False
               for _, m in nnx.iter_modules(module))


def apply_bijector(bijector, method: str, x: Array, context: Array | None = None):
    """``bijector.<method>(x)``, with ``context=context`` for bijectors that take one
    (``takes_context``); ``method`` is ``"forward_and_log_det"`` or
    ``"inverse_and_log_det"``."""
    fn = getattr(bijector, method)
    if context is None or not getattr(bijector, "takes_context", False):
        return fn(x)
    return fn(x, context=context)


class Bijector(nnx.Module):
    """Base class: subclasses implement ``forward_and_log_det`` and ``inverse_and_log_det``
    (with a ``context=None`` keyword and ``takes_context = True`` when conditional)."""

    takes_context = False

    def forward_and_log_det(self, x: Array) -> tuple[Array, Array]:
        """``x [B, *event] -> (y [B, *event'], log|det dy/dx| [B])``."""
        raise NotImplementedError

    def inverse_and_log_det(self, y: Array) -> tuple[Array, Array]:
        """``y [B, *event'] -> (x [B, *event], log|det dx/dy| [B])``."""
        raise NotImplementedError

    def forward(self, x: Array) -> Array:
        return self.forward_and_log_det(x)[0]

    def inverse(self, y: Array) -> Array:
        return self.inverse_and_log_det(y)[0]


def check_batched(x: Array, min_rank: int = 2, name: str = "input") -> None:
    """Raises ``ValueError`` unless ``x`` is ``[B, *event]`` with rank >= ``min_rank``."""
    if jnp.ndim(x) < min_rank:
        raise ValueError(f"{name} must be batched with rank >= {min_rank} ([B, *event]), "
                         f"got shape {jnp.shape(x)}")


class Chain(Bijector):
    """Composition, distrax convention: ``Chain([f, g]).forward(x) = f(g(x))``.

    The *last* bijector of the list is applied first by ``forward``; ``inverse`` applies
    the first one first. ``log|det J_{f o g}(x)| = log|det J_g(x)| + log|det J_f(g(x))|``.

    Use `chain_in_order` to build a chain from a list written in application order.
    """

    takes_context = True

    def __init__(self, bijectors: Sequence[Bijector]):
        if not bijectors:
            raise ValueError("Chain needs at least one bijector, got an empty list")
        self.bijectors = nnx.List(list(bijectors))

    def forward_and_log_det(self, x, context=None):
        log_det = jnp.zeros(x.shape[:1], jnp.float32)
        for bijector in reversed(self.bijectors):
            x, ld = apply_bijector(bijector, "forward_and_log_det", x, context)
            log_det = log_det + ld
        return x, log_det

    def inverse_and_log_det(self, y, context=None):
        log_det = jnp.zeros(y.shape[:1], jnp.float32)
        for bijector in self.bijectors:
            y, ld = apply_bijector(bijector, "inverse_and_log_det", y, context)
            log_det = log_det + ld
        return y, log_det


def chain_in_order(bijectors: Sequence[Bijector]) -> Bijector:
    """A `Chain` whose ``forward`` applies ``bijectors[0]`` first (a single one is returned
    as is)."""
    bijectors = list(bijectors)
    return bijectors[0] if len(bijectors) == 1 else Chain(bijectors[::-1])


class Inverse(Bijector):
    """Swaps ``forward`` and ``inverse`` of a bijector: ``Inverse(f).forward = f^{-1}``."""

    takes_context = True

    def __init__(self, bijector: Bijector):
        self.bijector = bijector

    def forward_and_log_det(self, x, context=None):
        return apply_bijector(self.bijector, "inverse_and_log_det", x, context)

    def inverse_and_log_det(self, y, context=None):
        return apply_bijector(self.bijector, "forward_and_log_det", y, context)


__all__ = ["apply_bijector", "Bijector", "Chain", "Constant", "InitFlag", "Inverse", "chain_in_order",
           "check_batched", "num_positions", "sum_except_batch", "updates_state"]
