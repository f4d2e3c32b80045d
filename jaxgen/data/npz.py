"""A `Dataset` from a user-given ``.npz`` file holding one array per split."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import Dataset, split_indices


def infer_num_levels(*arrays: np.ndarray) -> int | None:
    """Guesses the number of discrete levels from the dtype and values.

    Floating point -> ``None`` (continuous); bool -> 2; uint8 -> 2 if every value is 0 or 1,
    else 256 (8-bit data); any other integer dtype -> ``max + 1`` over all arrays (at least 2).
    """
    dtype = arrays[0].dtype
    if np.issubdtype(dtype, np.floating):
        return None
    if dtype == np.bool_:
        return 2
    max_value = max(int(a.max()) for a in arrays)
    if dtype == np.uint8:
        return 2 if max_value <= 1 else 256
    return max(max_value + 1, 2)


def _add_channel_axis(data: np.ndarray) -> np.ndarray:
    """``[N, H, W] -> [N, H, W, 1]``; other ranks are returned unchanged."""
    return data[..., None] if data.ndim == 3 else data


def load_npz(path: str | os.PathLike, train_key: str = "train",
             valid_key: str | None = "valid", test_key: str = "test",
             num_levels: int | None = None, valid_fraction: float = 0.1, seed: int = 0,
             name: str | None = None) -> Dataset:
    """Loads train/valid/test arrays from an ``.npz`` file.

    Arrays of rank 3 are taken as grayscale images ``[N, H, W]`` and get a channel axis,
    ``[N, H, W, 1]``; other ranks are kept (``[N, D]`` vectors, ``[N, H, W, C]`` images).
    Integer and bool data become int32 level indices; floating data become float32.

    With ``valid_key=None`` the validation split is carved out of the training array:
    ``round(valid_fraction * N_train)`` examples chosen by
    ``np.random.RandomState(seed).permutation`` (see `split_indices`), the rest stay in
    train; both keep the file's order.

    Args:
        path: the ``.npz`` file.
        train_key: key of the training array.
        valid_key: key of the validation array, or ``None`` to carve one from train.
        test_key: key of the test array.
        num_levels: number of discrete levels; ``None`` infers it with `infer_num_levels`
            (floating data -> continuous; uint8 -> 2 or 256; other integers -> max + 1).
            Pass it explicitly when a split might not reach the top level.
        valid_fraction: fraction of train carved out when ``valid_key`` is ``None``.
        seed: seed of that carve.
        name: data set name; defaults to the file's stem.

    Returns:
        The validated `Dataset`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        KeyError: a requested key is not in the file (the message lists the keys there).
        ValueError: ``valid_fraction`` leaves an empty split, or the data are invalid
            (wrong rank, NaN/inf, values outside ``[0, num_levels)``; see `Dataset`).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"npz data file not found: {str(path.resolve())!r}")
    with np.load(path, allow_pickle=False) as archive:
        available = sorted(archive.files)
        keys = {"train": train_key, "valid": valid_key, "test": test_key}
        for split, key in keys.items():
            if key is not None and key not in available:
                hint = ("; pass valid_key=None to carve a validation split from train"
                        if split == "valid" else "")
                raise KeyError(f"{str(path)!r} has no array {key!r} for the {split} split; "
                               f"available keys: {available}{hint}")
        splits = {split: _add_channel_axis(archive[key])
                  for split, key in keys.items() if key is not None}

    if valid_key is None:
        train = splits["train"]
        num_valid = int(round(valid_fraction * train.shape[0]))
        if not 0 < num_valid < train.shape[0]:
            raise ValueError(f"valid_fraction={valid_fraction} of {train.shape[0]} training "
                             f"examples leaves an empty train or valid split")
        valid_index, train_index = split_indices(
            train.shape[0], [num_valid, train.shape[0] - num_valid], seed)
        splits["train"], splits["valid"] = train[train_index], train[valid_index]

    if num_levels is None:
        num_levels = infer_num_levels(*splits.values())
    if num_levels is not None:
        for split, data in splits.items():
            if data.dtype == np.bool_:
                splits[split] = data.astype(np.int32)
    return Dataset(name=name or path.stem, num_levels=num_levels, **splits)
