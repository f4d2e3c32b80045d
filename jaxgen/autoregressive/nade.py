"""NADE: Neural Autoregressive Distribution Estimator (Larochelle & Murray, 2011).

Hidden units are shared across conditionals, with weights tied so that all ``D`` hidden
vectors cost ``O(D H)`` together:

    a_0 = c [+ E[y]],   a_{d+1} = a_d + W_d x_d   (a running sum over positions),
    h_d = sigmoid(a_d),   theta_d = b_d + V_d h_d,   p(x_d | x_{<d}, y) = head(theta_d).

Binary data use the scalar input ``x_j``, more levels a one-hot ``x_j`` (``W_j`` is then
``[K, H]``).

Conditional NADE (``num_classes`` or ``context_features``) models ``p(x | y)``: the context
enters every hidden pre-activation through the start of the running sum, ``a_0 = c + E[y]``
(``E``: `jaxgen.nn.context.ContextProjection`, a ``[num_classes, H]`` table, or ``W_c c``
for a vector context). ``y`` is not part of ``x``, so ``theta_d`` still reads only
``x_{<d}`` and ``p(. | y)`` is a normalized autoregressive model for every ``y``; ``theta_0 =
b_0 + V_0 sigmoid(c + E[y])`` already depends on ``y``, so no output term is needed.

Teacher-forced pass (`params_from_inputs`, training and evaluation): one ``lax.scan`` step
per position with the ``[B, H]`` running sum as the carry. Its gradient is written out
(``jax.custom_vjp``) as a second scan, backwards over positions, with the reverse running
sum ``G_d = dL/da_{d+1}`` as the carry:

    dL/dV_d = h_d^T g_d,   dL/db_d = sum_b g_d,   dL/dW_d = x_d^T G_d,   dL/dx_d = G_d W_d^T,
    G_{d-1} = G_d + (g_d V_d^T) * h_d * (1 - h_d),   dL/da_0 = G_{-1},

(``g_d = dL/dtheta_d``). Both scans run in ``D / k`` blocks of ``k`` positions, ``k`` the
largest divisor of ``D`` up to ``ceil(sqrt(D))`` (28 for ``D = 784``): the forward pass keeps
only each block's starting sum ``a_{jk}`` (``[D / k, B, H]``), and the backward pass
recomputes a block's ``h_d`` from it with the forward's own ops (the same values) before
running back through the block. Saving every ``h_d`` instead (a ``[D, B, H]`` stack written
inside the loop) made the forward pass 4-5x slower on XLA:CPU, and reverse-mode autodiff of
the forward scan gave a backward pass 5-8x as long as the forward one. The forward scan is
not loop-overhead bound (its cost is about one ``sigmoid`` over the ``[B, D, H]``
pre-activations); computing a block's prefix sums at once (a strictly lower-triangular
matmul, unrolled adds) or ``lax.associative_scan`` made value-and-grad 1.6-10x slower than
one position per step. Speed: docs/PERFORMANCE_NOTES.md (NADE). Only reverse mode is
defined (``jax.jvp``/``jacfwd`` through `params_from_inputs` are not).

`sample` is the same recurrence run forwards, one position per ``lax.scan`` step
(``O(D H)`` per sample, not a full pass per position): it draws ``x_d`` with key
``split(key, D)[d]`` as `sample_naive` does, so the two give identical samples.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxgen.autoregressive.base import ConditionalAutoregressiveModel
from jaxgen.autoregressive.heads import make_head
from jaxgen.checks import check_count, check_temperature
from jaxgen.nn import mixed_precision as mp
from jaxgen.types import Array, PRNGKey


def _block_size(num_dims: int) -> int:
    """``k``: the largest divisor of ``D`` that is ``<= ceil(sqrt(D))`` (28 for 784), which
    balances the backward pass's two buffers, ``D / k`` saved running sums and ``k``
    recomputed hidden vectors of ``[B, H]`` each."""
    limit = math.isqrt(num_dims - 1) + 1 if num_dims > 1 else 1
    return max(k for k in range(1, limit + 1) if num_dims % k == 0)


def _sigmoid(a: Array) -> Array:
    """``sigmoid(a) = (1 + tanh(a / 2)) / 2``: the same function as `jax.nn.sigmoid`
    (within float32 rounding), through XLA:CPU's rational ``tanh`` instead of its ``exp``
    and divide (a 784-step scan of ``[100, 500]`` sigmoids: 32 instead of 41 ms; the whole
    training step gains less than its run-to-run noise, docs/PERFORMANCE_NOTES.md). Every
    hidden unit (forward, recomputed backward, sampling) goes through this one function, so
    the backward pass's ``h_d`` are the forward's."""
    return 0.5 * jnp.tanh(0.5 * a) + 0.5


def _forward_scan(W: Array, V: Array, b: Array, xs: Array, a0: Array):
    """``theta [D, B, P]`` of every position and the final running sum ``a_D [B, H]``.

    ``W [D, F, H]``, ``V [D, H, P]``, ``b [D, P]``, ``xs [D, B, F]``, ``a0 [B, H]``.
    ``theta_d`` is read off before ``x_d`` is added, so it is structurally free of
    ``x_{>=d}``. (Not an exclusive ``jnp.cumsum`` over a ``[B, D, H]`` tensor: XLA's CPU
    cumsum is a reduce-window, ``O(D^2)``.)
    """
    def step(a, per_position):
        w_d, v_d, b_d, x_d = per_position  # [F, H], [H, P], [P], [B, F]
        h = _sigmoid(a)  # [B, H]
        return a + mp.matmul(x_d, w_d), (mp.matmul(h, v_d) + b_d, h)

    a_end, (theta, hidden) = jax.lax.scan(step, a0, (W, V, b, xs))
    return theta, hidden, a_end


def _blocks(array: Array, k: int) -> Array:
    """``[D, ...]`` -> ``[D / k, k, ...]``."""
    return array.reshape(array.shape[0] // k, k, *array.shape[1:])


@jax.custom_vjp
def nade_params(W: Array, V: Array, b: Array, xs: Array, a0: Array) -> Array:
    """``theta_d = b_d + V_d sigmoid(a_0 + sum_{j<d} W_j x_j)`` for every ``d``: ``[D, B, P]``
    (shapes as in `_forward_scan`); its gradient is the backward scan of the module
    docstring."""
    return _forward_scan(W, V, b, xs, a0)[0]


def _nade_params_fwd(W, V, b, xs, a0):
    """The forward scan in blocks of ``k`` positions, keeping only each block's starting
    running sum ``[D / k, B, H]`` for the backward pass."""
    k = _block_size(W.shape[0])

    def block(a, per_block):
        theta, _, a_next = _forward_scan(*per_block, a)
        return a_next, (theta, a)

    _, (theta, starts) = jax.lax.scan(block, a0, tuple(_blocks(t, k) for t in (W, V, b, xs)))
    return theta.reshape(W.shape[0], *theta.shape[2:]), (W, V, b, xs, starts)


def _nade_params_bwd(residuals, g):
    """Blocks in reverse order: recompute the block's ``h_d`` from its starting sum (the
    forward's own ops, so the same values), then the per-position backward scan."""
    W, V, b, xs, starts = residuals
    k = _block_size(W.shape[0])

    def position(G, per_position):  # G = dL/da_{d+1} [B, H]
        w_d, v_d, x_d, h_d, g_d = per_position  # [F, H], [H, P], [B, F], [B, H], [B, P]
        grads = (mp.matmul(x_d.T, G), mp.matmul(h_d.T, g_d), jnp.sum(g_d, axis=0),
                 mp.matmul(G, w_d.T))  # dW_d [F, H], dV_d [H, P], db_d [P], dx_d [B, F]
        G = G + mp.matmul(g_d, v_d.T) * h_d * (1.0 - h_d)  # dL/da_d
        return G, grads

    def block(G, per_block):
        w, v, bb, x, g_block, a_start = per_block
        _, hidden, _ = _forward_scan(w, v, bb, x, a_start)  # [k, B, H]
        return jax.lax.scan(position, G, (w, v, x, hidden, g_block), reverse=True)

    G, grads = jax.lax.scan(block, jnp.zeros_like(starts[0]),
                            tuple(_blocks(t, k) for t in (W, V, b, xs, g)) + (starts,),
                            reverse=True)
    dW, dV, db, dxs = (t.reshape(W.shape[0], *t.shape[2:]) for t in grads)
    return dW, dV, db, dxs, G


nade_params.defvjp(_nade_params_fwd, _nade_params_bwd)


class NADE(ConditionalAutoregressiveModel):
    """Attributes: ``W [D, F, H]``, ``c [H]``, ``V [D, H, P]``, ``b [D, P]`` (nnx.Param);
    ``context_hidden``: a conditional NADE's `ContextProjection` to ``[B, H]``, else None."""

    def __init__(self, event_shape: Sequence[int], num_levels: int, hidden_size: int = 500,
                 *, head: str = "auto", num_classes: int | None = None,
                 context_features: int | None = None, rngs: nnx.Rngs):
        """Args:
          event_shape: shape of one example, e.g. ``(28, 28, 1)``.
          num_levels: ``K`` levels per dimension (2: scalar inputs, else one-hot).
          hidden_size: ``H``.
          head: per-dimension output distribution (`jaxgen.autoregressive.heads`).
          num_classes: class-conditional ``p(x | y)``, ``y in [0, num_classes)``.
          context_features: ``F`` of a vector context ``[B, F]`` (when ``num_classes`` is
            None).
          rngs: parameter keys.
        """
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
        # Created last, so an unconditional NADE's parameters do not change.
        self._set_context_fields(num_classes, context_features)
        self.context_hidden = nnx.data(self._context_projection(hidden_size, rngs))

    def _start(self, context: Array | None, n: int) -> Array:
        """``a_0 [n, H]``: ``c``, plus ``E[y]`` (or ``W_c c``) for a checked context."""
        a0 = jnp.broadcast_to(self.c[...], (n, self.c.shape[0]))
        return a0 if context is None else a0 + self.context_hidden(context)

    def params_from_inputs(self, inputs: Array, context: Array | None = None) -> Array:
        """``[B, *E, F]`` -> ``[B, *E, P]`` (conditional: given ``context``, ``[B]`` labels
        or ``[B, F]`` vectors)."""
        bsz = inputs.shape[0]
        a0 = self._start(self.check_context(context, bsz), bsz)  # [B, H]
        x = inputs.reshape(bsz, self.num_dims, inputs.shape[-1]).astype(jnp.float32)  # [B,D,F]
        params = nade_params(self.W[...], self.V[...], self.b[...], jnp.swapaxes(x, 0, 1),
                             a0)  # [D, B, P]
        return jnp.swapaxes(params, 0, 1).reshape(bsz, *self.event_shape, self.head.num_params)

    def sample(self, key: PRNGKey, n: int, context: Array | None = None,
               temperature=1.0) -> Array:
        """Ancestral sampling with the running sum as the ``lax.scan`` carry (``O(D H)``
        per sample): ``h_d = sigmoid(a_d)``, ``x_d ~ head(b_d + V_d h_d)`` at softmax
        temperature ``T`` with key ``split(key, D)[d]``, ``a_{d+1} = a_d + W_d x_d``; equals
        `sample_naive` for the same key, context and temperature. Conditional: from
        ``p(x | y)``; ``context=None`` draws class ``i mod num_classes`` for sample ``i``.

        Raises:
          ValueError / TypeError: ``n`` is not an integer ``>= 1``; a bad ``temperature``
            or context.
        """
        n = check_count("n", n)
        temperature = check_temperature("NADE.sample", temperature)
        a0 = self._start(self.check_context(context, n, for_sampling=True), n)  # [n, H]
        keys = jax.random.split(key, self.num_dims)

        def step(a, per_position):
            w_d, v_d, b_d, key_d = per_position
            theta = mp.matmul(_sigmoid(a), v_d) + b_d  # [n, P]
            draw = self.head.sample(key_d, theta, temperature)  # [n] int32
            return a + mp.matmul(self.encode(draw), w_d), draw

        _, draws = jax.lax.scan(step, a0, (self.W[...], self.V[...], self.b[...], keys))
        return jnp.swapaxes(draws, 0, 1).reshape(n, *self.event_shape)


__all__ = ["NADE", "nade_params"]
