"""Parallel tempering (replica exchange): a ladder of tempered chains that swap positions.

Rung ``r`` of ``R`` targets ``pi_r = pi_{beta_r}`` with ``1 = beta_0 > beta_1 > ... >
beta_{R-1} >= 0`` (``pi_beta ∝ pi^beta`` for a continuous density; an RBM tempers its
joint energy, optionally towards a base-rate distribution, see
`jaxgen.energy.rbm.BernoulliRBM.tempered_gibbs_kernel`). One step:

1. every rung makes one move of its own kernel (vmapped over the rungs, each leaving its
   ``pi_r`` invariant);
2. neighbours ``(r, r + 1)`` with ``r = t mod 2`` (the deterministic even-odd scheme:
   even pairs at even steps, odd pairs at odd ones; non-reversible, so walkers travel the
   ladder ballistically rather than diffusively) exchange positions with probability
   ``min(1, pi_r(x_{r+1}) pi_{r+1}(x_r) / (pi_r(x_r) pi_{r+1}(x_{r+1})))``.

Both moves leave the product ``prod_r pi_r`` invariant, so the cold rung's positions are
draws of ``pi``. The swap only needs ``log pi_r`` up to an ``r``-dependent constant
(``tempered_logdensity_fn(x, beta)``).

Diagnostics: the info of each step says which pairs were attempted and accepted (swap
acceptance per rung = accepted / attempted, `swap_acceptance`); the state tracks
*walkers* (the position that started at rung ``r`` is walker ``r``) and counts round
trips, a walker going from the cold rung to the hottest and back (`PTState.round_trips`).

Positions are passed as ``[R, *P]`` (one position per rung). The kernels carry no state
between steps beyond the position (each step re-initializes them at the current,
possibly swapped, position), so a gradient-based kernel pays one extra evaluation of its
density per step; Gibbs kernels pay nothing. The swaps evaluate ``tempered_logdensity_fn``
at each rung's position for its own and both neighbours' ``beta`` in one vmap over the three
temperatures, so the ``beta``-free part of it (``logdensity_fn(x)`` of ``beta *
logdensity_fn``, an RBM's ``x W``) costs one evaluation per rung and step.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.mcmc import rng
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class PTState(NamedTuple):
    """Attributes:
      position: ``[R, *P]``, the position at each rung (rung 0 is the target).
      walker: ``[R]`` int32, the walker at each rung.
      last_end: ``[R]`` int32 per walker: 1 = its last ladder end was the cold rung, 2 = the
        hottest, 0 = neither yet.
      round_trips: ``[]`` int32, completed cold -> hot -> cold trips (all walkers).
      step: ``[]`` int32, steps made (its parity picks the swap pairs).
    """

    position: Any
    walker: Array
    last_end: Array
    round_trips: Array
    step: Array


class PTInfo(NamedTuple):
    """Attributes: swap_attempted, swap_accepted ``[R - 1]`` bool (pair ``(r, r+1)``);
    swap_probability ``[R - 1]`` (0 where not attempted); kernel_info: the rungs' kernel
    infos (leaves ``[R, ...]``)."""

    swap_attempted: Array
    swap_accepted: Array
    swap_probability: Array
    kernel_info: Any


def geometric_ladder(num_rungs: int, min_beta: float) -> np.ndarray:
    """``beta_r = min_beta^(r / (R - 1))``: ``[R]`` from 1 down to ``min_beta`` (> 0)."""
    num_rungs, min_beta = int(num_rungs), float(min_beta)
    if num_rungs < 2 or not 0.0 < min_beta < 1.0:
        raise ValueError(f"a ladder needs num_rungs >= 2 and 0 < min_beta < 1, got "
                         f"{num_rungs}, {min_beta}")
    return (min_beta ** (np.arange(num_rungs) / (num_rungs - 1))).astype(np.float32)


def check_ladder(betas) -> np.ndarray:
    """``betas`` as float32 ``[R]``, checked: ``R >= 2``, ``beta_0 = 1``, strictly
    decreasing, ``>= 0``."""
    betas = np.asarray(betas, np.float32)
    if betas.ndim != 1 or betas.shape[0] < 2:
        raise ValueError(f"betas must be [R] with R >= 2, got shape {betas.shape}")
    if betas[0] != 1.0 or np.any(np.diff(betas) >= 0) or betas[-1] < 0:
        raise ValueError(f"betas must start at 1 and decrease strictly to >= 0, got {betas}")
    return betas


def parallel_tempering(kernel_fn: Callable[[Array], SamplingAlgorithm],
                       tempered_logdensity_fn: Callable[[Any, Array], Array],
                       betas) -> SamplingAlgorithm:
    """Replica exchange over a temperature ladder with even-odd neighbour swaps.

    Args:
      kernel_fn: ``beta -> SamplingAlgorithm`` for ONE position, leaving ``pi_beta``
        invariant (``beta`` arrives traced: the kernels of all rungs are one vmapped
        computation, so the kernel must not branch on it in Python).
      tempered_logdensity_fn: ``(x [*P], beta) -> log pi_beta(x)`` up to a constant in
        ``beta`` (``beta * logdensity_fn(x)`` for ``pi^beta``).
      betas: ``[R]`` ladder (`check_ladder`; e.g. `geometric_ladder`).

    Returns:
      ``SamplingAlgorithm``: ``init(positions [R, *P]) -> PTState``,
      ``step(key, state) -> (PTState, PTInfo)``.
    """
    betas = jnp.asarray(check_ladder(betas))
    num_rungs = int(betas.shape[0])
    rungs = jnp.arange(num_rungs)
    # [R, 3]: (beta_{r-1}, beta_r, beta_{r+1}), the ends repeated (those entries are unused)
    neighbour_betas = jnp.stack([jnp.concatenate([betas[:1], betas[:-1]]), betas,
                                 jnp.concatenate([betas[1:], betas[-1:]])], axis=-1)

    def init(position) -> PTState:
        lead = {np.shape(leaf)[0] if np.ndim(leaf) else None
                for leaf in jax.tree.leaves(position)}
        if lead != {num_rungs}:
            raise ValueError(f"parallel_tempering: positions must be [R={num_rungs}, *P], got "
                             f"leading sizes {sorted(map(str, lead))}")
        last_end = jnp.zeros((num_rungs,), jnp.int32).at[0].set(1)
        return PTState(position, rungs.astype(jnp.int32), last_end, jnp.zeros((), jnp.int32),
                       jnp.zeros((), jnp.int32))

    def move(key, beta, x):
        kernel = kernel_fn(beta)
        new, info = kernel.step(key, kernel.init(x))
        return new.position, info

    def step(key: PRNGKey, state: PTState):
        key_move, key_swap = jax.random.split(key)
        position, kernel_info = jax.vmap(move)(jax.random.split(key_move, num_rungs), betas,
                                               state.position)
        # table[r] = log pi_{r-1, r, r+1}(x_r): the inner vmap runs over temperatures at one
        # position, so whatever does not depend on beta (an RBM's x W, a network's
        # logdensity_fn(x) under beta * logdensity_fn) is computed once per rung, not 3 times
        table = jax.vmap(lambda x, bs: jax.vmap(lambda b: tempered_logdensity_fn(x, b))(bs))(
            position, neighbour_betas)  # [R, 3]
        own = table[:, 1]  # log pi_r(x_r)
        cross_up = table[1:, 0]  # log pi_r(x_{r+1})
        cross_down = table[:-1, 2]  # log pi_{r+1}(x_r)
        log_ratio = cross_up + cross_down - own[:-1] - own[1:]  # [R - 1]
        log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
        attempted = (rungs[:-1] % 2) == (state.step % 2)
        uniforms = rng.uniform(key_swap, (num_rungs - 1,))
        accepted = attempted & (jnp.log(uniforms) < log_ratio)
        prob = jnp.where(attempted, jnp.exp(jnp.minimum(log_ratio, 0.0)), 0.0)
        # disjoint pairs: rung r takes r+1's position if pair r swapped, r-1's if pair r-1 did
        swap_up = jnp.concatenate([accepted, jnp.zeros((1,), bool)])
        swap_down = jnp.concatenate([jnp.zeros((1,), bool), accepted])
        position = jax.tree.map(lambda a: _exchange(a, swap_up, swap_down), position)
        walker = _exchange(state.walker, swap_up, swap_down)
        # round trips: a walker reaching the cold rung after the hottest completes one
        cold, hot = walker[0], walker[-1]
        completed = state.last_end[cold] == 2
        last_end = state.last_end.at[cold].set(1)
        last_end = last_end.at[hot].set(jnp.where(last_end[hot] == 1, 2, last_end[hot]))
        new = PTState(position, walker, last_end,
                      state.round_trips + completed.astype(jnp.int32), state.step + 1)
        return new, PTInfo(attempted, accepted, prob, kernel_info)

    return SamplingAlgorithm(init, step)


def _exchange(a: Array, swap_up: Array, swap_down: Array) -> Array:
    """``a [R, ...]`` with rung ``r`` taking ``a[r + 1]`` where ``swap_up[r]`` and ``a[r - 1]``
    where ``swap_down[r]``: the permutation ``perm[r] = r + swap_up[r] - swap_down[r]``
    applied as one gather along the rung axis.

    (Selects of shifted copies, ``where(swap_up, a[1:] ++ a[-1:], ...)``, compute the same
    values, but on CPU a 784x500 RBM ladder's PT step took 101 ms with them against 49 ms
    with the gather, the same matmuls in both programs; most likely XLA fused the producer
    of ``a``, the sweep's Bernoulli draws, into each shifted read. See
    docs/ENERGY_RESULTS.md.)"""
    perm = jnp.arange(a.shape[0]) + swap_up.astype(jnp.int32) - swap_down.astype(jnp.int32)
    return jnp.take(a, perm, axis=0, mode="clip")


def tempered_kernel_fn(kernel: Callable[[Callable], SamplingAlgorithm],
                       logdensity_fn: Callable[[Array], Array]):
    """``(kernel_fn, tempered_logdensity_fn)`` for ``pi_beta ∝ pi^beta`` from a kernel
    factory ``kernel(logdensity_fn) -> SamplingAlgorithm`` (e.g.
    ``lambda f: mala(f, 0.1)``)."""
    return (lambda beta: kernel(lambda x: beta * logdensity_fn(x)),
            lambda x, beta: beta * logdensity_fn(x))


def swap_acceptance(info: PTInfo) -> np.ndarray:
    """Per pair ``(r, r+1)``: accepted / attempted swaps over the leading (step, chain)
    axes of ``info``: ``[R - 1]``."""
    attempted = np.asarray(info.swap_attempted, np.float64).reshape(-1, info.swap_attempted.shape[-1])
    accepted = np.asarray(info.swap_accepted, np.float64).reshape(attempted.shape)
    return accepted.sum(0) / np.maximum(attempted.sum(0), 1.0)


__all__ = ["PTInfo", "PTState", "check_ladder", "geometric_ladder", "parallel_tempering",
           "swap_acceptance", "tempered_kernel_fn"]
