"""Replay buffer of MCMC samples for training neural EBMs (Du & Mordatch 2019).

Short-run Langevin chains start from past chain end points: each of the ``B`` starts is a
buffer entry, except that with probability ``reinit_prob`` (e.g. 5%) it is fresh noise, so
new modes keep being explored; the chain ends are written back in place.
The buffer is a plain array carried in the train state (``extra``).
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxgen.types import Array, PRNGKey


def init_replay_buffer(key: PRNGKey, size: int, noise_fn: Callable[[PRNGKey, int], Array]
                       ) -> Array:
    """``size`` draws of ``noise_fn``: ``[N, *event_shape]``."""
    if int(size) < 1:
        raise ValueError(f"replay buffer size must be >= 1, got {size}")
    return noise_fn(key, int(size))


def sample_replay(key: PRNGKey, buffer: Array, batch_size: int, reinit_prob: float,
                  noise_fn: Callable[[PRNGKey, int], Array]) -> tuple[Array, Array]:
    """Chain starts: buffer entries at uniform indices, each replaced by noise w.p.
    ``reinit_prob``.

    Returns:
      ``(starts [B, *event_shape], indices [B])``.
    """
    k_idx, k_mask, k_noise = jax.random.split(key, 3)
    indices = jax.random.randint(k_idx, (int(batch_size),), 0, buffer.shape[0])
    fresh = jax.random.uniform(k_mask, (int(batch_size),)) < reinit_prob  # [B]
    noise = noise_fn(k_noise, int(batch_size))
    mask = fresh.reshape((-1,) + (1,) * (buffer.ndim - 1))
    return jnp.where(mask, noise, buffer[indices]), indices


def push_replay(buffer: Array, indices: Array, samples: Array) -> Array:
    """Writes ``samples [B, ...]`` back at ``indices [B]``."""
    return buffer.at[indices].set(samples.astype(buffer.dtype))


__all__ = ["init_replay_buffer", "sample_replay", "push_replay"]
