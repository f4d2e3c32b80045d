"""A run's life after training: configs round-trip through JSON, a run comes back from its
workdir (`experiments.load.load_run`), `experiments.evaluate` / `experiments.sample` work
from it, and an interrupted command resumes to the uninterrupted result."""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from experiments import schema
from experiments.config_io import load_config
from experiments.workdir import write_json

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = sorted(os.path.basename(p)[:-3] for p in glob.glob(
    os.path.join(REPO, "experiments", "configs", "*.py"))
    if not os.path.basename(p).startswith(("_", "common", "from_json")))


def test_there_are_shipped_configs():
    assert len(CONFIGS) > 30 and "made_digits" in CONFIGS


@pytest.mark.parametrize("name", CONFIGS)
def test_every_config_round_trips_through_json(name, tmp_path):
    """config -> config.json (what a run writes) -> from_json.py -> the same validated run."""
    settings = schema.validate(load_config(name))
    path = str(tmp_path / "config.json")
    write_json(path, settings.config)
    again = schema.validate(load_config(
        os.path.join(REPO, "experiments", "configs", "from_json.py") + ":" + path))
    assert again.config == settings.config
    assert again == settings
    # results.json embeds the config under "config": the same run from it.
    write_json(str(tmp_path / "results.json"), {"config": settings.config, "environment": {}, "test_nll_nats": 1.0})
    assert schema.validate(load_config(str(tmp_path / "results.json"))) == settings


def _cli(config_name: str, workdir: str, overrides: dict) -> list[str]:
    return [sys.executable, "-m", "experiments.main", "--config",
            os.path.join(REPO, "experiments", "configs", f"{config_name}.py"),
            "--workdir", workdir, *[f"--config.{k}={v}" for k, v in overrides.items()]]


def _env():
    return dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")


def _logged_steps(workdir: str) -> int:
    try:
        with open(os.path.join(workdir, "metrics.jsonl")) as f:
            return sum(1 for line in f if line.strip())
    except FileNotFoundError:
        return 0


# A flow and an autoregressive model, small enough to train in seconds but long enough to
# be interrupted mid-run (the signal goes out once the first metrics are logged).
INTERRUPTED = {
    "realnvp_vector_digits": dict(
        **{"model.num_couplings": 2, "model.hidden_features": 16, "train.num_steps": 300,
           "train.log_every": 50, "train.eval_every": 300, "train.patience": 0}),
    "made_digits": dict(
        **{"model.hidden_sizes": "(32,)", "train.num_steps": 300, "train.log_every": 50,
           "train.eval_every": 300}),
}


@pytest.mark.parametrize("config_name, signum", [("realnvp_vector_digits", signal.SIGINT),
                                                 ("made_digits", signal.SIGTERM)])
def test_interrupted_command_resumes_to_the_uninterrupted_result(config_name, signum,
                                                                 tmp_path):
    from experiments.load import load_run
    from flax import nnx
    import jax
    overrides = dict(INTERRUPTED[config_name], **{"sampler.timing_repeats": 1})
    workdir, reference = str(tmp_path / "run"), str(tmp_path / "reference")
    proc = subprocess.Popen(_cli(config_name, workdir, overrides), cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while _logged_steps(workdir) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + signum, stderr[-3000:]
    name = signal.Signals(signum).name
    assert f"training interrupted by {name} at step" in stderr and "again to resume" in stderr
    assert "Traceback" not in stderr and "Fatal Python error" not in stderr, stderr[-3000:]
    assert not os.path.exists(os.path.join(workdir, "results.json"))

    again = subprocess.run(_cli(config_name, workdir, overrides), cwd=REPO, env=_env(),
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    ref = subprocess.run(_cli(config_name, reference, overrides), cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    a, b = load_run(workdir).model, load_run(reference).model
    for x, y in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b))):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    results = [json.load(open(os.path.join(d, "results.json"))) for d in (workdir, reference)]
    assert results[0]["test_nll_nats"] == results[1]["test_nll_nats"]


def _user_npz(path, num_levels: int, dtype, shape=(4, 4, 1), seed: int = 0):
    rng = np.random.RandomState(seed)
    draw = lambda n: rng.randint(0, num_levels, (n, *shape)).astype(dtype)
    np.savez(path, train=draw(256), valid=draw(64), test=draw(64))


# (config, the npz's levels and dtype, extra overrides, the level count the run must use)
OWN_DATA = [
    ("realnvp_vector_digits", 4, np.uint8, {"data.num_levels": 4,
                                            "model.num_couplings": 2,
                                            "model.hidden_features": 8}, 4),
    ("made_digits", 5, np.int32, {"model.hidden_sizes": "(16,)"}, 5),
    ("rbm_digits", 2, np.bool_, {"model.num_hidden": 8}, 2),
]


@pytest.mark.parametrize("config_name, levels, dtype, extra, expected", OWN_DATA,
                         ids=[c[0] for c in OWN_DATA])
def test_shipped_config_on_a_user_npz_from_the_command_line(config_name, levels, dtype, extra,
                                                            expected, tmp_path):
    """``--config.data.name=npz --config.data.path=FILE`` on a shipped config: the data
    section becomes the npz source's; levels are inferred (bool: 2, int: max + 1) or given
    (``num_levels=4`` for uint8 data, which alone would be read as 256 levels); the
    results' bits/dim use that count."""
    path = str(tmp_path / "mine.npz")
    _user_npz(path, levels, dtype)
    workdir = str(tmp_path / "run")
    overrides = {"data.name": "npz", "data.path": path, "train.num_steps": 100,
                 "train.log_every": 50, "train.eval_every": 100, "train.steps_per_call": 1,
                 "sampler.timing_repeats": 1, "sampler.num_samples": 4,
                 "eval.num_plot_samples": 4, **extra}
    proc = subprocess.run(_cli(config_name, workdir, overrides), cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.load(open(os.path.join(workdir, "results.json")))
    assert results["num_levels"] == expected and results["dataset"] == "mine"
    assert results["config"]["data"]["name"] == "npz"
    assert results["config"]["data"]["path"] == path
    assert np.isfinite(results["test_bits_per_dim"])


def test_uint8_with_few_levels_warns(tmp_path):
    from jaxgen.data.npz import load_npz
    path = str(tmp_path / "four.npz")
    _user_npz(path, 4, np.uint8)
    with pytest.warns(UserWarning, match=r"inferred 256 levels from dtype uint8, but the values "
                                         r"use only 4 distinct level\(s\) up to 3; .*"
                                         r"num_levels=4"):
        data = load_npz(path)
    assert data.num_levels == 256
    assert load_npz(path, num_levels=4).num_levels == 4


def test_list_prints_every_config_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "experiments.main", "--list"], cwd=REPO,
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()[1:]
    assert [line.split()[0] for line in lines] == CONFIGS
    assert all(len(line.split()) > 2 for line in lines)  # a description on each


def test_configs_do_not_share_placeholder_defaults():
    from experiments.configs import common
    a, b = common.data_config("npz"), common.data_config("npz")
    a.num_levels = 4
    assert b.num_levels is None and common.data_config("npz").num_levels is None


def test_a_run_started_before_a_field_existed_resumes_and_keeps_its_record(tmp_path,
                                                                           monkeypatch):
    """A field added to a model after a run started (here ``model.centering``, simulated by
    a registry without it) does not strand the run: at its default it resumes from the
    checkpoints to the result of one straight run, its ``config.json`` keeps the record it
    had, and a non-default value of the new field is still refused."""
    from experiments import registry
    from experiments.run import run_experiment
    from experiments.workdir import WorkdirError

    def config(num_steps, **model):
        c = load_config("rbm_digits")
        # evaluated at the same steps (best-on-valid is chosen among them) either way
        c.train.update(num_steps=num_steps, steps_per_call=50, checkpoint_every=50,
                       eval_every=50)
        c.optim.schedule = "constant"  # the schedule would depend on num_steps
        c.sampler.num_samples = 4
        c.model.update(sample_steps=5, persist_hidden=True, **model)
        return c

    spec = registry.MODELS["rbm"]
    older = spec._replace(defaults={k: v for k, v in spec.defaults.items() if k != "centering"})
    monkeypatch.setitem(registry.MODELS, "rbm", older)
    run_experiment(config(100), str(tmp_path / "old"))
    stored = json.load(open(tmp_path / "old" / "config.json"))
    assert "centering" not in stored["model"]
    monkeypatch.setitem(registry.MODELS, "rbm", spec)  # the field exists now

    with pytest.raises(WorkdirError, match="config.model.centering"):
        run_experiment(config(200, centering=True), str(tmp_path / "old"))
    resumed = run_experiment(config(200), str(tmp_path / "old"))
    straight = run_experiment(config(200), str(tmp_path / "new"))
    assert resumed["train_steps"] == straight["train_steps"] == 200
    assert resumed["best_step"] == straight["best_step"]
    assert resumed["test_nll_nats"] == straight["test_nll_nats"]
    record = json.load(open(tmp_path / "old" / "config.json"))
    assert "centering" not in record["model"] and record["train"]["num_steps"] == 200
    from experiments.load import load_run  # and it loads back, with the field's default
    loaded = load_run(str(tmp_path / "old"), "latest")
    assert loaded.step == 200 and loaded.settings.model.centering is False
