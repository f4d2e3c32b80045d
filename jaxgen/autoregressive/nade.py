"""NADE: Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011).

Hidden units are shared across conditionals, with weights tied so that all ``D`` hidden
vectors cost ``O(D H)`` together:

    a_d = c + sum_{j < d} W_j x_j   (a running sum over positions: a ``lax.scan``),
    h_d = sigmoid(a_d),   theta_d = b_d + V_d h_d,   p(x_d | x_{<d}) = head(theta_d).

Binary data use the scalar input ``x_j``, more levels a one-hot ``x_j`` (``W_j`` is then
``[K, H]``).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import AutoregressiveModel
from jaxgen.autoregressive.heads import make_head
from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


class NADE(AutoregressiveModel):
    """Attributes: ``W [D, F, H]``, ``c [H]``, ``V [D, H, P]``, ``b [D, P]`` (nnx.Param)."""

    def __init__(self, event_shape: Sequence[int], num_levels: int, hidden_size: int = 500,
                 *, head: str = "auto", rngs: nnx.Rngs):
        self.event_shape, self.num_levels = tuple(int(s) for s in event_shape), int(num_levels)
        self.head = make_head(head, self.num_levels)
        self.encoding = "scalar" if self.num_levels == 2 else "onehot"
        d, f = self.num_dims, 1 if self.encoding == "scalar" else self.num_levels
        p = self.head.num_params
        self.W = nnx.Param(jax.random.normal(rngs.params(), (d, f, hidden_size))
                           / np.sqrt(d * f))
        self.c = nnx.Param(jnp.zeros((hidden_size,)))
        self.V = nnx.Param(jax.random.normal(rngs.params(), (d, hidden_size, p))
                           / np.sqrt(hidden_size))
        self.b = nnx.Param(jnp.zeros((d, p)))

    def params_from_inputs(self, inputs: Array) -> Array:
        """``[B, *E, F]`` -> ``[B, *E, P]``."""
        bsz = inputs.shape[0]
        x = inputs.reshape(bsz, self.num_dims, inputs.shape[-1]).astype(jnp.float32)  # [B,D,F]

        # One scan step per position, the running sum ``a`` [B, H] as the carry: theta_d is
        # read off before x_d is added, so a_d is structurally free of x_{>=d}. (Not an
        # exclusive ``jnp.cumsum`` over a [B, D, H] tensor: XLA's CPU cumsum is a
        # reduce-window, O(D^2); timing in docs/AR_BENCHMARKS.md, NADE.)
        def step(a, per_position):
            w_d, v_d, b_d, x_d = per_position  # [F, H], [H, P], [P], [B, F]
            theta = mp.matmul(jax.nn.sigmoid(a), v_d) + b_d  # [B, P]
            return a + mp.matmul(x_d, w_d), theta

        a0 = jnp.broadcast_to(self.c[...], (bsz, self.c.shape[0]))
        _, params = jax.lax.scan(step, a0, (self.W[...], self.V[...], self.b[...],
                                            jnp.swapaxes(x, 0, 1)))  # [D, B, P]
        return jnp.swapaxes(params, 0, 1).reshape(bsz, *self.event_shape, self.head.num_params)


__all__ = ["NADE"]
