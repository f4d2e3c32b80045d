"""Neural energies: ``E_theta(x)`` given by a network, ``p(x) = exp(-E(x)) / Z``.

* ``MLPEnergy``: vectors (2D toy data, flattened images): ``E(x) = w^T phi(x) + b`` with an
  MLP ``phi`` (swish activations, smooth so that Langevin gradients are well behaved).
* ``ConvEnergy``: small images ``[H, W, C]``: two 3x3 convolutions (the second strided),
  global average pooling and a linear head.

Both expose ``energy(x) -> [B]``, ``log_prob(x) = -E(x) - log_z`` (``log_z`` set after
training: for 2D data by quadrature over the plane with a stated error,
`jaxgen.energy.quadrature`, else by AIS), ``transition(key, x)`` (one MALA step per chain,
an exact kernel) and ``sample(key, n)`` (``sample_steps`` Langevin steps from the noise box,
then MALA).

``energy`` and ``log_prob`` check the shape always and, on concrete inputs, that every
value is finite (`jaxgen.checks.check_finite`). Under ``jit`` values are not checked: a NaN
or inf input gives a NaN energy. ``sample(key, n)`` needs an integer ``n >= 1``.
"""
from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgen.checks import check_count, check_finite, check_temperature, is_unit_temperature
from jaxgen.energy.partition import LogPartition
from jaxgen.mcmc.langevin import sgld
from jaxgen.mcmc.mala import mala
from jaxgen.types import Array, PRNGKey
from jaxgen.nn import mixed_precision as mp


class _NeuralEnergy(nnx.Module):
    """Shared: ``log_prob``, MCMC transitions and sampling from the noise box."""

    def _init_common(self, event_shape, *, noise_low: float, noise_high: float,
                     sample_steps: int, step_size: float, noise_scale: float):
        self.event_shape = tuple(int(d) for d in event_shape)
        self.num_dims = math.prod(self.event_shape)
        self.log_z = LogPartition(jnp.zeros(()))
        self.noise_low, self.noise_high = float(noise_low), float(noise_high)
        self.sample_steps, self.step_size = int(sample_steps), float(step_size)
        self.noise_scale = float(noise_scale)

    def _check(self, x: Array, method: str) -> Array:
        """``x`` as float32 after checking it is ``[B, *event_shape]`` and, when concrete,
        finite; ``method`` is named in the messages."""
        owner = f"{type(self).__name__}.{method}"
        check_finite(x, owner)
        x = jnp.asarray(x, jnp.float32)
        if x.ndim != len(self.event_shape) + 1 or tuple(x.shape[1:]) != self.event_shape:
            raise ValueError(f"{owner} expects [B, {', '.join(map(str, self.event_shape))}], "
                             f"got shape {x.shape}")
        return x

    def energy(self, x: Array) -> Array:
        """``E(x)``: ``[B, *event_shape] -> [B]`` (subclasses define ``_energy``)."""
        return self._energy(self._check(x, "energy"))

    def log_prob(self, x: Array) -> Array:
        """``-E(x) - log_z``: ``[B, *event_shape] -> [B]``."""
        return -self._energy(self._check(x, "log_prob")) - self.log_z[...]

    def logdensity_fn(self, x: Array) -> Array:
        """``-E(x)`` for ONE point ``[*event_shape]`` (what samplers take)."""
        return -self.energy(x[None])[0]

    def tempered_logdensity_fn(self, temperature=1.0):
        """``x -> -E(x) / T`` for ONE point (``logdensity_fn`` itself at ``T = 1``)."""
        if is_unit_temperature(temperature):
            return self.logdensity_fn
        return lambda x: self.logdensity_fn(x) / temperature

    def noise(self, key: PRNGKey, n: int) -> Array:
        """Uniform draws in the box ``[noise_low, noise_high]^D``: ``[n, *event_shape]``."""
        return jax.random.uniform(key, (n, *self.event_shape), minval=self.noise_low,
                                  maxval=self.noise_high)

    def transition(self, key: PRNGKey, x: Array, temperature=1.0) -> Array:
        """One MALA step (step ``step_size``) of every chain: ``[B, *E] -> [B, *E]``,
        leaving ``exp(-E(x) / T)`` invariant."""
        kernel = mala(self.tempered_logdensity_fn(temperature), self.step_size)
        step = lambda k, xi: kernel.step(k, kernel.init(xi))[0].position
        return jax.vmap(step)(jax.random.split(key, x.shape[0]), x)

    def langevin(self, key: PRNGKey, x: Array, num_steps: int, grad_clip: float | None = None,
                 temperature=1.0) -> Array:
        """``num_steps`` SGLD-style steps (``step_size``, ``noise_scale``) of every chain, on
        the log-density ``-E(x) / T``."""
        kernel = sgld(self.tempered_logdensity_fn(temperature), self.step_size,
                      self.noise_scale, grad_clip)

        def one(k, xi):
            state, _ = jax.lax.scan(lambda s, kk: kernel.step(kk, s), kernel.init(xi),
                                    jax.random.split(k, int(num_steps)))
            return state.position

        return jax.vmap(one)(jax.random.split(key, x.shape[0]), x)

    def sample(self, key: PRNGKey, n: int, temperature=1.0) -> Array:
        """``sample_steps`` Langevin steps from the noise box, then as many MALA steps, all on
        ``p_T(x) ∝ exp(-E(x) / T)`` (the MALA steps leave it invariant; ``T = 1`` is the
        model and the default draw bit for bit).

        Raises:
          TypeError, ValueError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        k0, k1, k2 = jax.random.split(key, 3)
        x = self.langevin(k1, self.noise(k0, n), self.sample_steps, temperature=temperature)

        def body(x, k):
            return self.transition(k, x, temperature), None

        x, _ = jax.lax.scan(body, x, jax.random.split(k2, self.sample_steps))
        return x


class MLPEnergy(_NeuralEnergy):
    """``E(x) = MLP(flatten(x))``, a scalar per example.

    Args:
      event_shape: shape of one example.
      hidden_sizes: widths of the hidden layers (swish activations).
      noise_low, noise_high: the box of uniform noise that chains start from.
      sample_steps, step_size, noise_scale: sampling settings (see ``sample``).
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], hidden_sizes: Sequence[int] = (128, 128), *,
                 rngs: nnx.Rngs, noise_low: float = -1.0, noise_high: float = 1.0,
                 sample_steps: int = 200, step_size: float = 1e-3, noise_scale: float = 0.045):
        self._init_common(event_shape, noise_low=noise_low, noise_high=noise_high,
                          sample_steps=sample_steps, step_size=step_size,
                          noise_scale=noise_scale)
        sizes = [self.num_dims, *[int(h) for h in hidden_sizes]]
        self.layers = nnx.List([mp.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = mp.Linear(sizes[-1], 1, rngs=rngs)

    def _energy(self, x: Array) -> Array:
        """``[B, *event_shape] -> [B]`` (``x`` already checked)."""
        h = x.reshape(x.shape[0], -1)  # [B, D]
        for layer in self.layers:
            h = jax.nn.swish(layer(h))
        return self.head(h)[:, 0]


class ConvEnergy(_NeuralEnergy):
    """Small convolutional energy for ``[H, W, C]`` images.

    ``E(x) = w^T mean_{hw} swish(conv2(swish(conv1(x)))) + b``.
    """

    def __init__(self, event_shape: Sequence[int], channels: Sequence[int] = (32, 64), *,
                 rngs: nnx.Rngs, noise_low: float = 0.0, noise_high: float = 1.0,
                 sample_steps: int = 200, step_size: float = 1e-3, noise_scale: float = 0.01):
        if len(event_shape) != 3:
            raise ValueError(f"ConvEnergy needs [H, W, C] images, got event_shape {event_shape}")
        self._init_common(event_shape, noise_low=noise_low, noise_high=noise_high,
                          sample_steps=sample_steps, step_size=step_size,
                          noise_scale=noise_scale)
        if len(channels) != 2:
            raise ValueError(f"ConvEnergy takes two conv widths, channels=(c1, c2), got "
                             f"{tuple(channels)}")
        c1, c2 = (int(c) for c in channels)
        self.conv1 = mp.Conv(self.event_shape[-1], c1, (3, 3), rngs=rngs)
        self.conv2 = mp.Conv(c1, c2, (3, 3), strides=(2, 2), rngs=rngs)
        self.head = mp.Linear(c2, 1, rngs=rngs)

    def _energy(self, x: Array) -> Array:
        """``[B, H, W, C] -> [B]`` (``x`` already checked)."""
        h = jax.nn.swish(self.conv1(x))
        h = jax.nn.swish(self.conv2(h))  # [B, H/2, W/2, c2]
        return self.head(jnp.mean(h, axis=(1, 2)))[:, 0]


__all__ = ["MLPEnergy", "ConvEnergy"]
