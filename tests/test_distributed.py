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
# A flow and a PixelCNN on digits, tiny: the global batch (64) splits into 32 per device.
COMMON = {"train.num_steps": 20, "train.batch_size": 64, "train.log_every": 10,
          "train.eval_every": 20, "sampler.timing_repeats": 1, "sampler.num_samples": 4,
          "eval.num_plot_samples": 4}
CASES = {
    "realnvp_vector_digits": {"model.num_couplings": 2, "model.hidden_features": 16,
                              "train.steps_per_call": 10, "train.patience": 0},
    "pixelcnn_digits": {"model.hidden_channels": 8, "model.num_layers": 2,
                        "train.steps_per_call": 1},
}


def _main_args(config_name, workdir, overrides):
    return ["--config", os.path.join(REPO, "experiments", "configs", f"{config_name}.py"),
            "--workdir", workdir, *[f"--config.{k}={v}" for k, v in overrides.items()]]


def _env(devices: int = 1):
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
             if not f.startswith("--xla_force_host_platform_device_count")]
    flags.append(f"--xla_force_host_platform_device_count={devices}")
    return dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(flags))


def _launch(args):
    return [sys.executable, "-m", "experiments.launch", "--num_processes=2", "--", *args]


def _params(workdir):
    from experiments.load import load_run
    import jax
    from flax import nnx
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(load_run(workdir).model))]


def _results(workdir):
    with open(os.path.join(workdir, "results.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("config_name", sorted(CASES))
def test_two_processes_and_two_devices_train_to_the_one_device_result(config_name, tmp_path):
    """2 processes x 1 device (jax.distributed, gloo) and 1 process x 2 devices take the
    steps 1 process x 1 device takes: the gradients are all-reduced over the two halves of
    each global batch, which is the same batch (drawn from the step's key) in every layout."""
    overrides = dict(COMMON, **CASES[config_name])
    runs = {name: str(tmp_path / name) for name in ("two_processes", "two_devices", "one")}
    commands = {
        "two_processes": (_launch(_main_args(config_name, runs["two_processes"], overrides)),
                          _env(1)),
        "two_devices": ([sys.executable, "-m", "experiments.main",
                         *_main_args(config_name, runs["two_devices"], overrides)], _env(2)),
        "one": ([sys.executable, "-m", "experiments.main",
                 *_main_args(config_name, runs["one"], overrides)], _env(1)),
    }
    for name, (command, env) in commands.items():
        proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, (name, proc.stderr[-4000:])
    results = {name: _results(workdir) for name, workdir in runs.items()}
    layout = {name: (r["environment"]["process_count"], r["environment"]["device_count"])
              for name, r in results.items()}
    assert layout == {"two_processes": (2, 2), "two_devices": (1, 2), "one": (1, 1)}
    reference = _params(runs["one"])
    for name in ("two_processes", "two_devices"):
        assert results[name]["train_steps"] == 20
        assert results[name]["test_nll_nats"] == pytest.approx(
            results["one"]["test_nll_nats"], rel=1e-5, abs=1e-5), name
        for x, y in zip(_params(runs[name]), reference):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=name)
    # only process 0 wrote the log: each record once
    with open(os.path.join(runs["two_processes"], "metrics.jsonl")) as f:
        keys = [(r["step"], r["split"]) for r in map(json.loads, f)]
    assert len(keys) == len(set(keys)) and (20, "valid") in keys


def _checkpointed_steps(workdir):
    try:
        return [int(name) for name in os.listdir(os.path.join(workdir, "checkpoints"))
                if name.isdigit()]
    except FileNotFoundError:
        return []


def test_two_process_run_killed_with_sigkill_resumes_bit_identically(tmp_path):
    """Both processes (and the launcher) get SIGKILL once a checkpoint is on disk, as a
    scheduler's preemption does; launched again, the run resumes from the newest complete
    checkpoint and ends with the parameters of an uninterrupted 2-process run, bit for bit."""
    overrides = {"model.hidden_sizes": "(32,)", "train.num_steps": 120, "train.batch_size": 64,
                 "train.steps_per_call": 10, "train.log_every": 60, "train.eval_every": 120,
                 "train.checkpoint_every": 30, "sampler.timing_repeats": 1,
                 "sampler.num_samples": 4, "eval.num_plot_samples": 4}
    killed, straight = str(tmp_path / "killed"), str(tmp_path / "straight")
    command = _launch(_main_args("made_digits", killed, overrides))
    proc = subprocess.Popen(command, cwd=REPO, env=_env(1), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not _checkpointed_steps(killed) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher's group: it and both processes
    proc.communicate(timeout=60)
    assert not os.path.exists(os.path.join(killed, "results.json"))
    assert max(_checkpointed_steps(killed)) < 120

    for workdir in (killed, straight):
        again = subprocess.run(_launch(_main_args("made_digits", workdir, overrides)), cwd=REPO,
                               env=_env(1), capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-4000:]
    for x, y in zip(_params(killed), _params(straight)):
        np.testing.assert_array_equal(x, y)
    assert _results(killed)["test_nll_nats"] == _results(straight)["test_nll_nats"]
    assert _results(killed)["environment"]["process_count"] == 2


def test_launcher_forwards_a_failure_and_stops_the_others(tmp_path):
    """Process 1 fails at once (a bad override reaches every process alike here, so use a
    module that fails only on process 1); the launcher returns its code and ends process 0,
    which would otherwise wait for its peer."""
    script = tmp_path / "failing.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['JAX_PROCESS_ID'] == '1':\n    sys.exit(3)\n"
                      "time.sleep(600)\n")
    t0 = time.time()
    env = dict(_env(1), PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}")
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
