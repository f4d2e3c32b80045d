"""`layer_scan`: ``lax.scan`` over a stack of identical layers' stacked parameters.

Scanning one traced layer over stacked parameters compiles a deep stack once (DESIGN.md:
compile time is user time). XLA:CPU differentiates a convolution inside a while loop far
more slowly than the same convolution outside one, so on CPU the loop is unrolled
(``unroll=True``: one copy of the layer per step in the compiled program; the same outputs
and gradients as the loop, ``tests/test_layer_scan.py``); on GPU/TPU it stays a loop.
Speed: 30-55x faster ``grad`` of 4 conv layers on CPU (timed: docs/PERFORMANCE_NOTES.md).
A scan over optimizer steps (``train.steps_per_call > 1``) meets the same slow gradient on
CPU, so convolutional models keep ``steps_per_call = 1`` there.
"""
from __future__ import annotations

from typing import Any, Callable

import jax


def unroll_layers() -> bool:
    """Whether layer stacks are unrolled on the default backend (True on CPU)."""
    return jax.default_backend() == "cpu"


def layer_scan(body: Callable, init: Any, xs: Any, *, reverse: bool = False,
               unroll: bool | None = None):
    """``jax.lax.scan(body, init, xs, reverse=reverse)``, unrolled on CPU.

    Args:
      body: ``(carry, x) -> (carry, y)``, one layer.
      init: the initial carry.
      xs: the stacked per-layer parameters, leading axis ``L``.
      reverse: scan from layer ``L - 1`` down to 0.
      unroll: ``True`` (one copy of ``body`` per layer) or ``False`` (a while loop);
        ``None`` (default): `unroll_layers()`. Either gives the same outputs and gradients.

    Returns:
      ``(carry, ys)`` as ``jax.lax.scan``.
    """
    unroll = unroll_layers() if unroll is None else bool(unroll)
    return jax.lax.scan(body, init, xs, reverse=reverse, unroll=unroll)
