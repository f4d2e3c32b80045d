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


def test_sampling_benchmark_quick():
    records = _run_module("experiments.benchmarks.sampling", "--quick")
    for r in records:
        assert isinstance(r, dict) and r, r
        timings = [v for k, v in r.items() if k.endswith("_s") and isinstance(v, (int, float))]
        assert timings and all(math.isfinite(t) and t >= 0 for t in timings), r
