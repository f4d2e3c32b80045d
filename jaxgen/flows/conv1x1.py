"""Glow's invertible 1x1 convolution: plain (``slogdet``) and LU-decomposed (O(C) log-det)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.flows.base import Bijector, Constant, num_positions


def _random_rotation(key, n: int):
    """A random orthogonal ``[n, n]`` matrix (QR of a Gaussian; traceable, so it works under
    ``nnx.vmap`` when layers are stacked)."""
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, n), jnp.float32))
    return q * jnp.sign(jnp.diag(r))[None, :]


class Conv1x1(Bijector):
    """Per-position linear map of the channels, ``y[b, h, w] = x[b, h, w] @ W``:

        ``log|det J| = H * W * log|det W|``  (``jnp.linalg.slogdet``, O(C^3)).

    ``W [C, C]`` starts as a random rotation (``log|det W| = 0``). Works on vectors
    ``[B, C]`` too (a learned linear map, ``H * W = 1``).

    Args:
      num_channels: ``C``.
      rngs: NNX random streams (``params``).
    """

    def __init__(self, num_channels: int, *, rngs: nnx.Rngs):
        self.num_channels = int(num_channels)
        self.kernel = nnx.Param(_random_rotation(rngs.params(), num_channels))

    def forward_and_log_det(self, x):  # [B, ..., C]
        w = self.kernel[...]
        log_det = num_positions(x) * jnp.linalg.slogdet(w)[1]
        return x @ w, jnp.broadcast_to(log_det, x.shape[:1])

    def inverse_and_log_det(self, y):
        w = self.kernel[...]
        log_det = -num_positions(y) * jnp.linalg.slogdet(w)[1]
        return y @ jnp.linalg.inv(w), jnp.broadcast_to(log_det, y.shape[:1])


class Conv1x1LU(Bijector):
    """1x1 convolution with an LU-parameterized kernel (Glow, section 3.2):

        ``W = P L (U + diag(sign * exp(log_s)))``,  ``log|det J| = H * W * sum(log_s)``,

    with ``P`` a fixed permutation, ``L`` unit lower triangular, ``U`` strictly upper
    triangular (learned), ``sign`` fixed. Initialized from the LU decomposition of a random
    rotation. The inverse uses two triangular solves.

    Args:
      num_channels: ``C``.
      rngs: NNX random streams (``params``).
    """

    def __init__(self, num_channels: int, *, rngs: nnx.Rngs):
        c = self.num_channels = int(num_channels)
        p, l, u = jax.scipy.linalg.lu(_random_rotation(rngs.params(), c))
        s = jnp.diag(u)
        self.permutation = Constant(p)  # [C, C]
        self.sign = Constant(jnp.sign(s))  # [C]
        self.lower = nnx.Param(jnp.tril(l, -1))
        self.upper = nnx.Param(jnp.triu(u, 1))
        self.log_s = nnx.Param(jnp.log(jnp.abs(s)))

    def _factors(self):
        c = self.num_channels
        lower = jnp.tril(self.lower[...], -1) + jnp.eye(c)
        upper = jnp.triu(self.upper[...], 1) + jnp.diag(self.sign[...] * jnp.exp(self.log_s[...]))
        return self.permutation[...], lower, upper

    def kernel(self):
        """The ``[C, C]`` kernel ``W = P L U``."""
        p, lower, upper = self._factors()
        return p @ lower @ upper

    def forward_and_log_det(self, x):  # [B, ..., C]
        log_det = num_positions(x) * jnp.sum(self.log_s[...])
        return x @ self.kernel(), jnp.broadcast_to(log_det, x.shape[:1])

    def inverse_and_log_det(self, y):
        # x = y W^{-1} = y U^{-1} L^{-1} P^T; solve with transposes: x^T = U^-T L^-T P^T y^T.
        p, lower, upper = self._factors()
        shape = y.shape
        flat = y.reshape(-1, shape[-1])  # [N, C]
        solve = jax.scipy.linalg.solve_triangular
        # x W = y  <=>  W^T x^T = y^T;  W^T = U^T L^T P^T.
        t = solve(upper, flat.T, trans=1, lower=False)  # U^T t = y^T
        t = solve(lower, t, trans=1, lower=True, unit_diagonal=True)  # L^T t' = t
        x = (p @ t).T  # P^T x^T = t'  =>  x^T = P t'
        log_det = -num_positions(y) * jnp.sum(self.log_s[...])
        return x.reshape(shape), jnp.broadcast_to(log_det, shape[:1])


__all__ = ["Conv1x1", "Conv1x1LU"]
