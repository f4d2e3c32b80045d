"""The latent space as a tool: ``encode`` / ``decode`` on every flow kind, on real digits."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import flows
from jaxgen.data import load_dataset
from jaxgen.data.preprocessing import uniform_dequantize

# Tiny versions of every flow kind `build_flow` makes (the registry's flows), on 8x8 digits.
# Spline couplings are covered in vector RealNVP and MAF (a multi-scale spline RealNVP
# composes the same coupling with the multi-scale plumbing tested by the affine one; its
# 11 ResNet couplings per direction cost ~9 s of compilation, too much for one test).
KINDS = {
    "nice": ("nice", dict(num_couplings=2, hidden_features=8, num_hidden_layers=1)),
    "realnvp_vector": ("realnvp", dict(num_couplings=2, hidden_features=8,
                                       num_hidden_layers=1)),
    "realnvp_vector_spline": ("realnvp", dict(num_couplings=2, hidden_features=8,
                                              num_hidden_layers=1, coupling="spline",
                                              num_bins=4)),
    "realnvp_multiscale": ("realnvp", dict(architecture="multiscale", num_scales=2,
                                           hidden_channels=4, num_blocks=1,
                                           normalization="batchnorm")),
    "glow": ("glow", dict(num_scales=1, num_steps=2, hidden_channels=4)),  # factor-out:
    # covered by realnvp_multiscale (the same `MultiScale`); one Glow level compiles faster
    "maf": ("maf", dict(num_layers=2, hidden_features=16, num_hidden_layers=1)),
    "maf_spline": ("maf", dict(num_layers=1, hidden_features=16, num_hidden_layers=1,
                               transform="spline", num_bins=4)),
    "iaf": ("iaf", dict(num_layers=2, hidden_features=16, num_hidden_layers=1)),
}
LATENT_SHAPE = {"realnvp_multiscale": (8, 8, 1), "glow": (8, 8, 1)}  # the others flatten: (64,)


@pytest.fixture(scope="module")
def digits():
    data = load_dataset({"name": "digits", "conditional": True})
    y = np.asarray(uniform_dequantize(jax.random.key(0), data.test[:4], data.num_levels))
    return data, y  # dequantized test digits in [0, 1), [4, 8, 8, 1]


_BUILT = {}


def _build(kind, data, seed=0, **extra):
    """The tiny flow ``kind`` on digits, perturbed, in eval mode (built once per module)."""
    cache_key = (kind, seed, tuple(sorted(extra.items())))
    if cache_key not in _BUILT:
        _BUILT[cache_key] = _build_new(kind, data, seed, **extra)
    return _BUILT[cache_key]


def _build_new(kind, data, seed, **extra):
    name, fields = KINDS[kind]
    init = np.asarray(uniform_dequantize(jax.random.key(1), data.train[:64], data.num_levels))
    model = flows.build_flow(name, data.event_shape, init, unit_interval=True,
                             rngs=nnx.Rngs(seed), **fields, **extra)
    # Zero-initialized last layers make a new flow an elementwise map: perturb every
    # parameter so that the round trip goes through non-trivial couplings.
    rng = np.random.RandomState(seed)
    params = jax.tree.map(lambda p: p + 0.05 * rng.standard_normal(p.shape).astype(np.float32),
                          nnx.state(model, nnx.Param))
    nnx.update(model, params)
    model.eval()
    return model


def _round_trip(graphdef, state, y):
    model = nnx.merge(graphdef, state)
    z = model.encode(y)
    return z, model.decode(z)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_decode_inverts_encode_on_digits(kind, digits):
    data, y = digits
    model = _build(kind, data)
    assert model.latent_shape == LATENT_SHAPE.get(kind, (64,))
    # The 4 test digits and a constant image (last row).
    y = np.concatenate([y, np.full((1, 8, 8, 1), 0.5, np.float32)])
    graphdef, state = nnx.split(model)
    z, y_back = jax.jit(_round_trip, static_argnums=0)(graphdef, state, jnp.asarray(y))
    assert z.shape == (5,) + model.latent_shape
    # float32 tolerance: y in [0, 1) passes a logit and a few layers each way; 1e-5 is
    # ~ 80 ulp of 1.0, while a missing, misordered or mismatched layer errs by O(0.1).
    np.testing.assert_allclose(y_back, y, atol=1e-5, rtol=0)
    # The perturbed flow is not elementwise: a constant image has a non-constant latent.
    assert float(jnp.std(z[-1])) > 1e-2


def _sample_and_decode(graphdef, state, key, temperature):
    model = nnx.merge(graphdef, state)
    eps = model.base.sample(key, 3)
    return model.sample(key, 3, temperature=temperature), model.decode(temperature * eps)


@pytest.mark.parametrize("kind", ["realnvp_vector", "glow"])
def test_sample_is_decode_of_a_base_draw(kind, digits):
    """``sample(key, n, T) == decode(T * base.sample(key, n))``, same key."""
    model = _build(kind, digits[0])
    graphdef, state = nnx.split(model)
    sample, decoded = jax.jit(_sample_and_decode, static_argnums=0)(
        graphdef, state, jax.random.key(2), 0.7)
    np.testing.assert_allclose(sample, decoded, atol=1e-6, rtol=0)


def test_multiscale_latent_holds_the_factored_out_parts(digits):
    """Changing one latent entry at a time changes the decoded image: no factored-out part
    is dropped (each of the 64 entries of the [8, 8, 1] latent reaches the output)."""
    data, y = digits
    model = _build("realnvp_multiscale", data)
    graphdef, state = nnx.split(model)
    z, _ = jax.jit(_round_trip, static_argnums=0)(graphdef, state, jnp.asarray(y[:1]))
    bumped = z + 0.5 * jnp.eye(64).reshape(64, 8, 8, 1)  # [64, 8, 8, 1]: one entry each
    decode = jax.jit(lambda state, z: nnx.merge(graphdef, state).decode(z))
    change = jnp.max(jnp.abs(decode(state, bumped) - decode(state, jnp.tile(z, (64, 1, 1, 1)))),
                     axis=(1, 2, 3))
    assert float(jnp.min(change)) > 1e-4


def test_conditional_encode_decode_and_bad_input(digits):
    data, y = digits
    model = _build("realnvp_vector", data, num_classes=10)
    labels = jnp.asarray(data.test_labels[:4])
    z = model.encode(y, context=labels)
    np.testing.assert_allclose(model.decode(z, context=labels), y, atol=1e-5, rtol=0)
    other = model.encode(y, context=(labels + 1) % 10)
    assert float(jnp.max(jnp.abs(other - z))) > 1e-3  # the context reaches the couplings
    with pytest.raises(ValueError, match=r"decode expects \[B, \*\(64,\)\], got shape"):
        model.decode(jnp.zeros((2, 8, 8, 1)), context=labels[:2])
    with pytest.raises(ValueError, match="encode got 1 non-finite"):
        model.encode(np.where(np.arange(64).reshape(1, 8, 8, 1) == 3, np.nan, y[:1]),
                     context=labels[:1])
