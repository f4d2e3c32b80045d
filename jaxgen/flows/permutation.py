"""Fixed permutations of the last axis (features of vectors, channels of images)."""
from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np

from jaxgen.flows.base import Bijector


class Permutation(Bijector):
    """``y[..., i] = x[..., perm[i]]``;  ``log|det J| = 0`` (``|det P| = 1``).

    The permutation is static (a tuple), so it costs no state. Couplings leave half of the
    units unchanged; permuting between couplings lets every unit be transformed.

    Args:
      perm: a permutation of ``range(n)``, ``n`` the size of the last axis.
    """

    def __init__(self, perm: Sequence[int]):
        perm = tuple(int(i) for i in perm)
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f"perm must be a permutation of range({len(perm)}), got {perm}")
        self.perm = perm
        self.inverse_perm = tuple(int(i) for i in np.argsort(perm))

    @classmethod
    def reverse(cls, n: int) -> "Permutation":
        """Reverses the last axis (Glow's ``reverse`` ordering)."""
        return cls(tuple(range(n - 1, -1, -1)))

    @classmethod
    def random(cls, n: int, seed: int) -> "Permutation":
        """A fixed random permutation from ``np.random.RandomState(seed)`` (Glow's
        ``shuffle``)."""
        return cls(tuple(np.random.RandomState(seed).permutation(n)))

    def _apply(self, x, perm):
        if x.shape[-1] != len(perm):
            raise ValueError(f"Permutation of size {len(perm)} got last axis {x.shape[-1]} "
                             f"(shape {x.shape})")
        return jnp.take(x, jnp.asarray(perm), axis=-1), jnp.zeros(x.shape[:1], jnp.float32)

    def forward_and_log_det(self, x):
        return self._apply(x, self.perm)

    def inverse_and_log_det(self, y):
        return self._apply(y, self.inverse_perm)


__all__ = ["Permutation"]
