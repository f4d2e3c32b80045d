"""Multilayer perceptron, the conditioner of vector couplings (NICE, RealNVP on vectors)."""
from __future__ import annotations

from typing import Callable

import jax
from flax import nnx

from jaxgen.types import Array
from jaxgen.nn import mixed_precision as mp


class MLP(nnx.Module):
    """``in_features -> [hidden_features] * num_hidden_layers -> out_features``.

    ``h_{l+1} = act(W_l h_l + b_l)``; the output layer is linear. With
    ``zero_init_last=True`` (the default) its weights and bias start at zero, so a coupling
    conditioned by this network starts as the identity map.

    Args:
      in_features, hidden_features, out_features: layer widths.
      num_hidden_layers: number of hidden layers (>= 1).
      activation: elementwise nonlinearity (default ReLU).
      zero_init_last: zero-initialize the output layer.
      rngs: NNX random streams.
    """

    def __init__(self, in_features: int, hidden_features: int, out_features: int,
                 num_hidden_layers: int = 2, *, activation: Callable = jax.nn.relu,
                 zero_init_last: bool = True, rngs: nnx.Rngs):
        if num_hidden_layers < 1:
            raise ValueError(f"num_hidden_layers must be >= 1, got {num_hidden_layers}")
        sizes = [in_features] + [hidden_features] * num_hidden_layers
        self.hidden = nnx.List([mp.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        zeros = nnx.initializers.zeros
        self.out = mp.Linear(hidden_features, out_features, rngs=rngs,
                              **(dict(kernel_init=zeros, bias_init=zeros) if zero_init_last else {}))
        self.activation = activation

    def __call__(self, x: Array) -> Array:  # [..., in_features] -> [..., out_features]
        for layer in self.hidden:
            x = self.activation(layer(x))
        return self.out(x)


__all__ = ["MLP"]
