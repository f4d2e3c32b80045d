"""MADE with direct input-to-output connections, orderings, ensembles and input checks."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxgen.autoregressive import MADE, connectivity_agnostic_loss
from tests.testing import assert_chisquare_fit, enumerate_grid


def _rngs():
    return nnx.Rngs(0)


def _randomize_direct(model: MADE, seed: int = 1) -> None:
    """Makes the direct term large, so a leak through it could not hide behind the MLP."""
    kernel = model.direct.kernel
    kernel[...] = jax.random.normal(jax.random.key(seed), kernel.shape)


def _jacobian_dependencies(model: MADE, mask_index: int, seed: int) -> np.ndarray:
    """``dep[i, j]``: d theta_i / d input_j != 0 (flat positions, all heads/features)."""
    d = model.num_dims
    x = jax.random.randint(jax.random.key(seed), (3, *model.event_shape), 0, model.num_levels)
    inputs = model.encode(x)  # [N, *E, F]
    fn = lambda v: model.params_from_inputs(v[None], mask_index)[0]  # [*E, F] -> [*E, P]
    jac = jax.vmap(jax.jacrev(fn))(inputs)  # [N, *E, P, *E, F]
    jac = np.asarray(jac).reshape(3, d, -1, d, inputs.shape[-1])
    return np.abs(jac).max(axis=(0, 2, 4)) > 0  # [D, D]


@pytest.mark.parametrize("ordering,num_levels", [("natural", 2), ("random", 2),
                                                 ("random", 3)])
def test_autoregressive_by_jacobian_with_direct_connections(ordering, num_levels):
    """For every mask m: theta_i depends on input j only if rank_m(j) < rank_m(i), and the
    direct term alone connects every such pair (the strictly lower triangle is full)."""
    model = MADE((3, 3, 1), num_levels, (20, 20), ordering=ordering, num_masks=3,
                 mask_seed=2, direct_connections=True, rngs=_rngs())
    _randomize_direct(model)
    d = model.num_dims
    for m in range(model.num_masks):
        order = np.asarray(model.orderings[...][m])
        if ordering == "natural":
            np.testing.assert_array_equal(order, np.arange(d))
        else:
            assert not np.array_equal(order, np.arange(d))
        rank = np.empty(d, int)
        rank[order] = np.arange(d)
        allowed = rank[None, :] < rank[:, None]  # [i, j]
        dep = _jacobian_dependencies(model, m, seed=m)
        assert not np.any(dep & ~allowed), (m, np.argwhere(dep & ~allowed)[:5])
        np.testing.assert_array_equal(dep, allowed)  # the direct term sees all the past


def test_direct_connections_off_keeps_the_old_model():
    """The default (no direct term) has the same parameters as before the option existed."""
    plain = MADE((3, 3, 1), 2, (16,), rngs=_rngs())
    direct = MADE((3, 3, 1), 2, (16,), direct_connections=True, rngs=_rngs())
    assert plain.direct is None and not plain.direct_connections
    for a, b in zip(plain.layers, direct.layers):
        np.testing.assert_array_equal(a.kernel[...], b.kernel[...])
    assert direct.direct.bias is None and direct.direct.kernel.shape == (9, 9)
    x = jnp.asarray(np.random.default_rng(0).integers(0, 2, (4, 3, 3, 1)), jnp.int32)
    _randomize_direct(direct)
    assert not np.allclose(plain.log_prob(x), direct.log_prob(x))


@pytest.mark.parametrize("ordering", ["natural", "random"])
def test_direct_connection_ensemble_sums_to_one_on_3x3_binary_images(ordering):
    images = np.array(list(itertools.product([0, 1], repeat=9)), np.int32).reshape(-1, 3, 3, 1)
    model = MADE((3, 3, 1), 2, (16, 16), ordering=ordering, num_masks=4, mask_seed=3,
                 direct_connections=True, rngs=_rngs())
    _randomize_direct(model)
    log_prob = np.asarray(jax.jit(model.log_prob)(images), np.float64)  # [512]
    assert log_prob.shape == (512,)
    assert abs(np.exp(log_prob).sum() - 1.0) < 1e-5
    per_mask = np.asarray(model.log_prob_per_mask(images), np.float64)  # [M, 512]
    np.testing.assert_allclose(np.exp(per_mask).sum(axis=1), 1.0, atol=1e-5)
    # The ensemble is the mean of the members' probabilities, and members differ.
    np.testing.assert_allclose(np.exp(log_prob), np.exp(per_mask).mean(axis=0), rtol=1e-4)
    assert np.abs(per_mask[0] - per_mask[1]).max() > 1e-3


def test_connectivity_agnostic_loss_uses_one_mask_per_key():
    """Each key's loss is exactly one member's NLL, and the members are drawn uniformly:
    which member is read off the loss value, not re-drawn with the implementation's key use."""
    model = MADE((3, 3, 1), 2, (16,), ordering="random", num_masks=4,
                 direct_connections=True, rngs=_rngs())
    x = jnp.asarray(np.random.default_rng(1).integers(0, 2, (8, 3, 3, 1)), jnp.int32)
    per_mask = -np.asarray(model.log_prob_per_mask(x)).mean(axis=1)  # [M]
    gaps = np.abs(per_mask[:, None] - per_mask[None, :])[~np.eye(4, dtype=bool)]
    assert gaps.min() > 1e-2, per_mask  # the members are told apart by their NLL
    keys = jax.random.split(jax.random.key(0), 400)
    loss_fn = jax.jit(jax.vmap(lambda k: connectivity_agnostic_loss(model, x, k)[0]))
    losses = np.asarray(loss_fn(keys))  # [400]
    distance = np.abs(losses[:, None] - per_mask[None, :])  # [400, M]
    chosen = distance.argmin(axis=1)  # [400]
    np.testing.assert_allclose(losses, per_mask[chosen], rtol=1e-5)  # one member, exactly
    assert_chisquare_fit(chosen, np.full(4, 0.25))  # m ~ U{0..3}


def test_dropout_acts_only_in_the_training_loss_and_keeps_masks():
    model = MADE((3, 3, 1), 2, (32, 32), dropout=0.5, direct_connections=True, rngs=_rngs())
    plain = MADE((3, 3, 1), 2, (32, 32), direct_connections=True, rngs=_rngs())
    x = jnp.asarray(np.random.default_rng(2).integers(0, 2, (8, 3, 3, 1)), jnp.int32)
    np.testing.assert_allclose(model.log_prob(x), plain.log_prob(x), rtol=1e-6)
    losses = [float(connectivity_agnostic_loss(model, x, jax.random.key(s))[0]) for s in (0, 1)]
    assert losses[0] != losses[1] and all(np.isfinite(losses))
    # A dropped unit removes paths, never adds one: still autoregressive under dropout.
    fn = lambda v: model.params_from_inputs(v[None], 0, jax.random.key(3))[0]
    jac = jax.jacfwd(fn)(jnp.ones((3, 3, 1))).reshape(9, 9)  # [out d, in j]
    assert np.all(np.abs(np.triu(np.asarray(jac))) == 0)


def _ternary_ensemble() -> MADE:
    model = MADE((2, 2, 1), 3, (16,), ordering="random", num_masks=3,
                 direct_connections=True, rngs=_rngs())
    _randomize_direct(model)  # far from uniform, and the members differ
    return model


def test_ensemble_samples_are_valid_and_deterministic():
    """Samples depend only on (parameters, key): two separately built and jitted copies of
    the model agree for one key; another key gives other samples."""
    model_a, model_b = _ternary_ensemble(), _ternary_ensemble()
    sample_a = jax.jit(lambda k: model_a.sample(k, 64))
    sample_b = jax.jit(lambda k: model_b.sample(k, 64))
    a, b = sample_a(jax.random.key(4)), sample_b(jax.random.key(4))
    assert a.shape == (64, 2, 2, 1) and a.dtype == jnp.int32
    assert a.min() >= 0 and a.max() < 3
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_a(jax.random.key(5)))


def test_ensemble_samples_follow_the_enumerated_ensemble_distribution():
    """Ancestral samples (a member per sample, then its ordering) against the ensemble's
    probabilities of all 3^4 images: a chi-square fit (a single member's table fails it)."""
    model = _ternary_ensemble()
    grid = enumerate_grid((2, 2, 1), 3)  # [81, 2, 2, 1], row r = base-3 digits of r
    probs = np.exp(np.asarray(jax.jit(model.log_prob)(grid), np.float64))  # [81]
    assert abs(probs.sum() - 1.0) < 1e-5
    samples = np.asarray(jax.jit(lambda k: model.sample(k, 20_000))(jax.random.key(6)))
    index = samples.reshape(-1, 4) @ 3 ** np.arange(3, -1, -1)  # [20000], the grid row
    assert_chisquare_fit(index, probs)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(ordering="reversed"), ValueError, "ordering"),
    (dict(num_masks=0), ValueError, "num_masks"),
    (dict(num_masks=2.5), TypeError, "num_masks"),
    (dict(hidden_sizes=500), TypeError, "hidden_sizes"),
    (dict(hidden_sizes=(16, 0)), ValueError, r"hidden_sizes\[1\]"),
    (dict(hidden_sizes=(), direct_connections=True), ValueError, "direct_connections"),
    (dict(direct_connections="yes"), TypeError, "direct_connections"),
    (dict(num_levels=1), ValueError, "num_levels"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout="0.1"), TypeError, "dropout"),
    (dict(mask_seed=-1), ValueError, "mask_seed"),
    (dict(event_shape=(3, 0, 1)), ValueError, r"event_shape\[1\]"),
    (dict(head="bernoulli", num_levels=3), ValueError, "Bernoulli"),
])
def test_bad_constructor_arguments_raise_clear_errors(kwargs, error, match):
    args = dict(event_shape=(3, 3, 1), num_levels=2, hidden_sizes=(16,))
    args.update(kwargs)
    with pytest.raises(error, match=match):
        MADE(args.pop("event_shape"), args.pop("num_levels"), args.pop("hidden_sizes"),
             **args, rngs=_rngs())
