"""Running chains: ``lax.scan`` inside a chain, ``vmap`` across chains, ``jit`` once on top.

``sample_chain`` is pure (usable inside any jitted function, e.g. a training step);
``run_chains`` is the entry point for users: it vmaps ``sample_chain`` over many chains and
compiles the whole thing once. This module is the only library module that calls
``jax.jit``.

A chain runs ``num_burnin`` discarded steps, then ``num_samples * thin`` steps of which
every ``thin``-th position is kept::

    state --burn-in--> s_0 --thin steps--> keep x_1 --thin steps--> keep x_2 ...
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class ChainResult(NamedTuple):
    """What ``run_chains`` returns.

    Attributes:
      samples: ``[C, S, *P]`` kept positions of ``C`` chains, ``S = num_samples``.
      info: the kernel's info pytree, each leaf ``[C, S, ...]``, averaged (as float32) over
        the ``thin`` steps that lead to each kept sample.
      final_state: the kernel state of every chain after the last step (leaves ``[C, ...]``).
    """

    samples: Array
    info: Any
    final_state: Any


def _position(state):
    return state.position


def run_kernel(key: PRNGKey, algorithm: SamplingAlgorithm, state, num_steps: int):
    """``num_steps`` steps with ``lax.scan``; returns ``(final_state, infos [num_steps])``."""
    keys = jax.random.split(key, int(num_steps))
    return jax.lax.scan(lambda s, k: algorithm.step(k, s), state, keys)


def sample_chain(key: PRNGKey, algorithm: SamplingAlgorithm, state, num_samples: int, *,
                 num_burnin: int = 0, thin: int = 1,
                 position_fn: Callable[[Any], Array] = _position):
    """One chain: burn-in, then ``num_samples`` kept positions, ``thin`` steps apart.

    Args:
      key: PRNG key.
      algorithm: ``SamplingAlgorithm`` (``init``/``step``).
      state: the initial kernel state (``algorithm.init(position)``).
      num_samples, num_burnin, thin: static ints (``thin >= 1``).
      position_fn: ``state -> what to keep`` (default ``state.position``).

    Returns:
      ``(samples [S, *P], info leaves [S, ...], final_state)``.
    """
    num_samples, num_burnin, thin = int(num_samples), int(num_burnin), int(thin)
    if num_samples < 1 or num_burnin < 0 or thin < 1:
        raise ValueError(f"need num_samples >= 1, num_burnin >= 0, thin >= 1; got "
                         f"{num_samples}, {num_burnin}, {thin}")
    key_burn, key_run = jax.random.split(key)
    if num_burnin:
        state, _ = run_kernel(key_burn, algorithm, state, num_burnin)

    def keep(s, k):
        s, infos = run_kernel(k, algorithm, s, thin)
        mean_info = jax.tree.map(lambda a: jnp.mean(a.astype(jnp.float32), axis=0), infos)
        return s, (position_fn(s), mean_info)

    state, (samples, info) = jax.lax.scan(keep, state, jax.random.split(key_run, num_samples))
    return samples, info, state


def run_chains(key: PRNGKey, algorithm: SamplingAlgorithm, initial_positions: Array,
               num_samples: int, *, num_burnin: int = 0, thin: int = 1,
               position_fn: Callable[[Any], Array] = _position) -> ChainResult:
    """Runs ``C`` independent chains in parallel (vmap) under one ``jax.jit``.

    Args:
      key: PRNG key; chain ``c`` uses ``split(key, C)[c]``.
      algorithm: ``SamplingAlgorithm`` for ONE chain (its ``logdensity_fn`` sees ``[*P]``).
      initial_positions: ``[C, *P]`` starting points.
      num_samples, num_burnin, thin, position_fn: see ``sample_chain``.

    Returns:
      ``ChainResult`` with ``samples [C, S, *P]``.
    """
    initial_positions = jnp.asarray(initial_positions)
    if initial_positions.ndim < 1:
        raise ValueError(f"initial_positions must be [C, *P], got shape {initial_positions.shape}")

    def one(k, x0):
        return sample_chain(k, algorithm, algorithm.init(x0), num_samples,
                            num_burnin=num_burnin, thin=thin, position_fn=position_fn)

    keys = jax.random.split(key, initial_positions.shape[0])
    samples, info, state = jax.jit(jax.vmap(one))(keys, initial_positions)
    return ChainResult(samples, info, state)


def jit(fn: Callable, **kwargs) -> Callable:
    """``jax.jit`` for library users that must stay jit-free (AIS runners, samplers of models);
    kept here so that compilation lives in one module."""
    return jax.jit(fn, **kwargs)


__all__ = ["ChainResult", "run_kernel", "sample_chain", "run_chains", "jit"]
