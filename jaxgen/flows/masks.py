"""Binary masks of coupling layers: which entries condition (1) and which are transformed (0).

All masks are numpy arrays built from static shapes (no state, no tracing):

* ``half``: vectors ``[D]``, the first ``ceil(D/2)`` entries (NICE, RealNVP on vectors);
* ``alternate``: vectors, even indices;
* ``checkerboard``: images ``[H, W, C]``, ``(h + w) % 2 == 0`` at every channel (RealNVP);
* ``channel``: images, the first half of the channels (RealNVP after squeezing, Glow).

``parity=1`` flips the mask, so alternating couplings transform every entry.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

MASK_KINDS = ("half", "alternate", "checkerboard", "channel")


def make_mask(kind: str, event_shape: Sequence[int], parity: int = 0) -> np.ndarray:
    """The float32 mask of ``kind`` for one event; 1 marks the conditioning entries.

    Args:
      kind: one of `MASK_KINDS`.
      event_shape: ``(D,)`` for ``half``/``alternate``, ``(H, W, C)`` for the image masks.
      parity: 0 or 1; 1 returns ``1 - mask``.

    Returns:
      ``[*event_shape]`` float32 array of zeros and ones.
    """
    event_shape = tuple(int(s) for s in event_shape)
    if kind in ("half", "alternate"):
        if len(event_shape) != 1 or event_shape[0] < 2:
            raise ValueError(f"mask {kind!r} needs a vector event (D,) with D >= 2, "
                             f"got {event_shape}")
        d = event_shape[0]
        mask = (np.arange(d) < (d + 1) // 2) if kind == "half" else (np.arange(d) % 2 == 0)
    elif kind in ("checkerboard", "channel"):
        if len(event_shape) != 3:
            raise ValueError(f"mask {kind!r} needs an image event (H, W, C), got {event_shape}")
        h, w, c = event_shape
        if kind == "checkerboard":
            board = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0  # [H, W]
            mask = np.broadcast_to(board[:, :, None], (h, w, c))
        else:
            if c < 2:
                raise ValueError(f"mask 'channel' needs C >= 2, got event {event_shape}")
            mask = np.broadcast_to(np.arange(c) < c // 2, (h, w, c))
    else:
        raise ValueError(f"unknown mask kind {kind!r}; valid kinds: {MASK_KINDS}")
    if parity not in (0, 1):
        raise ValueError(f"parity must be 0 or 1, got {parity}")
    mask = mask.astype(np.float32)
    return 1.0 - mask if parity else mask


__all__ = ["MASK_KINDS", "make_mask"]
