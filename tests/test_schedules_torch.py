"""gradtx schedules against torch.optim.lr_scheduler (fixtures from tests/torch_cases/schedules.py).

float64, 300+ steps, absolute tolerance 1e-12 (rates are at most 0.1, momenta at most 0.95).
"""

from __future__ import annotations

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_schedules.npz"
LR = 0.1
TOL = 1e-12


@pytest.fixture(scope="module")
def torch_values():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


# case -> the gradtx schedule with the parameters tests/torch_cases/schedules.py gave torch
CASES = {
    "StepLR": lambda: gradtx.exponential_decay(LR, 0.5, 30, staircase=True),
    "MultiStepLR": lambda: gradtx.piecewise_constant(LR, {50: 0.3, 120: 0.3, 200: 0.3}),
    "ConstantLR": lambda: gradtx.join([gradtx.constant(LR * 0.25), gradtx.constant(LR)], [40]),
    "LinearLR": lambda: gradtx.linear(LR * 0.05, LR * 1.0, 100),
    "LinearLR/down": lambda: gradtx.linear(LR * 1.0, LR * 0.1, 250),
    "ExponentialLR": lambda: gradtx.exponential_decay(LR, 0.99),
    "PolynomialLR": lambda: gradtx.polynomial(LR, 0.0, 2.0, 250),
    "CosineAnnealingLR": lambda: gradtx.cosine_decay(LR, 300, end_value=1e-3),
    "CosineAnnealingWarmRestarts/T_mult=1": lambda: gradtx.cosine_restarts(LR, 25, 1, 1e-3),
    "CosineAnnealingWarmRestarts/T_mult=2": lambda: gradtx.cosine_restarts(LR, 10, 2),
    "OneCycleLR/cos": lambda: gradtx.onecycle(300, LR),
    "OneCycleLR/cos/momentum": lambda: gradtx.onecycle_momentum(300),
    "OneCycleLR/linear": lambda: gradtx.onecycle(300, LR, 0.25, 10.0, 100.0, "linear"),
    "OneCycleLR/linear/momentum": lambda: gradtx.onecycle(
        300, LR, 0.25, 10.0, 100.0, "linear"
    ).momentum(0.8, 0.9),
    "OneCycleLR/three_phase": lambda: gradtx.onecycle(301, LR, three_phase=True),
    "OneCycleLR/three_phase/momentum": lambda: gradtx.onecycle_momentum(301, three_phase=True),
    "CyclicLR/triangular": lambda: gradtx.cyclic(0.01, LR, 20),
    "CyclicLR/triangular/momentum": lambda: gradtx.cyclic(0.9, 0.8, 20),
    "CyclicLR/triangular2": lambda: gradtx.cyclic(0.01, LR, 15, 25, "triangular2"),
    "CyclicLR/triangular2/momentum": lambda: gradtx.cyclic(0.9, 0.8, 15, 25, "triangular2"),
    "CyclicLR/exp_range": lambda: gradtx.cyclic(0.01, LR, 20, mode="exp_range", gamma=0.995),
    "CyclicLR/exp_range/momentum": lambda: gradtx.cyclic(
        0.95, 0.85, 20, mode="exp_range", gamma=0.995
    ),
    "SequentialLR/linear+cosine": lambda: gradtx.join(
        [gradtx.linear(LR * 0.1, LR, 20), gradtx.cosine_decay(LR, 280, end_value=1e-3)], [20]
    ),
    "SequentialLR/constant+exponential": lambda: gradtx.join(
        [gradtx.constant(LR * 0.5), gradtx.exponential_decay(LR, 0.98)], [10]
    ),
    "ChainedScheduler/constant*exponential": lambda: gradtx.multiply(
        gradtx.piecewise_constant(0.5, {50: 2.0}), gradtx.exponential_decay(LR, 0.99)
    ),
    "ChainedScheduler/linear*step": lambda: gradtx.multiply(
        gradtx.linear(0.1, 1.0, 20), gradtx.exponential_decay(LR, 0.5, 60, staircase=True)
    ),
}


def test_fixture_covers_every_case(torch_values):
    assert str(torch_values["torch_version"]).startswith("2.13.0")
    scheduled = {k for k in torch_values if not k.startswith("plateau/") and k != "torch_version"}
    assert scheduled == set(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, torch_values, x64):
    want = torch_values[case]
    assert want.dtype == np.float64 and want.shape[0] >= 300
    counts = jnp.arange(want.shape[0], dtype=jnp.int32)
    got = np.asarray(CASES[case]()(counts))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=case)


# --- ReduceLROnPlateau ------------------------------------------------------------------------

PLATEAU = {  # torch kwargs -> gradtx (lr 0.1: min_lr / lr = min_scale, eps / lr = eps)
    "min_rel": dict(
        mode="min", factor=0.7, patience=10, threshold=1e-3, cooldown=3, min_scale=1e-6 / LR
    ),
    "min_abs": dict(mode="min", factor=0.3, patience=8, threshold=0.01, threshold_mode="abs"),
    "max_rel": dict(mode="max", factor=0.5, patience=4, threshold=1e-3, cooldown=2),
}


@jax.jit
def plateau_scales(tx, losses):
    params = jnp.zeros((2,), losses.dtype)
    grads = jnp.ones((2,), losses.dtype)

    def step(state, loss):
        updates, state = tx._update(grads, state, params, loss=loss)
        return state, (state.scale, updates[0])

    _, (scales, applied) = jax.lax.scan(step, tx._init(params), losses)
    return scales, applied


@pytest.mark.parametrize("data", ["pos", "neg"])
@pytest.mark.parametrize("name", list(PLATEAU))
def test_reduce_on_plateau_matches_torch_rule(name, data, torch_values, x64):
    losses = torch_values[f"plateau/losses_{data}"]
    metric = losses if PLATEAU[name]["mode"] == "min" else -losses
    tx = gradtx.reduce_on_plateau(**PLATEAU[name], eps=1e-8 / LR)
    scales, applied = plateau_scales(tx, jnp.asarray(metric))
    got = LR * np.asarray(scales)
    # torch's bookkeeping with the threshold measured from |best| (gradtx's fix for negatives)
    fixed = torch_values[f"plateau/{name}/{data}/fixed"]
    np.testing.assert_allclose(got, fixed, rtol=0, atol=TOL)
    np.testing.assert_array_equal(np.asarray(applied), np.asarray(scales))  # u <- scale * u
    assert len(np.unique(fixed)) > 5  # the case exercises several reductions
    stock = torch_values[f"plateau/{name}/{data}/torch"]
    if np.all(metric >= 0):  # where torch's rule is right, gradtx is torch exactly
        np.testing.assert_allclose(got, stock, rtol=0, atol=TOL)


def test_torch_misses_plateaus_below_zero(torch_values):
    # The same curve shifted below zero: torch counts a flat negative loss as improving and
    # stops reducing; gradtx reduces exactly as it does for the positive curve.
    stock = torch_values["plateau/min_rel/neg/torch"]
    fixed_neg = torch_values["plateau/min_rel/neg/fixed"]
    fixed_pos = torch_values["plateau/min_rel/pos/fixed"]
    assert stock[-1] > fixed_neg[-1]
    np.testing.assert_array_equal(fixed_neg, fixed_pos)
