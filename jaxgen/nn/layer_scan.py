"""`layer_scan`: ``lax.scan`` over a stack of identical layers' stacked parameters.

Scanning one traced layer over stacked parameters compiles a deep stack once (DESIGN.md:
compile time is user time). XLA:CPU differentiates a convolution inside a while loop far
more slowly than the same convolution outside one, so on CPU the loop is unrolled
(``unroll=True``: one copy of the layer per step in the compiled program; the same outputs
and gradients as the loop, ``tests/test_layer_scan.py``); on GPU/TPU it stays a loop.
`layer_scan_mode` / ``JAXGEN_LAYER_SCAN`` force either program on any backend.
Speed: 30-55x faster ``grad`` of 4 conv layers on CPU (timed: docs/PERFORMANCE_NOTES.md).
A scan over optimizer steps (``train.steps_per_call > 1``) meets the same slow gradient on
CPU, so convolutional models keep ``steps_per_call = 1`` there.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Iterator

import jax

# The switch: "auto" (unrolled on CPU, rolled elsewhere), "rolled" or "unrolled". Read when
# a program is traced, from `layer_scan_mode` if one is active, else from the environment,
# so ``JAXGEN_LAYER_SCAN=rolled`` runs the GPU/TPU program structure on CPU (tests and the
# compile-time benchmark use it) and "unrolled" the CPU one elsewhere.
ENV_VAR = "JAXGEN_LAYER_SCAN"
MODES = ("auto", "rolled", "unrolled")
_override: list[str] = []


def _check_mode(mode: str, source: str) -> str:
    if mode not in MODES:
        raise ValueError(f"{source} must be one of {list(MODES)}, got {mode!r}")
    return mode


def layer_scan_setting() -> str:
    """The active mode: the innermost `layer_scan_mode`, else ``$JAXGEN_LAYER_SCAN``, else
    ``"auto"``."""
    if _override:
        return _override[-1]
    return _check_mode(os.environ.get(ENV_VAR, "auto") or "auto", ENV_VAR)


@contextlib.contextmanager
def layer_scan_mode(mode: str) -> Iterator[None]:
    """Within the block, programs traced use ``mode`` ("auto", "rolled", "unrolled").

    Only tracing reads it: a jitted function already called with the same argument shapes
    keeps its cached program."""
    _override.append(_check_mode(mode, "layer_scan_mode"))
    try:
        yield
    finally:
        _override.pop()


def unroll_layers() -> bool:
    """Whether layer stacks are unrolled: the `layer_scan_setting`, where ``"auto"`` is
    True on the CPU backend and False on GPU/TPU."""
    mode = layer_scan_setting()
    if mode == "auto":
        return jax.default_backend() == "cpu"
    return mode == "unrolled"


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
