"""Helpers shared by the coupling layers: which entries condition, conditioner outputs.

Two ways to pick the conditioning entries ``x_a`` and the transformed ones ``x_b``:

* **split kinds** (``half``, ``channel``; `SPLIT_KINDS`): ``x_a`` and ``x_b`` are contiguous
  blocks of the last axis, so the coupling slices and concatenates. The conditioner sees only
  ``x_a`` (``[B, *event[:-1], C_a]``) and returns parameters for ``x_b`` only
  (``[B, *event[:-1], num * C_b]``): no multiplications by a mask, no wasted rows and
  columns in its first and last layers (RealNVP/Glow as in the papers).
* **masked kinds** (``alternate``, ``checkerboard``): interleaved entries; the conditioner
  sees ``m * x`` (``[B, *event]``) and returns parameters for every entry
  (``[B, *event[:-1], num * C]``); those of conditioning entries are ignored.

With a context ``c [B, F]`` (a conditional flow) the conditioner also reads ``c``,
broadcast over the spatial axes and concatenated to its input's channels
(`with_context`; a spatial context ``[B, *S, F]`` is concatenated as it is): it is built
with ``C_in + F`` input channels.

`conditioner_features` gives the conditioner's input width and the number of transformed
channels it parameterizes, so model builders size it without knowing the kind.
"""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from jaxgen.flows.masks import make_mask

SPLIT_KINDS = ("half", "channel")


def split_index(kind: str, num_channels: int) -> int:
    """Size of the first block of the last axis: ``ceil(C/2)`` (half), ``C // 2`` (channel),
    the same entries `jaxgen.flows.masks.make_mask` marks with 1 at parity 0."""
    k = (num_channels + 1) // 2 if kind == "half" else num_channels // 2
    if not 0 < k < num_channels:
        raise ValueError(f"mask {kind!r} cannot split a last axis of size {num_channels}")
    return k


def conditioner_features(kind: str, num_channels: int, parity: int) -> tuple[int, int]:
    """``(C_in, C_out)``: the conditioner maps ``C_in`` channels to ``num * C_out`` (``num``
    parameters per transformed entry). Masked kinds: ``(C, C)``."""
    if kind not in SPLIT_KINDS:
        return num_channels, num_channels
    k = split_index(kind, num_channels)
    a, b = (k, num_channels - k) if parity == 0 else (num_channels - k, k)
    return a, b


def mask_for(kind: str, x, parity: int):
    """The coupling mask for a batch ``x [B, *event]`` as a jnp constant ``[*event]``."""
    return jnp.asarray(make_mask(kind, x.shape[1:], parity))


def split_params(params, event_shape: Sequence[int], num: int, blocks: bool = False):
    """Conditioner output ``[B, *event[:-1], num * C]`` to per-entry parameters.

    ``blocks=False``: interleaved per entry (``[..., C, num]``), returns ``[B, *event, num]``.
    ``blocks=True``: ``num`` contiguous blocks of ``C`` channels (``[..., num, C]``), returns a
    list of ``num`` arrays ``[B, *event]`` (contiguous pieces: no strided gathers).
    """
    event_shape = tuple(event_shape)
    c = event_shape[-1]
    expected = event_shape[:-1] + (num * c,)
    if tuple(params.shape[1:]) != expected:
        raise ValueError(f"conditioner output must be [B, *{expected}] for event {event_shape}"
                         f" and {num} parameter(s) per entry, got shape {params.shape}")
    if blocks:
        # jnp.split (lax.split): its transpose is one concatenate, not pads + adds
        return jnp.split(params, num, axis=-1)
    return params.reshape(params.shape[:1] + event_shape + (num,))


def partition(kind: str, x, parity: int):
    """``x [B, *event] -> (x_cond, x_trans, trans_mask)``.

    Split kinds: ``x_cond = x_a``, ``x_trans = x_b`` (slices), ``trans_mask = None``.
    Masked kinds: ``x_cond = m * x``, ``x_trans = x``, ``trans_mask = 1 - m`` (``[*event]``;
    the coupling multiplies its parameters by it so conditioning entries pass unchanged).
    """
    if kind in SPLIT_KINDS:
        k = split_index(kind, x.shape[-1])
        first, second = jnp.split(x, [k], axis=-1)  # gradient: one concatenate
        return (first, second, None) if parity == 0 else (second, first, None)
    mask = mask_for(kind, x, parity)
    return x * mask, x, 1.0 - mask


def with_context(x_cond, context):
    """``x_cond [B, *S, C]`` and a context -> ``[B, *S, C + F]``.

    A context ``[B, F]`` (a class embedding, a vector) is repeated at every spatial
    position ``S`` and appended to the channels; a *spatial* context ``[B, *S, F]`` (one
    feature vector per position, e.g. a convolutional embedding of the discrete image in
    `jaxgen.flows.variational_dequantization`) is appended as it is. ``x_cond`` itself when
    ``context`` is None.
    """
    if context is None:
        return x_cond
    spatial = x_cond.shape[1:-1]
    if spatial and context.ndim == x_cond.ndim and context.shape[:-1] == x_cond.shape[:-1]:
        return jnp.concatenate([x_cond, context.astype(x_cond.dtype)], axis=-1)
    if context.ndim != 2 or context.shape[0] != x_cond.shape[0]:
        raise ValueError(f"a coupling's context must be [B, F] with B = {x_cond.shape[0]}"
                         + (f" or [B, *{tuple(spatial)}, F]" if spatial else "")
                         + f", got shape {context.shape}")
    c = jnp.broadcast_to(context.reshape((context.shape[0],) + (1,) * len(spatial)
                                         + context.shape[1:2]),
                         x_cond.shape[:-1] + context.shape[1:2]).astype(x_cond.dtype)
    return jnp.concatenate([x_cond, c], axis=-1)


def conditioner_params(conditioner, kind: str, x, parity: int, num: int,
                       blocks: bool = False, context=None):
    """Runs the conditioner on ``x``'s conditioning entries (and the context, see
    `with_context`).

    Returns ``(x_cond, x_trans, params, trans_mask)`` with ``params`` as `split_params`
    gives them for ``x_trans``'s event (``[B, *event_b, num]``, or with ``blocks=True`` a
    list of ``num`` arrays ``[B, *event_b]``).
    """
    x_cond, x_trans, trans_mask = partition(kind, x, parity)
    params = split_params(conditioner(with_context(x_cond, context)), x_trans.shape[1:], num,
                          blocks)
    return x_cond, x_trans, params, trans_mask


def combine(kind: str, x_cond, y_trans, parity: int):
    """Inverse of `partition` on the output: concatenates ``x_a`` and ``y_b`` back in order
    (split kinds); masked kinds already hold ``y`` in ``y_trans``."""
    if kind not in SPLIT_KINDS:
        return y_trans
    parts = (x_cond, y_trans) if parity == 0 else (y_trans, x_cond)
    return jnp.concatenate(parts, axis=-1)


__all__ = ["with_context", "SPLIT_KINDS", "combine", "conditioner_features", "conditioner_params",
           "mask_for", "partition", "split_index", "split_params"]
