"""One registry, one test: every bijector's log-det against autodiff, invertibility,
inverse log-det, jit and vmap (vectors and images, float32)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import flows
from jaxgen.flows.coupling_utils import conditioner_features
from jaxgen.nn.mlp import MLP
from jaxgen.nn.resnet import GlowCNN, ResNet

VEC_SHAPE = (6,)
IMG_SHAPE = (4, 4, 2)


def _mlp(k, rngs, kind="alternate", parity=0):
    """MLP conditioner with ``k`` parameters per transformed entry, sized for ``kind``."""
    c_in, c_out = conditioner_features(kind, VEC_SHAPE[0], parity)
    return MLP(c_in, 16, k * c_out, 1, rngs=rngs)


def _resnet(k, rngs, channels=IMG_SHAPE[-1], kind="checkerboard", parity=0):
    c_in, c_out = conditioner_features(kind, channels, parity)
    return ResNet(c_in, 8, k * c_out, 1, rngs=rngs)


def _glow_step(c):
    def make(rngs):
        return flows.chain_in_order([
            flows.ActNorm(c), flows.Conv1x1LU(c, rngs=rngs),
            flows.AffineCoupling(GlowCNN(c // 2, 8, 2 * (c - c // 2), rngs=rngs), c, "channel", 0,
                                 "sigmoid")])
    return make


def _multiscale(rngs):
    c = IMG_SHAPE[-1]
    inner = flows.MultiScale(
        after=flows.AffineCoupling(_resnet(2, rngs, 8 * c, "channel", 1), 8 * c, "channel", 1), split=False)
    return flows.MultiScale(
        before=flows.AffineCoupling(_resnet(2, rngs), c, "checkerboard", 0),
        after=flows.AffineCoupling(_resnet(2, rngs, 4 * c, "channel"), 4 * c, "channel", 0),
        inner=inner)


# name -> (factory(rngs) -> bijector, input kind)
BIJECTORS = {
    "elementwise_affine/vector": (lambda r: flows.ElementwiseAffine(VEC_SHAPE), "vector"),
    "elementwise_affine/image": (lambda r: flows.ElementwiseAffine(IMG_SHAPE), "image"),
    "scaling/vector": (lambda r: flows.Scaling(VEC_SHAPE), "vector"),
    "sigmoid/vector": (lambda r: flows.Sigmoid(0.05), "vector"),
    "sigmoid/image": (lambda r: flows.Sigmoid(0.0), "image"),
    "logit/vector": (lambda r: flows.Logit(0.05), "unit_vector"),
    "logit/image": (lambda r: flows.Logit(0.05), "unit_image"),
    "additive_coupling/half": (
        lambda r: flows.AdditiveCoupling(_mlp(1, r, "half", 1), "half", 1), "vector"),
    "additive_coupling/checkerboard": (
        lambda r: flows.AdditiveCoupling(_resnet(1, r), "checkerboard", 0), "image"),
    "affine_coupling/half_tanh": (
        lambda r: flows.AffineCoupling(_mlp(2, r, "half", 0), 6, "half", 0, "tanh"), "vector"),
    "affine_coupling/alternate_exp": (
        lambda r: flows.AffineCoupling(_mlp(2, r), 6, "alternate", 1, "exp"), "vector"),
    "affine_coupling/checkerboard": (
        lambda r: flows.AffineCoupling(_resnet(2, r), 2, "checkerboard", 1, "tanh"), "image"),
    "affine_coupling/channel_sigmoid": (
        lambda r: flows.AffineCoupling(_resnet(2, r, kind="channel"), 2, "channel", 0, "sigmoid"), "image"),
    "spline_coupling/vector": (
        lambda r: flows.SplineCoupling(_mlp(3 * 4 - 1, r, "half", 0), 4, 2.0, "half", 0), "vector"),
    "spline_coupling/image": (
        lambda r: flows.SplineCoupling(_resnet(3 * 4 - 1, r, kind="channel", parity=1), 4, 2.0, "channel",
                                       1), "image"),
    # MAF's layer: density direction one pass, inverse a D-pass scan; IAF's is its Inverse.
    "masked_autoregressive/affine": (
        lambda r: flows.MaskedAutoregressive(6, (16,), rngs=r), "vector"),
    "masked_autoregressive/spline_reversed": (
        lambda r: flows.MaskedAutoregressive(6, (16,), transform="spline", num_bins=4,
                                             bound=2.0, ordering="reversed", rngs=r), "vector"),
    "inverse/masked_autoregressive": (
        lambda r: flows.Inverse(flows.MaskedAutoregressive(6, (16,), ordering=[2, 0, 5, 1, 4, 3],
                                                           rngs=r)), "vector"),
    "permutation/reverse": (lambda r: flows.Permutation.reverse(6), "vector"),
    "permutation/random_channels": (lambda r: flows.Permutation.random(2, seed=3), "image"),
    "reshape/flatten": (lambda r: flows.Reshape(IMG_SHAPE, (32,)), "image"),
    "squeeze/image": (lambda r: flows.Squeeze(), "image"),
    "batch_norm/vector": (lambda r: flows.BatchNorm(6), "vector"),
    "batch_norm/image": (lambda r: flows.BatchNorm(2), "image"),
    "actnorm/vector": (lambda r: flows.ActNorm(6), "vector"),
    "actnorm/image": (lambda r: flows.ActNorm(2), "image"),
    "conv1x1/image": (lambda r: flows.Conv1x1(2, rngs=r), "image"),
    "conv1x1/vector": (lambda r: flows.Conv1x1(6, rngs=r), "vector"),
    "conv1x1_lu/image": (lambda r: flows.Conv1x1LU(2, rngs=r), "image"),
    "inverse/affine_coupling": (
        lambda r: flows.Inverse(flows.AffineCoupling(_mlp(2, r, "half", 1), 6, "half", 1)), "vector"),
    "chain/nice_block": (lambda r: flows.Chain([
        flows.Scaling(VEC_SHAPE), flows.AdditiveCoupling(_mlp(1, r, "half", 1), "half", 1),
        flows.AdditiveCoupling(_mlp(1, r, "half", 0), "half", 0)]), "vector"),
    "repeat/glow_steps": (lambda r: flows.Repeat(_glow_step(2), 3, rngs=r), "image"),
    "multiscale/two_levels": (_multiscale, "image"),
}


def _perturb(params, stats, seed):
    """Numpy noise (no compilation): params + 0.1 N(0, 1); running stats ~ U(0.5, 2)."""
    rng = np.random.RandomState(seed)
    params = jax.tree.map(lambda p: p + 0.1 * rng.standard_normal(p.shape).astype(np.float32),
                          params)
    stats = jax.tree.map(lambda s: rng.uniform(0.5, 2.0, s.shape).astype(np.float32), stats)
    return params, stats


def make_bijector(name, seed=0):
    """Builds a registry entry and moves it off the identity: every parameter gets noise
    (zero-initialized conditioners would otherwise hide errors), running stats are random."""
    bij = BIJECTORS[name][0](nnx.Rngs(seed))
    params, stats = nnx.state(bij, nnx.Param), nnx.state(bij, nnx.BatchStat)
    nnx.update(bij, *_perturb(params, stats, seed + 100))
    return bij


def sample_input(name, batch=3, seed=1):
    kind = BIJECTORS[name][1]
    shape = (batch,) + (VEC_SHAPE if "vector" in kind else IMG_SHAPE)
    rng = np.random.RandomState(seed)
    if kind.startswith("unit"):
        return jnp.asarray(rng.uniform(0.02, 0.98, shape), jnp.float32)
    return jnp.asarray(rng.standard_normal(shape), jnp.float32)


def flatten_jacobian(jac, x_shape):
    d_in = int(np.prod(x_shape))
    return jac.reshape(jac.shape[0], -1, d_in)


def _checks(graphdef, state, z):
    """Everything the registry test compares, computed in one jit-compiled function."""
    bij = nnx.merge(graphdef, state)
    x, log_det = bij.forward_and_log_det(z)

    def single(state, v):  # [*event] -> [*event']; state passed in so every transform
        return nnx.merge(graphdef, state).forward_and_log_det(v[None])[0][0]  # owns it

    jac = jax.vmap(jax.jacfwd(single, argnums=1), in_axes=(None, 0))(state, z)
    jac = jac.reshape(z.shape[0], x[0].size, z[0].size)  # [B, D', D]
    sign, autodiff_log_det = jnp.linalg.slogdet(jac)
    z_back, inv_log_det = bij.inverse_and_log_det(x)
    x_vmap, ld_vmap = jax.vmap(
        lambda state, v: jax.tree.map(lambda a: a[0], nnx.merge(graphdef, state)
                                      .forward_and_log_det(v[None])), in_axes=(None, 0))(state, z)
    return dict(x=x, log_det=log_det, sign=sign, autodiff_log_det=autodiff_log_det,
                z_back=z_back, inv_log_det=inv_log_det, x_vmap=x_vmap, ld_vmap=ld_vmap)


@pytest.mark.parametrize("name", sorted(BIJECTORS))
def test_bijector(name):
    bij, z = make_bijector(name), sample_input(name)
    x, log_det = bij.forward_and_log_det(z)  # eager
    assert log_det.shape == (z.shape[0],) and x.dtype == jnp.float32 and x.size == z.size
    graphdef, state = nnx.split(bij)
    out = jax.jit(_checks, static_argnums=0)(graphdef, state, z)

    # log|det J| against slogdet of the autodiff Jacobian.
    assert np.all(np.asarray(out["sign"]) != 0), "singular Jacobian"
    scale = max(1.0, float(jnp.max(jnp.abs(out["autodiff_log_det"]))))
    np.testing.assert_allclose(out["log_det"], out["autodiff_log_det"], atol=1e-4 * scale,
                               rtol=0)
    # inverse(forward(z)) == z and the inverse's log-det is minus the forward's.
    np.testing.assert_allclose(out["z_back"], z,
                               atol=1e-4 * max(1.0, float(jnp.max(jnp.abs(z)))))
    np.testing.assert_allclose(out["inv_log_det"], -out["log_det"], atol=1e-4 * scale, rtol=0)
    # jit (and vmap over single examples) agree with the eager batched call.
    np.testing.assert_allclose(out["x"], x, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out["log_det"], log_det, atol=1e-4 * scale, rtol=0)
    np.testing.assert_allclose(out["x_vmap"], x, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(out["ld_vmap"], log_det, atol=1e-4 * scale, rtol=0)
    np.testing.assert_allclose(bij.inverse(x), out["z_back"], atol=1e-5, rtol=1e-5)


def test_registry_covers_every_bijector():
    names = {type(BIJECTORS[n][0](nnx.Rngs(0))).__name__ for n in BIJECTORS}
    exported = {n for n in flows.__all__ if isinstance(getattr(flows, n), type)
                and issubclass(getattr(flows, n), flows.Bijector) and n != "Bijector"}
    inner = {"Logit", "Conv1x1LU", "AffineCoupling", "ActNorm", "AdditiveCoupling", "Scaling",
             "MultiScale"}  # also reached inside composite entries
    missing = exported - names - set()
    assert not (missing - inner) and inner <= exported, missing - inner


def test_actnorm_data_init_normalizes_the_batch():
    x = 3.0 + 2.5 * jax.random.normal(jax.random.key(0), (64, 4, 4, 3))
    x = x * jnp.array([1.0, 0.1, 7.0])
    layer = flows.ActNorm(3)
    assert not bool(layer.initialized[...])
    flows.initialize(layer, x)
    assert bool(layer.initialized[...]) and not layer.data_init
    y = layer.forward(x)
    np.testing.assert_allclose(jnp.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(y, axis=(0, 1, 2)), 1.0, atol=1e-4)
    # After init the layer is a fixed bijector: a different batch is not normalized.
    y2 = layer.forward(x + 1.0)
    assert float(jnp.abs(jnp.mean(y2))) > 0.1


def test_actnorm_data_init_inside_stacked_layers():
    """Each stacked ActNorm sees the output of the layers below it (scan over layers)."""
    x = 2.0 + 3.0 * jax.random.normal(jax.random.key(1), (32, 4, 4, 2))
    flow = flows.Repeat(_glow_step(2), 2, rngs=nnx.Rngs(0))
    flows.initialize(flow, x)
    assert np.all(np.asarray(flow.layers.bijectors[2].initialized[...]))
    y = flows.ActNorm(2)  # first step's ActNorm output: normalized
    first = flow.layers.bijectors[2]
    h = (x + first.bias[...][0]) * jnp.exp(first.log_scale[...][0])
    np.testing.assert_allclose(jnp.mean(h, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(jnp.std(h, axis=(0, 1, 2)), 1.0, atol=1e-4)
    # The second layer's ActNorm was initialized on different inputs.
    assert not np.allclose(first.bias[...][0], first.bias[...][1])
    del y


def test_batch_norm_training_mode_updates_running_stats():
    x = 5.0 + 2.0 * jax.random.normal(jax.random.key(2), (256, 3))
    layer = flows.BatchNorm(3, momentum=0.0)
    layer.train()
    y, log_det = layer.forward_and_log_det(x)
    np.testing.assert_allclose(jnp.mean(y, 0), 0.0, atol=1e-4)
    np.testing.assert_allclose(jnp.std(y, 0), 1.0, atol=1e-3)
    np.testing.assert_allclose(layer.running_mean[...], jnp.mean(x, 0), rtol=1e-5)
    layer.eval()
    y_eval, ld_eval = layer.forward_and_log_det(x)  # now the running stats: same map
    np.testing.assert_allclose(y_eval, y, atol=1e-4)
    np.testing.assert_allclose(ld_eval, log_det, atol=1e-4)


def test_spline_zero_params_is_identity_and_tails_are_linear():
    x = jnp.linspace(-5, 5, 41)
    zeros = jnp.zeros(x.shape + (5,))
    y, ld = flows.rational_quadratic_spline(x, zeros, zeros, zeros[..., :4], bound=3.0)
    np.testing.assert_allclose(y, x, atol=1e-5)
    np.testing.assert_allclose(ld, 0.0, atol=1e-5)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="channels"):
        flows.ActNorm(3).forward(jnp.zeros((2, 4, 4, 2)))
    with pytest.raises(ValueError, match="divisible"):
        flows.Squeeze().forward(jnp.zeros((2, 3, 4, 1)))
    with pytest.raises(ValueError, match="mask"):
        flows.make_mask("checkerboard", (6,))
