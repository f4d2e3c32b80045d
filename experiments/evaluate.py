"""Command line: the NLL of a trained run on a split or on your own data.

``python -m experiments.evaluate --workdir DIR [--split test|valid|train] [--data PATH]
[--which final|best|latest] [--batch_size N] [--iw_samples S] [--out FILE]``

Loads the run (`experiments.load.load_run`), evaluates the mean NLL in the stored data's
units (for dequantized data: the model's NLL on ``(x + u) / K`` plus ``D log K``, an upper
bound on the discrete NLL; with the dequantization key the run's own report used, so
``--split test`` reproduces ``results.json``'s ``test_nll_nats``), prints the record as one
JSON line and writes it to ``DIR/eval-<split>.json`` (or ``--out``). Energy models add their
``log_z``, its error and method, from the run's finalize results.

``--data`` takes an ``.npy`` file or an ``.npz`` file (its ``--split`` array, default
``test``) holding examples of the run's event shape and dtype kind.

``--iw_samples S`` (dequantized runs) adds the importance-weighted estimate
``-log (1/S) sum_s p((x + u_s) / K) K^-D / q(u_s | x)`` (``nll_iw_nats``,
``bits_per_dim_iw``): with the run's learned ``q`` for variational dequantization (``--split
test`` with the run's ``data.iw_samples`` reproduces ``test_nll_iw_nats``), with the uniform
``q`` (``log q = 0``) for a uniformly dequantized run, whose figure is then comparable.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import numpy as np

from experiments.load import WHICH, LoadedRun, RunError, load_run
from experiments.report import _TEST_IW_KEY, _TEST_KEY, _VALID_KEY
from experiments.workdir import write_json
from jaxgen.checks import check_levels
from jaxgen.training import evaluate_nll

SPLITS = ("test", "valid", "train")
_SPLIT_KEYS = {"test": _TEST_KEY, "valid": _VALID_KEY, "train": 16}
_IW_KEYS = {"test": _TEST_IW_KEY, "valid": 19, "train": 20}  # others (a --data file): 21
# Finalize results copied into the record (an energy model's normalizer).
_LOG_Z_KEYS = ("log_z", "log_z_std_err", "log_z_method")


def _read_user_data(path: str, split: str) -> np.ndarray:
    if not os.path.exists(path):
        raise RunError(f"--data {path}: no such file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001  (numpy raises many types for bad files)
        raise RunError(f"--data {path} is not a readable .npy/.npz file "
                       f"({type(err).__name__}: {err})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            if split not in loaded.files:
                raise RunError(f"--data {path} has no array {split!r} (it has "
                               f"{sorted(loaded.files)}); pick one with --split")
            return np.asarray(loaded[split])
    return np.asarray(loaded)


def _check_like(data: np.ndarray, run: LoadedRun, source: str) -> np.ndarray:
    """``data`` as the run's stored data: same event shape, same kind (levels or floats)."""
    event_shape = tuple(run.dataset.event_shape)
    if data.ndim != 1 + len(event_shape) or tuple(data.shape[1:]) != event_shape:
        raise RunError(f"{source}: expected examples of shape [N, "
                       f"{', '.join(map(str, event_shape))}] like the run's data, got "
                       f"{data.shape}")
    if data.shape[0] == 0:
        raise RunError(f"{source} holds no examples")
    levels = run.dataset.num_levels
    if levels is not None:
        if np.issubdtype(data.dtype, np.floating) and np.all(data == np.round(data)):
            data = data.astype(np.int32)
        try:
            check_levels(data, int(levels), source)
        except (TypeError, ValueError) as err:
            raise RunError(f"{err} (the run was trained on {levels}-level data)") from None
    elif not np.issubdtype(data.dtype, np.floating):
        data = data.astype(np.float32)
    return data


def importance_weighted_model(run: LoadedRun, num_samples: int):
    """The run's model as a `VariationallyDequantized` scoring ``S = num_samples`` draws:
    its own (variational), or its density with a new, exactly uniform
    `ConditionalDequantizer` (uniform dequantization).

    Raises:
      RunError: the run is not dequantized, or ``num_samples < 1``.
    """
    from flax import nnx

    from jaxgen.flows.variational_dequantization import (ConditionalDequantizer,
                                                         VariationallyDequantized)

    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise RunError(f"--iw_samples must be an integer >= 1, got {num_samples!r}")
    pre = run.preprocessing
    if pre.dequantize == "variational":
        return run.model.with_num_samples(num_samples)
    if pre.dequantize != "uniform":
        raise RunError(f"--iw_samples needs a dequantized run; {run.settings.model_name!r} has "
                       f"config.data.dequantize={pre.dequantize!r}")
    try:
        uniform_q = ConditionalDequantizer(run.dataset.event_shape, pre.num_levels,
                                           rngs=nnx.Rngs(0))
    except ValueError as err:
        raise RunError(f"--iw_samples: {err}") from None
    return VariationallyDequantized(run.model, uniform_q, pre.num_levels,
                                    num_samples=num_samples)


def evaluate_run(run: LoadedRun, *, split: str = "test", data=None, source: str | None = None,
                 batch_size: int | None = None, iw_samples: int | None = None) -> dict:
    """The NLL record of ``run`` on ``split`` of its dataset, or on ``data`` (an array).

    ``iw_samples = S`` adds the importance-weighted NLL of a dequantized run,
    ``-log (1/S) sum_s P_s`` with ``P_s = p((x + u_s)/K) K^D / q(u_s | x)`` (its learned
    ``q`` for variational dequantization, the uniform ``q`` otherwise; `importance_weighted_model`),
    as ``nll_iw_nats`` / ``bits_per_dim_iw`` next to ``iw_samples``.

    Returns:
      ``{"nll_nats", "bits_per_dim", "num_examples", "nll_units", "split"/"data", "which",
      "step", "model", "dataset", ...log Z keys}``.
    """
    settings = run.settings
    given = data is not None
    if data is None:
        if split not in SPLITS:
            raise RunError(f"split must be one of {SPLITS}, got {split!r}")
        data = np.asarray(getattr(run.dataset, split))
    else:
        data = _check_like(np.asarray(data), run, source or "data")
    num_examples = int(data.shape[0])
    if getattr(run.dataset, "is_conditional", False):
        if given:
            raise RunError("a conditional run's NLL needs labels: evaluate one of its splits "
                           f"{SPLITS}, not a file")
        data = run.dataset.split_data(split)  # Labeled(x, labels): -log p(x | y)
    key = jax.random.fold_in(jax.random.key(settings.seed), _SPLIT_KEYS.get(split, 17))
    pre = run.preprocessing
    nll = evaluate_nll(run.model, data, batch_size=batch_size or settings.eval.batch_size,
                       preprocessing=pre, key=key)
    record = {
        "model": settings.model_name, "dataset": run.dataset.name, "which": run.which,
        "step": run.step, "num_examples": num_examples,
        "nll_nats": nll + pre.nll_offset_nats, "bits_per_dim": pre.bits_per_dim(nll),
        "nll_units": pre.nll_units,
    }
    if iw_samples is not None:
        iw_model = importance_weighted_model(run, iw_samples)
        nll_iw = evaluate_nll(
            iw_model, data, batch_size=max(1, (batch_size or settings.eval.batch_size)
                                           // iw_samples),
            key=jax.random.fold_in(jax.random.key(settings.seed), _IW_KEYS.get(split, 21)))
        record.update(nll_iw_nats=nll_iw, bits_per_dim_iw=nll_iw / (pre.num_dims * np.log(2.0)),
                      iw_samples=iw_samples)
    record.update({"data": source} if source else {"split": split})
    for name in _LOG_Z_KEYS:
        if run.results and name in run.results:
            record[name] = run.results[name]
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.evaluate",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="the run's directory")
    parser.add_argument("--split", default="test", help=f"one of {SPLITS} (or the array of "
                        "an --data .npz); default test")
    parser.add_argument("--data", default=None, help="an .npy/.npz file of examples "
                        "(a leading 'npz:' is accepted)")
    parser.add_argument("--which", default="final", choices=WHICH)
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--iw_samples", type=int, default=None,
                        help="dequantized runs: add the importance-weighted NLL with S draws")
    parser.add_argument("--out", default=None, help="JSON record path "
                        "(default DIR/eval-<split>.json)")
    args = parser.parse_args(argv)
    try:
        run = load_run(args.workdir, args.which)
        if args.data is None:
            record = evaluate_run(run, split=args.split, batch_size=args.batch_size,
                                  iw_samples=args.iw_samples)
            name = args.split
        else:
            path = args.data.removeprefix("npz:")
            record = evaluate_run(run, data=_read_user_data(path, args.split), source=path,
                                  batch_size=args.batch_size, iw_samples=args.iw_samples)
            name = os.path.splitext(os.path.basename(path))[0]
    except (RunError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = args.out or os.path.join(args.workdir, f"eval-{name}.json")
    write_json(out, record)
    print(json.dumps(record, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
