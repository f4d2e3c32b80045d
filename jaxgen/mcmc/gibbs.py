"""Gibbs samplers: site-by-site for binary vectors (fully visible BMs), block for RBMs.

Site-by-site: one step is a sweep over the sites ``i = 1..D`` in order, each resampled from
its full conditional ``p(x_i = 1 | x_-i) = sigmoid(l_i)`` with the log-odds
``l_i = log pi(x_i=1, x_-i) - log pi(x_i=0, x_-i)`` (or a model's closed form, e.g.
``l_i = sum_j W_ij x_j + b_i`` for a Boltzmann machine). Each update leaves ``pi``
invariant, hence so does the sweep.

Block: for a bipartite model (RBM) the layers are conditionally independent given each other,
so one step draws ``h ~ p(h | v)`` then ``v ~ p(v | h)``.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxgen.mcmc import rng
from jaxgen.types import Array, PRNGKey, SamplingAlgorithm


class GibbsState(NamedTuple):
    """Attributes: position ``[*S]`` int32 in {0, 1} (one chain)."""

    position: Array


class GibbsInfo(NamedTuple):
    """Attributes: num_changed, the number of sites (visible units) that changed."""

    num_changed: Array


class BlockGibbsState(NamedTuple):
    """Attributes: position (visible) ``[*V]``; hidden ``[H]`` drawn at the last step."""

    position: Array
    hidden: Array


def binary_gibbs(logdensity_fn: Callable[[Array], Array] | None = None,
                 conditional_logit_fn: Callable[[Array, Array], Array] | None = None
                 ) -> SamplingAlgorithm:
    """Systematic-scan site-by-site Gibbs on ``{0, 1}^D``.

    Args:
      logdensity_fn: ``x [*S] -> log pi(x)``; the log-odds of site ``i`` is the difference of
        two evaluations (generic, ``2D`` evaluations per sweep).
      conditional_logit_fn: optional ``(x [D] float, i) -> l_i``, a closed form of that
        log-odds on the flattened state (used instead of ``logdensity_fn`` when given).

    Returns:
      ``SamplingAlgorithm``: ``init(x) -> GibbsState``, ``step(key, state) -> (GibbsState,
      GibbsInfo)``; one step is one full sweep.
    """
    if logdensity_fn is None and conditional_logit_fn is None:
        raise ValueError("give logdensity_fn or conditional_logit_fn")

    def init(position: Array) -> GibbsState:
        return GibbsState(jnp.asarray(position).astype(jnp.int32))

    def step(key: PRNGKey, state: GibbsState):
        shape = state.position.shape
        x0 = state.position.reshape(-1).astype(jnp.float32)  # [D]
        num_sites = x0.shape[0]
        uniforms = rng.uniform(key, (num_sites,))

        def logit(x, i):
            if conditional_logit_fn is not None:
                return conditional_logit_fn(x, i)
            log_p = lambda v: logdensity_fn(v.reshape(shape).astype(state.position.dtype))
            return log_p(x.at[i].set(1.0)) - log_p(x.at[i].set(0.0))

        def site(x, inputs):
            i, u = inputs
            value = (u < jax.nn.sigmoid(logit(x, i))).astype(x.dtype)
            return x.at[i].set(value), None

        x, _ = jax.lax.scan(site, x0, (jnp.arange(num_sites), uniforms))
        changed = jnp.sum(x != x0)
        return GibbsState(x.reshape(shape).astype(jnp.int32)), GibbsInfo(changed)

    return SamplingAlgorithm(init, step)


def block_gibbs(sample_hidden_fn: Callable[[PRNGKey, Array], Array],
                sample_visible_fn: Callable[[PRNGKey, Array], Array]) -> SamplingAlgorithm:
    """Alternating block Gibbs for a bipartite model: ``h ~ p(h|v)``, then ``v ~ p(v|h)``.

    Args:
      sample_hidden_fn: ``(key, v [*V]) -> h [H]``, one draw of ``p(h | v)``.
      sample_visible_fn: ``(key, h [H]) -> v [*V]``, one draw of ``p(v | h)``.
    """

    def init(position: Array) -> BlockGibbsState:
        position = jnp.asarray(position)
        hidden = jax.eval_shape(sample_hidden_fn, jax.random.key(0), position)
        return BlockGibbsState(position, jnp.zeros(hidden.shape, hidden.dtype))

    def step(key: PRNGKey, state: BlockGibbsState):
        key_h, key_v = jax.random.split(key)
        hidden = sample_hidden_fn(key_h, state.position)
        visible = sample_visible_fn(key_v, hidden).astype(state.position.dtype)
        changed = jnp.sum(visible != state.position)
        return BlockGibbsState(visible, hidden), GibbsInfo(changed)

    return SamplingAlgorithm(init, step)


__all__ = ["GibbsState", "GibbsInfo", "BlockGibbsState", "binary_gibbs", "block_gibbs"]
