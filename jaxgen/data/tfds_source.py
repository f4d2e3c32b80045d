"""A `Dataset` from tensorflow-datasets, read by random access without TensorFlow.

Reading goes through ``tfds.data_source``, which serves the ``array_record`` files of a
prepared data set from plain Python; TensorFlow is not needed. The data set must have been
prepared in the ``array_record`` format once, on a machine with network access::

    tfds build mnist --file_format=array_record [--data_dir=DIR]

or, from Python::

    import tensorflow_datasets as tfds
    tfds.builder("mnist", data_dir=DIR, file_format="array_record").download_and_prepare()

and ``DIR`` (default ``~/tensorflow_datasets`` or ``$TFDS_DATA_DIR``) copied to the machine
that trains. With ``download=True`` the loader prepares it itself (this needs network, and
for most data sets TensorFlow or Apache Beam to build).

Splits use the TFDS split syntax (``"train[:90%]"``, ``"train[90%:]"``, ``"test"``).
Images come out as ``[N, H, W, C]`` int32 levels; uint8 images have 256 levels unless
``num_levels`` says otherwise.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxgen.data.dataset import Dataset

_READ_CHUNK = 4096


def _build_hint(name: str, data_dir: str | os.PathLike | None) -> str:
    dir_flag = f" --data_dir={data_dir}" if data_dir else ""
    return (f"Prepare it once on a machine with network access with "
            f"`tfds build {name} --file_format=array_record{dir_flag}` (or "
            f"`tfds.builder({name!r}, file_format='array_record').download_and_prepare()`) "
            f"and copy the data directory here, or set download=True.")


def _open_source(name: str, split: str, data_dir, download: bool):
    """``tfds.data_source`` with errors that say how to get the data."""
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=download,
                                builder_kwargs={"file_format": "array_record"})
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(f"tensorflow-datasets has no data set named {name!r}") from error
    except Exception as error:  # not prepared, wrong file format, no network, ...
        location = data_dir or os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")
        raise FileNotFoundError(
            f"could not open tfds data set {name!r} (split {split!r}) as array_record "
            f"from data_dir {str(location)!r}: {type(error).__name__}: {error}. "
            + _build_hint(name, data_dir)) from error


def _read_all(source, key: str, where: str = "") -> np.ndarray:
    """Stacks ``example[key]`` over every record of a random-access data source.

    Args:
      source: a ``tfds.data_source``.
      key: the feature to read.
      where: names the data set and split in error messages (``"tfds 'mnist', split
        'test'"``); defaults to the source's repr.

    Raises:
      ValueError: the source has no records, or its records' features differ in shape.
      KeyError: the records have no feature ``key``.
    """
    where = where or repr(source)
    num_records = len(source)
    if num_records == 0:
        raise ValueError(f"{where} is empty (0 records); check the split spec")
    values: list[Any] = []
    for start in range(0, num_records, _READ_CHUNK):
        index = list(range(start, min(start + _READ_CHUNK, num_records)))
        try:
            examples = source.__getitems__(index)  # one batched read
        except (AttributeError, TypeError, NotImplementedError):
            examples = [source[i] for i in index]
        try:
            values.extend(example[key] for example in examples)
        except KeyError as error:
            raise KeyError(f"records of {where} have no feature {key!r}; "
                           f"features: {sorted(examples[0])}") from error
    arrays = [np.asarray(value) for value in values]
    shapes = sorted({a.shape for a in arrays})
    if len(shapes) > 1:
        raise ValueError(f"feature {key!r} of {where} has records of different shapes "
                         f"{shapes[:4]}; a Dataset needs one event shape (resize or pad "
                         "the images when preparing the data)")
    return np.stack(arrays)


def load_tfds(tfds_name: str, *, data_dir: str | os.PathLike | None = None,
              train_split: str = "train[:90%]", valid_split: str = "train[90%:]",
              test_split: str = "test", image_key: str = "image",
              num_levels: int | None = None, download: bool = False,
              label_key: str | None = None) -> Dataset:
    """Loads one feature of a TFDS data set into memory as a `Dataset`.

    Args:
        tfds_name: registered TFDS name, optionally with config/version (``"mnist"``,
            ``"cifar10"``, ``"binarized_mnist"``).
        data_dir: TFDS data directory; ``None`` uses ``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``.
        train_split: TFDS split spec of the training set.
        valid_split: TFDS split spec of the validation set.
        test_split: TFDS split spec of the test set.
        image_key: feature to read from each record (``"image"``).
        num_levels: number of discrete levels; ``None`` means 256 for uint8 features,
            2 for bool, and continuous (float32) for floating features.
        download: let TFDS download and prepare the data if it is missing. Off by
            default: nothing is downloaded behind the user's back.
        label_key: also read this integer feature (``"label"``) as each example's class
            label (a conditional `Dataset`); ``None`` reads no labels.

    Returns:
        The validated `Dataset`: integer features as int32 (``[N, H, W, C]`` for images),
        floating features as float32.

    Raises:
        ValueError: ``tfds_name`` is not a registered data set, a split is empty, the
            feature is not numeric or varies in shape, or the data are invalid (NaN/inf in
            float features, see `Dataset`).
        FileNotFoundError: the data set is not prepared as array_record in ``data_dir``
            (the message gives the ``tfds build`` command).
        KeyError: the records have no ``image_key`` feature.
    """
    specs = {"train": train_split, "valid": valid_split, "test": test_split}
    sources = {split: _open_source(tfds_name, spec, data_dir, download)
               for split, spec in specs.items()}
    splits = {split: _read_all(sources[split], image_key,
                               f"tfds data set {tfds_name!r}, split {specs[split]!r}")
              for split in specs}
    label_fields = {}
    if label_key is not None:
        label_fields = {f"{split}_labels": _read_all(
            sources[split], label_key, f"tfds data set {tfds_name!r}, split {specs[split]!r}")
            for split in specs}
    dtype = splits["train"].dtype
    for split, data in splits.items():
        if data.dtype.kind not in "biuf":
            raise ValueError(f"feature {image_key!r} of tfds data set {tfds_name!r} "
                             f"({split} split {specs[split]!r}) holds {data.dtype} values, not "
                             "numbers; set image_key to a numeric (image) feature")
    if num_levels is None:
        if dtype == np.uint8:
            num_levels = 256
        elif dtype == np.bool_:
            num_levels = 2
        elif not np.issubdtype(dtype, np.floating):
            raise ValueError(f"cannot infer num_levels for feature {image_key!r} of dtype "
                             f"{dtype}; set num_levels")
    if num_levels is not None:
        splits = {split: data.astype(np.int32) for split, data in splits.items()}
    return Dataset(name=tfds_name, num_levels=num_levels, **splits, **label_fields)
