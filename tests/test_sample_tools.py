"""`experiments.sample`: latent interpolation and temperature grids, through the functions
(no subprocess), and the CLI's argument handling."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from experiments import sample as sample_cli
from experiments.load import RunError
from jaxgen import flows
from jaxgen.autoregressive import MADE
from jaxgen.data import load_dataset
from jaxgen.data.preprocessing import make_preprocessing


@pytest.fixture(scope="module")
def digits_flow():
    data = load_dataset({"name": "digits"})
    prep = make_preprocessing(data, "uniform", jax.random.key(0))
    model = flows.build_flow("realnvp", data.event_shape, prep.init_data[:64],
                             unit_interval=True, rngs=nnx.Rngs(0), num_couplings=2,
                             hidden_features=8, num_hidden_layers=1)
    rng = np.random.RandomState(0)
    nnx.update(model, jax.tree.map(
        lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32),
        nnx.state(model, nnx.Param)))
    return data, prep, model


@pytest.mark.parametrize("spherical", [False, True])
def test_interpolation_ends_at_the_test_examples(digits_flow, spherical):
    data, prep, model = digits_flow
    out = sample_cli.interpolate(model, prep, data.test[:4], 5, seed=1, spherical=spherical)
    assert out["samples"].shape == (2, 5, 8, 8, 1) and out["samples"].dtype == np.int32
    np.testing.assert_allclose(out["t"], [0, 0.25, 0.5, 0.75, 1])
    # endpoints: decode(encode(y)) of the dequantized test pairs (float32 round trip)
    np.testing.assert_allclose(out["decoded"][:, 0], out["inputs"][0::2], atol=1e-5)
    np.testing.assert_allclose(out["decoded"][:, -1], out["inputs"][1::2], atol=1e-5)
    z = np.asarray(model.encode(out["inputs"]))  # [4, 64]
    mid = out["latents"][:, 2]  # [2, 64]
    if spherical:  # slerp at t = 1/2: sin(omega / 2) / sin(omega) * (z_a + z_b)
        za, zb = z[0::2].astype(np.float64), z[1::2].astype(np.float64)
        cos = (za * zb).sum(-1) / np.linalg.norm(za, axis=-1) / np.linalg.norm(zb, axis=-1)
        omega = np.arccos(cos)[:, None]
        np.testing.assert_allclose(mid, np.sin(omega / 2) / np.sin(omega) * (za + zb),
                                   atol=1e-4)
    else:
        np.testing.assert_allclose(mid, 0.5 * (z[0::2] + z[1::2]), atol=1e-5)


def test_interpolation_refuses_models_without_a_latent_space_and_odd_batches(digits_flow):
    data, prep, model = digits_flow
    made = MADE((8, 8, 1), 17, (8,), rngs=nnx.Rngs(0))
    with pytest.raises(RunError, match="MADE has no latent space"):
        sample_cli.interpolate(made, prep, data.test[:2], 3)
    with pytest.raises(ValueError, match=r"pairs of examples \[2P, \*event\], got shape "
                                         r"\(3, 8, 8, 1\)"):
        sample_cli.interpolate(model, prep, data.test[:3], 3)
    with pytest.raises(ValueError, match="interpolation steps must be an integer >= 2, got 1"):
        sample_cli.interpolate(model, prep, data.test[:2], 1)


def test_temperature_grid_rows_share_the_key(digits_flow):
    data, prep, model = digits_flow
    grid = sample_cli.temperature_grid(model, prep, (0.5, 1.0), 3, seed=4)
    assert grid.shape == (2, 3, 8, 8, 1)
    key = jax.random.key(4)
    np.testing.assert_array_equal(grid[1], prep.to_data(model.sample(key, 3)))
    np.testing.assert_array_equal(grid[0], prep.to_data(model.sample(key, 3, temperature=0.5)))


def test_temperature_grid_of_an_autoregressive_model():
    made = MADE((2, 2, 1), 3, (8,), rngs=nnx.Rngs(0))
    prep = make_preprocessing(load_dataset({"name": "digits"}), "none", jax.random.key(0))
    grid = sample_cli.temperature_grid(made, prep, (0.3, 1.0), 4, seed=2)
    np.testing.assert_array_equal(grid[1], made.sample(jax.random.key(2), 4))
    np.testing.assert_array_equal(grid[0], made.sample(jax.random.key(2), 4, temperature=0.3))


def test_parse_temperatures_and_cli_arguments(tmp_path):
    assert sample_cli.parse_temperatures("0.5, 0.7,1") == (0.5, 0.7, 1.0)
    for bad in ("0.5,-1", "0.5,nan", "", "hot"):
        with pytest.raises(ValueError, match="temperature"):
            sample_cli.parse_temperatures(bad)
    args = sample_cli.build_parser().parse_args(
        ["--workdir", "w", "--interpolate", "7", "--num_pairs", "2", "--spherical"])
    assert (args.interpolate, args.num_pairs, args.spherical) == (7, 2, True)
    with pytest.raises(SystemExit):  # one mode at a time
        sample_cli.build_parser().parse_args(["--workdir", "w", "--interpolate", "3",
                                              "--temperature_grid", "0.5,1"])
    assert sample_cli.main(["--workdir", str(tmp_path / "none"), "--interpolate", "3"]) == 2


def test_write_samples_lays_rows_out_as_grid_rows(tmp_path, digits_flow):
    import types
    data, prep, model = digits_flow
    out = sample_cli.interpolate(model, prep, data.test[:4], 3, seed=1)
    run = types.SimpleNamespace(dataset=data, settings=types.SimpleNamespace(
        eval=types.SimpleNamespace(plot_ncols=8), model_name="realnvp"))
    files = sample_cli.write_samples(run, out["samples"], str(tmp_path / "interp"), ncols=3,
                                     t=out["t"])
    stored = np.load(files["npz"])
    np.testing.assert_array_equal(stored["samples"], out["samples"])
    np.testing.assert_array_equal(stored["t"], out["t"])
    import matplotlib.image
    png = matplotlib.image.imread(files["png"])  # 2 rows x 3 columns of 8x8 at scale 8
    assert png.shape[0] < png.shape[1]
