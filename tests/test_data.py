"""Tests for jaxgen.data: the Dataset container and the four sources."""
from pathlib import Path

import ml_collections
import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxgen.data import (TOY2D_SAMPLERS, Dataset, load_dataset, load_digits, load_npz,
                         load_tfds, load_toy2d, sample_toy2d, split_indices)
from jaxgen.data import digits as digits_lib
from jaxgen.data import tfds_source

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINARIZED_MNIST = SHARED_DATA / "binarized_mnist.npz"


def _images(n, seed=0, levels=256):
    return np.random.default_rng(seed).integers(0, levels, size=(n, 4, 4, 1))


# ----------------------------------------------------------------------------- Dataset


def test_dataset_properties_and_canonical_dtypes():
    ds = Dataset("toy", _images(5).astype(np.int64), _images(3), _images(2, 1), 256)
    assert ds.event_shape == (4, 4, 1) and ds.num_dims == 16 and ds.is_discrete
    assert all(getattr(ds, s).dtype == np.int32 for s in ("train", "valid", "test"))
    cont = Dataset("c", np.zeros((4, 2)), np.zeros((2, 2)), np.ones((2, 2)))
    assert not cont.is_discrete and cont.train.dtype == np.float32
    assert "train=4" in repr(cont) and "event_shape=(2,)" in repr(cont)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(train=np.zeros(5)), ValueError, r"'train'.*rank >= 2.*\(5,\)"),
    (dict(valid=np.zeros((0, 2))), ValueError, "'valid'.*empty"),
    (dict(test=np.zeros((3, 3))), ValueError, "event shape"),
    (dict(train=np.zeros((4, 2), np.int32)), TypeError, "'train'.*floating.*num_levels"),
    (dict(valid=np.array([[0.0, np.nan], [np.inf, np.nan]])), ValueError,
     "'valid': 3 non-finite"),
])
def test_dataset_rejects_bad_continuous_splits(kwargs, error, match):
    splits = dict(train=np.zeros((4, 2)), valid=np.zeros((2, 2)), test=np.zeros((2, 2)))
    with pytest.raises(error, match=match):
        Dataset("bad", **{**splits, **kwargs})


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(train=np.zeros((4, 2))), TypeError, "'train'.*integer dtype"),
    (dict(test=np.full((2, 2), 5)), ValueError, r"'test'.*\[0, 5\).*max 5"),
    (dict(valid=np.full((2, 2), -1)), ValueError, "'valid'.*min -1"),
    (dict(num_levels=1), ValueError, "num_levels must be >= 2"),
    (dict(num_levels=2.0), TypeError, "num_levels must be an int"),
])
def test_dataset_rejects_bad_discrete_splits(kwargs, error, match):
    splits = dict(train=np.zeros((4, 2), int), valid=np.zeros((2, 2), int),
                  test=np.ones((2, 2), int), num_levels=5)
    with pytest.raises(error, match=match):
        Dataset("bad", **{**splits, **kwargs})


def test_split_indices_disjoint_and_seeded():
    a, b = split_indices(10, [3, 5], seed=1)
    assert len(a) == 3 and len(b) == 5 and not set(a) & set(b)
    np.testing.assert_array_equal(a, split_indices(10, [3, 5], seed=1)[0])
    with pytest.raises(ValueError, match="do not fit"):
        split_indices(10, [6, 5], seed=1)


# ----------------------------------------------------------------------------- toy2d


@pytest.mark.parametrize("name", sorted(TOY2D_SAMPLERS))
def test_toy2d_deterministic_shaped_and_scaled(name):
    x = sample_toy2d(name, 4001, seed=3)
    assert x.shape == (4001, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    np.testing.assert_array_equal(x, sample_toy2d(name, 4001, seed=3))
    assert not np.allclose(x, sample_toy2d(name, 4001, seed=4))
    assert np.mean(np.abs(x) < 4.5) > 0.999, "should fill about [-4, 4]^2"
    assert np.all(x.std(axis=0) > 0.8) and np.all(np.abs(x.mean(axis=0)) < 0.5)


def test_toy2d_shapes_are_right():
    board = sample_toy2d("checkerboard", 2000, seed=0) / 2  # squares of side 1
    parity = (np.floor(board[:, 0]) + np.floor(board[:, 1])) % 2
    assert np.all(parity == parity[0]), "checkerboard uses one colour only"
    gauss = sample_toy2d("8gaussians", 8000, seed=0) * np.sqrt(2)
    angle = np.round(np.arctan2(gauss[:, 1], gauss[:, 0]) / (np.pi / 4)) % 8
    np.testing.assert_allclose(np.bincount(angle.astype(int), minlength=8) / 8000, 1 / 8,
                               atol=0.02)
    radius = np.linalg.norm(sample_toy2d("rings", 8000, seed=0), axis=1)
    ring = np.round(radius / 0.75)
    np.testing.assert_allclose(np.abs(radius - 0.75 * ring).mean(), 0.08 * np.sqrt(2 / np.pi),
                               atol=0.01)
    np.testing.assert_allclose(np.bincount(ring.astype(int), minlength=5)[1:] / 8000, 0.25,
                               atol=0.03)


def test_toy2d_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown toy2d density 'spiral'.*2spirals"):
        sample_toy2d("spiral", 10)


def test_load_toy2d_splits_distinct_and_reproducible():
    ds = load_toy2d("moons", num_train=300, num_valid=100, num_test=50, seed=7)
    assert (ds.train.shape, ds.valid.shape, ds.test.shape) == ((300, 2), (100, 2), (50, 2))
    assert ds.num_levels is None and ds.name == "moons"
    assert not np.allclose(ds.train[:50], ds.test) and not np.allclose(ds.valid[:50], ds.test)
    np.testing.assert_array_equal(ds.test, load_toy2d("moons", 300, 100, 50, seed=7).test)


# ----------------------------------------------------------------------------- digits


def test_digits_fixed_split():
    ds = load_digits()
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (1257, 270, 270)
    assert ds.event_shape == (8, 8, 1) and ds.train.dtype == np.int32 and ds.num_levels == 17
    for split in (ds.train, ds.valid, ds.test):
        assert split.min() >= 0 and split.max() <= 16
    assert len(np.unique(ds.train)) == 17
    index = digits_lib.digits_split_indices()
    parts = [set(index[s]) for s in ("train", "valid", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert set.union(*parts) == set(range(1797))
    # Pinned: a change of the split (or of numpy's legacy stream) must not go unnoticed.
    np.testing.assert_array_equal(index["test"][:5], [11, 23, 24, 25, 28])
    from sklearn.datasets import load_digits as sklearn_load_digits
    np.testing.assert_array_equal(ds.valid[..., 0], sklearn_load_digits().images[index["valid"]])
    np.testing.assert_array_equal(ds.train, load_digits().train)


def test_digits_binarized():
    raw, binary = load_digits(), load_digits(binarize=True)
    assert binary.num_levels == 2 and binary.name == "digits_binarized"
    np.testing.assert_array_equal(binary.test, (raw.test >= 8).astype(np.int32))
    assert 0.2 < binary.train.mean() < 0.6


# ----------------------------------------------------------------------------- npz


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {s: rng.integers(0, 256, size=(n, 5, 6)).astype(np.uint8)
              for s, n in [("train", 20), ("valid", 4), ("test", 6)]}
    arrays["train"][0, 0, 0] = 255
    np.savez(tmp_path / "images.npz", **arrays)
    ds = load_npz(tmp_path / "images.npz")
    assert ds.name == "images" and ds.num_levels == 256 and ds.event_shape == (5, 6, 1)
    assert ds.train.dtype == np.int32
    np.testing.assert_array_equal(ds.valid[..., 0], arrays["valid"])

    vectors = {"x": rng.normal(size=(10, 3)), "v": rng.normal(size=(4, 3)),
               "t": rng.normal(size=(5, 3))}
    np.savez(tmp_path / "vectors.npz", **vectors)
    ds = load_npz(tmp_path / "vectors.npz", train_key="x", valid_key="v", test_key="t")
    assert ds.num_levels is None and ds.train.dtype == np.float32
    np.testing.assert_allclose(ds.test, vectors["t"], rtol=1e-6)


def test_npz_carves_valid_from_train(tmp_path):
    train = np.arange(50)[:, None] % 7  # row i holds i % 7
    np.savez(tmp_path / "d.npz", train=np.arange(50)[:, None], test=train[:5])
    ds = load_npz(tmp_path / "d.npz", valid_key=None, num_levels=50, valid_fraction=0.2)
    assert (len(ds.train), len(ds.valid)) == (40, 10)
    np.testing.assert_array_equal(np.sort(np.concatenate([ds.train, ds.valid])[:, 0]),
                                  np.arange(50))
    again = load_npz(tmp_path / "d.npz", valid_key=None, num_levels=50, valid_fraction=0.2)
    np.testing.assert_array_equal(ds.valid, again.valid)


def test_npz_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load_npz(tmp_path / "nowhere.npz")
    np.savez(tmp_path / "d.npz", train=np.zeros((4, 2)), test=np.zeros((2, 2)))
    with pytest.raises(KeyError, match=r"no array 'valid'.*\['test', 'train'\].*valid_key=None"):
        load_npz(tmp_path / "d.npz")
    np.savez(tmp_path / "nan.npz", train=np.zeros((4, 2)), valid=np.zeros((2, 2)),
             test=np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match="'test': 1 non-finite"):
        load_npz(tmp_path / "nan.npz")
    np.savez(tmp_path / "rank.npz", train=np.zeros(4), valid=np.zeros(2), test=np.zeros(2))
    with pytest.raises(ValueError, match=r"rank >= 2.*\(4,\)"):
        load_npz(tmp_path / "rank.npz")
    np.savez(tmp_path / "levels.npz", train=np.full((4, 2), 3), valid=np.zeros((2, 2), int),
             test=np.zeros((2, 2), int))
    with pytest.raises(ValueError, match="max 3"):
        load_npz(tmp_path / "levels.npz", num_levels=2)


def test_real_binarized_mnist_through_config():
    ds = load_dataset(ml_collections.ConfigDict({"name": "npz", "path": str(BINARIZED_MNIST),
                                                 "num_levels": 2}))
    assert (ds.train.shape, ds.valid.shape, ds.test.shape) == (
        (50000, 28, 28, 1), (10000, 28, 28, 1), (10000, 28, 28, 1))
    assert ds.train.dtype == np.int32 and ds.num_levels == 2 and ds.num_dims == 784
    assert 0.1 < ds.test.mean() < 0.2  # ~13% of binarized MNIST pixels are on


# ----------------------------------------------------------------------------- tfds


def test_tfds_mock_mnist():
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = load_tfds("mnist", test_split="test[:3]")
        via_config = load_dataset(ml_collections.ConfigDict(
            {"name": "tfds", "tfds_name": "mnist", "data_dir": "/nonexistent"}))
    assert ds.train.shape == (6, 28, 28, 1) and ds.train.dtype == np.int32
    assert ds.num_levels == 256 and ds.name == "mnist" and ds.train.max() > 1
    assert via_config.test.shape == (6, 28, 28, 1)


def test_tfds_mock_errors():
    with tfds.testing.mock_data(num_examples=2, policy=tfds.testing.MockPolicy.USE_CODE):
        with pytest.raises(KeyError, match="no feature 'pixels'.*'image', 'label'"):
            load_tfds("mnist", image_key="pixels")
        with pytest.raises(ValueError, match="cannot infer num_levels.*int64"):
            load_tfds("mnist", image_key="label")


def test_tfds_missing_data_suggests_build(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build mnist --file_format=array_record"):
        load_tfds("mnist", data_dir=tmp_path)
    with pytest.raises(ValueError, match="no data set named 'not_a_dataset_xyz'"):
        load_tfds("not_a_dataset_xyz", data_dir=tmp_path)


def test_tfds_reader_uses_batched_reads():
    class Source:
        def __init__(self):
            self.batched = 0

        def __len__(self):
            return 10

        def __getitem__(self, i):
            raise AssertionError("per-record read while a batched one works")

        def __getitems__(self, keys):
            self.batched += 1
            return [{"image": np.full((2, 2, 1), k, np.uint8)} for k in keys]

    source = Source()
    images = tfds_source._read_all(source, "image")
    assert images.shape == (10, 2, 2, 1) and source.batched == 1
    np.testing.assert_array_equal(images[:, 0, 0, 0], np.arange(10))


# ----------------------------------------------------------------------------- load_dataset


def test_load_dataset_dispatch():
    toy = load_dataset(ml_collections.ConfigDict(
        {"name": "toy2d", "toy_name": "pinwheel", "num_train": 100, "num_valid": 20,
         "num_test": 30, "seed": 1}))
    assert toy.train.shape == (100, 2) and toy.test.shape == (30, 2)
    assert load_dataset({"name": "digits", "binarize": True}).num_levels == 2
    with pytest.raises(ValueError, match=r"unknown data source 'mnist'.*\['digits', 'npz'"):
        load_dataset({"name": "mnist"})
    with pytest.raises(ValueError, match="needs data_config.path"):
        load_dataset({"name": "npz"})
