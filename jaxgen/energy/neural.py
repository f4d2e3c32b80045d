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

Class-conditional energies (``num_classes=K``): ``E(x, y)`` with a learned class embedding
``e[y]`` (`jaxgen.nn.context.ContextProjection`) added to the first hidden layer's
pre-activation (MLP) or to the first convolution's channels (conv), so
``p(x | y) = exp(-E(x, y)) / Z(y)`` with one ``log Z(y)`` per class: ``log_z`` is ``[K]``
and ``log_prob(x, context=y) = -E(x, y) - log_z[y]``. Every method takes ``context``
(``[B]`` int labels, one per example or chain; `jaxgen.nn.context.check_context`): the MCMC
kernels run each chain on its own class's density ``exp(-E(., y_b) / T)``, and
``sample(key, n, context=None)`` draws class ``i mod K`` for sample ``i``.

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
from jaxgen.nn.context import ContextProjection, check_context
from jaxgen.types import Array, PRNGKey
from jaxgen.nn import mixed_precision as mp


class _NeuralEnergy(nnx.Module):
    """Shared: ``log_prob``, MCMC transitions and sampling from the noise box."""

    def _init_common(self, event_shape, *, noise_low: float, noise_high: float,
                     sample_steps: int, step_size: float, noise_scale: float,
                     num_classes: int | None = None):
        self.event_shape = tuple(int(d) for d in event_shape)
        self.num_dims = math.prod(self.event_shape)
        self.num_classes = (None if num_classes is None
                            else check_count("num_classes", num_classes))
        self.log_z = LogPartition(jnp.zeros(() if num_classes is None else (self.num_classes,)))
        self.noise_low, self.noise_high = float(noise_low), float(noise_high)
        self.sample_steps, self.step_size = int(sample_steps), float(step_size)
        self.noise_scale = float(noise_scale)

    @property
    def is_conditional(self) -> bool:
        """Whether the energy is ``E(x, y)`` of a class label ``y``."""
        return self.num_classes is not None

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

    def _context(self, context, n: int, method: str, *, for_sampling: bool = False):
        """``context`` checked for ``n`` examples: ``[n]`` int32 labels, ``None`` for an
        unconditional energy (`check_context` raises on a mismatch, naming ``method``)."""
        return check_context(context, n, self.num_classes, None,
                             f"{type(self).__name__}.{method}", for_sampling=for_sampling)

    def energy(self, x: Array, context=None) -> Array:
        """``E(x)`` (``E(x, y)`` given labels ``context [B]``): ``[B, *event_shape] -> [B]``
        (subclasses define ``_energy``)."""
        x = self._check(x, "energy")
        return self._energy(x, self._context(context, x.shape[0], "energy"))

    def log_prob(self, x: Array, context=None) -> Array:
        """``-E(x) - log_z`` (``-E(x, y) - log_z[y]``): ``[B, *event_shape] -> [B]``."""
        x = self._check(x, "log_prob")
        context = self._context(context, x.shape[0], "log_prob")
        log_z = self.log_z[...] if context is None else self.log_z[...][context]
        return -self._energy(x, context) - log_z

    def logdensity_fn(self, x: Array, context=None) -> Array:
        """``-E(x)`` (``-E(x, y)`` given one int label ``context``) for ONE point
        ``[*event_shape]`` (what samplers take)."""
        return -self.energy(x[None], None if context is None else jnp.reshape(context, (1,)))[0]

    def tempered_logdensity_fn(self, temperature=1.0, context=None):
        """``x -> -E(x) / T`` for ONE point (``-E(x, y) / T`` for one label ``context``;
        ``logdensity_fn`` itself at ``T = 1``)."""
        if context is None:
            if is_unit_temperature(temperature):
                return self.logdensity_fn
            return lambda x: self.logdensity_fn(x) / temperature
        if is_unit_temperature(temperature):
            return lambda x: self.logdensity_fn(x, context)
        return lambda x: self.logdensity_fn(x, context) / temperature

    def noise(self, key: PRNGKey, n: int) -> Array:
        """Uniform draws in the box ``[noise_low, noise_high]^D``: ``[n, *event_shape]``."""
        return jax.random.uniform(key, (n, *self.event_shape), minval=self.noise_low,
                                  maxval=self.noise_high)

    def _per_chain(self, one_fn, key: PRNGKey, x: Array, context) -> Array:
        """``one_fn(key, x_b, y_b)`` over the chains (``y_b`` None when unconditional)."""
        keys = jax.random.split(key, x.shape[0])
        if context is None:
            return jax.vmap(lambda k, xi: one_fn(k, xi, None))(keys, x)
        return jax.vmap(one_fn)(keys, x, context)

    def transition(self, key: PRNGKey, x: Array, temperature=1.0, context=None) -> Array:
        """One MALA step (step ``step_size``) of every chain: ``[B, *E] -> [B, *E]``,
        leaving ``exp(-E(x) / T)`` invariant (chain ``b`` of a conditional energy:
        ``exp(-E(x, y_b) / T)``, labels ``context [B]``)."""
        context = self._context(context, x.shape[0], "transition")

        def one(k, xi, yi):
            kernel = mala(self.tempered_logdensity_fn(temperature, yi), self.step_size)
            return kernel.step(k, kernel.init(xi))[0].position

        return self._per_chain(one, key, x, context)

    def langevin(self, key: PRNGKey, x: Array, num_steps: int, grad_clip: float | None = None,
                 temperature=1.0, context=None) -> Array:
        """``num_steps`` SGLD-style steps (``step_size``, ``noise_scale``) of every chain, on
        the log-density ``-E(x) / T`` (chain ``b`` of a conditional energy:
        ``-E(x, y_b) / T``, labels ``context [B]``)."""
        context = self._context(context, x.shape[0], "langevin")

        def one(k, xi, yi):
            kernel = sgld(self.tempered_logdensity_fn(temperature, yi), self.step_size,
                          self.noise_scale, grad_clip)
            state, _ = jax.lax.scan(lambda s, kk: kernel.step(kk, s), kernel.init(xi),
                                    jax.random.split(k, int(num_steps)))
            return state.position

        return self._per_chain(one, key, x, context)

    def sample(self, key: PRNGKey, n: int, temperature=1.0, context=None) -> Array:
        """``sample_steps`` Langevin steps from the noise box, then as many MALA steps, all on
        ``p_T(x) ∝ exp(-E(x) / T)`` (the MALA steps leave it invariant; ``T = 1`` is the
        model and the default draw bit for bit). A conditional energy draws sample ``i``
        from ``exp(-E(x, y_i) / T)``: ``context`` ``[n]`` int labels (or one int for all),
        default ``y_i = i mod num_classes``.

        Raises:
          TypeError, ValueError: ``n`` is not an integer ``>= 1``; ``temperature`` not a
            finite number ``> 0``; ``context`` not ``[n]`` labels in ``[0, num_classes)``,
            or given to an unconditional energy.
        """
        n = check_count(f"{type(self).__name__}.sample: n", n)
        temperature = check_temperature(f"{type(self).__name__}.sample", temperature)
        context = self._context(context, n, "sample", for_sampling=True)
        k0, k1, k2 = jax.random.split(key, 3)
        x = self.langevin(k1, self.noise(k0, n), self.sample_steps, temperature=temperature,
                          context=context)

        def body(x, k):
            return self.transition(k, x, temperature, context), None

        x, _ = jax.lax.scan(body, x, jax.random.split(k2, self.sample_steps))
        return x


class MLPEnergy(_NeuralEnergy):
    """``E(x) = MLP(flatten(x))``, a scalar per example; class-conditional
    ``E(x, y) = head(... swish(W_1 x + b_1 + e[y]) ...)`` with ``num_classes``.

    Args:
      event_shape: shape of one example.
      hidden_sizes: widths of the hidden layers (swish activations).
      noise_low, noise_high: the box of uniform noise that chains start from.
      sample_steps, step_size, noise_scale: sampling settings (see ``sample``).
      num_classes: ``K`` for ``E(x, y)``, ``y in [0, K)`` (needs a hidden layer), or None.
      rngs: NNX random streams.
    """

    def __init__(self, event_shape: Sequence[int], hidden_sizes: Sequence[int] = (128, 128), *,
                 rngs: nnx.Rngs, noise_low: float = -1.0, noise_high: float = 1.0,
                 sample_steps: int = 200, step_size: float = 1e-3, noise_scale: float = 0.045,
                 num_classes: int | None = None):
        self._init_common(event_shape, noise_low=noise_low, noise_high=noise_high,
                          sample_steps=sample_steps, step_size=step_size,
                          noise_scale=noise_scale, num_classes=num_classes)
        sizes = [self.num_dims, *[int(h) for h in hidden_sizes]]
        if num_classes is not None and len(sizes) < 2:
            raise ValueError("a class-conditional MLPEnergy adds its class embedding to the "
                             "first hidden layer: give hidden_sizes at least one width, got "
                             f"{tuple(hidden_sizes)}")
        self.layers = nnx.List([mp.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.head = mp.Linear(sizes[-1], 1, rngs=rngs)
        self.class_embedding = (None if num_classes is None else ContextProjection(
            sizes[1], num_classes=self.num_classes, rngs=rngs))

    def _energy(self, x: Array, context=None) -> Array:
        """``[B, *event_shape] -> [B]`` (``x`` and ``context`` already checked)."""
        h = x.reshape(x.shape[0], -1)  # [B, D]
        for i, layer in enumerate(self.layers):
            pre = layer(h)
            if i == 0 and context is not None:
                pre = pre + self.class_embedding(context).astype(pre.dtype)  # [B, H_1]
            h = jax.nn.swish(pre)
        return self.head(h)[:, 0]


class ConvEnergy(_NeuralEnergy):
    """Small convolutional energy for ``[H, W, C]`` images.

    ``E(x) = w^T mean_{hw} swish(conv2(swish(conv1(x)))) + b``; class-conditional
    (``num_classes``): ``conv1(x) + e[y]``, the embedding broadcast over positions.
    """

    def __init__(self, event_shape: Sequence[int], channels: Sequence[int] = (32, 64), *,
                 rngs: nnx.Rngs, noise_low: float = 0.0, noise_high: float = 1.0,
                 sample_steps: int = 200, step_size: float = 1e-3, noise_scale: float = 0.01,
                 num_classes: int | None = None):
        if len(event_shape) != 3:
            raise ValueError(f"ConvEnergy needs [H, W, C] images, got event_shape {event_shape}")
        self._init_common(event_shape, noise_low=noise_low, noise_high=noise_high,
                          sample_steps=sample_steps, step_size=step_size,
                          noise_scale=noise_scale, num_classes=num_classes)
        if len(channels) != 2:
            raise ValueError(f"ConvEnergy takes two conv widths, channels=(c1, c2), got "
                             f"{tuple(channels)}")
        c1, c2 = (int(c) for c in channels)
        self.conv1 = mp.Conv(self.event_shape[-1], c1, (3, 3), rngs=rngs)
        self.conv2 = mp.Conv(c1, c2, (3, 3), strides=(2, 2), rngs=rngs)
        self.head = mp.Linear(c2, 1, rngs=rngs)
        self.class_embedding = (None if num_classes is None else ContextProjection(
            c1, num_classes=self.num_classes, rngs=rngs))

    def _energy(self, x: Array, context=None) -> Array:
        """``[B, H, W, C] -> [B]`` (``x`` and ``context`` already checked)."""
        pre = self.conv1(x)  # [B, H, W, c1]
        if context is not None:
            pre = pre + self.class_embedding(context).astype(pre.dtype)[:, None, None, :]
        h = jax.nn.swish(pre)
        h = jax.nn.swish(self.conv2(h))  # [B, H/2, W/2, c2]
        return self.head(jnp.mean(h, axis=(1, 2)))[:, 0]


__all__ = ["MLPEnergy", "ConvEnergy"]
