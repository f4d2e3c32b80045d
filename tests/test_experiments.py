"""experiments: CLI end to end, config validation, workdir safety, NLL units, the demo."""
import json
import math
import os
import re
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from experiments import demo, registry, schema
from experiments.build import build_experiment
from experiments.config_io import load_config
from experiments.report import RESULT_KEYS
from experiments.run import run_experiment
from experiments.schema import ConfigError
from experiments.schema import validate as validate_config
from experiments.workdir import WorkdirError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(REPO, "experiments", "configs")
CONFIG_NAMES = sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                      if f.endswith(".py") and not f.startswith("_")
                      and f not in ("common.py", "from_json.py"))
# Few steps: keep every run in this file to a couple of seconds.
FAST = dict(num_steps=200, steps_per_call=100, log_every=100, eval_every=100)


def nnx_params(model):
    return np.concatenate([np.ravel(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))])


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", "experiments.main", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def _config(name, **train):
    config = load_config(name)
    config.train.update(dict(FAST, **train))
    return config


def _moons_config(**train):
    config = _config("diagonal_gaussian_moons", **train)
    config.data.update(num_train=2048, num_valid=512, num_test=512)
    config.eval.num_plot_samples = 200
    return config


def _assert_finite_results(results):
    missing = [k for k in RESULT_KEYS if k not in results]
    assert not missing, missing
    for key in ("test_nll_nats", "test_bits_per_dim", "valid_nll_nats", "train_wall_s",
                "steps_per_s", "compile_s", "sample_time_s"):
        assert isinstance(results[key], float) and math.isfinite(results[key]), key
    assert results["steps_per_s"] > 0 and results["sample_time_s"] > 0
    env = results["environment"]
    for key in ("python", "platform", "device_kind", "device_count", "hostname", "git_commit",
                "git_dirty", "timestamp"):
        assert key in env, key
    assert {"jax", "jaxlib", "flax", "optax"} <= set(env["versions"])


def test_cli_end_to_end_dequantized_gaussian(tmp_path):
    workdir = tmp_path / "run"
    proc = _cli("--config", os.path.join(CONFIG_DIR, "diagonal_gaussian_digits.py"),
                "--workdir", str(workdir), "--config.train.num_steps=200",
                "--config.train.eval_every=100", "--config.sampler.num_samples=50",
                "--config.seed=7")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("config.json", "results.json", "metrics.jsonl", "samples.png", "checkpoints"):
        assert (workdir / name).exists(), name
    results = json.loads((workdir / "results.json").read_text())
    config = json.loads((workdir / "config.json").read_text())
    _assert_finite_results(results)
    assert config == results["config"]
    assert config["train"]["num_steps"] == results["train_steps"] == 200
    assert results["seed"] == config["seed"] == 7 and results["num_samples"] == 50
    assert (results["model"], results["dataset"]) == ("diagonal_gaussian", "digits")
    assert results["num_params"] == 2 * 64
    # Dequantized data: NLL reported in the 17-level data's units,
    # nll_discrete_bound = nll_density((x + u) / 17) + D log 17, bits = nll / (D ln 2).
    density_nll = results["test_nll_nats_dequantized_density"]
    assert results["test_nll_nats"] == pytest.approx(density_nll + 64 * math.log(17))
    assert results["test_bits_per_dim"] == pytest.approx(
        results["test_nll_nats"] / (64 * math.log(2)))
    assert 0 < results["test_bits_per_dim"] < math.log2(17)  # beats uniform over 17 levels
    records = [json.loads(line) for line in open(workdir / "metrics.jsonl")]
    assert {r["split"] for r in records} == {"train", "valid"}
    with open(workdir / "samples.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("override, key", [
    ("--config.train.nonsense=1", "config.train.nonsense"),
    ("--config.nonsense=1", "config.nonsense"),
])
def test_cli_unknown_key_fails_naming_it(tmp_path, override, key):
    workdir = tmp_path / "run"
    proc = _cli("--config", os.path.join(CONFIG_DIR, "factorized_categorical_digits.py"),
                "--workdir", str(workdir), override)
    assert proc.returncode != 0
    assert f"unknown config key '{key}'" in proc.stderr
    assert not workdir.exists()


def test_cli_wrong_type_and_missing_npz_fail(tmp_path):
    workdir = tmp_path / "run"
    proc = _cli("--config", os.path.join(CONFIG_DIR, "factorized_categorical_digits.py"),
                "--workdir", str(workdir), "--config.train.num_steps=lots")
    assert proc.returncode != 0 and "config.train.num_steps" in proc.stderr
    missing = str(tmp_path / "nowhere" / "mnist.npz")
    proc = _cli("--config", os.path.join(CONFIG_DIR, "factorized_categorical_binarized_mnist.py"),
                "--workdir", str(workdir), f"--config.data.path={missing}")
    assert proc.returncode != 0
    assert "config.data.path" in proc.stderr and missing in proc.stderr
    assert not workdir.exists()


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_config_is_valid(name):
    config = load_config(name)
    assert tuple(config.keys()) == tuple(sorted(schema.SECTIONS))
    assert set(config.train.keys()) == set(schema.TRAIN_DEFAULTS)
    validate_config(config)


def _mutated(mutate):
    config = load_config("factorized_categorical_digits")
    config.unlock() if hasattr(config, "unlock") else None
    mutate(config)
    return config


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.train.__setitem__("nonsense", 1), "config.train.nonsense"),
    (lambda c: c.__setitem__("extra", {}), "unknown key(s) ['config.extra']"),
    (lambda c: c.model.__setitem__("depth", 2), "config.model.depth"),
    (lambda c: c.data.__setitem__("toy_name", "moons"), "config.data.toy_name"),
    (lambda c: c.sampler.__setitem__("num_samples", 0), "config.sampler.num_samples"),
    (lambda c: c.eval.__setitem__("batch_size", -1), "config.eval.batch_size"),
    (lambda c: c.train.__setitem__("steps_per_call", 3), "train.steps_per_call"),
    (lambda c: c.optim.__setitem__("name", "adagrad"), "config.optim.name"),
    (lambda c: c.data.__setitem__("name", "cifar"), "config.data.name"),
    (lambda c: c.model.__setitem__("name", "vae"), "config.model.name"),
    (lambda c: c.data.__setitem__("dequantize", "gaussian"), "config.data.dequantize"),
    (lambda c: c.__delitem__("sampler"), "missing section(s) ['sampler']"),
])
def test_validation_names_the_bad_key(tmp_path, mutate, message):
    config = _mutated(mutate)
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_experiment(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_validation_checks_types_of_configs_built_from_data(tmp_path):
    def config_with(section, key, value):  # e.g. a hand-edited config.json
        raw = load_config("factorized_categorical_digits").to_dict()
        raw[section][key] = value
        return ml_collections.ConfigDict(raw)

    with pytest.raises(ConfigError, match=r"config.train.num_steps='200' has type str"):
        validate_config(config_with("train", "num_steps", "200"))
    with pytest.raises(ConfigError, match="config.model.init_from_counts=1 has type int"):
        validate_config(config_with("model", "init_from_counts", 1))
    with pytest.raises(ConfigError, match="config.train.progress=None has type NoneType"):
        validate_config(config_with("train", "progress", None))
    validate_config(config_with("optim", "lr", 1))  # ints are fine where floats are expected


@pytest.mark.parametrize("name, change, message", [
    ("diagonal_gaussian_digits", dict(dequantize="none"), "config.data.dequantize='uniform'"),
    ("factorized_bernoulli_digits", dict(binarize=False), "config.data.binarize=True"),
    ("factorized_categorical_digits", dict(dequantize="uniform"), "dequantize='none'"),
])
def test_model_data_mismatch_is_refused(tmp_path, name, change, message):
    config = load_config(name)
    config.data.update(change)
    with pytest.raises(ConfigError, match=message):
        run_experiment(config, str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_npz_path_missing_in_python(tmp_path):
    config = load_config("factorized_categorical_binarized_mnist")
    config.data.path = str(tmp_path / "absent.npz")
    with pytest.raises(ConfigError, match="absent.npz"):
        run_experiment(config, str(tmp_path / "run"))


def test_npz_source_builds_from_a_small_file(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "tiny.npz"
    np.savez(path, **{split: (rng.random((n, 6, 6)) < 0.3).astype(np.uint8)
                      for split, n in (("train", 300), ("valid", 60), ("test", 60))})
    config = load_config("factorized_categorical_binarized_mnist")
    config.data.path = str(path)
    exp = build_experiment(config)
    assert exp.dataset.name == "tiny" and exp.dataset.event_shape == (6, 6, 1)
    assert exp.dataset.num_levels == 2 and not exp.preprocessing.active
    assert exp.model.logits.shape == (6, 6, 1, 2)


def test_workdir_of_another_config_is_refused_and_kept(tmp_path):
    workdir = str(tmp_path / "run")
    first = run_experiment(_moons_config(), workdir)
    _assert_finite_results(first)
    assert {"samples", "density"} <= set(first["files"])
    before = {name: open(os.path.join(workdir, name), "rb").read()
              for name in ("config.json", "results.json", "samples.png", "metrics.jsonl")}
    other = _moons_config()
    other.seed = 1
    with pytest.raises(WorkdirError, match="config.seed"):
        run_experiment(other, workdir)
    for name, content in before.items():
        assert open(os.path.join(workdir, name), "rb").read() == content, name
    # The same config again: the completed run is returned as stored, nothing is redone.
    again = _moons_config()
    again.train.progress = True  # display-only keys may differ
    assert run_experiment(again, workdir) == first
    assert open(os.path.join(workdir, "results.json"), "rb").read() == before["results.json"]
    # Reproduce from the record alone (also what --config from_json.py:PATH does).
    record = os.path.join(workdir, "results.json")
    assert load_config(record).to_dict() == first["config"]
    from_json = os.path.join(CONFIG_DIR, "from_json.py")
    assert load_config(f"{from_json}:{record}").to_dict() == first["config"]
    assert run_experiment(first["config"], workdir) == first  # plain dicts are configs too


@pytest.mark.parametrize("name, field, expected", [
    ("factorized_categorical_digits", "init_from_counts", "from_counts"),
    ("factorized_bernoulli_digits", "init_from_counts", "from_counts"),
    ("diagonal_gaussian_digits", "init_from_moments", "from_moments"),
])
def test_data_dependent_init_is_the_closed_form_mle(name, field, expected):
    config = load_config(name)
    config.model[field] = True
    exp = build_experiment(config)
    data = exp.dataset.train
    if name == "factorized_categorical_digits":
        counts = np.stack([(data == v).sum(0) for v in range(17)], -1) + 1.0  # pseudocount 1
        np.testing.assert_allclose(exp.model.probs(), counts / counts.sum(-1, keepdims=True),
                                   rtol=1e-5)
    elif name == "factorized_bernoulli_digits":
        np.testing.assert_allclose(exp.model.probs(), (data.sum(0) + 1) / (len(data) + 2),
                                   rtol=1e-5)
    else:  # the moments of the dequantized data (x + u) / 17
        np.testing.assert_allclose(exp.model.mean[...], (data.mean(0) + 0.5) / 17, atol=0.01)
    fresh = build_experiment(load_config(name)).model  # default: the data-free init
    assert not np.allclose(nnx_params(fresh), nnx_params(exp.model))


def test_registry_entries_declare_known_data_kinds():
    assert {"factorized_categorical", "factorized_bernoulli", "diagonal_gaussian"} <= set(
        registry.MODELS)
    for spec in registry.MODELS.values():
        assert spec.data_kind in registry.DATA_KINDS and spec.description


def test_demo_writes_report_and_skips_completed_runs(tmp_path):
    workdir = str(tmp_path / "demo")
    # Two quick baselines here (make demo runs them all; every demo config is validated by
    # test_every_config_is_valid and test_demo_configs_exist).
    names = list(demo.DEMO_CONFIGS[:2])
    rows = demo.run_demo(workdir, names, num_steps=100)
    assert [r["config"] for r in rows] == names
    report = open(os.path.join(workdir, "report.md")).read()
    for row in rows:
        assert f"| {row['model']} | {row['dataset']} | {row['test_nll_nats']:.2f} |" in report
        assert f"]({row['samples_png']})" in report
        assert os.path.exists(os.path.join(workdir, row["samples_png"]))
    assert "Environment: jax" in report
    summary = json.load(open(os.path.join(workdir, "results.json")))
    assert [r["config"] for r in summary["rows"]] == names
    # Re-running keeps every result (completed runs are reused, not retrained).
    mtimes = {r["config"]: os.path.getmtime(os.path.join(workdir, r["config"], "results.json"))
              for r in rows}
    again = demo.run_demo(workdir, names, num_steps=100)
    assert all(r["reused"] for r in again) and not any(r["reused"] for r in rows)
    strip = lambda table: [{k: v for k, v in r.items() if k != "reused"} for r in table]
    assert strip(again) == strip(rows)
    assert "reused completed runs" in open(os.path.join(workdir, "report.md")).read()
    for name, mtime in mtimes.items():
        assert os.path.getmtime(os.path.join(workdir, name, "results.json")) == mtime
    # More steps (a resumable key) extend the runs from their checkpoints; the earlier
    # results are kept next to the new ones.
    longer = demo.run_demo(workdir, names[:1], num_steps=200)
    run_dir = os.path.join(workdir, names[0])
    assert json.load(open(os.path.join(run_dir, "results.json")))["train_steps"] == 200
    assert json.load(open(os.path.join(run_dir, "results-step100.json")))["train_steps"] == 100
    assert not longer[0]["reused"]


def test_demo_configs_exist():
    assert set(demo.DEMO_CONFIGS) <= set(CONFIG_NAMES)
