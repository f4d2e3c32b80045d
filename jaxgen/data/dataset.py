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
        train_labels, valid_labels, test_labels: ``[N_split]`` int32 class labels of a
            conditional data set (all three or none), each in ``[0, num_classes)``.
        num_classes: number of classes; ``None`` with labels derives it as
            ``max(label) + 1`` over the splits (at least 2).

    Construction validates and canonicalizes the splits: each is converted with
    ``np.asarray`` and must have rank >= 2 (a leading batch axis plus an event), be
    non-empty, and share its trailing (event) shape with the others. Discrete data must have
    an integer dtype with every value in ``[0, num_levels)`` and are stored as int32;
    continuous data must be floating point and finite and are stored as float32. Labels, when
    given, must be integers of shape ``(N_split,)`` (one per example of their split) in
    ``[0, num_classes)``. Bad input raises ``TypeError``/``ValueError`` naming the split and
    the problem.

    A labeled data set is a *conditional* one: `split_data` gives ``Labeled(x, context)``
    batches, and the training loop hands the labels to ``log_prob(x, context=labels)``.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    num_levels: int | None = None
    train_labels: np.ndarray | None = None
    valid_labels: np.ndarray | None = None
    test_labels: np.ndarray | None = None
    num_classes: int | None = None

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
        self._check_labels()

    def _check_labels(self) -> None:
        labels = {split: getattr(self, f"{split}_labels") for split in SPLITS}
        given = [split for split, value in labels.items() if value is not None]
        if not given:
            if self.num_classes is not None:
                raise ValueError(f"Dataset {self.name!r}: num_classes={self.num_classes!r} "
                                 "given without labels (pass train_labels, valid_labels and "
                                 "test_labels)")
            return
        if len(given) != len(SPLITS):
            missing = [split for split in SPLITS if split not in given]
            raise ValueError(f"Dataset {self.name!r}: labels given for {given} but not for "
                             f"{missing}; a conditional data set labels every split")
        checked = {}
        for split, value in labels.items():
            where = f"Dataset {self.name!r}, {split}_labels"
            value = np.asarray(value)
            if value.dtype == np.bool_ or not np.issubdtype(value.dtype, np.integer):
                raise TypeError(f"{where}: class labels must be integers, got dtype "
                                f"{value.dtype}")
            n = getattr(self, split).shape[0]
            if value.shape != (n,):
                raise ValueError(f"{where}: expected shape ({n},), one label per example of "
                                 f"the {split} split, got shape {value.shape}")
            if value.min() < 0:
                raise ValueError(f"{where}: labels must be >= 0, found {value.min()}")
            checked[split] = value.astype(np.int32, copy=False)
        top = max(int(v.max()) for v in checked.values())
        num_classes = self.num_classes
        if num_classes is None:
            num_classes = max(top + 1, 2)
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
            raise TypeError(f"Dataset {self.name!r}: num_classes must be an int or None, got "
                            f"{num_classes!r}")
        if num_classes < 2:
            raise ValueError(f"Dataset {self.name!r}: num_classes must be >= 2, got "
                             f"{num_classes}")
        if top >= num_classes:
            bad = next(split for split, v in checked.items() if v.max() >= num_classes)
            raise ValueError(f"Dataset {self.name!r}, {bad}_labels: labels must lie in "
                             f"[0, {num_classes}), found max {checked[bad].max()}")
        for split, value in checked.items():
            object.__setattr__(self, f"{split}_labels", value)
        object.__setattr__(self, "num_classes", int(num_classes))

    @property
    def is_conditional(self) -> bool:
        """Whether every example carries a class label (``num_classes is not None``)."""
        return self.num_classes is not None

    def labels(self, split: str) -> np.ndarray | None:
        """``[N_split]`` int32 labels of ``split``, or ``None`` for an unlabeled data set."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return getattr(self, f"{split}_labels")

    def split_data(self, split: str):
        """The batch pytree of a whole split: the ``[N, *event]`` array, or for a
        conditional data set ``Labeled(x, context=labels)`` (`jaxgen.data.batching`)."""
        from jaxgen.data.batching import Labeled

        labels = self.labels(split)
        data = getattr(self, split)
        return data if labels is None else Labeled(data, labels)

    def without_labels(self) -> "Dataset":
        """The same splits with the labels dropped (an unconditional data set)."""
        return Dataset(self.name, self.train, self.valid, self.test, self.num_levels)

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
        classes = "" if self.num_classes is None else f", num_classes={self.num_classes}"
        return (f"Dataset(name={self.name!r}, {sizes}, event_shape={self.event_shape}, "
                f"dtype={self.train.dtype}, num_levels={self.num_levels}{classes})")


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
