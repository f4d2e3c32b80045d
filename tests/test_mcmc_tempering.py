"""Gibbs-with-gradients, discrete MALA and parallel tempering against exact answers:
enumerated Boltzmann machines (total variation) and a bimodal density (mode weights)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxgen import mcmc
from jaxgen.energy import all_binary_states
from jaxgen.mcmc.discrete import discrete_mala, gibbs_with_gradients
from jaxgen.mcmc.tempering import (check_ladder, geometric_ladder, parallel_tempering,
                                   swap_acceptance, tempered_kernel_fn)
from tests.test_energy_boltzmann import _expected_tv_noise, _fvbm, _tv
from tests.testing import random_rbm

NUM_CHAINS, NUM_SAMPLES = 1000, 100  # 1e5 draws: i.i.d. TV noise ~0.009 on these models


@pytest.fixture(scope="module")
def fvbm():
    model = _fvbm()
    probs = np.asarray(jax.nn.softmax(-model.energy(all_binary_states(10))), np.float64)
    logdensity = lambda x: -model._energy_flat(x.reshape(1, -1).astype(jnp.float32))[0]
    return logdensity, probs


@pytest.fixture(scope="module")
def rbm():
    model = random_rbm()
    probs = np.asarray(jax.nn.softmax(-model.free_energy(all_binary_states(10))), np.float64)
    return model, probs


def _x0(num_rungs=None):
    x0 = jax.random.bernoulli(jax.random.key(0), 0.5, (NUM_CHAINS, 10)).astype(jnp.int32)
    return x0 if num_rungs is None else jnp.broadcast_to(x0[:, None], (NUM_CHAINS, num_rungs, 10))


def _check_tv(samples, probs, label):
    samples = np.asarray(samples).reshape(-1, 10)
    assert samples.shape[0] == NUM_CHAINS * NUM_SAMPLES
    assert _expected_tv_noise(probs, samples.shape[0]) < 0.012  # the bound is meaningful
    tv = _tv(samples, probs)
    print(f"{label}: TV = {tv:.4f}")
    assert tv < 0.02, (label, tv)


def test_gibbs_with_gradients_matches_enumeration(fvbm, rbm):
    logdensity, probs = fvbm
    result = mcmc.run_chains(jax.random.key(1), gibbs_with_gradients(logdensity), _x0(),
                             NUM_SAMPLES, num_burnin=100, thin=5)
    _check_tv(result.samples, probs, "GWG, 10-unit FVBM")
    assert 0.3 < float(np.mean(result.info.acceptance_rate)) < 1.0
    model, rbm_probs = rbm
    free = lambda v: -model.free_energy_flat(v.reshape(1, -1).astype(jnp.float32))[0]
    result = mcmc.run_chains(jax.random.key(3), gibbs_with_gradients(free), _x0(),
                             NUM_SAMPLES, num_burnin=100, thin=5)
    _check_tv(result.samples, rbm_probs, "GWG, RBM 10x6")


def test_parallel_tempering_with_discrete_mala_matches_enumeration(fvbm, rbm):
    logdensity, probs = fvbm
    # discrete MALA rungs: the PT run checks both (DMALA alone is PT with one rung)
    kernel_fn, tempered = tempered_kernel_fn(lambda f: discrete_mala(f, 1.0), logdensity)
    pt = parallel_tempering(kernel_fn, tempered, geometric_ladder(4, 0.3))
    result = mcmc.run_chains(jax.random.key(4), pt, _x0(4), NUM_SAMPLES, num_burnin=100,
                             thin=3, position_fn=lambda s: s.position[0])
    _check_tv(result.samples, probs, "PT (discrete-MALA rungs), 10-unit FVBM")
    assert 0.3 < float(np.mean(result.info.kernel_info.acceptance_rate[..., 0])) < 1.0
    acceptance = swap_acceptance(result.info)
    assert acceptance.shape == (3,) and np.all((acceptance > 0.2) & (acceptance < 1.0))
    walkers = np.asarray(result.final_state.walker)  # [C, R]: a permutation per chain
    np.testing.assert_array_equal(np.sort(walkers, axis=1), np.tile(np.arange(4), (NUM_CHAINS, 1)))
    assert np.asarray(result.final_state.round_trips).mean() > 1

    model, _ = rbm
    # the tempered marginal at beta = 1 is the RBM's -F(v); its Gibbs kernel is the RBM's
    v = all_binary_states(10)[:64]
    np.testing.assert_allclose(model.tempered_log_marginal(v, 1.0), -model.free_energy_flat(v),
                               rtol=1e-5, atol=1e-5)


def test_parallel_tempering_recovers_mode_weights_where_mala_does_not():
    """``0.3 N(-4, 0.5^2) + 0.7 N(4, 0.5^2)``: a 32-nat barrier. Chains start uniform on
    [-6, 6]; MALA keeps each chain in its starting mode (left weight ~ 0.5 +- sampling), PT
    (6 rungs down to beta = 0.03, MALA moves with step 0.1 / beta) gets 0.3 within 0.02."""
    weight = 0.3

    def logdensity(x):
        x = x[0]
        return jnp.logaddexp(jnp.log(weight) - 0.5 * ((x + 4) / 0.5) ** 2,
                             jnp.log(1 - weight) - 0.5 * ((x - 4) / 0.5) ** 2)

    betas = geometric_ladder(6, 0.03)
    pt = parallel_tempering(lambda b: mcmc.mala(lambda x: b * logdensity(x), 0.1 / b),
                            lambda x, b: b * logdensity(x), betas)
    x0 = jax.random.uniform(jax.random.key(0), (64, 6, 1), minval=-6, maxval=6)
    result = mcmc.run_chains(jax.random.key(1), pt, x0, 800, num_burnin=100, thin=2,
                             position_fn=lambda s: s.position[0])
    pt_weight = float(np.mean(np.asarray(result.samples) < 0))
    mala = mcmc.run_chains(jax.random.key(1), mcmc.mala(logdensity, 0.1), x0[:, 0], 800,
                           num_burnin=100, thin=2)
    mala_weight = float(np.mean(np.asarray(mala.samples) < 0))
    print(f"left-mode weight (true {weight}): PT {pt_weight:.4f}, MALA {mala_weight:.4f}")
    assert abs(pt_weight - weight) < 0.02
    assert abs(mala_weight - weight) > 0.05
    assert np.all(swap_acceptance(result.info) > 0.5)


def test_ladder_and_positions_are_checked():
    with pytest.raises(ValueError, match="start at 1"):
        check_ladder([0.5, 0.1])
    with pytest.raises(ValueError, match="decrease"):
        check_ladder([1.0, 1.0, 0.2])
    with pytest.raises(ValueError, match="R >= 2"):
        check_ladder([1.0])
    with pytest.raises(ValueError, match="step_size"):
        discrete_mala(lambda x: -x.sum(), 0.0)
    with pytest.raises(ValueError, match="min_beta"):
        geometric_ladder(4, 0.0)
    pt = parallel_tempering(*tempered_kernel_fn(lambda f: mcmc.mala(f, 0.1), lambda x: -x @ x),
                            geometric_ladder(3, 0.1))
    with pytest.raises(ValueError, match=r"R=3"):
        pt.init(jnp.zeros((4, 2)))


def test_pt_training_objective_negatives_follow_the_rbm(rbm):
    """`PersistentTempering` (``config.model.loss='pt'``), parameters fixed: the cold rungs
    of its persistent ladders (4 rungs down to beta = 0.3, tempered block Gibbs, 2 PT steps
    per loss call), read after each of 100 calls past 25 of burn-in, have the RBM's
    enumerated law (TV < 0.02)."""
    from jaxgen.energy.objectives import PersistentTempering

    model, probs = rbm
    data = jnp.asarray(jax.random.bernoulli(jax.random.key(7), 0.3, (500, 10)), jnp.int32)
    objective = PersistentTempering(num_steps=2, num_chains=NUM_CHAINS, num_rungs=4,
                                    min_beta=0.3)
    extra = objective.init(model, np.asarray(data), jax.random.key(8))
    assert extra["pt"].position.shape == (NUM_CHAINS, 4, 10)

    def call(extra, key):
        loss, extra, metrics = objective.loss(model, data[:100], key, extra)
        return extra, (extra["pt"].position[:, 0], loss, metrics["swap_acceptance"])

    keys = jax.random.split(jax.random.key(9), 25 + NUM_SAMPLES)
    extra, (cold, loss, acceptance) = jax.jit(lambda e: jax.lax.scan(call, e, keys))(extra)
    _check_tv(cold[25:], probs, "PT training negatives (tempered block Gibbs), RBM 10x6")
    assert np.all(np.isfinite(np.asarray(loss)))
    assert 0.2 < float(np.mean(acceptance)) < 1.0
    assert float(np.sum(extra["pt"].round_trips)) > 0
    with pytest.raises(ValueError, match="BernoulliRBM"):
        objective.init(object(), np.asarray(data), jax.random.key(0))


def test_exchange_swaps_exactly_the_accepted_pairs():
    """`_exchange` (a gather along the rung axis) against swapping the accepted disjoint
    pairs one by one in Python, for every even/odd pattern of accepted pairs on 6 rungs."""
    from jaxgen.mcmc.tempering import _exchange

    a = np.arange(6 * 3, dtype=np.int32).reshape(6, 3)
    for parity in (0, 1):
        pairs = [r for r in range(5) if r % 2 == parity]
        for bits in range(2 ** len(pairs)):
            accepted = np.zeros(5, bool)
            accepted[[r for i, r in enumerate(pairs) if bits >> i & 1]] = True
            expected = a.copy()
            for r in np.flatnonzero(accepted):
                expected[[r, r + 1]] = expected[[r + 1, r]]
            swap_up = np.append(accepted, False)
            swap_down = np.insert(accepted, 0, False)
            np.testing.assert_array_equal(_exchange(jnp.asarray(a), swap_up, swap_down),
                                          expected)
