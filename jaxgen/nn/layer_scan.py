"""`layer_scan`: ``lax.scan`` over a stack of identical layers' stacked parameters.

Scanning one traced layer over stacked parameters compiles a deep stack once (DESIGN.md:
compile time is user time). On XLA:CPU, however, the *gradient* of a convolution inside a
while loop is far slower than the same convolution outside one: measured here (jax 0.10.2,
2 cores), 4 conv layers of 3x3, 32->32 channels on a [64, 8, 8, 32] batch take 610 ms for
``grad`` through ``lax.scan`` versus 18-20 ms unrolled. So on CPU the layer loop is unrolled
(``unroll=True``: one copy of the layer per step in the compiled program, same results);
on GPU/TPU it stays a loop. The same cliff applies to ``train.steps_per_call > 1`` (a scan
over optimizer steps): keep it at 1 for convolutional models on CPU.
"""
from __future__ import annotations

from typing import Any, Callable

import jax


def unroll_layers() -> bool:
    """Whether layer stacks are unrolled on the default backend (True on CPU)."""
    return jax.default_backend() == "cpu"


def layer_scan(body: Callable, init: Any, xs: Any, *, reverse: bool = False):
    """``jax.lax.scan(body, init, xs, reverse=reverse)``, unrolled where that is faster."""
    return jax.lax.scan(body, init, xs, reverse=reverse, unroll=unroll_layers())
