"""MAF and IAF as models: each direction is checked against the other, and which one is a
single pass is read off the compiled program (a sequential direction holds a ``scan``)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.flows.models import MAF
from tests.test_conditional import _perturb


@pytest.fixture(scope="module", params=["maf", "iaf"])
def flow(request):
    model = MAF((3,), num_layers=2, hidden_features=16, transform="affine",
                inverse_autoregressive=request.param == "iaf", rngs=nnx.Rngs(0))
    return request.param, _perturb(model, jax.random.key(1), 0.3)


def _has_scan(fn, *args) -> bool:
    return "scan" in str(jax.make_jaxpr(fn)(*args))


def test_directions_invert_each_other_and_agree_on_the_density(flow):
    name, model = flow
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(key):
        m = nnx.merge(graphdef, state)
        x, lp = m.sample_and_log_prob(key, 64)  # generative direction
        return x, lp, m.log_prob(x)              # normalizing direction

    x, lp_sample, lp_density = run(jax.random.key(2))
    np.testing.assert_allclose(lp_density, lp_sample, rtol=1e-4, atol=1e-4)
    # the normalizing map sends the samples back to the base draws they came from
    z = nnx.merge(graphdef, state).bijector.inverse_and_log_det(x)[0]
    z_ref = nnx.merge(graphdef, state).base.sample(jax.random.key(2), 64)
    np.testing.assert_allclose(z, z_ref, atol=1e-4)
    # which direction is one pass: MAF's density, IAF's sampling
    density_seq = _has_scan(lambda v: nnx.merge(graphdef, state).log_prob(v), x)
    sample_seq = _has_scan(lambda k: nnx.merge(graphdef, state).sample(k, 4), jax.random.key(0))
    assert (density_seq, sample_seq) == ((False, True) if name == "maf" else (True, False))


def _grid_mass(model, half_width: float, n: int) -> float:
    """Midpoint-rule mass of a 2D model's density on ``[-half_width, half_width]^2``."""
    g = jnp.linspace(-half_width, half_width, n)
    grid = jnp.stack(jnp.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    graphdef, state = nnx.split(model)
    lp = jax.jit(lambda v: nnx.merge(graphdef, state).log_prob(v))(grid)
    return float(jnp.sum(jnp.exp(lp)) * (g[1] - g[0]) ** 2)


def test_maf_density_integrates_to_one_on_a_grid():
    model = _perturb(MAF((2,), num_layers=2, hidden_features=16, transform="spline",
                         num_bins=4, bound=3.0, rngs=nnx.Rngs(0)), jax.random.key(3), 0.1)
    np.testing.assert_allclose(_grid_mass(model, 7.0, 201), 1.0, atol=1e-2)


def test_normalization_layers_follow_every_autoregressive_layer():
    """``normalization="actnorm"``: one ActNorm after each of the ``L`` layers (plus the
    input ActNorm, which ``input_actnorm=False`` drops); the model stays a normalized density and its directions still agree."""
    from jaxgen.flows.actnorm import ActNorm

    def count_actnorms(model):
        return sum(isinstance(m, ActNorm) for _, m in nnx.iter_graph(model))

    plain = MAF((2,), num_layers=3, hidden_features=16, rngs=nnx.Rngs(0))
    normed = MAF((2,), num_layers=3, hidden_features=16, normalization="actnorm",
                 rngs=nnx.Rngs(0))
    bare = MAF((2,), num_layers=3, hidden_features=16, input_actnorm=False, rngs=nnx.Rngs(0))
    assert (count_actnorms(plain), count_actnorms(normed), count_actnorms(bare)) == (1, 4, 0)
    model = _perturb(normed, jax.random.key(3), 0.2)
    np.testing.assert_allclose(_grid_mass(model, 9.0, 241), 1.0, atol=1e-2)
    x, lp_sample = model.sample_and_log_prob(jax.random.key(4), 32)
    np.testing.assert_allclose(model.log_prob(x), lp_sample, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="normalization must be one of"):
        MAF((2,), num_layers=1, normalization="layernorm", rngs=nnx.Rngs(0))
