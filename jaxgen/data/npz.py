"""A `Dataset` from a user-given ``.npz`` file holding one array per split.

Every way a file can be unusable (missing, empty, truncated, not an archive, a missing split,
arrays of strings or objects, empty or non-finite arrays, splits of different kinds) raises a
`DataFileError` (a ``ValueError``) or ``FileNotFoundError`` whose message names the file, the
array and the problem, and says how to fix it, before any array reaches a model.
"""
from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jaxgen.data.dataset import DataFileError, Dataset, MissingArrayError, split_indices

# How to write a file `load_npz` reads, quoted by its error messages.
_RESAVE_HINT = "re-create it with np.savez(path, train=..., valid=..., test=...)"
# dtype kinds a data set may hold: bool, signed and unsigned integers, floats.
_NUMERIC_KINDS = {"b": "bool", "i": "integer", "u": "integer", "f": "floating"}
_KIND_NAMES = {"c": "complex numbers", "U": "strings", "S": "byte strings",
               "O": "Python objects", "V": "raw or structured records", "M": "datetimes",
               "m": "timedeltas"}


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


def _warn_if_levels_look_wrong(path, num_levels: int | None, splits: dict) -> None:
    """Warns when an inferred level count is far above what the values use (uint8 data with
    4 distinct values taken as 256 levels puts bits/dim in the wrong units)."""
    if num_levels is None or num_levels <= 2:
        return
    max_value = max(int(a.max()) for a in splits.values())
    distinct = np.unique(np.concatenate([np.unique(a) for a in splits.values()])).size
    if max_value + 1 < num_levels // 2:
        import warnings
        warnings.warn(
            f"{str(path)!r}: inferred {num_levels} levels from dtype "
            f"{next(iter(splits.values())).dtype}, but the values use only {distinct} distinct "
            f"level(s) up to {max_value}; if the data has {max_value + 1} levels pass "
            f"num_levels={max_value + 1} (--config.data.num_levels={max_value + 1}), else "
            "bits/dim are in the wrong units", UserWarning, stacklevel=3)


def _add_channel_axis(data: np.ndarray) -> np.ndarray:
    """``[N, H, W] -> [N, H, W, 1]``; other ranks are returned unchanged."""
    return data[..., None] if data.ndim == 3 else data


def _open_archive(path: Path):
    """``np.load(path)`` as an ``NpzFile``, with an error naming the file for every way it
    can fail to be one."""
    where = f"npz data file {str(path)!r}"
    try:
        archive = np.load(path, allow_pickle=False)
    except EOFError:
        raise DataFileError(f"{where} is empty (0 bytes): an interrupted copy or download? "
                            f"Copy it again or {_RESAVE_HINT}") from None
    except zipfile.BadZipFile as err:
        raise DataFileError(f"{where} is not a readable zip archive ({err}): the file is "
                            f"truncated or corrupt. Copy it again or {_RESAVE_HINT}") from None
    except ValueError as err:
        if "pickle" not in str(err):
            raise DataFileError(f"{where} could not be read: {err}. {_RESAVE_HINT}") from None
        raise DataFileError(f"{where} is not an .npz archive (it starts with neither the zip "
                            "nor the .npy header, and pickled data are never loaded): the file "
                            f"is corrupt or of another format. Copy it again or "
                            f"{_RESAVE_HINT}") from None
    except OSError as err:
        raise DataFileError(f"{where} could not be read ({type(err).__name__}: {err})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataFileError(f"{where} holds a single array of shape {np.shape(archive)} (an "
                            ".npy file), not an .npz archive of named splits; "
                            f"{_RESAVE_HINT}")
    return archive


def _read_array(archive, path: Path, key: str, split: str) -> np.ndarray:
    """One member of the archive, checked to be a usable data array.

    Raises:
        DataFileError: naming the file, the array and its split, when the member cannot be
            read (truncated, corrupt, pickled objects), or holds no numbers, no examples,
            fewer than 2 axes or non-finite values.
    """
    where = f"npz data file {str(path)!r}, array {key!r} ({split} split)"
    try:
        data = archive[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise DataFileError(f"{where} holds Python objects (dtype=object), which are never "
                                f"unpickled; store a numeric array; {_RESAVE_HINT}") from None
        raise DataFileError(f"{where} could not be read ({err}): the file is corrupt. Copy "
                            f"it again or {_RESAVE_HINT}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataFileError(f"{where} could not be read ({type(err).__name__}: {err}): the "
                            f"file is truncated or corrupt. Copy it again or "
                            f"{_RESAVE_HINT}") from None
    if data.dtype.kind not in _NUMERIC_KINDS:
        what = _KIND_NAMES.get(data.dtype.kind, "non-numeric values")
        raise DataFileError(f"{where} holds {what} (dtype {data.dtype}); a data set needs "
                            "numbers: bool, integer levels or floats. Convert the array, e.g. "
                            "x.astype(np.float32) or integer level indices, and re-save it")
    if data.ndim < 2:
        raise DataFileError(f"{where}: expected rank >= 2 ([N, *event_shape], e.g. [N, D] "
                            f"vectors), got shape {data.shape}; add a trailing axis "
                            "(x[:, None]) for scalar examples")
    if data.size == 0:
        raise DataFileError(f"{where} is empty (shape {data.shape}); every split needs at "
                            "least one example")
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        num_bad = int(data.size - np.count_nonzero(finite))
        if num_bad:
            first = tuple(int(i) for i in np.argwhere(~finite)[0])
            raise DataFileError(f"npz data file {str(path)!r}, array {key!r}: {num_bad} "
                                f"non-finite value(s) (NaN or inf) in shape {data.shape} "
                                f"({split} split), the first at index {first}; drop or "
                                "repair those examples and re-save the file")
    return data


def _read_labels(archive, path: Path, key: str, split: str, num_examples: int) -> np.ndarray:
    """The ``[N]`` integer class labels ``key`` of ``split``, checked against its size.

    Raises:
        DataFileError: naming the file and the array, for labels that are not integers, not
            of shape ``(num_examples,)`` or negative.
    """
    where = f"npz data file {str(path)!r}, array {key!r} ({split} labels)"
    try:
        value = archive[key]
    except ValueError as err:
        raise DataFileError(f"{where} could not be read ({err}); store integer labels") from None
    if value.dtype == np.bool_ or not np.issubdtype(value.dtype, np.integer):
        raise DataFileError(f"{where}: class labels must be integers 0 .. num_classes-1, got "
                            f"dtype {value.dtype}; convert with y.astype(np.int32)")
    if value.shape != (num_examples,):
        raise DataFileError(f"{where}: expected shape ({num_examples},), one label per example "
                            f"of the {split} split, got shape {value.shape}")
    if value.size and value.min() < 0:
        raise DataFileError(f"{where}: labels must be >= 0, found {value.min()}")
    return value.astype(np.int32)


def load_npz(path: str | os.PathLike, train_key: str = "train",
             valid_key: str | None = "valid", test_key: str = "test",
             num_levels: int | None = None, valid_fraction: float = 0.1, seed: int = 0,
             name: str | None = None, labels: bool = False) -> Dataset:
    """Loads train/valid/test arrays from an ``.npz`` file.

    Arrays of rank 3 are taken as grayscale images ``[N, H, W]`` and get a channel axis,
    ``[N, H, W, 1]``; other ranks are kept (``[N, D]`` vectors, ``[N, H, W, C]`` images).
    Integer and bool data become int32 level indices; floating data become float32.

    With ``valid_key=None`` the validation split is carved out of the training array:
    ``round(valid_fraction * N_train)`` examples chosen by
    ``np.random.RandomState(seed).permutation`` (see `split_indices`), the rest stay in
    train; both keep the file's order.

    The file is checked before any array is used, so a bad file fails here, naming itself,
    rather than later inside a model.

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
        labels: read class labels too: the array ``f"{key}_labels"`` of each split's key
            (``train_labels``, ``valid_labels``, ``test_labels`` by default), integer, shape
            ``(N_split,)``; ``num_classes`` is ``max + 1``. A carved validation split takes
            its examples' labels.

    Returns:
        The validated `Dataset`.

    Raises:
        FileNotFoundError: ``path`` does not exist (or is a directory).
        MissingArrayError: a requested key is not in the file (the message lists the keys
            there); a `DataFileError` and a ``KeyError``.
        DataFileError: (a ``ValueError``) the file is empty, truncated, corrupt, a bare
            ``.npy`` or not an archive; an array holds strings or objects, is empty, has rank
            < 2 or non-finite values; splits mix float and integer data; or the data are
            otherwise invalid (values outside ``[0, num_levels)``, event shapes that
            disagree; see `Dataset`). The message names the file and the array.
        ValueError: ``valid_fraction`` leaves an empty split.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise FileNotFoundError(f"npz data file {str(path.resolve())!r} is a directory, not "
                                "an .npz file; pass the path of the file itself")
    if not path.is_file():
        raise FileNotFoundError(f"npz data file not found: {str(path.resolve())!r}")
    keys = {"train": train_key, "valid": valid_key, "test": test_key}
    with _open_archive(path) as archive:
        available = sorted(archive.files)
        for split, key in keys.items():
            if key is not None and key not in available:
                hint = (f"pass {split}_key=None to carve a validation split from train, or "
                        f"valid_key=<one of the keys above>" if split == "valid" else
                        f"pass {split}_key=<one of the keys above>")
                raise MissingArrayError(
                    f"npz data file {str(path)!r} has no array {key!r} for the {split} split; "
                    f"available keys: {available}; {hint}")
        splits = {split: _add_channel_axis(_read_array(archive, path, key, split))
                  for split, key in keys.items() if key is not None}
        label_arrays = {}
        if labels:
            for split, key in keys.items():
                if key is None:
                    continue
                label_key = f"{key}_labels"
                if label_key not in available:
                    raise MissingArrayError(
                        f"npz data file {str(path)!r} has no array {label_key!r} of class "
                        f"labels for the {split} split (data.conditional=True); available "
                        f"keys: {available}; add it with np.savez(..., {label_key}=y) or "
                        "set conditional=False")
                label_arrays[split] = _read_labels(archive, path, label_key, split,
                                                   splits[split].shape[0])

    kinds = {split: "float" if data.dtype.kind == "f" else "integer"
             for split, data in splits.items()}
    if len(set(kinds.values())) > 1:
        described = ", ".join(f"{split} is {splits[split].dtype}" for split in splits)
        raise DataFileError(f"npz data file {str(path)!r}: the splits mix floating and "
                            f"integer data ({described}); store every split with the same "
                            "kind of dtype (integer levels, or floats for continuous data)")

    if valid_key is None:
        train = splits["train"]
        num_valid = int(round(valid_fraction * train.shape[0]))
        if not 0 < num_valid < train.shape[0]:
            raise ValueError(f"valid_fraction={valid_fraction} of {train.shape[0]} training "
                             f"examples in {str(path)!r} leaves an empty train or valid "
                             "split; pass a fraction in (0, 1) that keeps both non-empty")
        valid_index, train_index = split_indices(
            train.shape[0], [num_valid, train.shape[0] - num_valid], seed)
        splits["train"], splits["valid"] = train[train_index], train[valid_index]
        if labels:
            train_labels = label_arrays["train"]
            label_arrays["train"] = train_labels[train_index]
            label_arrays["valid"] = train_labels[valid_index]

    if num_levels is None:
        num_levels = infer_num_levels(*splits.values())
        _warn_if_levels_look_wrong(path, num_levels, splits)
    if num_levels is not None:
        for split, data in splits.items():
            if data.dtype == np.bool_:
                splits[split] = data.astype(np.int32)
    label_fields = {f"{split}_labels": value for split, value in label_arrays.items()}
    try:
        return Dataset(name=name or path.stem, num_levels=num_levels, **splits, **label_fields)
    except (TypeError, ValueError) as err:
        if isinstance(err, TypeError) and "num_levels must be" in str(err):
            raise  # the argument, not the file
        raise DataFileError(f"npz data file {str(path)!r}: {err}") from None
