"""Preprocessing as pure, jit- and vmap-safe JAX functions.

Discrete data hold level indices ``x in {0, ..., K-1}`` (``K = num_levels``). Continuous
models see them through uniform dequantization, ``y = (x + u) / K`` with
``u ~ U[0, 1)``: a density ``p(y)`` on ``[0, 1)^D`` defines the discrete model
``P(x) = int_{cell(x)} p(y) dy`` over cells of volume ``K^-D``, and by Jensen
``-log P(x) <= E_u[-log p(y)] + D log K`` nats (Theis et al., 2016). Flows usually add the
logit transform on top (RealNVP), whose log-determinant `logit_transform` returns.
Variational dequantization (Flow++) learns the noise distribution ``q(u | x)`` jointly with
the model (`jaxgen.flows.variational_dequantization`); the noise then belongs to the model,
which scores the integer data itself.

Leading axis is the batch; "summed over the event" means over every other axis.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxgen.types import Array, PRNGKey

DEQUANTIZE = ("none", "uniform", "variational")


def _sum_over_event(values: Array) -> Array:
    """``[B, *event] -> [B]``."""
    return jnp.sum(values, axis=tuple(range(1, values.ndim)))


def dequantize(x_int: Array, noise: Array, num_levels: int) -> Array:
    """Maps levels and noise in ``[0, 1)`` into the levels' cells: ``y = (x + noise) / K``.

    Each output lies in its cell, ``floor(y * K) == x``, also in float32: the rare value
    that rounds onto a cell edge (``noise`` within an ulp of 0 or 1) is nudged one float
    step back inside. Use this directly for variational dequantization (Flow++), where the
    noise comes from a learned distribution.

    Args:
        x_int: integer levels in ``[0, num_levels)``, any shape.
        noise: same shape, values in ``[0, 1)``.
        num_levels: ``K``.

    Returns:
        float32 array shaped like ``x_int`` in ``[0, 1)``.
    """
    x = jnp.asarray(x_int, jnp.float32)
    # The largest float32 below x + 1 keeps the numerator inside the cell.
    y = jnp.minimum(x + noise, jnp.nextafter(x + 1, x)) / num_levels
    for _ in range(2):  # a product y * K may round across a cell edge by an ulp or so
        cell = jnp.floor(y * num_levels)
        y = jnp.where(cell < x, jnp.nextafter(y, 2.0), y)
        y = jnp.where(cell > x, jnp.nextafter(y, -1.0), y)
    return y


def uniform_dequantize(key: PRNGKey, x_int: Array, num_levels: int) -> Array:
    """Uniform dequantization ``y = (x + u) / K``, ``u ~ U[0, 1)`` i.i.d. per entry.

    Args:
        key: PRNG key.
        x_int: integer levels in ``[0, num_levels)``, e.g. ``[B, H, W, C]``.
        num_levels: ``K``.

    Returns:
        float32 array shaped like ``x_int``, in ``[0, 1)``, with ``floor(y * K) == x``.
    """
    noise = jax.random.uniform(key, jnp.shape(x_int), jnp.float32)
    return dequantize(x_int, noise, num_levels)


def quantize(y: Array, num_levels: int) -> Array:
    """Inverse of dequantization: ``x = clip(floor(y * K), 0, K - 1)`` as int32."""
    return jnp.clip(jnp.floor(y * num_levels), 0, num_levels - 1).astype(jnp.int32)


def scale_to_unit(x_int: Array, num_levels: int) -> Array:
    """Levels to intensities in ``[0, 1]``: ``x / (K - 1)`` (0 -> 0, K-1 -> 1), float32.

    E.g. the Bernoulli probabilities of dynamic binarization for 8-bit images.
    """
    return jnp.asarray(x_int, jnp.float32) / (num_levels - 1)


def logit_transform(x: Array, alpha: float = 0.05) -> tuple[Array, Array]:
    """RealNVP's logit transform of data in ``[0, 1]`` and its log-determinant.

    ``p = alpha + (1 - 2 alpha) x``, ``y = logit(p) = log p - log(1 - p)``. Elementwise,
    ``dy/dx = (1 - 2 alpha) / (p (1 - p))``, so

        ``log|det J| = sum_event [log(1 - 2 alpha) - log p - log(1 - p)]``
                    ``= sum_event [log(1 - 2 alpha) + softplus(y) + softplus(-y)]``

    (the second form, with ``log p = -softplus(-y)``, is the stable one).

    Args:
        x: ``[B, *event]`` values in ``[0, 1]``.
        alpha: squeezes ``x`` away from 0 and 1, in ``[0, 0.5)``.

    Returns:
        ``(y [B, *event], log_det [B])``.
    """
    p = alpha + (1 - 2 * alpha) * jnp.asarray(x, jnp.float32)
    y = jnp.log(p) - jnp.log1p(-p)
    log_det = jnp.log1p(-2 * alpha) + jax.nn.softplus(y) + jax.nn.softplus(-y)
    return y, _sum_over_event(log_det)


def inverse_logit_transform(y: Array, alpha: float = 0.05) -> tuple[Array, Array]:
    """Inverse of `logit_transform`: ``x = (sigmoid(y) - alpha) / (1 - 2 alpha)``.

    ``log|det J| = sum_event [log sigmoid(y) + log(1 - sigmoid(y)) - log(1 - 2 alpha)]
                 = -sum_event [softplus(y) + softplus(-y) + log(1 - 2 alpha)]``,
    the negative of the forward log-determinant.

    Args:
        y: ``[B, *event]`` real values.
        alpha: the forward transform's ``alpha``.

    Returns:
        ``(x [B, *event], log_det [B])``.
    """
    y = jnp.asarray(y, jnp.float32)
    x = (jax.nn.sigmoid(y) - alpha) / (1 - 2 * alpha)
    log_det = -(jnp.log1p(-2 * alpha) + jax.nn.softplus(y) + jax.nn.softplus(-y))
    return x, _sum_over_event(log_det)


def binarize_static(x: Array, threshold: float) -> Array:
    """Static binarization ``1[x >= threshold]`` as int32 (e.g. threshold 8 for digits)."""
    return (x >= threshold).astype(jnp.int32)


def binarize_dynamic(key: PRNGKey, probs: Array) -> Array:
    """Dynamic binarization: an independent Bernoulli draw per pixel, ``P(1) = probs``.

    Redrawn every epoch/step, this regularizes binary models on grayscale data
    (Salakhutdinov & Murray, 2008). Get ``probs`` with `scale_to_unit`.

    Args:
        key: PRNG key.
        probs: intensities in ``[0, 1]``, any shape.

    Returns:
        int32 array in ``{0, 1}`` shaped like ``probs``.
    """
    return jax.random.bernoulli(key, probs).astype(jnp.int32)


@dataclasses.dataclass(frozen=True, eq=False)
class Preprocessing:
    """What stands between the stored data and the model, built once per run
    (`make_preprocessing`); the model builder, the training loop and evaluation all take
    this one value.

    With ``dequantize="uniform"`` the model sees ``y = (x + u) / K`` (a fresh ``u`` per step
    and per evaluation batch, from that step's key) and its NLL converts to the discrete
    data's units by ``nll_offset_nats = D log K`` (``-log P(x) <= E_u[-log p(y)] + D log K``).
    With ``"none"`` the model sees the data as stored. With ``"variational"`` the model too
    sees the stored levels: it is a `jaxgen.flows.variational_dequantization.
    VariationallyDequantized` wrapper that draws its own noise ``u ~ q(u | x)`` and whose
    ``log_prob`` is already in the discrete data's nats (``nll_offset_nats = 0``); its
    density inside is initialized on ``density_init_data``.

    Attributes:
      dequantize: ``"none"``, ``"uniform"`` or ``"variational"``.
      num_levels: ``K`` of the stored discrete data, ``None`` for continuous data.
      num_dims: ``D``, scalar dimensions per example.
      init_data: ``[N, *event_shape]`` the training split as the model sees it (dequantized
        once, with the key given to `make_preprocessing`): the data-dependent init batch
        (ActNorm, counts, moments) and the data of the objective's ``init``.
      density_init_data: ``"variational"`` only: the training split uniformly dequantized
        (same key), ``[N, *event_shape]`` float32 in ``[0, 1)``: the data-dependent init
        batch of the density on ``[0, 1)^D`` inside the wrapper; ``None`` otherwise.
    """

    dequantize: str
    num_levels: int | None
    num_dims: int
    init_data: np.ndarray
    density_init_data: np.ndarray | None = None

    @property
    def active(self) -> bool:
        """Whether batches are transformed (``__call__`` is not the identity): uniform
        dequantization only (a variationally dequantized model takes the levels)."""
        return self.dequantize == "uniform"

    @property
    def dequantized(self) -> bool:
        """Whether a density on ``[0, 1)^D`` models the levels' cells (uniform or
        variational dequantization): the flow starts with a logit layer."""
        return self.dequantize != "none"

    @property
    def model_num_levels(self) -> int | None:
        """Levels of the model's inputs: ``K``, or ``None`` when it sees floats."""
        return None if self.active else self.num_levels

    @property
    def nll_offset_nats(self) -> float:
        """Nats added to the model's NLL to give the NLL of the stored data."""
        return self.num_dims * math.log(self.num_levels) if self.active else 0.0

    @property
    def nll_units(self) -> str:
        """What a reported NLL (model NLL + ``nll_offset_nats``) measures."""
        if self.dequantize == "none":
            return "nats per example"
        return f"nats per example of the discrete data ({self.dequantize} dequantization bound)"

    def __call__(self, key: PRNGKey, batch: Array) -> Array:
        """The model's view of a batch of stored data (a ``Labeled`` batch keeps its
        context)."""
        if not self.active:
            return batch
        from jaxgen.data.batching import map_inputs

        return map_inputs(lambda x: uniform_dequantize(key, x, self.num_levels), batch)

    def bits_per_dim(self, model_nll_nats: float) -> float:
        """Bits per dimension of the stored data from the model's NLL (nats per example)."""
        return (float(model_nll_nats) + self.nll_offset_nats) / (self.num_dims * math.log(2.0))

    def to_data(self, samples: Array) -> np.ndarray:
        """Model samples back in the stored data's space (levels when dequantized)."""
        if not self.active:
            return np.asarray(samples)
        return np.asarray(quantize(samples, self.num_levels))


def make_preprocessing(dataset, dequantize: str, key: PRNGKey) -> Preprocessing:
    """The `Preprocessing` of ``dataset`` (a `jaxgen.data.Dataset`).

    Args:
      dataset: the stored data.
      dequantize: ``"none"``, ``"uniform"`` or ``"variational"`` (the last two need
        discrete data).
      key: dequantizes ``init_data`` (the only dequantization outside the steps).

    Raises:
      ValueError: unknown ``dequantize``, or a dequantization of continuous data.
    """
    if dequantize not in DEQUANTIZE:
        raise ValueError(f"dequantize must be one of {DEQUANTIZE}, got {dequantize!r}")
    if dequantize != "none" and dataset.num_levels is None:
        raise ValueError(f"dequantize={dequantize!r} needs discrete data; {dataset.name!r} is "
                         "continuous (use dequantize='none')")
    train = np.asarray(dataset.train)
    density_init = None
    if dequantize == "uniform":
        train = np.asarray(uniform_dequantize(key, train, dataset.num_levels))
    elif dequantize == "variational":
        density_init = np.asarray(uniform_dequantize(key, train, dataset.num_levels))
    return Preprocessing(dequantize, dataset.num_levels, int(dataset.num_dims), train,
                         density_init)
