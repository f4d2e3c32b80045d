"""Bad input at every public boundary gives an error that names the problem, never a number.

One module walks the public API and the command line: the shared checks, flows, baselines,
evaluation and training settings; energy models; data files, config files, command-line
values and checkpoints (a corrupt or empty newest checkpoint resumes from the previous
good one). Each case asserts the exception type and that the message names the argument
or file and what is wrong with it (``match=``), so a check that raises for the wrong
reason fails too.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import zipfile

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import checks
from jaxgen.baselines.diagonal_gaussian import DiagonalGaussian
from jaxgen.baselines.factorized_bernoulli import FactorizedBernoulli
from jaxgen.checks import check_count, check_finite, check_positive
from jaxgen.data import load_dataset, load_npz, load_toy2d, sample_toy2d
from jaxgen.data.batching import steps_per_epoch
from jaxgen.data.dataset import DataFileError, MissingArrayError
from jaxgen.energy import (BernoulliRBM, ConvEnergy, FullyVisibleBM, GaussianBernoulliRBM,
                           MLPEnergy)
from jaxgen.flows.models import build_flow
from jaxgen.training import OptimSettings, TrainSettings, evaluate_nll
from jaxgen.training.checkpoint import CheckpointError
from tests import training_fixtures as fx

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def flow():
    x = np.random.RandomState(0).randn(32, 2).astype(np.float32)
    return build_flow("realnvp", (2,), x, unit_interval=False, rngs=nnx.Rngs(0))


NON_FINITE = [np.nan, np.inf, -np.inf]


# ------------------------------------------------------------------------------------------
# The checks themselves.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_check_finite_names_owner_and_count(bad):
    x = np.zeros((3, 2), np.float32)
    x[1, 0] = x[2, 1] = bad
    with pytest.raises(ValueError, match=r"Owner\.method got 2 non-finite value\(s\).*\(3, 2\)"):
        check_finite(x, "Owner.method")
    check_finite(np.array([[2, 3]]), "ints are always finite")


@pytest.mark.parametrize("value, error, pattern", [
    (0, ValueError, r"n must be an integer >= 1, got 0"),
    (-3, ValueError, r"n must be an integer >= 1, got -3"),
    (2.5, TypeError, r"n must be an integer >= 1, got 2\.5 \(float\)"),
    (True, TypeError, r"n must be an integer >= 1, got True \(bool\)"),
    ("4", TypeError, r"n must be an integer >= 1, got '4' \(str\)"),
])
def test_check_count(value, error, pattern):
    with pytest.raises(error, match=pattern):
        check_count("n", value)


@pytest.mark.parametrize("value", [0, -1, np.nan, np.inf, "hot", None])
def test_check_positive(value):
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
        check_positive("temperature", value)


# ------------------------------------------------------------------------------------------
# Flows.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_flow_log_prob_refuses_non_finite(flow, bad):
    x = np.array([[0.1, 0.2], [bad, 0.0]], np.float32)
    with pytest.raises(ValueError, match=r"RealNVP\.log_prob got 1 non-finite value"):
        flow.log_prob(x)


@pytest.mark.parametrize("n, error", [(-1, ValueError), (0, ValueError), (1.5, TypeError)])
def test_flow_sample_count(flow, n, error):
    with pytest.raises(error, match=r"RealNVP\.sample: n must be an integer >= 1"):
        flow.sample(KEY, n)


@pytest.mark.parametrize("temperature", [-1.0, -1e-9, np.nan, np.inf, "warm"])
def test_flow_sample_temperature(flow, temperature):
    with pytest.raises(ValueError, match=r"RealNVP\.sample: temperature must be a finite "
                                         r"number > 0"):
        flow.sample(KEY, 2, temperature=temperature)


def test_flow_log_prob_wrong_shape(flow):
    with pytest.raises(ValueError, match=r"expects .*\(2,\).*got shape \(4, 3\)"):
        flow.log_prob(np.zeros((4, 3), np.float32))


def test_build_flow_refuses_integer_data():
    with pytest.raises(ValueError, match=r"init_batch must hold float inputs.*got dtype int32 "
                                         r"\(dequantize discrete levels first\)"):
        build_flow("realnvp", (2,), np.zeros((8, 2), np.int32), unit_interval=False,
                   rngs=nnx.Rngs(0))


def test_build_flow_refuses_non_finite_init_batch():
    batch = np.zeros((8, 2), np.float32)
    batch[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"build_flow: init_batch got 1 non-finite"):
        build_flow("glow", (2,), batch, unit_interval=False, rngs=nnx.Rngs(0))


# ------------------------------------------------------------------------------------------
# Baselines.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_gaussian_from_moments_refuses_non_finite(bad):
    data = np.zeros((5, 2))
    data[3, 1] = bad
    with pytest.raises(ValueError, match=r"DiagonalGaussian\.from_moments got 1 non-finite"):
        DiagonalGaussian.from_moments(data)


def test_gaussian_log_prob_refuses_non_finite():
    model = DiagonalGaussian.from_moments(np.random.RandomState(0).randn(10, 2))
    with pytest.raises(ValueError, match=r"DiagonalGaussian\.log_prob got 1 non-finite"):
        model.log_prob(np.array([[np.nan, 0.0]], np.float32))


@pytest.mark.parametrize("bad", [2, -1])
def test_bernoulli_refuses_levels(bad):
    model = FactorizedBernoulli((3,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"FactorizedBernoulli expects levels in \[0, 2\)"):
        model.log_prob(np.array([[0, 1, bad]]))


@pytest.mark.parametrize("model_fn", [
    lambda: DiagonalGaussian((2,), rngs=nnx.Rngs(0)),
    lambda: FactorizedBernoulli((3,), rngs=nnx.Rngs(0)),
])
def test_baseline_sample_count(model_fn):
    with pytest.raises(ValueError, match=r"\.sample: n must be an integer >= 1, got 0"):
        model_fn().sample(KEY, 0)


# ------------------------------------------------------------------------------------------
# Evaluation and training settings.


def test_evaluate_nll_batch_size(flow):
    with pytest.raises(ValueError, match=r"evaluate_nll: batch_size must be an integer >= 1, "
                                         r"got 0"):
        evaluate_nll(flow, np.zeros((4, 2), np.float32), batch_size=0)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_evaluate_nll_refuses_non_finite(flow, bad):
    data = np.zeros((4, 2), np.float32)
    data[2, 0] = bad
    with pytest.raises(ValueError, match=r"evaluate_nll: data got 1 non-finite"):
        evaluate_nll(flow, data)


def test_evaluate_nll_empty_split(flow):
    with pytest.raises(ValueError, match=r"empty split"):
        evaluate_nll(flow, np.zeros((0, 2), np.float32))


@pytest.mark.parametrize("field, value, pattern", [
    ("lr", -1e-3, r"optim\.lr must be positive and finite, got -0\.001"),
    ("lr", 0.0, r"optim\.lr must be positive and finite, got 0\.0"),
    ("lr", float("nan"), r"optim\.lr must be positive and finite, got nan"),
])
def test_optim_settings_refused(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        OptimSettings(**{field: value})


@pytest.mark.parametrize("field, value, pattern", [
    ("num_steps", 0, r"train\.num_steps must be positive, got 0"),
    ("batch_size", -4, r"train\.batch_size must be positive, got -4"),
    ("eval_batch_size", 0, r"train\.eval_batch_size must be positive"),
    ("ema_decay", 1.0, r"train\.ema_decay must be in \[0, 1\), got 1\.0"),
    ("patience", -1, r"train\.patience must be >= 0"),
    ("log_every", 3, r"train\.log_every=3 must be a non-negative multiple of "
                     r"train\.steps_per_call=2"),
])
def test_train_settings_refused(field, value, pattern):
    base = dict(steps_per_call=2, num_steps=10, log_every=2, eval_every=2)
    with pytest.raises(ValueError, match=pattern):
        TrainSettings(**{**base, field: value})


def test_train_settings_optim_type():
    with pytest.raises(TypeError, match=r"train\.optim must be an OptimSettings, got dict"):
        TrainSettings(optim={"lr": 1e-3})


def test_train_refuses_non_settings(flow):
    from jaxgen.training import train
    with pytest.raises(TypeError, match=r"settings must be a jaxgen\.training\.TrainSettings, "
                                        r"got dict"):
        train(flow, None, {"num_steps": 1})


def test_settings_are_frozen():
    settings = TrainSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.num_steps = 3  # type: ignore[misc]


# ==========================================================================================
# Energy models: binary states, finite inputs, sample counts (under jit: documented).
# Energy models check their inputs at the boundary: binary models reject values outside
# {0, 1}, real-valued ones reject NaN/inf, samplers reject n < 1; messages name the model,
# the method, what was expected and what was found. Under jit nothing is checked.


BINARY_MODELS = {
    "BernoulliRBM": lambda: BernoulliRBM(4, 3, rngs=nnx.Rngs(0), init_scale=0.5,
                                         sample_steps=2),
    "FullyVisibleBM": lambda: FullyVisibleBM(4, rngs=nnx.Rngs(0), init_scale=0.5,
                                             sample_sweeps=2),
}
REAL_MODELS = {
    "GaussianBernoulliRBM": (lambda: GaussianBernoulliRBM(4, 3, rngs=nnx.Rngs(0),
                                                          sample_steps=2), (4,)),
    "MLPEnergy": (lambda: MLPEnergy((4,), (8,), rngs=nnx.Rngs(0), sample_steps=2), (4,)),
    "ConvEnergy": (lambda: ConvEnergy((4, 4, 1), (2, 2), rngs=nnx.Rngs(0), sample_steps=2),
                   (4, 4, 1)),
}
GOOD = np.array([[0, 1, 1, 0], [1, 1, 0, 0]], np.int32)


@pytest.mark.parametrize("name,method", [("BernoulliRBM", "log_prob"),
                                         ("BernoulliRBM", "energy"),
                                         ("BernoulliRBM", "free_energy"),
                                         ("FullyVisibleBM", "log_prob"),
                                         ("FullyVisibleBM", "energy")])
@pytest.mark.parametrize("bad,found", [(2, "2.0"), (-1, "-1.0"), (0.5, "0.5"), (np.nan, "nan")])
def test_binary_models_reject_non_binary_values(name, method, bad, found):
    model = BINARY_MODELS[name]()
    x = GOOD.astype(np.float32)
    x[1, 2] = bad
    with pytest.raises(ValueError, match=rf"{name}\.{method} expects binary values in "
                                         rf"\{{0, 1\}}, got 1 value\(s\) outside \{{0, 1\}} "
                                         rf"\(e\.g\. {found}\) in an input of shape \(2, 4\)"):
        getattr(model, method)(x)
    with pytest.raises(ValueError, match=rf"{name}\.{method} expects binary"):
        getattr(model, method)(jnp.asarray(x))  # an eager jax array too


@pytest.mark.parametrize("name", sorted(BINARY_MODELS))
def test_binary_models_take_binary_ints_bools_and_floats(name):
    model = BINARY_MODELS[name]()
    ref = np.asarray(model.log_prob(GOOD))
    assert np.all(np.isfinite(ref))
    for x in (GOOD.astype(bool), GOOD.astype(np.float32), jnp.asarray(GOOD)):
        np.testing.assert_allclose(model.log_prob(x), ref, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(BINARY_MODELS))
def test_under_jit_values_are_not_checked(name):
    """A traced input has no values yet: the check is skipped and a non-binary state gets a
    finite, meaningless number (documented in the model's module)."""
    model = BINARY_MODELS[name]()
    graphdef, state = nnx.split(model)
    log_prob = jax.jit(lambda st, x: nnx.merge(graphdef, st).log_prob(x))
    assert np.all(np.isfinite(log_prob(state, jnp.full((1, 4), 2.0))))


@pytest.mark.parametrize("name", sorted(REAL_MODELS))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_real_valued_energies_reject_non_finite_values(name, bad):
    build, event_shape = REAL_MODELS[name]
    model = build()
    x = np.random.default_rng(0).normal(size=(3, *event_shape)).astype(np.float32)
    assert np.all(np.isfinite(model.log_prob(x)))  # real values, 2 or -1 included, are fine
    x.reshape(3, -1)[1, 0] = bad
    for method in ("log_prob", "energy"):
        with pytest.raises(ValueError, match=rf"{name}\.{method} got 1 non-finite value\(s\) "
                                             rf"\(NaN or inf\) in an input of shape "
                                             rf"\(3, {', '.join(map(str, event_shape))}\)"):
            getattr(model, method)(x)


@pytest.mark.parametrize("name", sorted(BINARY_MODELS) + sorted(REAL_MODELS))
def test_sample_count_is_checked(name):
    model = BINARY_MODELS[name]() if name in BINARY_MODELS else REAL_MODELS[name][0]()
    for n in (0, -3):
        with pytest.raises(ValueError, match=rf"{name}\.sample: n must be an integer >= 1, "
                                             rf"got {n}"):
            model.sample(jax.random.key(0), n)
    with pytest.raises(TypeError, match=rf"{name}\.sample: n must be an integer >= 1, "
                                        r"got 2\.0 \(float\)"):
        model.sample(jax.random.key(0), 2.0)


def test_shape_errors_name_the_method():
    with pytest.raises(ValueError, match=r"MLPEnergy\.log_prob expects \[B, 4\], got shape "
                                         r"\(3, 5\)"):
        REAL_MODELS["MLPEnergy"][0]().log_prob(np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"FullyVisibleBM\.energy expects \[B, 4\], got shape "
                                         r"\(2, 3\)"):
        BINARY_MODELS["FullyVisibleBM"]().energy(np.zeros((2, 3), np.int32))


def test_check_binary():
    checks.check_binary(np.array([[0, 1], [1, 1]]), "M")
    checks.check_binary(np.zeros((0, 3)), "M")  # empty: nothing to check
    with pytest.raises(ValueError, match=r"M expects binary values in \{0, 1\}, got 3 "
                                         r"value\(s\) outside \{0, 1\} \(e\.g\. -1\.0, 0\.5, "
                                         r"2\.0\) in an input of shape \(2, 3\)"):
        checks.check_binary(np.array([[0, 2, 0.5], [1, -1, 1]]), "M")

    @jax.jit
    def traced(x):
        checks.check_binary(x, "M")  # a tracer: skipped
        return x.sum()

    assert float(traced(jnp.full((2,), 3.0))) == 6.0
    captured = jnp.array([0.0, 3.0])
    with pytest.raises(ValueError, match=r"e\.g\. 3\.0"):
        jax.jit(lambda: (checks.check_binary(captured, "M"), captured.sum())[1])()


# ==========================================================================================
# Files, command-line values and resume: every loader names the file and the fix; a corrupt or empty newest checkpoint resumes from the previous good one.
# Bad files and resume (issue 12): every unreadable or odd input names the file or argument,
# says what is wrong and what to do; resume skips damaged checkpoints without deleting them.
# 
# Plain top-level tests, no fixtures beyond pytest's ``tmp_path``/``caplog`` and
# ``tests/training_fixtures.py``.


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARIZED_MNIST_CONFIG = os.path.join(REPO, "experiments", "configs",
                                      "factorized_categorical_binarized_mnist.py")


def _splits(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return {split: rng.normal(size=(n, 3)).astype(dtype)
            for split, n in (("train", 20), ("valid", 5), ("test", 5))}


def _good_npz(tmp_path, name="good.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **(arrays or _splits()))
    return path


# ----------------------------------------------------------------------------- npz files


def test_npz_truncated_names_file_and_says_corrupt(tmp_path):
    raw = _good_npz(tmp_path).read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataFileError, match=r"truncated\.npz.*not a readable zip archive.*"
                                            r"truncated or corrupt.*np\.savez"):
        load_npz(path)


def test_npz_garbage_is_not_reported_as_pickled_data(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_bytes(b"this is not an archive " * 20)
    with pytest.raises(DataFileError, match=r"garbage\.npz.*is not an \.npz archive.*corrupt "
                                            r"or of another format") as info:
        load_npz(path)
    assert "allow_pickle" not in str(info.value)


def test_npz_empty_file(tmp_path):
    path = tmp_path / "empty.npz"
    path.write_bytes(b"")
    with pytest.raises(DataFileError, match=r"empty\.npz.*is empty \(0 bytes\).*Copy it again"):
        load_npz(path)


def test_npz_corrupt_member_names_the_array(tmp_path):
    """A zip whose directory is intact but whose 'valid' member is garbled (bad CRC)."""
    path = _good_npz(tmp_path, "crc.npz")
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("valid.npy")
        offset = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw = bytearray(path.read_bytes())
    raw[offset + 140: offset + 160] = b"\xff" * 20  # inside the array data, past the header
    path.write_bytes(bytes(raw))
    with pytest.raises(DataFileError, match=r"crc\.npz', array 'valid' \(valid split\) could "
                                            r"not be read.*truncated or corrupt"):
        load_npz(path)


def test_npz_single_npy_array(tmp_path):
    path = tmp_path / "plain.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros((4, 2)))
    with pytest.raises(DataFileError, match=r"plain\.npz.*single array of shape \(4, 2\).*"
                                            r"not an \.npz archive of named splits"):
        load_npz(path)


def test_npz_directory_is_not_a_file(tmp_path):
    (tmp_path / "data.npz").mkdir()
    with pytest.raises(FileNotFoundError, match=r"data\.npz.*is a directory"):
        load_npz(tmp_path / "data.npz")


def test_npz_of_strings(tmp_path):
    words = np.array([["a", "b"]] * 4)
    path = _good_npz(tmp_path, "strings.npz", train=words, valid=words, test=words)
    with pytest.raises(DataFileError, match=r"strings\.npz', array 'train' \(train split\) "
                                            r"holds strings \(dtype <U1\).*needs numbers"):
        load_npz(path)


def test_npz_of_objects_is_never_unpickled(tmp_path):
    objects = np.array([[{}, 1]] * 3, dtype=object)
    path = _good_npz(tmp_path, "objects.npz", train=_splits()["train"], valid=objects,
                     test=objects)
    with pytest.raises(DataFileError, match=r"objects\.npz', array 'valid'.*Python objects.*"
                                            r"never unpickled"):
        load_npz(path)


@pytest.mark.parametrize("split", ["train", "test"])
def test_npz_missing_split_key_names_file_keys_and_argument(tmp_path, split):
    arrays = _splits()
    arrays["other"] = arrays.pop(split)
    path = _good_npz(tmp_path, "keys.npz", **arrays)
    with pytest.raises(MissingArrayError, match=rf"keys\.npz' has no array '{split}' for the "
                                                rf"{split} split; available keys: .*'other'.*"
                                                rf"pass {split}_key="):
        load_npz(path)


def test_npz_missing_valid_key_suggests_none_and_is_a_key_error(tmp_path):
    arrays = _splits()
    del arrays["valid"]
    path = _good_npz(tmp_path, "novalid.npz", **arrays)
    with pytest.raises(KeyError) as info:
        load_npz(path)
    assert isinstance(info.value, ValueError)  # a DataFileError too
    assert re.search(r"novalid\.npz' has no array 'valid'.*valid_key=None", str(info.value))
    assert not str(info.value).startswith(('"', "'"))  # not quoted like a bare KeyError


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_npz_non_finite_floats_are_refused_by_the_loader(tmp_path, value):
    arrays = _splits()
    arrays["valid"][2, 1] = value
    path = _good_npz(tmp_path, "nonfinite.npz", **arrays)
    with pytest.raises(DataFileError, match=r"nonfinite\.npz', array 'valid': 1 non-finite "
                                            r"value\(s\) \(NaN or inf\).*index \(2, 1\).*"
                                            r"re-save"):
        load_npz(path)


@pytest.mark.parametrize("split, array, pattern", [
    ("test", np.zeros((0, 3), np.float32),
     r"bad\.npz', array 'test' \(test split\) is empty \(shape \(0, 3\)\)"),
    ("valid", np.zeros((5, 3), np.int64),
     r"bad\.npz': the splits mix floating and integer data \(train is float32, valid is "
     r"int64"),
], ids=["empty_split", "mixed_float_and_integer"])
def test_npz_bad_split_array(tmp_path, split, array, pattern):
    arrays = _splits()
    arrays[split] = array
    with pytest.raises(DataFileError, match=pattern):
        load_npz(_good_npz(tmp_path, "bad.npz", **arrays))


def test_npz_levels_out_of_range_name_the_file(tmp_path):
    levels = np.full((4, 2), 3)
    path = _good_npz(tmp_path, "levels.npz", train=levels, valid=levels, test=levels)
    with pytest.raises(DataFileError, match=r"levels\.npz'.*split 'train'.*\[0, 2\).*max 3"):
        load_npz(path, num_levels=2)


def test_npz_through_load_dataset_names_the_file(tmp_path):
    arrays = _splits()
    arrays["train"][0, 0] = np.nan
    path = _good_npz(tmp_path, "cfg.npz", **arrays)
    with pytest.raises(DataFileError, match=r"cfg\.npz', array 'train': 1 non-finite"):
        load_dataset({"name": "npz", "path": str(path)})


# ----------------------------------------------------------------------------- small ones


@pytest.mark.parametrize("argument", ["num_train", "num_valid", "num_test"])
def test_toy2d_split_size_error_names_the_argument_passed(argument):
    with pytest.raises(ValueError, match=rf"^{argument} must be an integer >= 1, got 0$"):
        load_toy2d("moons", **{argument: 0})


def test_toy2d_float_size_is_refused_not_truncated():
    with pytest.raises(TypeError, match=r"num_train must be an integer >= 1, got 10\.5"):
        load_toy2d("moons", num_train=10.5)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1, got -1"):
        sample_toy2d("moons", -1)


def test_toy2d_unknown_name_comes_before_sizes():
    with pytest.raises(ValueError, match="unknown toy2d density 'moon'"):
        load_toy2d("moon", num_train=0)


@pytest.mark.parametrize("batch_size, error, match", [
    (0, ValueError, r"batch_size must be an integer >= 1, got 0"),
    (-4, ValueError, r"batch_size must be an integer >= 1, got -4"),
    (2.0, TypeError, r"batch_size must be an integer >= 1, got 2\.0 \(float\)"),
    (True, TypeError, r"batch_size must be an integer >= 1, got True \(bool\)"),
])
def test_batch_size_must_be_a_count(batch_size, error, match):
    with pytest.raises(error, match=match):
        steps_per_epoch(100, batch_size)
    assert steps_per_epoch(100, np.int64(8)) == 12


def test_digits_binarize_must_be_a_bool():
    from jaxgen.data import load_digits
    with pytest.raises(TypeError, match=r"binarize must be True or False, got 'false'"):
        load_digits(binarize="false")


# ----------------------------------------------------------------------------- resume


class _Stop(Exception):
    """Raised by `_stop_after` to interrupt a run in this process."""


def _stop_after(step_to_stop: int):
    """A train callback that interrupts the run after step ``step_to_stop`` (its checkpoint
    is on disk by then), like `fx.kill_at` but without a subprocess."""
    def callback(step, state):
        if step >= step_to_stop:
            raise _Stop(step)
    return callback


def _params_of(model):
    return jax.tree.map(np.asarray, nnx.state(model, nnx.Param))


def _steps(directory):
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _interrupted_run(workdir, stop_at=40):
    with pytest.raises(_Stop):
        fx.run(str(workdir), callback=_stop_after(stop_at), checkpoint_every=10)
    return workdir / "checkpoints"


def _garble_arrays(step_dir):
    """Overwrites the array data of a checkpoint's state with garbage (sizes change too)."""
    files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert files, list((step_dir / "state").rglob("*"))
    for path in files:
        path.write_bytes(b"garbage")


def test_resume_skips_a_corrupt_and_an_empty_newer_checkpoint_and_replays_exactly(
        tmp_path, caplog):
    straight = fx.run(str(tmp_path / "a"), checkpoint_every=10)
    ckpts = _interrupted_run(tmp_path / "b")
    assert _steps(ckpts) == [20, 30, 40]
    _garble_arrays(ckpts / "40")
    (ckpts / "999").mkdir()  # a stray empty step directory, newer than everything
    with caplog.at_level(logging.WARNING, logger="jaxgen.training.checkpoint"):
        resumed = fx.run(str(tmp_path / "b"), checkpoint_every=10)
    # Restored from step 30 and replayed 31..60: the same parameters as one straight run.
    assert resumed.train_steps == 60
    chex.assert_trees_all_equal(_params_of(straight.model), _params_of(resumed.model))
    assert resumed.best_valid_nll == straight.best_valid_nll
    # The skipped steps are kept, moved out of orbax's reach (its keep-3 clean-up ran after
    # saves 40, 50, 60 and removed only the good 20 and 30), each with its reason.
    skipped = tmp_path / "b" / "checkpoints_skipped"
    assert sorted(os.listdir(skipped)) == ["40", "40.reason.txt", "999", "999.reason.txt"]
    assert os.listdir(skipped / "999") == []
    assert {p.read_bytes() for p in (skipped / "40" / "state").rglob("*")
            if p.is_file() and p.parent.name == "d"} == {b"garbage"}
    assert "empty directory" in (skipped / "999.reason.txt").read_text()
    assert _steps(ckpts) == [40, 50, 60]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(re.search(r"checkpoint step 999 in .*checkpoints could not be read back "
                         r"\(.*999 is an empty directory.*moved, not deleted, to "
                         r".*checkpoints_skipped/999", m) for m in warnings), warnings
    assert any(re.search(r"checkpoint step 40 .*could not be read back \(.*Error reading.*"
                         r"moved, not deleted", m) for m in warnings), warnings


def test_resume_names_the_truncated_json_file(tmp_path, caplog):
    ckpts = _interrupted_run(tmp_path, stop_at=30)
    meta = ckpts / "30" / "meta" / "metadata"
    meta.write_text(meta.read_text()[:40])
    with caplog.at_level(logging.WARNING, logger="jaxgen.training.checkpoint"):
        fx.run(str(tmp_path), checkpoint_every=10)
    reason = (tmp_path / "checkpoints_skipped" / "30.reason.txt").read_text()
    assert re.search(r"30/meta/metadata is not valid JSON \(JSONDecodeError: .*\): truncated "
                     r"or corrupt", reason), reason
    assert any("30/meta/metadata is not valid JSON" in r.getMessage() for r in caplog.records)


def test_resume_with_no_readable_checkpoint_refuses_and_changes_nothing(tmp_path):
    ckpts = _interrupted_run(tmp_path, stop_at=20)
    assert _steps(ckpts) == [10, 20]
    _garble_arrays(ckpts / "20")
    state_meta = ckpts / "10" / "state" / "_METADATA"
    state_meta.write_text(state_meta.read_text()[:100])
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.raises(CheckpointError, match=r"none of the 2 checkpoint\(s\) in .*checkpoints "
                                              r"can be restored \(step 20: .*Error reading.*; "
                                              r"step 10: .*10/state/_METADATA is not valid "
                                              r"JSON.*\)\..*Nothing was changed.*new workdir"):
        fx.run(str(tmp_path), checkpoint_every=10)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before


def test_checkpoint_of_another_program_is_a_clear_error(tmp_path):
    import orbax.checkpoint as ocp
    manager = ocp.CheckpointManager(str(tmp_path / "checkpoints"))
    manager.save(5, args=ocp.args.Composite(params=ocp.args.StandardSave({"w": np.ones(3)})))
    manager.wait_until_finished()
    manager.close()
    with pytest.raises(CheckpointError, match=r"step 5: .*checkpoints/5 lacks the item\(s\) "
                                              r"\['state', 'best', 'meta'\] \(not a complete "
                                              r"jaxgen training checkpoint"):
        fx.run(str(tmp_path))
    assert _steps(tmp_path / "checkpoints") == [5]
    assert not (tmp_path / "checkpoints_skipped").exists()


def test_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    from jaxgen.training import train
    fx.run(str(tmp_path), num_steps=20)
    data3 = fx.tiny_data()
    data3.train, data3.valid = np.tile(data3.train, (1, 2))[:, :3], None
    data3.num_dims = 3
    with pytest.raises(CheckpointError, match=r"none of the 1 checkpoint\(s\).*step 20: "
                                              r"ValueError: Requested shape: \(.*\) is not "
                                              r"compatible with the stored shape: \(.*\)\.\)\. "
                                              r"They are corrupt, or were written by another "
                                              r"program, model or version"):
        train(fx.TinyFlow(3, rngs=nnx.Rngs(0)), data3, fx.tiny_settings(num_steps=40),
              str(tmp_path), objective=fx.NoisyNLL())
    assert _steps(tmp_path / "checkpoints") == [20]


def test_checkpoint_of_another_run_names_the_keys(tmp_path):
    fx.run(str(tmp_path), num_steps=20)
    with pytest.raises(CheckpointError, match=rf"workdir {re.escape(str(tmp_path))} holds "
                                              r"checkpoints of a different run \(keys "
                                              r"\['ema_decay', 'optim.lr'\] differ, checkpoint "
                                              r"step 20.*use a new workdir"):
        fx.run(str(tmp_path), num_steps=40, ema_decay=0.5, optim=dict(lr=0.5))
    assert _steps(tmp_path / "checkpoints") == [20]


def test_checkpoint_of_another_loop_version_is_a_clear_error(tmp_path):
    fx.run(str(tmp_path), num_steps=20)
    meta_path = tmp_path / "checkpoints" / "20" / "meta" / "metadata"
    meta = json.loads(meta_path.read_text())
    meta["book"]["from_the_future"] = 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"checkpoint step 20 in .* was not written by "
                                              r"this version of jaxgen's training loop"):
        fx.run(str(tmp_path), num_steps=40)


# ----------------------------------------------------------------------------- configs


def _cli(*args, script=None):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    command = ["-c", script, *args] if script else ["-m", "experiments.main", *args]
    return subprocess.run([sys.executable, *command], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def _tiny_binary_npz(path, with_valid=False):
    rng = np.random.default_rng(0)
    sizes = (("train", 40), ("valid", 8), ("test", 8)) if with_valid else (("train", 40),
                                                                           ("test", 8))
    np.savez(path, **{split: (rng.random((n, 3, 3)) < 0.4).astype(np.uint8)
                      for split, n in sizes})
    return str(path)


def test_cli_valid_key_none_carves_validation_from_train(tmp_path):
    """``--config.data.valid_key=None`` reaches the loader as None (not the string 'None',
    whose error recommended exactly what was typed)."""
    workdir = tmp_path / "run"
    proc = _cli("--config", BINARIZED_MNIST_CONFIG, "--workdir", str(workdir),
                f"--config.data.path={_tiny_binary_npz(tmp_path / 'novalid.npz')}",
                "--config.data.valid_key=None", "--config.data.num_levels=none",
                "--config.train.progress=false", "--config.train.num_steps=4",
                "--config.train.steps_per_call=2", "--config.train.batch_size=8",
                "--config.train.log_every=2", "--config.train.eval_every=2",
                "--config.sampler.num_samples=4", "--config.sampler.timing_repeats=1",
                "--config.eval.num_plot_samples=4")
    assert proc.returncode == 0, proc.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    assert config["data"]["valid_key"] is None and config["data"]["num_levels"] is None
    assert config["train"]["progress"] is False
    results = json.loads((workdir / "results.json").read_text())
    assert results["train_steps"] == 4 and np.isfinite(results["valid_nll_nats"])


_PARSE_ONLY = """
import json, sys
from experiments import main
main.parse_flags(sys.argv)
config = main._CONFIG.value
print("CONFIG=" + json.dumps(config.to_dict()))
"""


def _parsed(*args):
    proc = _cli(*args, script=_PARSE_ONLY)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("CONFIG=")]
    return proc, (json.loads(lines[0][len("CONFIG="):]) if lines else None)


def test_cli_values_parse_as_the_schema_types_even_where_the_file_holds_none(tmp_path):
    """A run's JSON record holds None fields (ml_collections could not override them) and an
    int where the schema expects a float (ml_collections read '3e-4' as an int)."""
    from experiments.config_io import load_config
    raw = load_config("factorized_categorical_binarized_mnist").to_dict()
    raw["data"].update(num_levels=None, valid_key=None)
    raw["optim"]["lr"] = 1
    record = tmp_path / "config.json"
    record.write_text(json.dumps(raw))
    proc, config = _parsed(
        "--config", f"experiments/configs/from_json.py:{record}", "--workdir", "unused",
        "--config.data.num_levels=2", "--config.data.valid_key=None",
        "--config.data.valid_key=held_out", "--config.optim.lr=3e-4",
        "--config.train.progress=False", "--config.seed=None", "--config.seed=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert config["data"]["num_levels"] == 2 and config["data"]["valid_key"] == "held_out"
    assert config["optim"]["lr"] == 3e-4 and config["train"]["progress"] is False
    assert config["seed"] == 5  # the last occurrence of a key wins, as with absl
    proc, _ = _parsed("--config", f"experiments/configs/from_json.py:{record}",
                      "--workdir", "unused", "--config.data.num_levels=two")
    assert proc.returncode != 0
    assert "--config.data.num_levels='two': config.data.num_levels expects int" in proc.stderr


def test_cli_missing_config_file_names_it(tmp_path):
    missing = str(tmp_path / "nope.py")
    proc = _cli("--config", missing, "--workdir", str(tmp_path / "run"),
                "--config.train.num_steps=3")
    assert proc.returncode != 0
    assert f"config file {missing!r} does not exist" in proc.stderr
    assert "_ErrorConfig" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path, message", [
    ("{tmp}/nope.py", r"config file '.*nope\.py' does not exist .*pass an existing config "
                      r"file"),
    ("factorized_categorical_digits", r"does not exist .*did you mean "
                                      r"experiments/configs/factorized_categorical_digits\.py"),
    ("{tmp}/run/config.json", r"config\.json' does not exist.*--config "
                              r"experiments/configs/from_json\.py:.*config\.json"),
    ("experiments/configs/from_json.py:{tmp}/gone.json",
     r"--config=.*from_json\.py:.*gone\.json: config file '.*gone\.json' does not exist"),
])
def test_config_flag_errors_say_what_to_pass(tmp_path, path, message):
    from experiments import main
    with pytest.raises(SystemExit) as info:
        main._preload(path.format(tmp=tmp_path))
    assert re.search(message, str(info.value.code)), info.value.code


def test_config_json_corrupt_or_not_an_object(tmp_path):
    from experiments.config_io import load_config
    from experiments.schema import ConfigError
    path = tmp_path / "results.json"
    path.write_text('{"config": {"seed": 1, "da')
    with pytest.raises(ConfigError, match=r"results\.json' is not valid JSON \(.*column.*\): it "
                                          r"is truncated or corrupt"):
        load_config(str(path))
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match=r"results\.json' is not valid JSON"):
        load_config(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match=r"results\.json' holds a list, not a config object"):
        load_config(str(path))


def test_workdir_with_corrupt_config_json_is_refused_and_kept(tmp_path):
    from experiments.config_io import load_config
    from experiments.run import run_experiment
    from experiments.workdir import WorkdirError
    config = load_config("diagonal_gaussian_moons")
    workdir = tmp_path / "run"
    workdir.mkdir()
    for content, message in [
            ('{"seed": 0, "data": {"na', r"config\.json is not valid JSON \(.*column.*\): "
                                         r"truncated or corrupt; it was left as it is"),
            ("", r"config\.json is not valid JSON"),
            ("null", r"config\.json holds a JSON NoneType, not the object a run writes")]:
        (workdir / "config.json").write_text(content)
        with pytest.raises(WorkdirError, match=message):
            run_experiment(config, str(workdir))
        assert (workdir / "config.json").read_text() == content
        assert sorted(os.listdir(workdir)) == ["config.json"]


def test_parse_value_reads_the_schema_type():
    from experiments.config_io import parse_value
    from experiments.schema import ConfigError
    assert parse_value("data.valid_key", "None", str) is None
    assert parse_value("data.num_levels", "null", int) is None
    assert parse_value("train.progress", "false", bool) is False
    assert parse_value("train.progress", "True", bool) is True
    assert parse_value("optim.lr", "3e-4", float) == 3e-4
    assert parse_value("train.num_steps", "1_000", int) == 1000
    assert parse_value("model.hidden_sizes", "[8, 4]", tuple) == (8, 4)
    assert parse_value("data.valid_key", "held_out", str) == "held_out"
    assert parse_value("model.unknown", "0.5", None) == 0.5
    assert parse_value("model.unknown", "true", None) is True
    assert parse_value("model.unknown", "word", None) == "word"
    with pytest.raises(ConfigError, match=r"--config\.train\.progress='maybe': "
                                          r"config\.train\.progress expects bool \(true or "
                                          r"false\)"):
        parse_value("train.progress", "maybe", bool)
    with pytest.raises(ConfigError, match=r"config\.train\.num_steps expects int"):
        parse_value("train.num_steps", "1e3", int)


def test_schema_accepts_valid_key_none_and_names_other_nones():
    from experiments.config_io import load_config
    from experiments.schema import ConfigError, validate
    config = load_config("factorized_categorical_binarized_mnist")
    config.data.path = __file__  # any existing file: validation checks only that it exists
    config.data.valid_key = None
    assert validate(config).data["valid_key"] is None
    config.data.train_key = None
    with pytest.raises(ConfigError, match=r"config\.data\.train_key=None has type NoneType, "
                                          r"expected str"):
        validate(config)


# ----------------------------------------------------------------------------- tfds records


class _Records:
    """A random-access source like ``tfds.data_source``: ``len`` and ``source[i]``."""

    def __init__(self, records):
        self.records = records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, i):
        return self.records[i]

    def __repr__(self):
        return "_Records(...)"


def test_tfds_records_of_different_shapes_name_the_split():
    from jaxgen.data import tfds_source
    source = _Records([{"image": np.zeros((2, 2, 1))}, {"image": np.zeros((3, 2, 1))}])
    with pytest.raises(ValueError, match=r"feature 'image' of tfds data set 'x', split 'train' "
                                         r"has records of different shapes \[\(2, 2, 1\), "
                                         r"\(3, 2, 1\)\].*resize or pad"):
        tfds_source._read_all(source, "image", "tfds data set 'x', split 'train'")
    with pytest.raises(ValueError, match=r"tfds data set 'x', split 'test\[:0\]' is empty "
                                         r"\(0 records\); check the split spec"):
        tfds_source._read_all(_Records([]), "image", "tfds data set 'x', split 'test[:0]'")


def test_tfds_non_numeric_feature_is_refused_naming_it(monkeypatch):
    from jaxgen.data import tfds_source
    monkeypatch.setattr(tfds_source, "_open_source", lambda name, split, data_dir, download:
                        _Records([{"image": np.zeros((2, 2)), "label": np.array("cat")}] * 2))
    with pytest.raises(ValueError, match=r"feature 'label' of tfds data set 'pets' \(train split "
                                         r"'train\[:90%\]'\) holds <U3 values, not numbers; set "
                                         r"image_key"):
        tfds_source.load_tfds("pets", image_key="label")
