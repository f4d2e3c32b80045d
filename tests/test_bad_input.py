"""Bad input at every public boundary gives an error that names the problem, never a number.

Each case asserts the exception type and that the message names the argument or file and
what is wrong with it (``match=``), so a check that raises for the wrong reason fails too.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from jaxgen.baselines.diagonal_gaussian import DiagonalGaussian
from jaxgen.baselines.factorized_bernoulli import FactorizedBernoulli
from jaxgen.checks import check_count, check_finite, check_positive
from jaxgen.flows.models import build_flow
from jaxgen.training import OptimSettings, TrainSettings, evaluate_nll

KEY = jax.random.key(0)


@pytest.fixture(scope="module")
def flow():
    x = np.random.RandomState(0).randn(32, 2).astype(np.float32)
    return build_flow("realnvp", (2,), x, unit_interval=False, rngs=nnx.Rngs(0))


NON_FINITE = [np.nan, np.inf, -np.inf]


# ------------------------------------------------------------------------------------------
# The checks themselves.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_check_finite_names_owner_and_count(bad):
    x = np.zeros((3, 2), np.float32)
    x[1, 0] = x[2, 1] = bad
    with pytest.raises(ValueError, match=r"Owner\.method got 2 non-finite value\(s\).*\(3, 2\)"):
        check_finite(x, "Owner.method")
    check_finite(np.array([[2, 3]]), "ints are always finite")


@pytest.mark.parametrize("value, error, pattern", [
    (0, ValueError, r"n must be an integer >= 1, got 0"),
    (-3, ValueError, r"n must be an integer >= 1, got -3"),
    (2.5, TypeError, r"n must be an integer >= 1, got 2\.5 \(float\)"),
    (True, TypeError, r"n must be an integer >= 1, got True \(bool\)"),
    ("4", TypeError, r"n must be an integer >= 1, got '4' \(str\)"),
])
def test_check_count(value, error, pattern):
    with pytest.raises(error, match=pattern):
        check_count("n", value)


@pytest.mark.parametrize("value", [0, -1, np.nan, np.inf, "hot", None])
def test_check_positive(value):
    with pytest.raises(ValueError, match=r"temperature must be a finite number > 0"):
        check_positive("temperature", value)


# ------------------------------------------------------------------------------------------
# Flows.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_flow_log_prob_refuses_non_finite(flow, bad):
    x = np.array([[0.1, 0.2], [bad, 0.0]], np.float32)
    with pytest.raises(ValueError, match=r"RealNVP\.log_prob got 1 non-finite value"):
        flow.log_prob(x)


@pytest.mark.parametrize("n, error", [(-1, ValueError), (0, ValueError), (1.5, TypeError)])
def test_flow_sample_count(flow, n, error):
    with pytest.raises(error, match=r"RealNVP\.sample: n must be an integer >= 1"):
        flow.sample(KEY, n)


@pytest.mark.parametrize("temperature", [-1.0, -1e-9, np.nan, np.inf, "warm"])
def test_flow_sample_temperature(flow, temperature):
    with pytest.raises(ValueError, match=r"RealNVP\.sample: temperature must be a finite "
                                         r"number > 0"):
        flow.sample(KEY, 2, temperature=temperature)


def test_flow_log_prob_wrong_shape(flow):
    with pytest.raises(ValueError, match=r"expects .*\(2,\).*got shape \(4, 3\)"):
        flow.log_prob(np.zeros((4, 3), np.float32))


def test_build_flow_refuses_integer_data():
    with pytest.raises(ValueError, match=r"init_batch must hold float inputs.*got dtype int32 "
                                         r"\(dequantize discrete levels first\)"):
        build_flow("realnvp", (2,), np.zeros((8, 2), np.int32), unit_interval=False,
                   rngs=nnx.Rngs(0))


def test_build_flow_refuses_non_finite_init_batch():
    batch = np.zeros((8, 2), np.float32)
    batch[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"build_flow: init_batch got 1 non-finite"):
        build_flow("glow", (2,), batch, unit_interval=False, rngs=nnx.Rngs(0))


# ------------------------------------------------------------------------------------------
# Baselines.


@pytest.mark.parametrize("bad", NON_FINITE)
def test_gaussian_from_moments_refuses_non_finite(bad):
    data = np.zeros((5, 2))
    data[3, 1] = bad
    with pytest.raises(ValueError, match=r"DiagonalGaussian\.from_moments got 1 non-finite"):
        DiagonalGaussian.from_moments(data)


def test_gaussian_log_prob_refuses_non_finite():
    model = DiagonalGaussian.from_moments(np.random.RandomState(0).randn(10, 2))
    with pytest.raises(ValueError, match=r"DiagonalGaussian\.log_prob got 1 non-finite"):
        model.log_prob(np.array([[np.nan, 0.0]], np.float32))


@pytest.mark.parametrize("bad", [2, -1])
def test_bernoulli_refuses_levels(bad):
    model = FactorizedBernoulli((3,), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"FactorizedBernoulli expects levels in \[0, 2\)"):
        model.log_prob(np.array([[0, 1, bad]]))


@pytest.mark.parametrize("model_fn", [
    lambda: DiagonalGaussian((2,), rngs=nnx.Rngs(0)),
    lambda: FactorizedBernoulli((3,), rngs=nnx.Rngs(0)),
])
def test_baseline_sample_count(model_fn):
    with pytest.raises(ValueError, match=r"\.sample: n must be an integer >= 1, got 0"):
        model_fn().sample(KEY, 0)


# ------------------------------------------------------------------------------------------
# Evaluation and training settings.


def test_evaluate_nll_batch_size(flow):
    with pytest.raises(ValueError, match=r"evaluate_nll: batch_size must be an integer >= 1, "
                                         r"got 0"):
        evaluate_nll(flow, np.zeros((4, 2), np.float32), batch_size=0)


@pytest.mark.parametrize("bad", NON_FINITE)
def test_evaluate_nll_refuses_non_finite(flow, bad):
    data = np.zeros((4, 2), np.float32)
    data[2, 0] = bad
    with pytest.raises(ValueError, match=r"evaluate_nll: data got 1 non-finite"):
        evaluate_nll(flow, data)


def test_evaluate_nll_empty_split(flow):
    with pytest.raises(ValueError, match=r"empty split"):
        evaluate_nll(flow, np.zeros((0, 2), np.float32))


@pytest.mark.parametrize("field, value, pattern", [
    ("lr", -1e-3, r"optim\.lr must be positive and finite, got -0\.001"),
    ("lr", 0.0, r"optim\.lr must be positive and finite, got 0\.0"),
    ("lr", float("nan"), r"optim\.lr must be positive and finite, got nan"),
])
def test_optim_settings_refused(field, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        OptimSettings(**{field: value})


@pytest.mark.parametrize("field, value, pattern", [
    ("num_steps", 0, r"train\.num_steps must be positive, got 0"),
    ("batch_size", -4, r"train\.batch_size must be positive, got -4"),
    ("eval_batch_size", 0, r"train\.eval_batch_size must be positive"),
    ("ema_decay", 1.0, r"train\.ema_decay must be in \[0, 1\), got 1\.0"),
    ("patience", -1, r"train\.patience must be >= 0"),
    ("log_every", 3, r"train\.log_every=3 must be a non-negative multiple of "
                     r"train\.steps_per_call=2"),
])
def test_train_settings_refused(field, value, pattern):
    base = dict(steps_per_call=2, num_steps=10, log_every=2, eval_every=2)
    with pytest.raises(ValueError, match=pattern):
        TrainSettings(**{**base, field: value})


def test_train_settings_optim_type():
    with pytest.raises(TypeError, match=r"train\.optim must be an OptimSettings, got dict"):
        TrainSettings(optim={"lr": 1e-3})


def test_train_refuses_non_settings(flow):
    from jaxgen.training import train
    with pytest.raises(TypeError, match=r"settings must be a jaxgen\.training\.TrainSettings, "
                                        r"got dict"):
        train(flow, None, {"num_steps": 1})


def test_settings_are_frozen():
    settings = TrainSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.num_steps = 3  # type: ignore[misc]
