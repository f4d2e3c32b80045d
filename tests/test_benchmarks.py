"""Benchmarks run in --quick mode and print one parseable JSON object per line."""
import json
import math
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_module(module, *args):
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines, f"{module} printed nothing; stderr: {proc.stderr[-2000:]}"
    return [json.loads(line) for line in lines]  # every stdout line must be JSON


def test_train_step_benchmark_quick():
    configs = ["factorized_categorical_digits", "diagonal_gaussian_moons"]
    records = _run_module("experiments.benchmarks.train_step", "--quick",
                          "--configs", ",".join(configs), "--steps_per_call=2")
    assert [r["config"] for r in records] == configs
    for r in records:
        for key in ("config", "model", "batch_size", "num_params", "compile_s", "steps_per_s",
                    "examples_per_s", "device_kind", "steps_per_call", "timed_steps"):
            assert key in r, key
        assert r["steps_per_call"] == 2 and r["timed_steps"] % 2 == 0
        assert r["compile_s"] > 0 and math.isfinite(r["steps_per_s"]) and r["steps_per_s"] > 0
        assert r["examples_per_s"] == pytest.approx(r["steps_per_s"] * r["batch_size"])
    assert records[0]["num_params"] == 64 * 17 and records[1]["num_params"] == 4
    assert all(r["layer_scan"] == "auto" and r["compute_dtype"] == "float32" for r in records)


def test_train_step_benchmark_compiles_both_layer_stack_programs():
    """--compile_only with both layer-stack programs and an override: one record each, with
    compile seconds and XLA's memory estimate and no throughput."""
    records = _run_module("experiments.benchmarks.train_step", "--compile_only",
                          "--configs=pixelcnn_digits", "--layer_scan=rolled,unrolled",
                          "--compute_dtype=float32", "--set=model.num_layers=2")
    assert [(r["layer_scan"], r["unrolled"]) for r in records] == [("rolled", False),
                                                                  ("unrolled", True)]
    for r in records:
        assert r["compute_dtype"] == "float32" and r["steps_per_s"] is None
        assert r["overrides"] == ["model.num_layers=2"]
        assert r["lower_s"] > 0 and r["xla_compile_s"] > 0 and r["peak_bytes_xla"] > 0


def test_train_step_benchmark_random_data_autoregressive():
    """--data=random runs a binarized-MNIST config without its data file; memory is reported."""
    # in a subprocess: the module defines absl flags, which clash with other modules' flags
    # of the same name (experiments.demo's --configs) in a shared test process
    check = ("from experiments.benchmarks.train_step import CONFIG_GROUPS, expand_config_names,"
             " resolve_steps_per_call as r;"
             "import json; print(json.dumps([len(CONFIG_GROUPS['ar_binarized_mnist']),"
             " expand_config_names(['ar_binarized_mnist', 'x']), r(0, 100), r(3, 100)]))")
    proc = subprocess.run([sys.executable, "-c", check], cwd=REPO, capture_output=True,
                          text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    num_ar, expanded, configured, requested = json.loads(proc.stdout.strip().splitlines()[-1])
    assert num_ar == 7 and len(expanded) == 8 and expanded[-1] == "x"
    assert (configured, requested) == (100, 3)  # 0 takes the config's train.steps_per_call
    records = _run_module("experiments.benchmarks.train_step", "--quick", "--data=random",
                          "--configs=made_binarized_mnist", "--steps_per_call=2")
    (r,) = records
    assert r["dataset"] == "random" and r["data"] == "random"
    assert r["event_shape"] == [28, 28, 1] and r["batch_size"] == 100
    assert r["steps_per_call"] == 2  # the flag, not the config's 100
    assert r["steps_per_s"] > 0 and r["peak_bytes_xla"] > 50_000 * 784  # the train set
    assert r["max_rss_bytes"] > 0 and "peak_bytes_in_use" in r


def test_sampling_benchmark_quick():
    records = _run_module("experiments.benchmarks.sampling", "--quick")
    rows = [r for r in records if not r.get("summary")]
    summary = [r for r in records if r.get("summary")]
    methods = {"inverse_cdf", "alias", "gumbel_max", "jax_categorical"}
    assert {r["method"] for r in rows} == methods
    assert {r["num_categories"] for r in rows} == {2, 17, 256, 65536}
    for r in rows:
        assert r["num_draws"] > 0 and math.isfinite(r["draws_per_s"]) and r["draws_per_s"] > 0, r
        assert all(math.isfinite(r[k]) and r[k] >= 0 for k in ("compile_s", "setup_s", "best_s"))
    # the summary reports (it does not assert: timing targets live in the benchmark's output)
    assert len(summary) == 1
    assert set(summary[0]["speedup_over_jax_categorical"]) == {"2", "17", "256", "65536"}


def test_ar_sampling_benchmark_small():
    records = _run_module("experiments.benchmarks.ar_sampling", "--size=6", "--batch=2",
                          "--repeats=1")
    assert {r["model"] for r in records} == {"gated_pixelcnn", "transformer"}
    for r in records:
        # same key, same model: the cached (fast) sampler must reproduce the naive one exactly
        # (on CPU, at this size; tests/test_autoregressive_models.py checks it per model too)
        assert r["identical_samples"] is True, r
        assert r["fast_images_per_s"] > 0 and r["naive_images_per_s"] > 0


def test_mcmc_benchmark_quick():
    records = _run_module("experiments.benchmarks.mcmc", "--quick")
    assert {r["bench"] for r in records} >= {"matmul", "rbm_gibbs", "rbm_pcd_epoch", "mala",
                                            "rbm_ess"}
    for r in records:
        assert all(math.isfinite(v) and v >= 0 for v in r.values() if isinstance(v, float)), r
    # block Gibbs, Gibbs-with-gradients and PT on the same RBM, measured the same way
    ess = {r["sampler"]: r for r in records if r["bench"] == "rbm_ess"}
    assert list(ess) == ["block_gibbs", "gibbs_with_gradients", "parallel_tempering"]
    for r in ess.values():
        for key in ("chain_steps_per_s", "ess", "ess_per_s", "ess_per_energy_eval",
                    "mean_visible_ess", "mean_visible_ess_per_s", "evals_per_step"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
        assert r["chains"] == 100 and r["shape"] == "784x500"
    assert ess["block_gibbs"]["ess_per_s_over_block_gibbs"] == 1.0
    assert 0 < ess["gibbs_with_gradients"]["acceptance_rate"] <= 1
    pt = ess["parallel_tempering"]
    assert len(pt["swap_acceptance"]) == pt["num_rungs"] - 1
    assert all(0 <= a <= 1 for a in pt["swap_acceptance"])


def test_flows_benchmark_quick():
    records = _run_module("experiments.benchmarks.flows", "--quick")
    assert len(records) == 3
    maf = next(r for r in records if r["model"].startswith("maf"))
    records = [r for r in records if r is not maf]
    for lib in ("jaxgen", "flowjax"):
        if maf[lib].get("installed", True):
            for what in ("log_prob", "sample"):
                assert math.isfinite(maf[lib][what]["points_per_s"]), maf
                assert maf[lib][what]["points_per_s"] > 0, maf
    for r in records:
        for key in ("train_steps_per_s", "log_prob_points_per_s", "sample_points_per_s",
                    "train_gflops_per_s", "matmul_float32_gflops_per_s", "max_rss_bytes"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
