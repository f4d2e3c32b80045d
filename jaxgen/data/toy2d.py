"""Generated 2D densities: the usual toy sets of the flow literature (FFJORD's ``toy_data``).

Every generator draws from a ``numpy`` Generator, so a sample is a pure function of
``(name, num_samples, seed)``, scaled to lie roughly within ``[-4, 4]^2``. Points are
i.i.d. draws of the density (mixture components and arc positions are drawn at random, not
laid out on a grid as in scikit-learn's ``make_moons``), so every split is an honest sample.

=============  ==============================================================================
name           density
=============  ==============================================================================
moons          two interleaved half circles (noise 0.1), ``2 x - (1, 0.2)``
circles        two concentric circles of radii 3 and 1.5, noise std 0.24
8gaussians     eight Gaussians (std 0.5) on a circle of radius 4, all divided by sqrt(2)
checkerboard   uniform on the black squares of a 4x4 board over ``[-4, 4]^2``
pinwheel       five curved arms (radial std 0.3, tangential std 0.1, rate 0.25), times 2
2spirals       two interleaved spirals, noise 0.1
rings          four concentric circles of radii 3, 2.25, 1.5, 0.75, noise std 0.08
=============  ==============================================================================

Labels (``load_toy2d(..., conditional=True)``, for class-conditional models ``p(x | y)``):
``8gaussians`` labels each point with its mixture component, ``y in 0..7`` counter-clockwise
from the positive x axis (component ``k`` centred at ``4 (cos k pi/4, sin k pi/4) / sqrt(2)``,
every component with probability 1/8). The points are the same draws as without labels.
The other densities have no labels (`LABELED_TOY2D` lists the ones that do).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from jaxgen.checks import check_count
from jaxgen.data.dataset import Dataset

Sampler = Callable[[np.random.Generator, int], np.ndarray]


def _moons(rng: np.random.Generator, n: int) -> np.ndarray:
    t = rng.uniform(0, np.pi, size=n)
    inner = rng.integers(0, 2, size=n).astype(bool)
    x = np.where(inner, 1 - np.cos(t), np.cos(t))
    y = np.where(inner, 0.5 - np.sin(t), np.sin(t))
    points = np.stack([x, y], axis=1) + 0.1 * rng.standard_normal((n, 2))
    return 2 * points - np.array([1.0, 0.2])


def _circles(rng: np.random.Generator, n: int) -> np.ndarray:
    t = rng.uniform(0, 2 * np.pi, size=n)
    radius = rng.choice([1.0, 0.5], size=n)
    points = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return 3 * (points + 0.08 * rng.standard_normal((n, 2)))


def _eight_gaussians_labeled(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(points [n, 2], component [n])``: the component of each point is its label."""
    angles = np.arange(8) * np.pi / 4
    centers = 4 * np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [8, 2]
    noise = 0.5 * rng.standard_normal((n, 2))
    component = rng.integers(0, 8, size=n)
    return (noise + centers[component]) / np.sqrt(2), component.astype(np.int32)


def _eight_gaussians(rng: np.random.Generator, n: int) -> np.ndarray:
    return _eight_gaussians_labeled(rng, n)[0]


def _checkerboard(rng: np.random.Generator, n: int) -> np.ndarray:
    x1 = rng.uniform(-2, 2, size=n)
    x2 = rng.uniform(0, 1, size=n) - 2 * rng.integers(0, 2, size=n) + np.floor(x1) % 2
    return 2 * np.stack([x1, x2], axis=1)


def _pinwheel(rng: np.random.Generator, n: int) -> np.ndarray:
    num_arms, radial_std, tangential_std, rate = 5, 0.3, 0.1, 0.25
    arm = rng.integers(0, num_arms, size=n)
    features = rng.standard_normal((n, 2)) * np.array([radial_std, tangential_std])
    features[:, 0] += 1.0
    angles = 2 * np.pi * arm / num_arms + rate * np.exp(features[:, 0])
    cos, sin = np.cos(angles), np.sin(angles)
    rotated = np.stack([features[:, 0] * cos - features[:, 1] * sin,
                        features[:, 0] * sin + features[:, 1] * cos], axis=1)
    return 2 * rotated


def _two_spirals(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.sqrt(rng.uniform(size=n)) * 3 * np.pi  # up to 540 degrees
    spiral = np.stack([-np.cos(t) * t, np.sin(t) * t], axis=1) + 0.5 * rng.uniform(size=(n, 2))
    sign = rng.choice([1.0, -1.0], size=(n, 1))
    return sign * spiral / 3 + 0.1 * rng.standard_normal((n, 2))


def _rings(rng: np.random.Generator, n: int) -> np.ndarray:
    t = rng.uniform(0, 2 * np.pi, size=n)
    radius = rng.choice([0.25, 0.5, 0.75, 1.0], size=n)
    circles = radius[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1)
    return 3 * circles + 0.08 * rng.standard_normal((n, 2))


# Densities with a natural class label: name -> (sampler of (points, labels), num_classes).
LABELED_TOY2D: dict[str, tuple[Callable[[np.random.Generator, int], tuple], int]] = {
    "8gaussians": (_eight_gaussians_labeled, 8),
}

TOY2D_SAMPLERS: dict[str, Sampler] = {
    "moons": _moons,
    "circles": _circles,
    "8gaussians": _eight_gaussians,
    "checkerboard": _checkerboard,
    "pinwheel": _pinwheel,
    "2spirals": _two_spirals,
    "rings": _rings,
}


def _check_name(name: str) -> None:
    if name not in TOY2D_SAMPLERS:
        raise ValueError(f"unknown toy2d density {name!r}; valid names: {sorted(TOY2D_SAMPLERS)}")


def sample_toy2d(name: str, num_samples: int, seed: Any = 0) -> np.ndarray:
    """Draws ``num_samples`` points from the named 2D density.

    Args:
        name: one of ``TOY2D_SAMPLERS`` (see the module docstring).
        num_samples: number of points, >= 1.
        seed: anything ``np.random.default_rng`` accepts (an int, a sequence of ints, a
            ``SeedSequence``); the same seed gives the same points.

    Returns:
        ``[num_samples, 2]`` float32 array of i.i.d. points.

    Raises:
        ValueError: an unknown ``name`` (listing the valid ones), ``num_samples < 1``.
        TypeError: ``num_samples`` is not an integer.
    """
    _check_name(name)
    num_samples = check_count("num_samples", num_samples)
    points = TOY2D_SAMPLERS[name](np.random.default_rng(seed), num_samples)  # [N, 2]
    return points.astype(np.float32)


def load_toy2d(name: str, num_train: int = 50_000, num_valid: int = 10_000,
               num_test: int = 10_000, seed: int = 0, conditional: bool = False) -> Dataset:
    """A continuous `Dataset` of fresh draws from a 2D toy density.

    The three splits use independent streams, spawned from ``np.random.SeedSequence(seed)``,
    so they never share points and each is reproducible from ``seed``.

    Args:
        name: one of ``TOY2D_SAMPLERS``.
        num_train: number of training points.
        num_valid: number of validation points.
        num_test: number of test points.
        seed: seed of the whole data set.
        conditional: label every point (``LABELED_TOY2D``: 8gaussians' mixture component);
            the points are the same as without labels.

    Returns:
        ``Dataset(name, train [num_train, 2], valid, test, num_levels=None)``, float32
        (with ``{split}_labels [N]`` int32 and ``num_classes`` when ``conditional``).

    Raises:
        ValueError: an unknown ``name``; a split size < 1 (the message names the argument,
            e.g. ``num_train``); ``conditional`` for a density without labels.
        TypeError: a split size that is not an integer.
    """
    _check_name(name)  # before the sizes: a misspelt name is the likelier mistake
    if conditional and name not in LABELED_TOY2D:
        raise ValueError(f"toy2d density {name!r} has no class labels; data.conditional=True "
                         f"needs one of {sorted(LABELED_TOY2D)}")
    sizes = {arg: check_count(arg, value) for arg, value in
             (("num_train", num_train), ("num_valid", num_valid), ("num_test", num_test))}
    seeds = dict(zip(("train", "valid", "test"), np.random.SeedSequence(seed).spawn(3)))
    if not conditional:
        return Dataset(
            name=name,
            train=sample_toy2d(name, sizes["num_train"], seeds["train"]),
            valid=sample_toy2d(name, sizes["num_valid"], seeds["valid"]),
            test=sample_toy2d(name, sizes["num_test"], seeds["test"]),
            num_levels=None,
        )
    sampler, num_classes = LABELED_TOY2D[name]
    splits = {split: sampler(np.random.default_rng(seeds[split]), sizes[f"num_{split}"])
              for split in seeds}
    return Dataset(name=name, num_levels=None, num_classes=num_classes,
                   **{split: points.astype(np.float32) for split, (points, _) in splits.items()},
                   **{f"{split}_labels": labels for split, (_, labels) in splits.items()})
