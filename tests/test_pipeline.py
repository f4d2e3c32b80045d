"""The whole class of "a model trains differently through the CLI" bugs, guarded for every
registered model: through `experiments.run.run_experiment` (what ``experiments.main``
calls), tiny sizes, a few steps, every trainable parameter moves, every training-mode
statistic moves (BatchNorm running averages, EMA, persistent chains, replay buffers,
scheduled-sampling counters), evaluation runs in eval mode on the trained state, and the
results record is complete."""
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import registry
from experiments.build import build_experiment
from experiments.configs import common
from experiments.evaluate import evaluate_run
from experiments.load import load_run
from experiments.report import RESULT_KEYS
from experiments.run import run_experiment
from jaxgen.training.loop import _model_view
from jaxgen.training.state import merge_model, split_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Per model: tiny fields (and the data it needs); every registered model must appear.
TINY = {
    "factorized_categorical": {},
    "factorized_bernoulli": {},
    "diagonal_gaussian": {},
    "made": dict(hidden_sizes=(16,), num_masks=2, dropout=0.1),
    "nade": dict(hidden_size=8),
    "lstm": dict(hidden_size=8, scheduled_sampling="linear", scheduled_sampling_c=0.1),
    "pixelcnn": dict(hidden_channels=4, num_layers=2, first_kernel_size=3),
    "gated_pixelcnn": dict(hidden_channels=4, num_layers=2, kernel_size=3),
    "rowlstm": dict(hidden_channels=4, num_layers=1, first_kernel_size=3),
    "diagonal_bilstm": dict(hidden_channels=4, num_layers=1, first_kernel_size=3),
    "transformer": dict(d_model=8, num_heads=2, num_layers=1),
    "rbm": dict(num_hidden=4, num_chains=8, sample_steps=5),
    "fvbm": dict(num_chains=8, sample_sweeps=2, ais_num_temps=20, ais_num_runs=4),
    "ebm_mlp": dict(hidden_sizes=(8,), langevin_steps=2, buffer_size=64, sample_steps=2,
                    grid_size=32),
    "ebm_conv": dict(channels=(4, 4), langevin_steps=2, buffer_size=64, sample_steps=2,
                     ais_num_temps=10, ais_num_runs=4),
    "nice": dict(num_couplings=2, hidden_features=8, num_hidden_layers=1),
    "realnvp": dict(architecture="multiscale", num_scales=2, hidden_channels=4, num_blocks=1),
    "realnvp_batchnorm": dict(architecture="multiscale", num_scales=2, hidden_channels=4,
                              num_blocks=1, normalization="batchnorm"),
    "glow": dict(num_scales=2, num_steps=2, hidden_channels=4),
    "maf": dict(num_layers=1, hidden_features=8, num_hidden_layers=1),
}


def _config(case: str):
    name = case.removesuffix("_batchnorm")
    kind = registry.get_spec(name).data_kind
    if name == "ebm_mlp":  # the 2D path (grid log Z)
        data = common.data_config("toy2d", num_train=256, num_valid=64, num_test=64)
    elif kind == "continuous":
        data = common.data_config("digits", dequantize="uniform")
    else:
        data = common.data_config("digits", binarize=kind == "binary")
    return common.get_config(
        data=data, model=common.model_config(name, **TINY[case]), seed=1,
        train=dict(num_steps=4, batch_size=32, log_every=2, eval_every=4, ema_decay=0.5,
                   progress=False),
        sampler=dict(num_samples=4, timing_repeats=1),
        eval=dict(batch_size=500, num_plot_samples=4, plot_ncols=4))


def test_every_registered_model_is_covered():
    assert set(registry.MODELS) == {case.removesuffix("_batchnorm") for case in TINY}


def _changed(a, b) -> bool:
    return not np.array_equal(np.asarray(a), np.asarray(b))


def _leaves(tree):
    return jax.tree_util.tree_leaves_with_path(tree)


@pytest.mark.parametrize("case", sorted(TINY))
def test_every_model_trains_through_the_cli_path(case, tmp_path):
    config = _config(case)
    exp = build_experiment(config)  # the same config and seed: the run's initial state
    graphdef, params0, model_state0 = split_model(exp.model)
    key = lambda i: jax.random.fold_in(jax.random.key(1), i)
    extra0 = exp.objective.init(exp.model, exp.preprocessing.init_data, key(4))

    final = {}
    results = run_experiment(config, str(tmp_path / case),
                             callback=lambda step, state: final.update(state=state))
    state = final["state"]
    assert int(state.step) == 4

    # Every trainable parameter moved, and its EMA too (and differs from the raw value).
    assert jax.tree.structure(params0) == jax.tree.structure(state.params)
    for (path, before), (_, after) in zip(_leaves(params0), _leaves(state.params)):
        assert _changed(before, after), f"{case}: parameter {jax.tree_util.keystr(path)} " \
                                        "did not train"
    for (path, raw), (_, ema) in zip(_leaves(state.params), _leaves(state.ema_params)):
        assert _changed(raw, ema), f"{case}: EMA of {jax.tree_util.keystr(path)} is the raw value"
    # Every training-mode statistic moved: BatchNorm running averages, objective state.
    stats = nnx.state(exp.model, nnx.BatchStat)
    new_stats = nnx.state(merge_model(graphdef, state.params, state.model_state), nnx.BatchStat)
    assert (len(jax.tree.leaves(stats)) > 0) == case.endswith("_batchnorm")
    for (path, before), (_, after) in zip(_leaves(stats), _leaves(new_stats)):
        assert _changed(before, after), f"{case}: statistic {jax.tree_util.keystr(path)} is " \
                                        "still at its init (not trained in training mode)"
    for (path, before), (_, after) in zip(_leaves(extra0), _leaves(state.extra)):
        assert _changed(before, after), f"{case}: objective state {jax.tree_util.keystr(path)} " \
                                        "did not move"

    # Evaluation: the trained state (EMA parameters), in eval mode, finalized, gives the
    # reported test NLL (one evaluation: the best-on-valid state is the last one).
    model = merge_model(graphdef, state.ema_params, state.model_state)
    model.eval()
    model, finalized = exp.objective.finalize(
        model, _model_view(exp.dataset, exp.preprocessing, key(6)), key(5))
    for name, value in finalized.items():  # log Z and its error bar; not wall times
        if isinstance(value, float) and not name.endswith("_wall_s"):
            assert results[name] == pytest.approx(value, rel=1e-6), name

    # The run comes back from its workdir as exactly that model, and `experiments.evaluate`
    # on it reproduces the record's test NLL (so the record is the eval-mode, finalized,
    # EMA model's number).
    run = load_run(str(tmp_path / case))
    for (path, a), (_, b) in zip(_leaves(nnx.state(run.model)), _leaves(nnx.state(model))):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6,
                                   err_msg=f"{case}: loaded {jax.tree_util.keystr(path)}")
    assert evaluate_run(run)["nll_nats"] == pytest.approx(results["test_nll_nats"], abs=1e-4)

    # The record is complete and honest.
    missing = [k for k in RESULT_KEYS if k not in results]
    assert not missing, missing
    assert results["objective"] == type(exp.objective).__name__
    for key_name in ("test_nll_nats", "test_bits_per_dim", "valid_nll_nats", "train_wall_s",
                     "sample_time_s"):
        assert math.isfinite(results[key_name]), key_name
    assert results["train_steps"] == 4 and results["config"]["model"]["name"] == \
        case.removesuffix("_batchnorm")
    if registry.get_spec(results["model"]).objective_fn.__name__ in ("contrastive_objective",
                                                                     "langevin_objective"):
        assert {"log_z", "log_z_method"} <= set(results)


def _batchnorms(model):
    from jaxgen.flows.batch_norm import BatchNorm
    return [m for _, m in nnx.iter_graph(model) if isinstance(m, BatchNorm)]


def test_batchnorm_through_the_cli_trains_and_evaluates_with_running_averages(tmp_path):
    """``python -m experiments.main`` with ``--config.model.normalization=batchnorm``:
    the running statistics move, and the reported test NLL is the eval-mode one (running
    averages), not the train-mode one (batch statistics)."""
    workdir = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=REPO, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.main", "--config",
         os.path.join(REPO, "experiments", "configs", "realnvp_vector_digits.py"),
         "--workdir", str(workdir), "--config.model.normalization=batchnorm",
         "--config.train.num_steps=100", "--config.train.eval_every=0",
         "--config.train.log_every=50", "--config.sampler.timing_repeats=1"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    results = json.loads((workdir / "results.json").read_text())
    run = load_run(str(workdir))  # the model results.json describes
    exp, trained = run.experiment, run.model
    means = [np.asarray(v) for v in jax.tree.leaves(nnx.state(trained, nnx.BatchStat))]
    assert len(means) == 2 * 6  # running mean and variance of the 6 couplings' BatchNorms
    init_stats = jax.tree.leaves(nnx.state(exp.model, nnx.BatchStat))
    assert all(_changed(a, b) for a, b in zip(init_stats, means))
    # The same dequantized test batch, eval mode (running averages) vs train mode (batch
    # statistics): the pipeline's number is the eval-mode one.
    y = exp.preprocessing(jax.random.key(0), exp.dataset.test)
    trained.eval()
    eval_nll = -float(jnp.mean(trained.log_prob(y)))
    assert all(bn.use_running_average for bn in _batchnorms(trained))
    trained.train()
    train_mode_nll = -float(jnp.mean(trained.log_prob(y)))
    assert abs(train_mode_nll - eval_nll) > 1e-3, (train_mode_nll, eval_nll)

    # The commands beside experiments.main work from the workdir.
    from experiments import evaluate as evaluate_cli
    from experiments import sample as sample_cli
    assert evaluate_cli.main(["--workdir", str(workdir)]) == 0
    record = json.loads((workdir / "eval-test.json").read_text())
    assert record["nll_nats"] == pytest.approx(results["test_nll_nats"], abs=1e-4)
    assert record["num_examples"] == len(exp.dataset.test)
    assert sample_cli.main(["--workdir", str(workdir), "--num_samples", "16",
                            "--temperature", "0.7", "--seed", "3"]) == 0
    samples = np.load(workdir / "samples-seed3.npz")["samples"]
    assert samples.shape == (16, *exp.dataset.event_shape)
    assert samples.min() >= 0 and samples.max() < exp.dataset.num_levels
    assert (workdir / "samples-seed3.png").exists() and (workdir / "curves.png").exists()
    assert sample_cli.main(["--workdir", str(workdir), "--num_samples", "0"]) == 2
