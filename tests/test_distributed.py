"""Multi-process training for real: two ``jax.distributed`` processes on 127.0.0.1 (gloo
collectives on CPU), started by ``experiments.launch``, train to what one process trains."""
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import launch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A tiny MADE on digits: the global batch (64) splits into 32 per process.
OVERRIDES = {"model.hidden_sizes": "(32,)", "train.num_steps": 200, "train.batch_size": 64,
             "train.log_every": 50, "train.eval_every": 100, "train.steps_per_call": 50,
             "sampler.timing_repeats": 1, "sampler.num_samples": 4,
             "eval.num_plot_samples": 4}


def _main_args(workdir, **extra):
    overrides = dict(OVERRIDES, **extra)
    return ["--config", os.path.join(REPO, "experiments", "configs", "made_digits.py"),
            "--workdir", workdir, *[f"--config.{k}={v}" for k, v in overrides.items()]]


def _env():
    return dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")


def test_two_processes_train_to_the_single_process_result(tmp_path):
    from experiments.load import load_run
    import jax
    from flax import nnx
    two, one = str(tmp_path / "two"), str(tmp_path / "one")
    proc = subprocess.run([sys.executable, "-m", "experiments.launch", "--num_processes=2",
                           "--", *_main_args(two)], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ref = subprocess.run([sys.executable, "-m", "experiments.main", *_main_args(one)],
                         cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    results = [json.load(open(os.path.join(d, "results.json"))) for d in (two, one)]
    assert results[0]["environment"]["process_count"] == 2
    assert results[0]["environment"]["device_count"] == 2
    assert results[1]["environment"]["process_count"] == 1
    for key in ("test_nll_nats", "valid_nll_nats"):
        assert results[0][key] == pytest.approx(results[1][key], rel=1e-5), key
    assert results[0]["train_steps"] == results[1]["train_steps"] == 200
    # the same parameters (gradients all-reduced over the two halves of each batch)
    a, b = load_run(two).model, load_run(one).model
    for x, y in zip(jax.tree.leaves(nnx.state(a, nnx.Param)),
                    jax.tree.leaves(nnx.state(b, nnx.Param))):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-5)
    # only process 0 wrote the log: each record once
    records = [json.loads(line) for line in open(os.path.join(two, "metrics.jsonl"))]
    keys = [(r["step"], r["split"]) for r in records]
    assert len(keys) == len(set(keys)) and (200, "valid") in keys


def test_launcher_forwards_a_failure_and_stops_the_others(tmp_path):
    """Process 1 fails at once (a bad override reaches every process alike here, so use a
    module that fails only on process 1); the launcher returns its code and ends process 0,
    which would otherwise wait for its peer."""
    script = tmp_path / "failing.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['JAX_PROCESS_ID'] == '1':\n    sys.exit(3)\n"
                      "time.sleep(600)\n")
    t0 = time.time()
    env = dict(_env(), PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
    proc = subprocess.run([sys.executable, "-m", "experiments.launch", "--num_processes=2",
                           "--module=failing", "--grace_s=5", "--", "x"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "exit codes of the 2 processes: [" in proc.stderr
    assert time.time() - t0 < 60


def test_launcher_environment_and_bad_arguments():
    env = launch.process_env({"XLA_FLAGS": "--xla_force_host_platform_device_count=8 --foo"},
                             port=1234, num_processes=3, process_id=2, devices_per_process=2)
    assert env["JAX_COORDINATOR_ADDRESS"] == "127.0.0.1:1234"
    assert env["JAX_NUM_PROCESSES"] == "3" and env["JAX_PROCESS_ID"] == "2"
    assert env["XLA_FLAGS"] == "--foo --xla_force_host_platform_device_count=2"
    assert 0 < launch.free_port() < 65536
    with pytest.raises(ValueError, match="num_processes must be >= 1"):
        launch.launch(["x"], num_processes=0)
    with pytest.raises(SystemExit):
        launch.main(["--num_processes=2"])  # nothing after '--'


def test_bad_process_layout_is_refused():
    from jaxgen.training.sharding import initialize_distributed
    with pytest.raises(ValueError, match=r"process_id=2 is not in \[0, num_processes=2\)"):
        initialize_distributed("127.0.0.1:1", 2, 2)
    assert initialize_distributed(None, 1, 0) is False  # one process: nothing to join
