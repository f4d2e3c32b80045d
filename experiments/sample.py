"""Command line: samples from a trained run, temperature grids and latent interpolations.

``python -m experiments.sample --workdir DIR [--num_samples N] [--temperature T] [--seed S]
[--which final|best|latest] [--out PREFIX] [--temperature_grid T1,T2,... | --interpolate N
[--num_pairs P] [--spherical]]``

Loads the run (`experiments.load.load_run`), draws ``N`` samples with ``jax.random.key(S)``
and writes ``PREFIX.npz`` (``samples``: in the stored data's units, levels for discrete or
dequantized data) and ``PREFIX.png`` (an image grid, or a scatter plot over the test data for
2D points; no figure for other shapes). ``PREFIX`` defaults to ``DIR/samples-seed<S>``.

``--temperature T`` (finite, > 0) is each family's sampling temperature: a flow scales its
base draws (``x = f(T z)``, ``T < 1``: towards the mode), an autoregressive model draws every
conditional at softmax temperature ``T`` (``p(k)^{1/T}`` renormalized per step), an
energy-based model samples ``exp(-E(x) / T)`` (an RBM: its joint energy ``E(v, h)``). The
baselines have no temperature and refuse any value but 1.

``--temperature_grid 0.5,0.7,1.0`` writes one row of ``N`` samples per temperature, every
row from the same key (``PREFIX`` default ``DIR/temperatures-seed<S>``; npz ``samples
[len(T), N, *event]`` and ``temperatures``).

``--interpolate N`` (flows only) encodes test examples ``2i`` and ``2i + 1`` (``i < P``,
``--num_pairs``; dequantized with key ``S``), interpolates their latents in ``N`` steps
(linear, or ``--spherical``: slerp, which keeps the norm a Gaussian latent concentrates on)
and decodes; one row per pair (``PREFIX`` default ``DIR/interpolation-seed<S>``; npz
``samples [P, N, *event]``, ``t [N]``, ``pairs [P, 2]`` test indices).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from experiments.load import WHICH, RunError, load_run
from experiments.report import jit_sampler
from jaxgen import viz
from jaxgen.checks import check_count, check_positive


def _sample_kwargs(model, temperature: float) -> dict:
    """``{"temperature": T}`` for models whose ``sample`` takes one (``{}`` at ``T = 1``).

    Raises:
      RunError: ``T != 1`` and the model's ``sample`` has no temperature (the baselines).
    """
    temperature = check_positive("temperature", temperature)
    if temperature == 1.0:
        return {}
    if "temperature" not in inspect.signature(model.sample).parameters:
        raise RunError(f"{type(model).__name__} has no sampling temperature (flows, "
                       f"autoregressive and energy-based models do; the baselines do not); "
                       f"drop --temperature={temperature}")
    return {"temperature": temperature}


def draw(run, num_samples: int, seed: int = 0, temperature: float = 1.0) -> np.ndarray:
    """``num_samples`` samples of ``run.model`` in the data's units (jit-compiled draw) at
    sampling temperature ``temperature`` (module docstring)."""
    num_samples = check_count("num_samples", num_samples)
    kwargs = _sample_kwargs(run.model, temperature)
    samples = jit_sampler(run.model, num_samples, **kwargs)(jax.random.key(int(seed)))
    return run.preprocessing.to_data(samples)


def parse_temperatures(text: str) -> tuple[float, ...]:
    """``"0.5,0.7,1"`` -> ``(0.5, 0.7, 1.0)``, each finite and > 0.

    Raises:
      ValueError: naming the entry that is not a finite number > 0, or an empty list.
    """
    entries = [t.strip() for t in str(text).split(",") if t.strip()]
    if not entries:
        raise ValueError(f"--temperature_grid needs a comma-separated list of temperatures, "
                         f"got {text!r}")
    return tuple(check_positive("--temperature_grid entry", t) for t in entries)


def temperature_grid(model, preprocessing, temperatures, num_samples: int,
                     seed: int = 0) -> np.ndarray:
    """Rows of samples at several temperatures, ``[len(temperatures), num_samples, *event]``
    in the data's units. Every row uses ``jax.random.key(seed)``: a flow's rows decode the
    same base draws scaled by ``T``; the row at ``T = 1`` is ``model.sample(key, n)`` itself.

    Raises:
      ValueError: a temperature not finite and > 0; ``num_samples`` not an integer >= 1.
      RunError: a temperature != 1 for a model without one.
    """
    num_samples = check_count("num_samples", num_samples)
    key = jax.random.key(int(seed))
    rows = []
    for t in temperatures:
        kwargs = _sample_kwargs(model, t)
        rows.append(preprocessing.to_data(jit_sampler(model, num_samples, **kwargs)(key)))
    return np.stack(rows)


def interpolation_weights(num_steps: int) -> np.ndarray:
    """``t_i = i / (N - 1)``, ``[N]``, ``N >= 2`` (both endpoints included)."""
    num_steps = check_count("interpolation steps", num_steps, minimum=2)
    return np.linspace(0.0, 1.0, num_steps)


def interpolate_latents(z_a, z_b, t, spherical: bool = False):
    """``[*L]``, ``[*L]``, ``[N]`` -> ``[N, *L]``.

    Linear: ``z_t = (1 - t) z_a + t z_b``. Spherical (slerp, on the flattened latents at
    angle ``omega``): ``z_t = [sin((1 - t) omega) z_a + sin(t omega) z_b] / sin(omega)``,
    the linear path when ``sin(omega)`` is below ``1e-6``.
    """
    z_a, z_b = jnp.asarray(z_a, jnp.float32), jnp.asarray(z_b, jnp.float32)
    t = jnp.asarray(t, jnp.float32).reshape((-1,) + (1,) * z_a.ndim)  # [N, 1, ...]
    linear = (1.0 - t) * z_a + t * z_b
    if not spherical:
        return linear
    cos = jnp.sum(z_a * z_b) / (jnp.linalg.norm(z_a) * jnp.linalg.norm(z_b))
    omega = jnp.arccos(jnp.clip(cos, -1.0, 1.0))
    sin = jnp.sin(omega)
    slerp = (jnp.sin((1.0 - t) * omega) * z_a + jnp.sin(t * omega) * z_b) / jnp.where(
        sin < 1e-6, 1.0, sin)
    return jnp.where(sin < 1e-6, linear, slerp)


def interpolate(model, preprocessing, examples, num_steps: int, *, labels=None,
                seed: int = 0, spherical: bool = False) -> dict:
    """Latent interpolation between pairs of examples of a flow.

    ``examples [2P, *event]`` (stored data's units) are mapped as the model sees them
    (``preprocessing`` with key ``seed``: dequantized for discrete data), encoded, and the
    latents of ``examples[2i]`` and ``examples[2i + 1]`` are interpolated in ``num_steps``
    (`interpolate_latents`) and decoded. A conditional flow (``labels [2P]`` given) encodes
    each endpoint with its own class and decodes step ``t`` with the first endpoint's class
    for ``t < 1/2``, else the second's, so both endpoints come back.

    Returns:
      dict: ``samples [P, N, *event]`` (data's units), ``decoded [P, N, *event]`` (model's
      inputs), ``inputs [2P, *event]`` (the encoded inputs), ``latents [P, N, *latent]``,
      ``t [N]``.

    Raises:
      RunError: the model has no latent space (``encode``/``decode``: flows only).
      ValueError: an odd number of examples; ``num_steps < 2``.
    """
    if not (hasattr(model, "encode") and hasattr(model, "decode")
            and hasattr(model, "latent_shape")):
        raise RunError(f"{type(model).__name__} has no latent space to interpolate in "
                       "(encode/decode: flows only)")
    t = interpolation_weights(num_steps)
    examples = np.asarray(examples)
    if examples.ndim < 1 or len(examples) % 2 or len(examples) == 0:
        raise ValueError(f"interpolate needs pairs of examples [2P, *event], got shape "
                         f"{examples.shape}")
    num_pairs = len(examples) // 2
    inputs = jnp.asarray(preprocessing(jax.random.key(int(seed)), examples), jnp.float32)
    context = None if labels is None else jnp.asarray(labels)
    graphdef, state = nnx.split(model)

    def encode_decode(state, inputs, t, context):
        m = nnx.merge(graphdef, state)
        z = m.encode(inputs, context)  # [2P, *L]
        paths = jax.vmap(lambda za, zb: interpolate_latents(za, zb, t, spherical))(
            z[0::2], z[1::2])  # [P, N, *L]
        flat = paths.reshape((num_pairs * len(t),) + z.shape[1:])
        step_context = None
        if context is not None:
            first = jnp.where(t < 0.5, 0, 1)  # [N]: which endpoint's class
            step_context = context.reshape(num_pairs, 2)[:, first].reshape(-1)
        return paths, m.decode(flat, step_context)

    latents, decoded = jax.jit(encode_decode)(state, inputs, jnp.asarray(t), context)
    decoded = decoded.reshape((num_pairs, len(t)) + decoded.shape[1:])
    samples = preprocessing.to_data(decoded.reshape((-1,) + decoded.shape[2:]))
    return dict(samples=samples.reshape(decoded.shape), decoded=np.asarray(decoded),
                inputs=np.asarray(inputs), latents=np.asarray(latents), t=t)


def write_samples(run, samples: np.ndarray, prefix: str, *, ncols: int | None = None,
                  **arrays) -> dict:
    """``prefix.npz`` (``samples`` and any other ``arrays``) and, for images and 2D points,
    ``prefix.png`` (a grid of ``ncols`` columns; rows of a ``[R, C, *event]`` array are
    grid rows); returns the paths."""
    os.makedirs(os.path.dirname(os.path.abspath(prefix)), exist_ok=True)
    files = {"npz": prefix + ".npz"}
    np.savez(files["npz"], samples=samples, **arrays)
    shape, settings = tuple(run.dataset.event_shape), run.settings
    flat = samples.reshape((-1,) + shape)
    if len(shape) == 3 and shape[-1] in (1, 3):
        files["png"] = prefix + ".png"
        viz.save_image_grid(files["png"], flat, run.dataset.num_levels,
                            ncols or settings.eval.plot_ncols,
                            scale=max(1, 64 // max(shape[:2])))
    elif shape == (2,):
        files["png"] = prefix + ".png"
        viz.plot_2d_samples(files["png"], flat, run.dataset.test[:len(flat)],
                            title=f"{settings.model_name} on {run.dataset.name}")
    return files


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m experiments.sample",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", required=True, help="the run's directory")
    parser.add_argument("--num_samples", type=int, default=64,
                        help="samples (per row with --temperature_grid)")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--which", default="final", choices=WHICH)
    parser.add_argument("--out", default=None, help="output prefix (default "
                        "DIR/samples-seed<S>, DIR/temperatures-seed<S>, "
                        "DIR/interpolation-seed<S>)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--temperature_grid", default=None, metavar="T1,T2,...",
                      help="rows of samples at these temperatures")
    mode.add_argument("--interpolate", type=int, default=None, metavar="N",
                      help="flows: latent interpolation in N steps between test pairs")
    parser.add_argument("--num_pairs", type=int, default=4,
                        help="--interpolate: test pairs (2i, 2i+1), one row each")
    parser.add_argument("--spherical", action="store_true",
                        help="--interpolate: slerp instead of linear")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run = load_run(args.workdir, args.which)
        if args.interpolate is not None:
            num_pairs = check_count("--num_pairs", args.num_pairs)
            test = run.dataset.test
            if 2 * num_pairs > len(test):
                raise ValueError(f"--num_pairs={num_pairs} needs {2 * num_pairs} test "
                                 f"examples, the test split has {len(test)}")
            labels = None
            if getattr(run.model, "is_conditional", False):
                labels = run.dataset.test_labels[:2 * num_pairs]
            out = interpolate(run.model, run.preprocessing, test[:2 * num_pairs],
                              args.interpolate, labels=labels, seed=args.seed,
                              spherical=args.spherical)
            prefix = args.out or os.path.join(args.workdir, f"interpolation-seed{args.seed}")
            files = write_samples(run, out["samples"], prefix, ncols=len(out["t"]),
                                  t=out["t"], pairs=np.arange(2 * num_pairs).reshape(-1, 2))
            what = f"{num_pairs} interpolations"
        elif args.temperature_grid is not None:
            temperatures = parse_temperatures(args.temperature_grid)
            grid = temperature_grid(run.model, run.preprocessing, temperatures,
                                    args.num_samples, args.seed)
            prefix = args.out or os.path.join(args.workdir, f"temperatures-seed{args.seed}")
            files = write_samples(run, grid, prefix, ncols=args.num_samples,
                                  temperatures=np.asarray(temperatures))
            what = f"{len(temperatures)} rows of {args.num_samples} samples"
        else:
            samples = draw(run, args.num_samples, args.seed, args.temperature)
            prefix = args.out or os.path.join(args.workdir, f"samples-seed{args.seed}")
            files = write_samples(run, samples, prefix)
            what = f"{len(samples)} samples"
    except (RunError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{what} of {run.settings.model_name} -> " + ", ".join(files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
