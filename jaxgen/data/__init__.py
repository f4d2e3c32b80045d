"""Data sources and preprocessing.

``load_dataset(config.data)`` returns a validated `Dataset` (numpy train/valid/test splits,
``num_levels``). It dispatches on ``data_config.name``; each source reads the fields below
(any field left out takes the default shown; other fields are ignored, so a data section
may also carry preprocessing options read elsewhere):

Every source reads ``conditional`` (False): keep the class labels (digits' digit class,
npz ``{split}_labels`` arrays, a tfds label feature) so batches become
``Labeled(x, labels)`` and conditional models see ``log_prob(x, context=labels)``;
``num_classes`` is derived from the data. Of the toy 2D data, 8gaussians is labeled by
its mixture component (8 classes); the others have no labels.

``digits``: scikit-learn's 8x8 digits, ``[N, 8, 8, 1]`` int32, fixed 1257/270/270 split.
    - ``binarize`` (False): static binarization at ``>= 8`` (``num_levels`` 2, else 17).

``toy2d``: generated 2D densities, ``[N, 2]`` float32, continuous.
    - ``toy_name`` ("moons"): one of moons, circles, 8gaussians, checkerboard, pinwheel,
      2spirals, rings.
    - ``num_train`` (50_000), ``num_valid`` (10_000), ``num_test`` (10_000): split sizes.
    - ``seed`` (0): seed of the draws.

``npz``: a user-given ``.npz`` file; rank-3 arrays get a channel axis.
    - ``path`` (required): the file.
    - ``train_key`` ("train"), ``valid_key`` ("valid"), ``test_key`` ("test"): array
      names; ``valid_key=None`` carves a validation split from train.
    - ``valid_fraction`` (0.1), ``seed`` (0): size and seed of that carve.
    - ``num_levels`` (None): levels of discrete data; None infers it from the data.
    - with ``conditional``: the arrays ``{train_key}_labels`` etc. (``train_labels`` ...),
      integer ``[N]`` class labels; with ``valid_key=None`` the carve splits them alike.

``tfds``: tensorflow-datasets prepared as array_record (``tfds build NAME
--file_format=array_record``), read without TensorFlow.
    - ``tfds_name`` ("mnist"): registered TFDS name.
    - ``data_dir`` (None): TFDS data directory (None: ``$TFDS_DATA_DIR`` or
      ``~/tensorflow_datasets``).
    - ``train_split`` ("train[:90%]"), ``valid_split`` ("train[90%:]"), ``test_split``
      ("test"): TFDS split specs.
    - ``image_key`` ("image"): the feature to read.
    - ``num_levels`` (None): None means 256 for uint8 features.
    - ``download`` (False): allow TFDS to download and prepare missing data.
    - ``label_key`` ("label"): the label feature read when ``conditional``.

Example::

    dataset = load_dataset({"name": "toy2d", "toy_name": "pinwheel"})  # Dataset(name='pinwheel', train=50000, ...)
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from jaxgen.data.dataset import Dataset, split_indices
from jaxgen.data.digits import load_digits
from jaxgen.data.npz import load_npz
from jaxgen.data.tfds_source import load_tfds
from jaxgen.data.toy2d import TOY2D_SAMPLERS, load_toy2d, sample_toy2d


def _conditional(cfg: Mapping[str, Any]) -> bool:
    value = cfg.get("conditional", False)
    if not isinstance(value, bool):
        raise TypeError(f"data.conditional must be True or False, got {value!r}")
    return value


def _load_digits(cfg: Mapping[str, Any]) -> Dataset:
    return load_digits(binarize=bool(cfg.get("binarize", False)),
                       conditional=_conditional(cfg))


def _load_toy2d(cfg: Mapping[str, Any]) -> Dataset:
    return load_toy2d(cfg.get("toy_name", "moons"), num_train=cfg.get("num_train", 50_000),
                      num_valid=cfg.get("num_valid", 10_000),
                      num_test=cfg.get("num_test", 10_000), seed=cfg.get("seed", 0),
                      conditional=_conditional(cfg))


def _load_npz(cfg: Mapping[str, Any]) -> Dataset:
    if cfg.get("path") is None:
        raise ValueError("data source 'npz' needs data_config.path, the .npz file to load")
    return load_npz(cfg["path"], train_key=cfg.get("train_key", "train"),
                    valid_key=cfg.get("valid_key", "valid"),
                    test_key=cfg.get("test_key", "test"),
                    num_levels=cfg.get("num_levels"),
                    valid_fraction=cfg.get("valid_fraction", 0.1), seed=cfg.get("seed", 0),
                    labels=_conditional(cfg))


def _load_tfds(cfg: Mapping[str, Any]) -> Dataset:
    return load_tfds(cfg.get("tfds_name", "mnist"), data_dir=cfg.get("data_dir"),
                     train_split=cfg.get("train_split", "train[:90%]"),
                     valid_split=cfg.get("valid_split", "train[90%:]"),
                     test_split=cfg.get("test_split", "test"),
                     image_key=cfg.get("image_key", "image"),
                     num_levels=cfg.get("num_levels"),
                     download=bool(cfg.get("download", False)),
                     label_key=cfg.get("label_key", "label") if _conditional(cfg) else None)


SOURCES: dict[str, Callable[[Mapping[str, Any]], Dataset]] = {
    "digits": _load_digits,
    "toy2d": _load_toy2d,
    "npz": _load_npz,
    "tfds": _load_tfds,
}


def load_dataset(data_config: Mapping[str, Any]) -> Dataset:
    """Builds the `Dataset` a data config describes (fields per source: module docstring).

    Args:
        data_config: a mapping (a dict) with ``name`` in
            ``SOURCES`` and that source's fields.

    Returns:
        The validated `Dataset`.
    """
    name = data_config.get("name")
    if name not in SOURCES:
        raise ValueError(f"unknown data source {name!r}; valid names: {sorted(SOURCES)}")
    return SOURCES[name](data_config)


__all__ = [
    "Dataset",
    "SOURCES",
    "TOY2D_SAMPLERS",
    "load_dataset",
    "load_digits",
    "load_npz",
    "load_tfds",
    "load_toy2d",
    "sample_toy2d",
    "split_indices",
]
