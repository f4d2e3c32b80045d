"""A trained run back from its workdir: ``load_run(workdir)``.

A workdir written by `experiments.run.run_experiment` holds ``config.json``, the training
loop's ``checkpoints/`` and, once the run finished, ``final_model/`` (the whole ``nnx.State``
of the model that ``results.json`` describes: best-on-valid parameters after the objective's
``finalize``, so an energy model carries its log Z) and ``results.json``. ``load_run``
rebuilds the experiment from ``config.json`` (the data, the preprocessing, a fresh model of
the same shapes) and restores one of:

* ``which="final"`` (default): the finalized model of a finished run;
* ``which="best"``: the best-on-valid parameters of the newest checkpoint (a run still
  going, or interrupted); not finalized unless ``finalize=True`` (an energy model's
  ``log_prob`` is unnormalized until then);
* ``which="latest"``: the newest checkpoint's current parameters (their EMA when the run
  keeps one), likewise.

Example::

    run = load_run("runs/demo/made_digits")
    x = run.model.sample(jax.random.key(0), 16)            # in the model's units
    levels = run.preprocessing.to_data(x)                    # in the data's units
    nll = evaluate_nll(run.model, run.dataset.test, preprocessing=run.preprocessing)
"""
from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
from flax import nnx

from experiments import schema
from experiments.build import Experiment, build_experiment
from jaxgen.data import Dataset
from jaxgen.data.preprocessing import Preprocessing
from jaxgen.training.checkpoint import Checkpointer, restore_tree
from jaxgen.training.loop import FINAL_MODEL_DIR, _model_view, initial_state
from jaxgen.training.state import merge_model, split_model

WHICH = ("final", "best", "latest")
# fold_in indices used when load_run finalizes a checkpoint itself (not the loop's).
_VIEW_KEY, _FINALIZE_KEY = 21, 22


class RunError(ValueError):
    """A workdir that does not hold a loadable run; the message names the file and the fix."""


@dataclasses.dataclass
class LoadedRun:
    """A run brought back from its workdir.

    Attributes:
      model: the model, in eval mode, ready for ``log_prob`` and ``sample``.
      settings: the run's validated config (`experiments.schema.RunSettings`).
      dataset: its data as stored (discrete levels stay integers).
      preprocessing: what the model sees of the data (`Preprocessing`: dequantization,
        ``nll_offset_nats``, ``to_data`` for samples).
      results: ``results.json`` (None while the run has not finished).
      which: ``"final"``, ``"best"`` or ``"latest"``.
      step: the training step the parameters come from.
      workdir: where it was loaded from.
      experiment: the `Experiment` rebuilt from the config (its objective, ...).
    """

    model: nnx.Module
    settings: schema.RunSettings
    dataset: Dataset
    preprocessing: Preprocessing
    results: dict | None
    which: str
    step: int
    workdir: str
    experiment: Experiment

    @property
    def config(self) -> dict:
        """The run's full config as stored in ``config.json``."""
        return self.settings.config


def _read_json(path: str, what: str) -> dict:
    try:
        with open(path) as f:
            record = json.load(f)
    except FileNotFoundError:
        raise RunError(f"{path} not found: {what}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunError(f"{path} is not valid JSON ({err}); the run cannot be rebuilt from it "
                       "(restore the file, or rerun training in a new workdir)") from None
    if not isinstance(record, dict):
        raise RunError(f"{path} holds a {type(record).__name__}, expected a JSON object")
    return record


def read_run_config(workdir: str) -> schema.RunSettings:
    """The validated config of the run in ``workdir`` (its ``config.json``).

    Raises:
      RunError: no such workdir or file, or invalid JSON.
      experiments.schema.ConfigError: the stored config no longer validates.
    """
    if not os.path.isdir(workdir):
        raise RunError(f"workdir {workdir} does not exist")
    config = _read_json(os.path.join(workdir, "config.json"),
                        f"{workdir} is not a run's workdir (experiments.main writes "
                        "config.json there before training)")
    return schema.validate(config)


def _restore_checkpoint(exp: Experiment, workdir: str, which: str):
    """Parameters ``(params, model_state, step)`` from the newest readable checkpoint."""
    _, _, state, best = initial_state(  # a template only: the values are restored
        exp.model, exp.settings.train, exp.objective, exp.preprocessing.init_data,
        exp.dataset.train.shape[0], jax.random.key(0))
    directory = os.path.join(workdir, "checkpoints")
    if not os.path.isdir(directory):
        raise RunError(f"{directory} does not exist: the run in {workdir} has not written a "
                       "checkpoint yet")
    ckpt = Checkpointer(directory, max_to_keep=10**6)
    try:
        restored = ckpt.restore_newest(state, best)
    finally:
        ckpt.close()
    if restored is None:
        raise RunError(f"{directory} holds no checkpoint yet")
    state, best = restored.state, restored.best
    if which == "best":
        return best["params"], best["model_state"], int(restored.step)
    params = state.ema_params if state.ema_params is not None else state.params
    return params, state.model_state, int(restored.step)


def load_run(workdir: str, which: str = "final", *, finalize: bool = False) -> LoadedRun:
    """The model of the run in ``workdir`` with its config, preprocessing and results.

    Args:
      workdir: a run's directory (written by ``python -m experiments.main``).
      which: ``"final"`` (the finished run's finalized model, what ``results.json``
        describes), ``"best"`` or ``"latest"`` (from the newest readable checkpoint).
      finalize: for ``best``/``latest``: run the objective's ``finalize`` (e.g. compute an
        energy model's log Z, which may take a while); ``final`` is finalized already.

    Raises:
      RunError: no workdir / ``config.json``, ``which`` unknown, the run has not finished
        (``final``) or holds no checkpoint.
      jaxgen.training.checkpoint.CheckpointError: the saved model or checkpoints do not
        read back (the message names the directory).
    """
    if which not in WHICH:
        raise RunError(f"which must be one of {WHICH}, got {which!r}")
    settings = read_run_config(workdir)
    results_path = os.path.join(workdir, "results.json")
    results = (_read_json(results_path, "") if os.path.exists(results_path) else None)
    exp = build_experiment(settings)
    graphdef, template = nnx.split(exp.model)
    if which == "final":
        path = os.path.join(workdir, FINAL_MODEL_DIR)
        if not os.path.isdir(path):
            raise RunError(f"{path} does not exist: the run has not finished; use "
                           "which='latest' or 'best' for its newest checkpoint, or finish it "
                           "by rerunning the training command")
        state = restore_tree(path, template)
        model = nnx.merge(graphdef, state)
        step = int(results["train_steps"]) if results else -1
    else:
        params, model_state, step = _restore_checkpoint(exp, workdir, which)
        graphdef, _, _ = split_model(exp.model)
        model = merge_model(graphdef, jax.tree.map(jnp.asarray, params),
                            jax.tree.map(jnp.asarray, model_state))
        if finalize:
            model.eval()
            base = jax.random.key(settings.seed)
            view = _model_view(exp.dataset, exp.preprocessing, jax.random.fold_in(base, _VIEW_KEY))
            model, _ = exp.objective.finalize(model, view, jax.random.fold_in(base, _FINALIZE_KEY))
    model.eval()
    return LoadedRun(model=model, settings=settings, dataset=exp.dataset,
                     preprocessing=exp.preprocessing, results=results, which=which, step=step,
                     workdir=workdir, experiment=exp)


__all__ = ["LoadedRun", "RunError", "WHICH", "load_run", "read_run_config"]
