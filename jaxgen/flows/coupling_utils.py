"""Helpers shared by the coupling layers: masks applied to batches, conditioner outputs."""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp

from jaxgen.flows.masks import make_mask


def mask_for(kind: str, x, parity: int):
    """The coupling mask for a batch ``x [B, *event]`` as a jnp constant ``[*event]``."""
    return jnp.asarray(make_mask(kind, x.shape[1:], parity))


def split_params(params, event_shape: Sequence[int], num: int):
    """``[B, *event[:-1], num * C] -> [B, *event, num]`` (one slot per event entry)."""
    event_shape = tuple(event_shape)
    expected = event_shape[:-1] + (num * event_shape[-1],)
    if tuple(params.shape[1:]) != expected:
        raise ValueError(f"conditioner output must be [B, *{expected}] for event {event_shape}"
                         f" and {num} parameter(s) per entry, got shape {params.shape}")
    return params.reshape(params.shape[:1] + event_shape + (num,))


__all__ = ["mask_for", "split_params"]
