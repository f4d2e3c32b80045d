"""`Repeat`: a stack of identical bijectors applied with ``nnx.scan`` (compiled once).

``Repeat(make_layer, num_layers)`` holds ``num_layers`` copies of ``make_layer(rngs)``
with their variables stacked on a leading axis (created by ``nnx.vmap`` over split keys).
``forward`` scans over the stack in order, ``inverse`` in reverse order, so a deep flow
(Glow's K steps per level) traces and compiles one layer instead of K. It is the
composition ``f_K o ... o f_1`` and its log-determinant is the sum of the layers'.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, apply_bijector, updates_state
from jaxgen.nn.layer_scan import layer_scan


class Repeat(Bijector):
    """``num_layers`` identical layers ``f_1 .. f_K``: ``forward = f_K o ... o f_1``.

    Args:
      make_layer: ``rngs -> Bijector``; must build the same structure every call (its
        static attributes are shared by all copies).
      num_layers: K >= 1.
      rngs: split K ways so the copies start from different parameters.
    """

    def __init__(self, make_layer: Callable[[nnx.Rngs], Bijector], num_layers: int, *,
                 rngs: nnx.Rngs):
        if num_layers < 1:
            raise ValueError(f"Repeat needs num_layers >= 1, got {num_layers}")
        self.num_layers = num_layers

        @nnx.split_rngs(splits=num_layers)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return make_layer(rngs)

        self.layers = create(rngs)

    takes_context = True

    def _scan(self, x, reverse: bool, context=None):
        # lax.scan over the split state (not nnx.scan): a pure function of the stacked
        # arrays, so it also runs under jax transforms of a closure over this module.
        graphdef, state = nnx.split(self.layers)

        def body(carry, layer_state):
            h, log_det = carry
            layer = nnx.merge(graphdef, layer_state)
            method = "inverse_and_log_det" if reverse else "forward_and_log_det"
            h, ld = apply_bijector(layer, method, h, context)  # context: a scan constant
            return (h, log_det + ld), nnx.state(layer)

        init = (x, jnp.zeros(x.shape[:1], jnp.float32))
        (h, log_det), new_state = layer_scan(body, init, state, reverse=reverse)
        if updates_state(self.layers):  # ActNorm data init, BatchNorm in training mode
            nnx.update(self.layers, new_state)
        return h, log_det

    def forward_and_log_det(self, x, context=None):
        return self._scan(x, reverse=False, context=context)

    def inverse_and_log_det(self, y, context=None):
        return self._scan(y, reverse=True, context=context)


__all__ = ["Repeat"]
