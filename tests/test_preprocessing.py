"""Tests for jaxgen.data.preprocessing."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.data import preprocessing as pp


def _unit_images(seed=0, shape=(3, 2, 3, 1)):
    return jax.random.uniform(jax.random.key(seed), shape)  # [B, H, W, C] in [0, 1)


@pytest.mark.parametrize("alpha", [0.0, 0.05])
def test_logit_log_det_matches_autodiff(alpha):
    x = _unit_images() * 0.98 + 0.01
    y, log_det = pp.logit_transform(x, alpha)
    assert y.shape == x.shape and log_det.shape == (3,)

    def forward_flat(v):  # one flattened example -> flattened output
        return pp.logit_transform(v.reshape(1, *x.shape[1:]), alpha)[0].reshape(-1)

    jac = jax.vmap(jax.jacfwd(forward_flat))(x.reshape(3, -1))  # [B, D, D]
    np.testing.assert_allclose(log_det, jnp.linalg.slogdet(jac)[1], atol=1e-4)


def test_inverse_logit_round_trip_and_log_det():
    x = _unit_images(1)
    y, log_det = pp.logit_transform(x)
    x_back, inv_log_det = pp.inverse_logit_transform(y)
    np.testing.assert_allclose(x_back, x, atol=1e-5)
    np.testing.assert_allclose(inv_log_det, -log_det, rtol=1e-5)

    def inverse_flat(v):
        return pp.inverse_logit_transform(v.reshape(1, *x.shape[1:]))[0].reshape(-1)

    jac = jax.vmap(jax.jacfwd(inverse_flat))(y.reshape(3, -1))
    np.testing.assert_allclose(inv_log_det, jnp.linalg.slogdet(jac)[1], atol=1e-4)


def test_logit_transform_is_finite_at_the_edges_and_jits():
    x = jnp.array([[0.0, 1.0, 0.5]])
    y, log_det = jax.jit(pp.logit_transform)(x)
    assert np.isfinite(y).all() and np.isfinite(log_det).all()
    np.testing.assert_allclose(y[0, 2], 0.0, atol=1e-6)
    np.testing.assert_allclose(y[0, 0], np.log(0.05 / 0.95), rtol=1e-5)


@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_uniform_dequantize_lands_in_cells_with_right_mean(num_levels):
    x_int = jnp.tile(jnp.arange(num_levels), (2000, 1))  # [2000, K], every level
    y = jax.jit(pp.uniform_dequantize, static_argnums=2)(jax.random.key(0), x_int, num_levels)
    assert y.dtype == jnp.float32 and y.shape == x_int.shape
    assert float(y.min()) >= 0.0 and float(y.max()) < 1.0
    np.testing.assert_array_equal(jnp.floor(y * num_levels), x_int)
    np.testing.assert_array_equal(pp.quantize(y, num_levels), x_int)
    # u ~ U[0, 1): mean (x + 1/2) / K, std 1 / (K sqrt(12)); 2000 draws per level.
    stderr = 1 / (num_levels * np.sqrt(12 * 2000))
    np.testing.assert_allclose(y.mean(axis=0), (np.arange(num_levels) + 0.5) / num_levels,
                               atol=5 * stderr)
    assert not np.array_equal(y, pp.uniform_dequantize(jax.random.key(1), x_int, num_levels))


@pytest.mark.parametrize("num_levels", [3, 17, 255, 256, 1000])
def test_dequantize_stays_in_cell_at_noise_edges(num_levels):
    x_int = jnp.arange(num_levels)
    for noise in [0.0, 1 - 2.0**-24, float(np.nextafter(np.float32(1), np.float32(0))), 1.0]:
        y = pp.dequantize(x_int, jnp.full(x_int.shape, noise, jnp.float32), num_levels)
        np.testing.assert_array_equal(jnp.floor(y * num_levels), x_int, err_msg=f"{noise=}")
        assert float(y.max()) < 1.0


def test_scale_to_unit_and_quantize_clip():
    np.testing.assert_allclose(pp.scale_to_unit(jnp.array([0, 128, 255]), 256),
                               [0.0, 128 / 255, 1.0])
    np.testing.assert_array_equal(pp.quantize(jnp.array([-0.1, 0.0, 0.5, 1.0]), 4),
                                  [0, 0, 2, 3])


def test_binarize_static():
    x = jnp.array([[0, 7, 8, 16]])
    out = pp.binarize_static(x, 8)
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, [[0, 0, 1, 1]])


def test_binarize_dynamic_frequency():
    probs = jnp.tile(jnp.array([0.0, 0.1, 0.5, 0.9, 1.0]), (20000, 1))  # [N, 5]
    draws = jax.jit(pp.binarize_dynamic)(jax.random.key(0), probs)
    assert draws.dtype == jnp.int32 and set(np.unique(draws)) <= {0, 1}
    stderr = np.sqrt(0.25 / 20000)
    np.testing.assert_allclose(draws.mean(axis=0), probs[0], atol=5 * stderr)
    assert not np.array_equal(draws, pp.binarize_dynamic(jax.random.key(1), probs))


def test_preprocessing_is_vmap_safe():
    keys = jax.random.split(jax.random.key(0), 4)
    x_int = jnp.zeros((4, 3, 2, 2, 1), jnp.int32) + 5
    y = jax.vmap(pp.uniform_dequantize, in_axes=(0, 0, None))(keys, x_int, 17)
    assert y.shape == x_int.shape and np.all(jnp.floor(y * 17) == 5)
    _, log_det = jax.vmap(pp.logit_transform)(y)
    assert log_det.shape == (4, 3)
