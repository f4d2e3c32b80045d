"""`layer_scan`'s unrolled loop (the CPU default) and the rolled ``lax.scan`` loop give the
same outputs and gradients, for a bare conv stack and for the models that use it."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen import flows
from jaxgen.autoregressive.gated_pixelcnn import GatedPixelCNN
from jaxgen.autoregressive.pixelcnn import PixelCNN
from jaxgen.flows.coupling_utils import conditioner_features
from jaxgen.nn import layer_scan as layer_scan_module
from jaxgen.nn.layer_scan import layer_scan, layer_scan_mode, unroll_layers
from jaxgen.nn.mlp import MLP

# Unrolling changes the program's loop structure, not its arithmetic: agreement to float32
# rounding (XLA may fuse the unrolled copies differently), far below any real difference.
TOL = dict(rtol=1e-5, atol=1e-5)


def _has_while_loop(fn, *args) -> bool:
    return "while" in jax.jit(fn).lower(*args).as_text()


def _conv_stack(num_layers=3, channels=8, seed=0):
    gen = np.random.default_rng(seed)

    def normal(scale, *shape):
        return jnp.asarray(scale * gen.standard_normal(shape), jnp.float32)

    x = normal(1.0, 4, 6, 6, channels)  # [B, H, W, C]
    return x, (normal(0.2, num_layers, 3, 3, channels, channels),  # [L, 3, 3, C, C]
               normal(0.1, num_layers, channels))  # [L, C]


def _conv_layer(carry, layer):
    """A residual 3x3 conv layer; the carry is a pytree, each layer also emits a scalar."""
    h, total = carry
    kernel, bias = layer
    y = jax.lax.conv_general_dilated(h, kernel, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
    return (h + jnp.tanh(y), total + jnp.mean(y)), jnp.sum(y ** 2)


@pytest.mark.parametrize("reverse", [False, True])
def test_unrolled_and_rolled_give_the_same_outputs_and_gradients(reverse):
    x, layers = _conv_stack()

    def loss(x, layers, unroll):
        (h, total), per_layer = layer_scan(_conv_layer, (x, jnp.float32(0.0)), layers,
                                           reverse=reverse, unroll=unroll)
        return jnp.sum(jnp.sin(h)) + total + jnp.sum(per_layer * jnp.arange(1.0, 4.0))

    def value_and_grads(unroll):
        return jax.jit(jax.value_and_grad(lambda x, l: loss(x, l, unroll), argnums=(0, 1)))(
            x, layers)

    unrolled, rolled = value_and_grads(True), value_and_grads(False)
    # per leaf, float32 rounding of its largest entry: the kernel gradients reach ~1e2,
    # so an entry near 1 may differ by ~3e-5 when XLA orders the sums differently
    for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(rolled)):
        scale = float(jnp.max(jnp.abs(b)))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(scale, 1.0))
    # the reference is the plain lax.scan, and the two switches give the two programs
    (h, total), per_layer = jax.lax.scan(_conv_layer, (x, jnp.float32(0.0)), layers,
                                         reverse=reverse)
    ref = jnp.sum(jnp.sin(h)) + total + jnp.sum(per_layer * jnp.arange(1.0, 4.0))
    chex.assert_trees_all_close(unrolled[0], ref, **TOL)
    assert not _has_while_loop(lambda x, l: loss(x, l, True), x, layers)
    assert _has_while_loop(lambda x, l: loss(x, l, False), x, layers)


def test_default_follows_the_backend():
    x, layers = _conv_stack()
    default = lambda x, l: layer_scan(_conv_layer, (x, jnp.float32(0.0)), l)[0][0]
    assert unroll_layers() == (jax.default_backend() == "cpu")
    assert _has_while_loop(default, x, layers) == (not unroll_layers())


def _random_model(make, seed):
    """``make()``'s structure and fixed arrays (masks); parameters ``N(0, 0.3^2)``, numpy.

    Built without running ``make``'s initializers (``jax.random.normal`` compiles for
    seconds per shape on CPU; their outputs are replaced anyway): ``(graphdef, params,
    rest)``."""
    graphdef, params, _ = nnx.split(nnx.eval_shape(make), nnx.Param, ...)
    # only the non-parameters leave the jit, so XLA drops the initializers as dead code
    rest = jax.jit(lambda: nnx.split(make(), nnx.Param, ...)[2])()
    gen = np.random.default_rng(seed)
    params = jax.tree.map(
        lambda p: jnp.asarray(0.3 * gen.standard_normal(p.shape), jnp.float32), params)
    return graphdef, params, rest


def _mean_log_prob(model, x):
    return jnp.mean(model.log_prob(x))


def _pixelcnn():
    x = np.random.default_rng(1).integers(0, 4, (2, 4, 4, 2))
    return (lambda: PixelCNN((4, 4, 2), 4, hidden_channels=4, num_layers=3,
                             first_kernel_size=3, rngs=nnx.Rngs(0)), x, _mean_log_prob)


def _gated_pixelcnn():
    x = np.random.default_rng(1).integers(0, 4, (2, 4, 4, 1))
    return (lambda: GatedPixelCNN((4, 4, 1), 4, hidden_channels=4, num_layers=3,
                                  kernel_size=3, rngs=nnx.Rngs(0)), x, _mean_log_prob)


def _flow_loss(model, x):  # forward and inverse (reverse=True) scans
    y, log_det = model.forward_and_log_det(x)
    z, inv_log_det = model.inverse_and_log_det(x)
    return jnp.mean(jnp.sum(y ** 2, axis=-1)) - jnp.mean(log_det) + jnp.mean(
        jnp.sin(z)) + jnp.mean(inv_log_det)


def _repeat_couplings():
    c_in, c_out = conditioner_features("half", 6, 0)

    def make(rngs):
        return flows.chain_in_order([
            flows.AffineCoupling(MLP(c_in, 16, 2 * c_out, 1, rngs=rngs), 6, "half", 0),
            flows.Permutation.reverse(6)])

    x = np.random.default_rng(1).standard_normal((5, 6)).astype(np.float32)
    return lambda: flows.Repeat(make, 3, rngs=nnx.Rngs(0)), x, _flow_loss


def _distribution_loss(model, x):  # log_prob (normalizing scans), sample (the inverse ones)
    _, log_prob = model.sample_and_log_prob(jax.random.key(0), 2)
    return jnp.mean(model.log_prob(x)) + jnp.mean(log_prob)


def _glow():  # Repeat over ActNorm -> 1x1 conv (LU) -> coupling, in two levels
    x = np.random.default_rng(1).standard_normal((2, 4, 4, 2)).astype(np.float32)
    return (lambda: flows.Glow((4, 4, 2), num_scales=2, num_steps=2, hidden_channels=4,
                               rngs=nnx.Rngs(0)), x, _distribution_loss)


# every user of layer_scan: PixelCNN's and Gated PixelCNN's conv stacks, flows.Repeat (in
# Glow's levels and RealNVP's scan_couplings)
MODELS = {"pixelcnn": _pixelcnn, "gated_pixelcnn": _gated_pixelcnn,
          "repeat/couplings": _repeat_couplings, "glow": _glow}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_agree_unrolled_and_rolled(name):
    """The GPU/TPU program (rolled, forced on CPU with `layer_scan_mode`) and the CPU one."""
    make, x, loss_fn = MODELS[name]()
    graphdef, params, rest = _random_model(make, seed=3)
    loss = lambda params: loss_fn(nnx.merge(graphdef, params, rest), x)

    def value_and_grad(mode):  # a fresh jit, traced under the switch
        with layer_scan_mode(mode):
            lowered = jax.jit(jax.value_and_grad(loss)).lower(params)
        return lowered.compile()(params), lowered.as_text().count("stablehlo.while")

    # the stacks' loops are gone when unrolled (Glow's sampler keeps loops of its own)
    unrolled, unrolled_loops = value_and_grad("unrolled")
    rolled, rolled_loops = value_and_grad("rolled")
    assert rolled_loops > unrolled_loops, (rolled_loops, unrolled_loops)
    assert np.isfinite(unrolled[0]) and all(
        float(jnp.max(jnp.abs(g))) > 0 for g in jax.tree.leaves(unrolled[1]))
    for a, b in zip(jax.tree.leaves(unrolled), jax.tree.leaves(rolled)):
        scale = float(jnp.max(jnp.abs(b)))  # float32 rounding of the leaf's largest entry
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * max(scale, 1.0))


def test_switch_modes_environment_and_bad_values(monkeypatch):
    cpu = jax.default_backend() == "cpu"
    monkeypatch.delenv(layer_scan_module.ENV_VAR, raising=False)
    assert unroll_layers() == cpu
    monkeypatch.setenv(layer_scan_module.ENV_VAR, "rolled")
    assert not unroll_layers()
    with layer_scan_mode("unrolled"):  # the context wins over the environment
        assert unroll_layers()
        with layer_scan_mode("auto"):
            assert unroll_layers() == cpu
    assert not unroll_layers()
    monkeypatch.setenv(layer_scan_module.ENV_VAR, "loop")
    with pytest.raises(ValueError, match="JAXGEN_LAYER_SCAN must be one of"):
        unroll_layers()
    with pytest.raises(ValueError, match="layer_scan_mode must be one of"):
        with layer_scan_mode("roll"):
            pass


def test_rolled_glow_program_does_not_grow_with_depth():
    """The compile-time claim in program size: rolled, Glow's HLO is one traced step per
    level whatever K (K = 8 and K = 32 within 2% of each other), unrolled it is K copies."""
    x = jnp.zeros((2, 4, 4, 2), jnp.float32)

    def hlo_size(num_steps, mode):
        graphdef, params, rest = nnx.split(nnx.eval_shape(lambda: flows.Glow(
            (4, 4, 2), num_scales=2, num_steps=num_steps, hidden_channels=4,
            rngs=nnx.Rngs(0))), nnx.Param, ...)
        loss = lambda p, r: _distribution_loss(nnx.merge(graphdef, p, r), x)
        with layer_scan_mode(mode):
            return len(jax.jit(jax.grad(loss)).lower(params, rest).as_text())

    rolled = hlo_size(8, "rolled"), hlo_size(32, "rolled")
    unrolled = hlo_size(8, "unrolled"), hlo_size(32, "unrolled")
    assert rolled[1] <= 1.02 * rolled[0], rolled
    assert unrolled[1] >= 3 * unrolled[0], unrolled
