"""jaxgen.viz: pixel-exact grids, PNGs of the right size, density orientation, bad input."""
import matplotlib.image
import numpy as np
import pytest

from jaxgen import viz

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_png(path):
    with open(path, "rb") as f:
        assert f.read(8) == PNG_SIGNATURE, f"{path} is not a PNG"
    return matplotlib.image.imread(path)


def test_image_grid_layout_and_intensities():
    images = np.zeros((5, 4, 3, 1), np.int32)  # 5 images of 4x3, levels 0..16
    images[1] = 16
    images[2, 0, 0, 0] = 8
    grid = viz.image_grid(images, num_levels=17, ncols=3, pad=1, pad_value=7)
    assert grid.dtype == np.uint8
    assert grid.shape == (2 * (4 + 1) + 1, 3 * (3 + 1) + 1, 1)
    # Image i sits at row i // 3, column i % 3, each cell offset by the padding.
    np.testing.assert_array_equal(grid[1:5, 1:4, 0], 0)
    np.testing.assert_array_equal(grid[1:5, 5:8, 0], 255)
    assert grid[1, 9, 0] == round(255 * 8 / 16)
    np.testing.assert_array_equal(grid[6:10, 9:12, 0], 7)  # empty sixth cell
    np.testing.assert_array_equal(grid[0, :, 0], 7)  # border


def test_image_grid_continuous_rgb_and_rank3():
    rgb = np.full((2, 2, 2, 3), 0.5, np.float32)
    rgb[0, 0, 0] = [2.0, -1.0, 1.0]  # clipped to [0, 1]
    grid = viz.image_grid(rgb, None, ncols=8, pad=0)
    assert grid.shape == (2, 4, 3)  # ncols capped at the number of images
    np.testing.assert_array_equal(grid[0, 0], [255, 0, 255])
    assert grid[1, 1, 0] == 128
    assert viz.image_grid(np.zeros((3, 5, 5), np.int32), 2, ncols=3).shape == (7, 19, 1)


@pytest.mark.parametrize("bad", [np.zeros((0, 4, 4, 1)), np.zeros((4, 4)),
                                 np.zeros((2, 4, 4, 2))])
def test_image_grid_rejects_bad_shapes(bad):
    with pytest.raises(ValueError, match="shape"):
        viz.image_grid(bad, 2)


def test_save_image_grid_writes_png_of_grid_size_times_scale(tmp_path):
    images = np.random.default_rng(0).integers(0, 17, (10, 8, 8, 1))
    path = tmp_path / "sub" / "grid.png"
    grid = viz.save_image_grid(path, images, 17, ncols=4, scale=3)
    png = _read_png(path)
    assert grid.shape[:2] == ((3 * 9 + 1) * 3, (4 * 9 + 1) * 3)
    assert png.shape[:2] == grid.shape[:2]
    # Grey levels survive the round trip (PNG stores 8 bits; imread gives [0, 1] floats).
    np.testing.assert_allclose(png[..., 0] * 255, grid[..., 0], atol=1)


def test_plot_2d_samples_and_trace_write_pngs(tmp_path):
    rng = np.random.default_rng(0)
    viz.plot_2d_samples(tmp_path / "s.png", rng.normal(size=(500, 2)),
                        data=rng.normal(size=(300, 2)), title="t", dpi=50)
    assert _read_png(tmp_path / "s.png").shape[:2] == (4 * 50, 8 * 50)
    viz.plot_2d_samples(tmp_path / "s1.png", rng.normal(size=(50, 2)), dpi=50)
    assert _read_png(tmp_path / "s1.png").shape[:2] == (200, 200)
    viz.plot_chain_trace(tmp_path / "c.png", rng.normal(size=(100, 4, 2)),
                         names=["energy", "x0"], dpi=50)
    assert _read_png(tmp_path / "c.png").shape[:2] == (int(2.2 * 2 * 50), 6 * 50)
    viz.plot_chain_trace(tmp_path / "c1.png", rng.normal(size=100), dpi=50)
    assert _read_png(tmp_path / "c1.png").shape[:2] == (int(2.2 * 50), 300)
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        viz.plot_2d_samples(tmp_path / "bad.png", np.zeros((10, 3)))
    with pytest.raises(ValueError, match="names"):
        viz.plot_chain_trace(tmp_path / "bad.png", np.zeros((10, 2, 3)), names=["a"])


def test_density_grid_orientation_and_plot(tmp_path):
    calls = []

    def log_prob_fn(points):  # a bump at (1, -2); batched [B, 2] -> [B]
        calls.append(len(points))
        return -((points[:, 0] - 1.0) ** 2 + (points[:, 1] + 2.0) ** 2)

    extent = (-3.0, 3.0, -4.0, 2.0)
    log_p = viz.plot_2d_density(tmp_path / "d.png", log_prob_fn, extent, resolution=61,
                                data=np.zeros((10, 2)), dpi=40)
    assert log_p.shape == (61, 61)
    row, col = np.unravel_index(np.argmax(log_p), log_p.shape)
    xs, ys = np.linspace(-3, 3, 61), np.linspace(-4, 2, 61)
    assert (xs[col], ys[row]) == pytest.approx((1.0, -2.0), abs=1e-6)  # rows are y, columns x
    assert _read_png(tmp_path / "d.png").shape[:2] == (4 * 40, int(4.5 * 40))
    viz.density_grid(log_prob_fn, extent, 50, batch_size=1000)
    assert calls[-3:] == [1000, 1000, 500]  # chunked evaluation
    with pytest.raises(ValueError, match="extent"):
        viz.density_grid(log_prob_fn, (1, 0, 0, 1))


def test_data_extent_covers_the_data():
    points = np.random.default_rng(0).uniform([-1, 10], [1, 20], size=(1000, 2))
    xmin, xmax, ymin, ymax = viz.data_extent(points)
    assert xmin < -0.9 and xmax > 0.9 and ymin < 10.1 and ymax > 19.9
    assert xmax - xmin < 2.5 and ymax - ymin < 12.5
