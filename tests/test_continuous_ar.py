"""Autoregressive models on real-valued data: continuous heads, MADE and the causal
transformer with ``num_levels=None``, and their experiments wiring.

References are independent of the code under test: a trapezoid integral of the density on a
grid (normalization), autodiff of the CDF against the density, the Jacobian of the
per-dimension log-densities (autoregressive order), the probability integral transform of
the samples against U(0, 1) (KS test), and a closed-form Gaussian fit of the training data
(what a trained model must beat).
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats
from flax import nnx

from experiments.build import build_experiment
from experiments.config_io import load_config
from experiments.run import run_experiment
from experiments.schema import ConfigError
from jaxgen.autoregressive import MADE, CausalTransformer, PixelCNN
from jaxgen.autoregressive.continuous_heads import (CONTINUOUS_HEADS, LOG_SCALE_MIN,
                                                    GaussianHead, GaussianMixtureHead,
                                                    LogisticMixtureHead)
from jaxgen.data.toy2d import sample_toy2d

NUM_MIXTURES = 3
MODELS = {
    "made": lambda shape, head, seed: MADE(shape, None, (16,), head=head,
                                           num_mixtures=NUM_MIXTURES, rngs=nnx.Rngs(seed)),
    "made_random_order": lambda shape, head, seed: MADE(
        shape, None, (32,), head=head, num_mixtures=NUM_MIXTURES, ordering="random",
        mask_seed=3, rngs=nnx.Rngs(seed)),
    "transformer": lambda shape, head, seed: CausalTransformer(
        shape, None, d_model=8, num_heads=2, num_layers=1, head=head,
        num_mixtures=NUM_MIXTURES, rngs=nnx.Rngs(seed)),
}
CASES = [(model, head) for model in ("made", "transformer") for head in CONTINUOUS_HEADS]


def _randomized(model, scale: float, seed: int = 0):
    """``model`` with every parameter redrawn from ``N(0, scale^2)`` (biases too, so the
    first dimension's density and every conditional are non-trivial; masks are not
    parameters and stay)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    leaves = [scale * jax.random.normal(k, leaf.shape, leaf.dtype)
              for k, leaf in zip(keys, leaves)]
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves), rest)


def _order(model) -> np.ndarray:
    return (np.asarray(model.orderings[...][0]) if isinstance(model, MADE)
            else np.arange(model.num_dims))


def _per_dim_log_prob(model, x):  # [B, D] -> [B, D], raster positions
    params = model.params_from_inputs(model.encode(x))
    return model.head.log_prob(params, x)


# ------------------------------------------------------------------------------------------
# Heads.


@pytest.mark.parametrize("head", [GaussianHead(), GaussianMixtureHead(3),
                                  LogisticMixtureHead(3)], ids=lambda h: type(h).__name__)
def test_head_cdf_is_the_integral_of_its_density(head):
    params = 1.5 * jax.random.normal(jax.random.key(0), (50, head.num_params))
    x = 3.0 * jax.random.normal(jax.random.key(1), (50,))
    density = jax.vmap(jax.grad(lambda p, v: head.cdf(p, v), argnums=1))(params, x)
    np.testing.assert_allclose(density, jnp.exp(head.log_prob(params, x)), rtol=2e-4,
                               atol=1e-7)
    np.testing.assert_allclose(head.cdf(params, jnp.full((50,), -1e4)), 0.0, atol=1e-6)
    np.testing.assert_allclose(head.cdf(params, jnp.full((50,), 1e4)), 1.0, atol=1e-6)


def test_log_scales_are_clamped():
    # a log-scale of -50 would put a density of ~e^50 at the mean; the clamp caps it at
    # N(0; 0, e^{2 LOG_SCALE_MIN})
    head = GaussianHead()
    log_p = head.log_prob(jnp.array([[0.0, -50.0]]), jnp.zeros((1,)))
    np.testing.assert_allclose(log_p, -LOG_SCALE_MIN - 0.5 * np.log(2 * np.pi), rtol=1e-6)


# ------------------------------------------------------------------------------------------
# Models: normalization, order, samples, temperature.


@pytest.mark.parametrize("model_name, head", CASES)
def test_density_integrates_to_one_on_a_2d_grid(model_name, head):
    # Trapezoid rule in t on the grid x = sinh(t), t in [-4.5, 4.5]^2 (x up to +-45): steps
    # of 0.0225 in x near 0, widening where the density is flat, so heavy logistic tails and
    # conditionals whose scale grows with |x_0| are covered; dx = cosh(t) dt.
    model = _randomized(MODELS[model_name]((2,), head, 0), scale=0.3, seed=1)
    t = jnp.linspace(-4.5, 4.5, 401)
    axis, jacobian = jnp.sinh(t), jnp.cosh(t)
    grid = jnp.stack(jnp.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2)
    density = jnp.exp(model.log_prob(grid)).reshape(t.size, t.size)
    weighted = density * jacobian[:, None] * jacobian[None, :]
    integral = jnp.trapezoid(jnp.trapezoid(weighted, t, axis=1), t)
    np.testing.assert_allclose(float(integral), 1.0, atol=1e-3)
    # the check is about a non-trivial density: conditionals that move with x_0 and scales
    # the grid resolves, where the mass is (|x| < 4)
    bulk = jnp.stack(jnp.meshgrid(*2 * [jnp.linspace(-4, 4, 41)], indexing="ij"), -1)
    params = model.params_from_inputs(model.encode(bulk.reshape(-1, 2)))  # [B, 2, P]
    log_s = params[..., 1] if head == "gaussian" else params[..., 2 * NUM_MIXTURES:]
    assert float(log_s.min()) > -2.0 and float(log_s.max()) < 2.0
    assert float(jnp.max(jnp.ptp(params[:, 1], axis=0))) > 0.2


@pytest.mark.parametrize("model_name", ["made_random_order", "transformer"])
@pytest.mark.parametrize("head", CONTINUOUS_HEADS)
def test_autoregressive_order_by_the_jacobian(model_name, head):
    model = _randomized(MODELS[model_name]((4,), head, 1), scale=0.5, seed=1)
    x = jax.random.normal(jax.random.key(2), (4,))
    jac_log_p = jax.jacfwd(lambda v: _per_dim_log_prob(model, v[None])[0])(x)  # [D, D]
    jac_params = jax.jacfwd(
        lambda v: model.params_from_inputs(model.encode(v[None]))[0])(x)  # [D, P, D]
    rank = np.argsort(_order(model))  # rank[j]: step at which position j is drawn
    earlier = rank[None, :] < rank[:, None]  # [i, j]: j drawn before i
    jac_log_p, jac_params = np.asarray(jac_log_p), np.abs(np.asarray(jac_params)).max(1)
    # theta_i reads x_j for j earlier only; log p_i reads those and x_i itself
    assert np.all(jac_params[~earlier] == 0.0)
    assert np.all(jac_log_p[~(earlier | np.eye(4, dtype=bool))] == 0.0)
    assert np.all(np.diag(jac_log_p) != 0.0)
    assert np.count_nonzero(jac_params[earlier]) >= earlier.sum() // 2  # not vacuous


@pytest.mark.parametrize("model_name", ["made_random_order", "transformer"])
@pytest.mark.parametrize("head", CONTINUOUS_HEADS)
def test_samples_follow_the_model(model_name, head):
    # Ancestral samples: each u_i = F(x_i | x_{<i}) (the model's conditional CDF at the
    # sample, in the model's order) is U(0, 1), independently over i.
    model = _randomized(MODELS[model_name]((3,), head, 2), scale=0.5, seed=2)
    x = model.sample(jax.random.key(3), 2000)
    assert x.dtype == jnp.float32 and x.shape == (2000, 3)
    u = np.asarray(model.head.cdf(model.params_from_inputs(model.encode(x)), x))  # [n, 3]
    for i in range(3):
        assert scipy.stats.kstest(u[:, i], "uniform").pvalue > 1e-3, i
    assert abs(np.corrcoef(u.T)[np.triu_indices(3, 1)]).max() < 0.1


@pytest.mark.parametrize("model_name", ["made", "transformer"])
def test_naive_and_fast_sampling_agree(model_name):
    model = _randomized(MODELS[model_name]((3,), "gaussian_mixture", 0), scale=0.5)
    key = jax.random.key(4)
    if model_name == "made":  # one mask: sample splits its key, sample_naive does not
        np.testing.assert_array_equal(
            model.sample(key, 64), model.fill_naive(jax.random.split(key)[1],
                                                    jnp.zeros((64, 3)), 0))
    else:  # KV-cached and full-pass decoding: the same draws
        np.testing.assert_allclose(model.sample(key, 64), model.sample_naive(key, 64),
                                   atol=1e-5)


@pytest.mark.parametrize("model_name", ["made", "transformer"])
def test_temperature_scales_the_gaussian_spread(model_name):
    model = _randomized(MODELS[model_name]((2,), "gaussian", 0), scale=0.5)
    key = jax.random.key(5)
    np.testing.assert_array_equal(model.sample(key, 8), model.sample(key, 8, temperature=1.0))
    x = model.sample(key, 3000, temperature=0.3)
    params = model.params_from_inputs(model.encode(x))  # [n, 2, 2]
    z = (x - params[..., 0]) * jnp.exp(-params[..., 1])  # standardized: N(0, T) per dim
    np.testing.assert_allclose(np.var(np.asarray(z), axis=0), 0.3, rtol=0.12)


@pytest.mark.parametrize("head", ["gaussian_mixture", "logistic_mixture"])
def test_low_temperature_draws_the_heaviest_component_near_its_mean(head):
    model = _randomized(MODELS["made"]((2,), head, 0), scale=1.0)
    x = model.sample(jax.random.key(6), 500, temperature=1e-4)
    logits, mu, log_s = jnp.split(model.params_from_inputs(model.encode(x)), 3, axis=-1)
    top = jnp.argmax(logits, axis=-1)[..., None]
    mean = jnp.take_along_axis(mu, top, -1)[..., 0]
    scale = jnp.exp(jnp.take_along_axis(log_s, top, -1)[..., 0])
    assert float(jnp.max(jnp.abs(x - mean) / scale)) < 0.1  # 10 sd at T: sqrt(T) = 0.01


def test_made_mixture_fits_a_bimodal_first_dimension():
    # x_0 = +-2 + N(0, 0.1^2): the best single Gaussian has NLL 0.5 log(2 pi e 4.01) = 2.11
    # nats, a 2-component mixture -0.19. MADE's first dimension reads biases only, so its
    # components separate only if they start apart (continuous_heads.initial_bias).
    model = MODELS["made"]((2,), "gaussian_mixture", 0)
    noise = jax.random.normal(jax.random.key(7), (512, 2))
    x = jnp.stack([jnp.where(jnp.arange(512) % 2 == 0, 2.0, -2.0) + 0.1 * noise[:, 0],
                   noise[:, 1]], axis=1)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def first_dim_nll(params):
        m = nnx.merge(graphdef, params, rest)
        return -jnp.mean(_per_dim_log_prob(m, x)[:, 0])

    optimizer = optax.adam(0.05)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(first_dim_nll)(params)
        updates, opt_state = optimizer.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    for _ in range(300):
        params, opt_state, loss = step(params, opt_state)
    assert float(first_dim_nll(params)) < 1.0


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), "warm"])
def test_temperature_must_be_a_finite_positive_number(temperature):
    made = MODELS["made"]((2,), "gaussian_mixture", 0)
    transformer = MODELS["transformer"]((2,), "logistic_mixture", 0)
    for sample in (made.sample, made.sample_naive, transformer.sample,
                   transformer.sample_naive):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            sample(jax.random.key(0), 4, temperature=temperature)
    for head in (GaussianHead(), GaussianMixtureHead(2), LogisticMixtureHead(2)):
        with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
            head.sample(jax.random.key(0), jnp.zeros((4, head.num_params)), temperature)


# ------------------------------------------------------------------------------------------
# Bad input.


def test_heads_and_data_must_agree():
    with pytest.raises(ValueError, match="models discrete levels but num_levels=None"):
        MADE((2,), None, (8,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="density over real values but num_levels=17"):
        CausalTransformer((2,), 17, head="gaussian", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="takes discrete levels only"):
        PixelCNN((4, 4, 1), 17, head="gaussian_mixture", rngs=nnx.Rngs(0))
    continuous = MODELS["made"]((2,), "gaussian", 0)
    with pytest.raises(TypeError, match="continuous head GaussianHead models real values and "
                                        "expects floating data, got dtype int32"):
        continuous.log_prob(jnp.zeros((3, 2), jnp.int32))
    with pytest.raises(ValueError, match="non-finite"):
        continuous.log_prob(jnp.array([[0.0, jnp.nan]]))
    discrete = MADE((2,), 17, (8,), rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="integer level indices, got dtype float32.*"
                                        "num_levels=None and a continuous head"):
        discrete.log_prob(jnp.zeros((3, 2), jnp.float32))


def test_experiments_refuse_a_head_that_does_not_fit_the_data(tmp_path):
    config = load_config("made_mog_8gaussians")
    config.model.head = "auto"
    with pytest.raises(ConfigError, match="config.model.head='auto' models discrete levels.*"
                                          "config.model.head to a continuous head"):
        build_experiment(config)
    config = load_config("made_digits")
    config.model.head = "gaussian_mixture"
    with pytest.raises(ConfigError, match="config.model.head='gaussian_mixture' is a density "
                                          "over real values but the data are discrete"):
        build_experiment(config)
    config = load_config("transformer_mog_8gaussians")
    config.model.scheduled_sampling = "linear"
    with pytest.raises(ConfigError, match="config.model.scheduled_sampling='none'"):
        build_experiment(config)


# ------------------------------------------------------------------------------------------
# End to end.


def test_made_trains_on_8gaussians_end_to_end(tmp_path):
    config = load_config("made_mog_8gaussians")
    config.data.update(num_train=4096, num_valid=512, num_test=1024)
    config.model.hidden_sizes = (32, 32)
    config.train.update(num_steps=300, steps_per_call=100, log_every=100, eval_every=300,
                        progress=False)
    config.sampler.update(num_samples=16, timing_repeats=1)
    config.eval.update(num_plot_samples=64)
    results = run_experiment(config, str(tmp_path / "run"))
    nll = results["test_nll_nats"]
    assert np.isfinite(nll)
    # an independent bar: the entropy of the best Gaussian fit of 8gaussians (~4.25 nats),
    # in closed form from a large fresh sample
    points = sample_toy2d("8gaussians", 50_000, 123)
    gaussian_nll = 0.5 * np.linalg.slogdet(2 * np.pi * np.e * np.cov(points.T))[1]
    assert nll < gaussian_nll - 0.5, (nll, gaussian_nll)
    assert (tmp_path / "run" / "samples.png").exists()
