"""The `Dataset` container every data source returns, and the seeded split helper.

A `Dataset` holds three numpy splits with a leading batch axis and says whether the data are
discrete (``num_levels`` integer levels ``0 .. num_levels-1``, stored as int32) or
continuous (``num_levels=None``, stored as float32). It is validated once, eagerly, at
construction, so that everything downstream may trust it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

SPLITS = ("train", "valid", "test")


class DataFileError(ValueError):
    """A data file cannot be used: unreadable, truncated, or holding unusable arrays.

    The message names the file, what is wrong with it and what to do. A ``ValueError``, so
    callers that catch bad values catch it too.
    """


class MissingArrayError(DataFileError, KeyError):
    """A data file lacks an array a split asks for (also a ``KeyError``: a missing key).

    ``str()`` is the plain message (``KeyError`` alone would print it quoted, as a key).
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """Train/valid/test splits of one data set.

    Attributes:
        name: human-readable name, e.g. ``"digits"`` or ``"moons"``.
        train: ``[N_train, *event_shape]`` array.
        valid: ``[N_valid, *event_shape]`` array.
        test: ``[N_test, *event_shape]`` array.
        num_levels: number of discrete levels per dimension (17 for digits, 2 for binary
            data, 256 for 8-bit images), or ``None`` for continuous data.

    Construction validates and canonicalizes the splits: each is converted with
    ``np.asarray`` and must have rank >= 2 (a leading batch axis plus an event), be
    non-empty, and share its trailing (event) shape with the others. Discrete data must have
    an integer dtype with every value in ``[0, num_levels)`` and are stored as int32;
    continuous data must be floating point and finite and are stored as float32. Bad input
    raises ``TypeError``/``ValueError`` naming the split and the problem.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    num_levels: int | None = None

    def __post_init__(self):
        num_levels = self.num_levels
        if num_levels is not None:
            if isinstance(num_levels, bool) or not isinstance(num_levels, (int, np.integer)):
                raise TypeError(f"num_levels must be an int or None, got {num_levels!r}")
            if num_levels < 2:
                raise ValueError(f"num_levels must be >= 2 for discrete data, got {num_levels}")
            object.__setattr__(self, "num_levels", int(num_levels))
        for split in SPLITS:
            object.__setattr__(self, split, self._check_split(split, getattr(self, split)))
        event_shapes = {split: getattr(self, split).shape[1:] for split in SPLITS}
        if len(set(event_shapes.values())) != 1:
            raise ValueError(f"Dataset {self.name!r}: splits disagree on the event shape "
                             f"(trailing axes): {event_shapes}")

    def _check_split(self, split: str, data) -> np.ndarray:
        data = np.asarray(data)
        where = f"Dataset {self.name!r}, split {split!r}"
        if data.ndim < 2:
            raise ValueError(f"{where}: expected rank >= 2 ([N, *event_shape]), "
                             f"got shape {data.shape}")
        if data.size == 0:
            raise ValueError(f"{where}: split is empty, shape {data.shape}")
        if self.num_levels is not None:
            if not np.issubdtype(data.dtype, np.integer):
                raise TypeError(f"{where}: discrete data (num_levels={self.num_levels}) must "
                                f"have an integer dtype, got {data.dtype}")
            lo, hi = data.min(), data.max()
            if lo < 0 or hi >= self.num_levels:
                raise ValueError(f"{where}: values must lie in [0, {self.num_levels}), "
                                 f"found min {lo} and max {hi}")
            return data.astype(np.int32, copy=False)
        if not np.issubdtype(data.dtype, np.floating):
            raise TypeError(f"{where}: continuous data (num_levels=None) must be floating "
                            f"point, got {data.dtype}; pass num_levels for discrete data")
        data = data.astype(np.float32, copy=False)
        num_bad = int(np.size(data) - np.count_nonzero(np.isfinite(data)))
        if num_bad:
            raise ValueError(f"{where}: {num_bad} non-finite values (NaN or inf) "
                             f"in an array of shape {data.shape}; drop or repair those "
                             "examples first")
        return data

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one example, ``train.shape[1:]``."""
        return tuple(self.train.shape[1:])

    @property
    def num_dims(self) -> int:
        """Number of scalar dimensions per example, ``prod(event_shape)``."""
        return math.prod(self.event_shape)

    @property
    def is_discrete(self) -> bool:
        """Whether the data are integer levels (``num_levels is not None``)."""
        return self.num_levels is not None

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={getattr(self, split).shape[0]}" for split in SPLITS)
        return (f"Dataset(name={self.name!r}, {sizes}, event_shape={self.event_shape}, "
                f"dtype={self.train.dtype}, num_levels={self.num_levels})")


def split_indices(num_examples: int, sizes: Sequence[int], seed: int) -> list[np.ndarray]:
    """Disjoint index sets from one seeded permutation of ``range(num_examples)``.

    Uses ``np.random.RandomState(seed).permutation``: the legacy generator's stream is
    frozen by numpy's compatibility policy, so a fixed seed gives the same split on every
    numpy version. Each returned index array is sorted.

    Args:
        num_examples: size of the pool to split.
        sizes: number of examples in each part; must sum to at most ``num_examples``.
        seed: seed of the permutation.

    Returns:
        One sorted int64 index array per entry of ``sizes``.
    """
    if any(size < 0 for size in sizes) or sum(sizes) > num_examples:
        raise ValueError(f"split sizes {tuple(sizes)} do not fit in {num_examples} examples")
    perm = np.random.RandomState(seed).permutation(num_examples)
    bounds = np.cumsum([0, *sizes])
    return [np.sort(perm[start:stop]) for start, stop in zip(bounds[:-1], bounds[1:])]
