"""Samplers against exact answers: moments of Gaussians, acceptance vs step size, ESS."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import mcmc
from jaxgen.mcmc import diagnostics
from jaxgen.mcmc.run import sample_chain

DIM = 10


def _gaussian(eigenvalues, seed):
    """A Gaussian with covariance ``Q diag(eigenvalues) Q^T`` (random rotation), mean != 0."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(len(eigenvalues), len(eigenvalues))))
    cov = (q * np.asarray(eigenvalues)) @ q.T
    mean = rng.normal(size=len(eigenvalues))
    precision = jnp.asarray(np.linalg.inv(cov), jnp.float32)
    mu = jnp.asarray(mean, jnp.float32)

    def logdensity_fn(x):  # [D] -> scalar
        d = x - mu
        return -0.5 * d @ precision @ d

    return logdensity_fn, mean, cov


CORRELATED = _gaussian(np.linspace(0.5, 2.0, DIM), seed=0)

# name -> (kernel factory, chains, burn-in, samples, thin)
SAMPLERS = {
    "rwmh": (lambda f: mcmc.rwmh(f, 0.45), 400, 1000, 250, 8),
    "langevin": (lambda f: mcmc.langevin(f, 0.04), 400, 500, 250, 10),
    "sgld": (lambda f: mcmc.sgld(f, 0.04, np.sqrt(0.08), grad_clip=1e3), 400, 500, 250, 10),
    "mala": (lambda f: mcmc.mala(f, 0.25), 400, 300, 250, 4),
    "hmc": (lambda f: mcmc.hmc(f, 0.3, 5), 400, 100, 250, 1),
    "smmala": (lambda f: mcmc.smmala(f, 0.5), 200, 30, 250, 1),
    "hessian_langevin": (lambda f: mcmc.hessian_langevin(f, 0.05), 200, 100, 250, 4),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_sampler_recovers_mean_and_covariance(name):
    make, chains, burnin, num, thin = SAMPLERS[name]
    logdensity_fn, mean, cov = CORRELATED
    x0 = 3.0 * jax.random.normal(jax.random.key(1), (chains, DIM))  # overdispersed starts
    result = mcmc.run_chains(jax.random.key(2), make(logdensity_fn), x0, num,
                             num_burnin=burnin, thin=thin)
    samples = np.asarray(result.samples, np.float64)  # [C, S, D]
    assert samples.shape == (chains, num, DIM)
    flat = samples.reshape(-1, DIM)
    # Monte Carlo standard error of each mean from the ESS.
    ess = diagnostics.effective_sample_size(samples)
    se = np.sqrt(np.diag(cov) / ess)
    assert np.all(np.abs(flat.mean(0) - mean) < 5 * se + 0.02), (flat.mean(0) - mean, se)
    emp_cov = np.cov(flat.T)
    assert np.max(np.abs(emp_cov - cov)) < 0.12, np.max(np.abs(emp_cov - cov))
    assert np.max(diagnostics.split_rhat(samples)) < 1.1


def _chains_over_step_sizes(make_kernel, step_sizes, x0, num_samples, seed):
    """Runs the chains of every step size under one jit (step size traced: one compile)."""
    keys = jax.random.split(jax.random.key(seed), x0.shape[0])

    def one_step_size(eps):
        algo = make_kernel(eps)
        return jax.vmap(lambda k, x: sample_chain(k, algo, algo.init(x), num_samples)[:2])(
            keys, x0)

    return jax.jit(jax.vmap(one_step_size))(jnp.asarray(step_sizes, jnp.float32))


def test_mala_acceptance_decreases_with_step_size():
    logdensity_fn, mean, cov = CORRELATED
    x0 = jnp.asarray(np.random.default_rng(0).multivariate_normal(mean, cov, size=100),
                     jnp.float32)
    step_sizes = (0.01, 0.1, 0.5, 1.0, 2.0)
    _, info = _chains_over_step_sizes(lambda eps: mcmc.mala(logdensity_fn, eps), step_sizes,
                                      x0, 200, seed=3)
    rates = np.asarray(info.acceptance_rate).mean(axis=(1, 2))  # [len(step_sizes)]
    assert np.all(np.diff(rates) < 0), rates
    assert rates[0] > 0.97 and rates[-1] < 0.3, rates


def test_second_order_beats_mala_on_ill_conditioned_gaussian():
    """Condition number 100: MALA's step is set by the narrowest direction, the Hessian-
    preconditioned sampler's is not, so its ESS per step is far higher."""
    logdensity_fn, mean, cov = _gaussian(np.geomspace(1.0, 100.0, DIM), seed=5)
    x0 = jnp.asarray(np.random.default_rng(1).multivariate_normal(mean, cov, size=50),
                     jnp.float32)  # start in the stationary law: no burn-in needed
    num = 1000

    def ess_per_step(samples):  # [C, S, D] -> min over dimensions of ESS / (C S)
        return float(np.min(diagnostics.effective_sample_size(samples))) / samples[..., 0].size

    samples, _ = _chains_over_step_sizes(lambda eps: mcmc.mala(logdensity_fn, eps),
                                         (0.3, 0.6, 1.2), x0, num, seed=4)
    mala_best = max(ess_per_step(s) for s in np.asarray(samples))
    result = mcmc.run_chains(jax.random.key(4), mcmc.smmala(logdensity_fn, 0.5), x0, num)
    second = ess_per_step(np.asarray(result.samples))
    assert diagnostics.acceptance_rate(result.info) > 0.5
    assert second > 5 * mala_best, (second, mala_best)


def test_diagnostics_on_iid_and_ar1_chains():
    rng = np.random.default_rng(0)
    iid = rng.normal(size=(4, 2000, 3))
    np.testing.assert_allclose(diagnostics.effective_sample_size(iid), 8000, rtol=0.15)
    np.testing.assert_allclose(diagnostics.split_rhat(iid), 1.0, atol=0.01)
    # AR(1) with phi = 0.9 has integrated autocorrelation time (1 + phi) / (1 - phi) = 19.
    phi, x = 0.9, np.zeros((4, 20000))
    noise = rng.normal(size=x.shape) * np.sqrt(1 - phi ** 2)
    x[:, 0] = rng.normal(size=4)
    for t in range(1, x.shape[1]):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    np.testing.assert_allclose(diagnostics.effective_sample_size(x), 80000 / 19, rtol=0.2)
    # Chains stuck in different places: R-hat far above 1.
    shifted = iid + np.arange(4)[:, None, None]
    assert np.all(diagnostics.split_rhat(shifted) > 1.5)


def test_run_chains_burnin_thinning_and_shapes():
    algo = mcmc.rwmh(lambda x: -0.5 * jnp.sum(x ** 2), 1.0)
    x0 = jnp.full((3, 2), 50.0)
    result = mcmc.run_chains(jax.random.key(0), algo, x0, 7, num_burnin=500, thin=3)
    assert result.samples.shape == (3, 7, 2)
    assert result.info.acceptance_rate.shape == (3, 7)
    assert np.all(np.abs(np.asarray(result.samples)) < 6)  # burn-in left the far start
    with pytest.raises(ValueError, match="thin"):
        mcmc.run_chains(jax.random.key(0), algo, x0, 7, thin=0)


def test_samplers_reject_nan_proposals_and_keep_state():
    """A log density that is NaN away from the origin: MH kernels never move there."""
    f = lambda x: jnp.where(jnp.sum(x ** 2) < 1.0, -0.5 * jnp.sum(x ** 2), jnp.nan)
    for algo in (mcmc.rwmh(f, 2.0), mcmc.hmc(f, 1.0, 3)):
        result = mcmc.run_chains(jax.random.key(0), algo, jnp.zeros((4, 2)), 50)
        assert np.all(np.isfinite(result.samples))
        assert np.all(np.sum(np.asarray(result.samples) ** 2, -1) < 1.0)
