"""jaxgen.nn.precision: reduced-precision products are as accurate as documented, their
gradients are the float32 ones, bad arguments are named."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen.nn.precision import matmul, prepare, split_bf16


def _operands(seed=0, binary_lhs=True):
    rng = np.random.default_rng(seed)
    a = (rng.random((64, 300)) < 0.3) if binary_lhs else rng.normal(size=(64, 300))
    b = rng.normal(size=(300, 40)) * 0.05
    return jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)


def _rel_err(out, a, b):
    exact = np.asarray(a, np.float64) @ np.asarray(b, np.float64)
    scale = np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64))
    return float(np.max(np.abs(np.asarray(out, np.float64) - exact) / scale))


def test_split_is_a_16_bit_representation():
    x = jnp.asarray(np.random.default_rng(0).normal(size=1000), jnp.float32)
    hi, lo = split_bf16(x, 2)
    assert hi.dtype == lo.dtype == jnp.bfloat16
    err = np.abs(np.asarray(hi, np.float64) + np.asarray(lo, np.float64) - np.asarray(x))
    assert np.all(err <= 2.0 ** -16 * np.abs(np.asarray(x)))
    assert np.max(np.abs(np.asarray(hi, np.float64) - np.asarray(x)) / np.abs(x)) > 2 ** -10


# eps of the module docstring, |matmul(a, b) - a @ b| <= eps (|a| @ |b|), by
# (precision, lhs_exact); plus float32 rounding of the K = 300 sums of either product
# (~sqrt(K) 2^-24 ~ 1e-6 relative to |a| @ |b|) and second-order terms (~2^-23)
_EPS = {("bf16x2", True): 2.0 ** -16, ("bf16x2", False): 3 * 2.0 ** -16,
        ("bfloat16", True): 2.0 ** -8, ("bfloat16", False): 2.0 ** -7 + 2.0 ** -16}
_ROUNDING = 2.0 ** -20


@pytest.mark.parametrize("precision,lhs_exact", sorted(_EPS))
def test_matmul_is_the_float32_product_within_the_documented_bound(precision, lhs_exact):
    a, b = _operands(binary_lhs=True)
    a_real, _ = _operands(seed=1, binary_lhs=False)
    for a in ((a, a_real) if not lhs_exact else (a,)):  # an exact lhs must be bfloat16
        plain = np.asarray(a @ b, np.float64)
        scale = np.abs(np.asarray(a, np.float64)) @ np.abs(np.asarray(b, np.float64))
        bound = (_EPS[precision, lhs_exact] + _ROUNDING) * scale
        for out in (matmul(a, b, precision, lhs_exact),
                    jax.jit(matmul, static_argnums=(2, 3))(a, b, precision, lhs_exact),
                    matmul(a, prepare(b, precision), precision, lhs_exact)):
            assert out.dtype == jnp.float32 and out.shape == plain.shape
            err = np.abs(np.asarray(out, np.float64) - plain)
            assert np.all(err <= bound), float(np.max(err / bound))


@pytest.mark.parametrize("binary_lhs", [True, False])
def test_float32_is_the_plain_product_and_bfloat16_is_coarser(binary_lhs):
    a, b = _operands(binary_lhs=binary_lhs)
    assert np.array_equal(matmul(a, b, "float32"), a @ b)
    ex2 = _rel_err(matmul(a, b, "bf16x2", lhs_exact=binary_lhs), a, b)
    e16 = _rel_err(matmul(a, b, "bfloat16", lhs_exact=binary_lhs), a, b)
    # the bound test above would pass a float32 product: the reduced paths are reduced,
    # and one bfloat16 pass misses bf16x2's bound
    assert e16 > _EPS["bf16x2", False] and e16 > 20 * ex2, (ex2, e16)


def test_gradients_are_the_float32_ones():
    a, b = _operands(binary_lhs=False)
    def loss(precision):
        return lambda a, b: jnp.sum(jnp.sin(matmul(a, b, precision)))
    ga, gb = jax.grad(loss("float32"), argnums=(0, 1))(a, b)
    ha, hb = jax.jit(jax.grad(loss("bf16x2"), argnums=(0, 1)))(a, b)
    chex.assert_trees_all_close((ha, hb), (ga, gb), atol=1e-4, rtol=1e-4)
    # a batched lhs [..., K] works forward and backward
    a3 = a.reshape(8, 8, 300)
    chex.assert_trees_all_close(matmul(a3, b, "bf16x2").reshape(64, 40),
                                matmul(a, b, "bf16x2"), atol=1e-6)
    g3 = jax.grad(lambda b: jnp.sum(matmul(a3, b, "bf16x2") ** 2))(b)
    chex.assert_trees_all_close(g3, jax.grad(lambda b: jnp.sum((a @ b) ** 2))(b),
                                atol=1e-3, rtol=1e-3)


def test_prepared_operand_gives_the_same_product():
    a, b = _operands()
    for precision in ("bf16x2", "bfloat16"):
        np.testing.assert_array_equal(matmul(a, prepare(b, precision), precision, True),
                                      matmul(a, b, precision, True))
    assert prepare(b, "float32") is b
    with pytest.raises(ValueError, match="prepared operand with precision 'float32'"):
        matmul(a, prepare(b, "bf16x2"), "float32")


def test_bad_arguments_are_named():
    a, b = _operands()
    with pytest.raises(ValueError, match="unknown matmul precision 'fp8'"):
        matmul(a, b, "fp8")
    with pytest.raises(ValueError, match=r"expects a \[..., K\] and b \[K, N\]"):
        matmul(a, b.T, "bf16x2")
