"""scikit-learn's 8x8 handwritten digits (UCI optdigits test part), with a fixed split.

The 1,797 images ship with scikit-learn (no download). Each pixel counts the "on" pixels of
a 4x4 block of the original 32x32 bitmap, so it takes one of 17 levels ``0 .. 16``.

The split is fixed once and for all: ``np.random.RandomState(0).permutation(1797)``
(a frozen numpy stream) is cut into ``1257 / 270 / 270`` train/valid/test images
(70 / 15 / 15 %); each split is kept in the original order of the file.
"""
from __future__ import annotations

import numpy as np

from jaxgen.data.dataset import Dataset, split_indices

NUM_DIGITS = 1797
DIGITS_SPLIT_SIZES = {"train": 1257, "valid": 270, "test": 270}
DIGITS_SPLIT_SEED = 0
DIGITS_NUM_LEVELS = 17
DIGITS_BINARIZE_THRESHOLD = 8


def digits_split_indices() -> dict[str, np.ndarray]:
    """Indices into ``sklearn.datasets.load_digits().images`` of each fixed split (sorted)."""
    parts = split_indices(NUM_DIGITS, list(DIGITS_SPLIT_SIZES.values()), DIGITS_SPLIT_SEED)
    return dict(zip(DIGITS_SPLIT_SIZES, parts))


def load_digits(binarize: bool = False, conditional: bool = False) -> Dataset:
    """The digits as ``[N, 8, 8, 1]`` int32 images in the fixed 1257/270/270 split.

    Args:
        binarize: static binarization, ``x >= 8 -> 1`` else ``0`` (``num_levels=2``);
            otherwise the 17 raw levels are kept (``num_levels=17``).
        conditional: keep each image's digit class ``0 .. 9`` as its label
            (``num_classes=10``; batches become ``Labeled(x, labels)``).

    Returns:
        A discrete `Dataset` named ``"digits"`` (or ``"digits_binarized"``).

    Raises:
        TypeError: ``binarize`` is not a bool (a string ``"false"`` would be truthy).
    """
    if not isinstance(binarize, (bool, np.bool_)):
        raise TypeError(f"binarize must be True or False, got {binarize!r} "
                        f"({type(binarize).__name__})")
    if not isinstance(conditional, (bool, np.bool_)):
        raise TypeError(f"conditional must be True or False, got {conditional!r} "
                        f"({type(conditional).__name__})")
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    images = bunch.images.astype(np.int32)[..., None]  # [1797, 8, 8, 1]
    if images.shape[0] != NUM_DIGITS:
        raise RuntimeError(f"scikit-learn's digits changed: expected {NUM_DIGITS} images, "
                           f"got {images.shape[0]}")
    num_levels = DIGITS_NUM_LEVELS
    if binarize:
        images = (images >= DIGITS_BINARIZE_THRESHOLD).astype(np.int32)
        num_levels = 2
    index = digits_split_indices()
    splits = {split: images[i] for split, i in index.items()}
    if conditional:
        target = np.asarray(bunch.target, np.int32)  # [1797] digit classes
        splits.update({f"{split}_labels": target[i] for split, i in index.items()})
        splits["num_classes"] = 10
    return Dataset(name="digits_binarized" if binarize else "digits", num_levels=num_levels,
                   **splits)
