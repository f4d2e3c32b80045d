"""Replay buffer of MCMC samples for training neural EBMs (Du & Mordatch 2019).

Short-run Langevin chains start from past chain end points: each of the ``B`` starts is a
buffer entry, except that with probability ``reinit_prob`` (e.g. 5%) it is fresh noise, so
new modes keep being explored; the chain ends are written back in place.
The buffer is a plain array carried in the train state (``extra``).

A class-conditional energy keeps one buffer per class, ``[K, N_k, *event_shape]``: chain
``b`` starts from (and is written back to) a uniform entry of its own class ``y_b``'s buffer,
so persistent chains stay on the density ``exp(-E(., y))`` they were run on.
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
                  noise_fn: Callable[[PRNGKey, int], Array], labels: Array | None = None
                  ) -> tuple[Array, Array]:
    """Chain starts: buffer entries at uniform indices, each replaced by noise w.p.
    ``reinit_prob``.

    Args:
      buffer: ``[N, *event_shape]``, or ``[K, N_k, *event_shape]`` per class with
        ``labels``.
      labels: ``[B]`` int classes of the chains: start ``b`` is ``buffer[labels_b, i_b]``.

    Returns:
      ``(starts [B, *event_shape], indices [B])`` (indices into the class's buffer).
    """
    k_idx, k_mask, k_noise = jax.random.split(key, 3)
    size = buffer.shape[0] if labels is None else buffer.shape[1]
    indices = jax.random.randint(k_idx, (int(batch_size),), 0, size)
    fresh = jax.random.uniform(k_mask, (int(batch_size),)) < reinit_prob  # [B]
    noise = noise_fn(k_noise, int(batch_size))
    entries = buffer[indices] if labels is None else buffer[labels, indices]  # [B, *E]
    mask = fresh.reshape((-1,) + (1,) * (entries.ndim - 1))
    return jnp.where(mask, noise, entries), indices


def push_replay(buffer: Array, indices: Array, samples: Array,
                labels: Array | None = None) -> Array:
    """Writes ``samples [B, ...]`` back at ``indices [B]`` (of class ``labels [B]``'s
    buffer when given)."""
    where = indices if labels is None else (labels, indices)
    return buffer.at[where].set(samples.astype(buffer.dtype))


__all__ = ["init_replay_buffer", "sample_replay", "push_replay"]
