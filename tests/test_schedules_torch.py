"""gradtx.torch's lr schedulers (and the top-level schedules documented as torch's) against
torch.optim.lr_scheduler (fixtures from tests/torch_cases/schedules.py; torch is not imported).

float64, 300+ steps. The torch-named functions must match at 1e-10 absolute (rates are at most
0.1, momenta at most 0.95); the top-level equivalents documented in the docstrings keep the
tighter 1e-12 they always met.
"""

from __future__ import annotations

import inspect
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.torch as gt

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_schedules.npz"
LR = 0.1
TOL = 1e-10
TOL_TOP = 1e-12


@pytest.fixture(scope="module")
def torch_values():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def cycle_scale(cycle):
    """tests/torch_cases/schedules.py's scale_fn of the cycle number."""
    return 0.8 ** (cycle - 1)


def iteration_scale(count):
    """tests/torch_cases/schedules.py's scale_fn of the iteration count."""
    return 1.0 / (1.0 + 0.01 * count)


def one_cycle_lr_cos():
    return gt.one_cycle_lr(LR, total_steps=300)


def one_cycle_lr_linear():
    return gt.one_cycle_lr(
        LR,
        total_steps=300,
        pct_start=0.25,
        anneal_strategy="linear",
        div_factor=10.0,
        final_div_factor=100.0,
        base_momentum=0.8,
        max_momentum=0.9,
    )


def cyclic_lr_triangular2():
    return gt.cyclic_lr(0.01, LR, step_size_up=15, step_size_down=25, mode="triangular2")


def cyclic_lr_exp_range():
    return gt.cyclic_lr(
        0.01,
        LR,
        step_size_up=20,
        mode="exp_range",
        gamma=0.995,
        base_momentum=0.85,
        max_momentum=0.95,
    )


# fixture case -> gradtx.torch's function called with the arguments tests/torch_cases gave torch
CASES = {
    "StepLR": lambda: gt.step_lr(LR, step_size=30, gamma=0.5),
    "MultiStepLR": lambda: gt.multi_step_lr(LR, milestones=[50, 120, 200], gamma=0.3),
    "MultiStepLR/repeated": lambda: gt.multi_step_lr(LR, milestones=[80, 30, 0, 30], gamma=0.5),
    "ConstantLR": lambda: gt.constant_lr(LR, factor=0.25, total_iters=40),
    "LinearLR": lambda: gt.linear_lr(LR, start_factor=0.05, end_factor=1.0, total_iters=100),
    "LinearLR/down": lambda: gt.linear_lr(LR, start_factor=1.0, end_factor=0.1, total_iters=250),
    "ExponentialLR": lambda: gt.exponential_lr(LR, gamma=0.99),
    "PolynomialLR": lambda: gt.polynomial_lr(LR, total_iters=250, power=2.0),
    "CosineAnnealingLR": lambda: gt.cosine_annealing_lr(LR, T_max=300, eta_min=1e-3),
    "CosineAnnealingLR/periodic": lambda: gt.cosine_annealing_lr(LR, T_max=40, eta_min=0.01),
    "CosineAnnealingWarmRestarts/T_mult=1": lambda: gt.cosine_annealing_warm_restarts(
        LR, T_0=25, T_mult=1, eta_min=1e-3
    ),
    "CosineAnnealingWarmRestarts/T_mult=2": lambda: gt.cosine_annealing_warm_restarts(
        LR, T_0=10, T_mult=2
    ),
    "OneCycleLR/cos": one_cycle_lr_cos,
    "OneCycleLR/cos/momentum": lambda: one_cycle_lr_cos().momentum(),
    "OneCycleLR/cos/last": one_cycle_lr_cos,
    "OneCycleLR/cos/last/momentum": lambda: one_cycle_lr_cos().momentum(),
    "OneCycleLR/linear": one_cycle_lr_linear,
    "OneCycleLR/linear/momentum": lambda: one_cycle_lr_linear().momentum(),
    "OneCycleLR/three_phase": lambda: gt.one_cycle_lr(LR, total_steps=301, three_phase=True),
    "OneCycleLR/three_phase/momentum": lambda: gt.one_cycle_lr(
        LR, total_steps=301, three_phase=True
    ).momentum(),
    "CyclicLR/triangular": lambda: gt.cyclic_lr(0.01, LR, step_size_up=20),
    "CyclicLR/triangular/momentum": lambda: gt.cyclic_lr(0.01, LR, step_size_up=20).momentum(),
    "CyclicLR/triangular2": cyclic_lr_triangular2,
    "CyclicLR/triangular2/momentum": lambda: cyclic_lr_triangular2().momentum(),
    "CyclicLR/exp_range": cyclic_lr_exp_range,
    "CyclicLR/exp_range/momentum": lambda: cyclic_lr_exp_range().momentum(),
    "CyclicLR/scale_fn/cycle": lambda: gt.cyclic_lr(
        0.01, LR, step_size_up=15, step_size_down=10, scale_fn=cycle_scale
    ),
    "CyclicLR/scale_fn/cycle/momentum": lambda: gt.cyclic_lr(
        0.01, LR, step_size_up=15, step_size_down=10, scale_fn=cycle_scale
    ).momentum(),
    "CyclicLR/scale_fn/iterations": lambda: gt.cyclic_lr(
        0.01, LR, step_size_up=12, scale_fn=iteration_scale, scale_mode="iterations"
    ),
    "CyclicLR/scale_fn/iterations/momentum": lambda: gt.cyclic_lr(
        0.01, LR, step_size_up=12, scale_fn=iteration_scale, scale_mode="iterations"
    ).momentum(),
    # torch's defaults: every argument that has one left out
    "defaults/StepLR": lambda: gt.step_lr(LR, 7),
    "defaults/MultiStepLR": lambda: gt.multi_step_lr(LR, [3, 9]),
    "defaults/ConstantLR": lambda: gt.constant_lr(LR),
    "defaults/LinearLR": lambda: gt.linear_lr(LR),
    "defaults/ExponentialLR": lambda: gt.exponential_lr(LR, 0.97),
    "defaults/PolynomialLR": lambda: gt.polynomial_lr(LR),
    "defaults/CosineAnnealingLR": lambda: gt.cosine_annealing_lr(LR, 25),
    "defaults/CosineAnnealingWarmRestarts": lambda: gt.cosine_annealing_warm_restarts(LR, 25),
    "defaults/CyclicLR": lambda: gt.cyclic_lr(0.01, LR),
    "defaults/CyclicLR/momentum": lambda: gt.cyclic_lr(0.01, LR).momentum(),
    "defaults/OneCycleLR": lambda: gt.one_cycle_lr(LR, epochs=3, steps_per_epoch=100),
    "defaults/OneCycleLR/momentum": lambda: gt.one_cycle_lr(
        LR, epochs=3, steps_per_epoch=100
    ).momentum(),
    # torch's combinators: SequentialLR is join_schedules; ChainedScheduler multiplies factors
    "SequentialLR/linear+cosine": lambda: gradtx.join_schedules(
        [
            gt.linear_lr(LR, start_factor=0.1, end_factor=1.0, total_iters=20),
            gt.cosine_annealing_lr(LR, T_max=280, eta_min=1e-3),
        ],
        [20],
    ),
    "SequentialLR/constant+exponential": lambda: gradtx.join_schedules(
        [gt.constant_lr(LR, factor=0.5, total_iters=10), gt.exponential_lr(LR, gamma=0.98)],
        [10],
    ),
    "ChainedScheduler/constant*exponential": lambda: gradtx.multiply_schedules(
        gt.constant_lr(1.0, factor=0.5, total_iters=50), gt.exponential_lr(LR, gamma=0.99)
    ),
    "ChainedScheduler/linear*step": lambda: gradtx.multiply_schedules(
        gt.linear_lr(1.0, start_factor=0.1, total_iters=20), gt.step_lr(LR, step_size=60, gamma=0.5)
    ),
}

# fixture case -> the top-level schedule its docstring names as torch's equivalent
TOP_LEVEL = {
    "StepLR": lambda: gradtx.exponential_decay(LR, 30, 0.5, staircase=True),
    "MultiStepLR": lambda: gradtx.piecewise_constant_schedule(LR, {50: 0.3, 120: 0.3, 200: 0.3}),
    "ExponentialLR": lambda: gradtx.exponential_decay(LR, 1, 0.99),
    "PolynomialLR": lambda: gradtx.polynomial_schedule(LR, 0.0, 2.0, 250),
    "LinearLR": lambda: gradtx.linear_schedule(LR * 0.05, LR * 1.0, 100),
    "CosineAnnealingLR": lambda: gradtx.cosine_decay_schedule(LR, 300, end_value=1e-3),
    "CosineAnnealingWarmRestarts/T_mult=1": lambda: gradtx.cosine_restarts_schedule(
        LR, 25, 1, 1e-3
    ),
    "CosineAnnealingWarmRestarts/T_mult=2": lambda: gradtx.cosine_restarts_schedule(LR, 10, 2),
    "OneCycleLR/cos": lambda: gradtx.cosine_onecycle_schedule(300, LR, convention="torch"),
    "OneCycleLR/cos/momentum": lambda: gradtx.onecycle_momentum_schedule(300, convention="torch"),
    "OneCycleLR/linear": lambda: gradtx.linear_onecycle_schedule(
        300,
        LR,
        0.25,
        div_factor=10.0,
        final_div_factor=100.0,
        three_phase=False,
        convention="torch",
    ),
    "OneCycleLR/three_phase": lambda: gradtx.cosine_onecycle_schedule(
        301, LR, three_phase=True, convention="torch"
    ),
    "CyclicLR/triangular": lambda: gradtx.cyclic_schedule(0.01, LR, 20),
    "CyclicLR/triangular/momentum": lambda: gradtx.cyclic_schedule(0.9, 0.8, 20),
    "CyclicLR/exp_range": lambda: gradtx.cyclic_schedule(
        0.01, LR, 20, mode="exp_range", gamma=0.995
    ),
}


def _values(schedule, n):
    got = np.asarray(schedule(jnp.arange(n, dtype=jnp.int32)))
    assert got.dtype == np.float64
    return got


def test_fixture_covers_every_case(torch_values):
    assert str(torch_values["torch_version"]).startswith("2.13.0")
    scheduled = {k for k in torch_values if not k.startswith("plateau/") and k != "torch_version"}
    assert scheduled == set(CASES)
    assert set(TOP_LEVEL) <= set(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_matches_torch(case, torch_values, x64):
    want = torch_values[case]
    assert want.dtype == np.float64 and want.shape[0] >= 300
    got = _values(CASES[case](), want.shape[0])
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=case)


@pytest.mark.parametrize("case", list(TOP_LEVEL))
def test_top_level_equivalent_matches_torch(case, torch_values, x64):
    want = torch_values[case][:300]
    got = _values(TOP_LEVEL[case](), want.shape[0])
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL_TOP, err_msg=case)


@pytest.mark.parametrize(
    "case, make",
    [
        ("StepLR", lambda e: gt.step_lr(LR, 30, 0.5, last_epoch=e)),
        ("MultiStepLR", lambda e: gt.multi_step_lr(LR, [50, 120, 200], 0.3, last_epoch=e)),
        ("ConstantLR", lambda e: gt.constant_lr(LR, 0.25, 40, last_epoch=e)),
        ("LinearLR", lambda e: gt.linear_lr(LR, 0.05, 1.0, 100, last_epoch=e)),
        ("ExponentialLR", lambda e: gt.exponential_lr(LR, 0.99, last_epoch=e)),
        ("PolynomialLR", lambda e: gt.polynomial_lr(LR, 250, 2.0, last_epoch=e)),
        ("CosineAnnealingLR/periodic", lambda e: gt.cosine_annealing_lr(LR, 40, 0.01, e)),
        (
            "CosineAnnealingWarmRestarts/T_mult=2",
            lambda e: gt.cosine_annealing_warm_restarts(LR, 10, 2, last_epoch=e),
        ),
        (
            "CyclicLR/exp_range",
            lambda e: gt.cyclic_lr(0.01, LR, 20, mode="exp_range", gamma=0.995, last_epoch=e),
        ),
        (
            "CyclicLR/triangular/momentum",
            lambda e: gt.cyclic_lr(0.01, LR, 20, last_epoch=e).momentum(),
        ),
        ("OneCycleLR/cos", lambda e: gt.one_cycle_lr(LR, 300, last_epoch=e)),
        ("OneCycleLR/cos/momentum", lambda e: gt.one_cycle_lr(LR, 300, last_epoch=e).momentum()),
    ],
)
def test_last_epoch_enters_torchs_sequence_at_the_next_epoch(case, make, torch_values, x64):
    # count c of a schedule built with last_epoch=e is torch's epoch e + 1 + c
    want = torch_values[case]
    for e in (0, 37):
        got = _values(make(e), want.shape[0] - e - 1)
        np.testing.assert_allclose(got, want[e + 1 :], rtol=0, atol=TOL, err_msg=f"{case} {e}")
    np.testing.assert_array_equal(_values(make(-1), 50), _values(CASES[case](), 50))


def test_schedules_take_traced_values_and_compile_once(x64):
    traces = []

    @jax.jit
    def at(schedule, count):
        traces.append(1)
        return schedule(count)

    a = at(gt.one_cycle_lr(0.1, 300), jnp.int32(50))
    b = at(gt.one_cycle_lr(0.2, 300, div_factor=10.0), jnp.int32(50))
    assert len(traces) == 1 and float(b) > float(a)
    grad = jax.grad(lambda lr: gt.cosine_annealing_lr(lr, 40, 0.01)(jnp.int32(7)))(0.1)
    assert np.isfinite(float(grad)) and float(grad) > 0
    lrs = jnp.asarray([0.1, 0.2])
    got = jax.vmap(lambda lr: gt.step_lr(lr, 30, 0.5)(jnp.int32(45)))(lrs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(lrs) * 0.5, rtol=1e-15)


# --- argument names and defaults ---------------------------------------------------------------

# torch 2.13.0's inspect.signature(torch.optim.lr_scheduler.X), parameter by parameter: (name,
# default), EMPTY where there is none.
EMPTY = inspect.Parameter.empty
TORCH_SIGNATURES = {
    "step_lr": (
        "StepLR",
        [("optimizer", EMPTY), ("step_size", EMPTY), ("gamma", 0.1), ("last_epoch", -1)],
    ),
    "multi_step_lr": (
        "MultiStepLR",
        [("optimizer", EMPTY), ("milestones", EMPTY), ("gamma", 0.1), ("last_epoch", -1)],
    ),
    "constant_lr": (
        "ConstantLR",
        [("optimizer", EMPTY), ("factor", 1.0 / 3), ("total_iters", 5), ("last_epoch", -1)],
    ),
    "linear_lr": (
        "LinearLR",
        [
            ("optimizer", EMPTY),
            ("start_factor", 1.0 / 3),
            ("end_factor", 1.0),
            ("total_iters", 5),
            ("last_epoch", -1),
        ],
    ),
    "exponential_lr": (
        "ExponentialLR",
        [("optimizer", EMPTY), ("gamma", EMPTY), ("last_epoch", -1)],
    ),
    "polynomial_lr": (
        "PolynomialLR",
        [("optimizer", EMPTY), ("total_iters", 5), ("power", 1.0), ("last_epoch", -1)],
    ),
    "cosine_annealing_lr": (
        "CosineAnnealingLR",
        [("optimizer", EMPTY), ("T_max", EMPTY), ("eta_min", 0.0), ("last_epoch", -1)],
    ),
    "cosine_annealing_warm_restarts": (
        "CosineAnnealingWarmRestarts",
        [("optimizer", EMPTY), ("T_0", EMPTY), ("T_mult", 1), ("eta_min", 0.0), ("last_epoch", -1)],
    ),
    "cyclic_lr": (
        "CyclicLR",
        [
            ("optimizer", EMPTY),
            ("base_lr", EMPTY),
            ("max_lr", EMPTY),
            ("step_size_up", 2000),
            ("step_size_down", None),
            ("mode", "triangular"),
            ("gamma", 1.0),
            ("scale_fn", None),
            ("scale_mode", "cycle"),
            ("cycle_momentum", True),
            ("base_momentum", 0.8),
            ("max_momentum", 0.9),
            ("last_epoch", -1),
        ],
    ),
    "one_cycle_lr": (
        "OneCycleLR",
        [
            ("optimizer", EMPTY),
            ("max_lr", EMPTY),
            ("total_steps", None),
            ("epochs", None),
            ("steps_per_epoch", None),
            ("pct_start", 0.3),
            ("anneal_strategy", "cos"),
            ("cycle_momentum", True),
            ("base_momentum", 0.85),
            ("max_momentum", 0.95),
            ("div_factor", 25.0),
            ("final_div_factor", 1e4),
            ("three_phase", False),
            ("last_epoch", -1),
        ],
    ),
    "reduce_lr_on_plateau": (
        "ReduceLROnPlateau",
        [
            ("optimizer", EMPTY),
            ("mode", "min"),
            ("factor", 0.1),
            ("patience", 10),
            ("threshold", 1e-4),
            ("threshold_mode", "rel"),
            ("cooldown", 0),
            ("min_lr", 0),
            ("eps", 1e-8),
        ],
    ),
}
# torch overwrites the optimizer's rate with base_lr (CyclicLR) and max_lr / div_factor
# (OneCycleLR), so these take no lr; every other one takes the optimizer's rate first.
NO_LR = {"cyclic_lr", "one_cycle_lr"}


@pytest.mark.parametrize("name", list(TORCH_SIGNATURES))
def test_arguments_are_torchs(name):
    _, torch_params = TORCH_SIGNATURES[name]
    want = list(torch_params[1:])
    if name not in NO_LR:
        want.insert(0, ("lr", EMPTY))
    params = inspect.signature(getattr(gt, name)).parameters.values()
    got = [(p.name, p.default) for p in params]
    assert [n for n, _ in got] == [n for n, _ in want], name
    for (n, d_got), (_, d_want) in zip(got, want):
        assert type(d_got) is type(d_want) and d_got == d_want, (name, n, d_got, d_want)
        assert (
            next(p for p in params if p.name == n).kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
        )


def test_every_torch_scheduler_is_exported():
    assert set(TORCH_SIGNATURES) <= set(dir(gt))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: gt.step_lr(0.1, 0), "gradtx.torch.step_lr: step_size must be in [1, inf), got 0"),
        (lambda: gt.step_lr(0.1, 2.5), "gradtx.torch.step_lr: step_size must be an integer"),
        (lambda: gt.step_lr(-0.1, 3), "gradtx.torch.step_lr: lr must be in [0, inf), got -0.1"),
        (lambda: gt.multi_step_lr(0.1, [3, -1]), "gradtx.torch.multi_step_lr: milestones must"),
        (lambda: gt.constant_lr(0.1, 1.5), "gradtx.torch.constant_lr: factor must be in [0, 1]"),
        (lambda: gt.linear_lr(0.1, 0.0), "gradtx.torch.linear_lr: start_factor must be in (0, 1]"),
        (lambda: gt.linear_lr(0.1, end_factor=2.0), "gradtx.torch.linear_lr: end_factor must be"),
        (lambda: gt.polynomial_lr(0.1, -1), "gradtx.torch.polynomial_lr: total_iters must be"),
        (lambda: gt.cosine_annealing_lr(0.1, 0), "gradtx.torch.cosine_annealing_lr: T_max must"),
        (
            lambda: gt.cosine_annealing_warm_restarts(0.1, 10, 1.5),
            "gradtx.torch.cosine_annealing_warm_restarts: T_mult must be an integer in [1, ",
        ),
        (lambda: gt.cyclic_lr(0.01, 0.1, mode="tri"), "gradtx.torch.cyclic_lr: mode must be one"),
        (lambda: gt.cyclic_lr(0.01, 0.1, 0), "gradtx.torch.cyclic_lr: step_size_up must be in (0"),
        (lambda: gt.one_cycle_lr(0.1), "gradtx.torch.one_cycle_lr: needs total_steps, or epochs"),
        (lambda: gt.one_cycle_lr(0.1, 100, pct_start=1.2), "one_cycle_lr: pct_start must be in"),
        (
            lambda: gt.one_cycle_lr(0.1, 100, anneal_strategy="cosine"),
            "gradtx.torch.one_cycle_lr: anneal_strategy must be one of",
        ),
        (
            lambda: gt.one_cycle_lr(0.1, 100, last_epoch=-2),
            "one_cycle_lr: last_epoch must be in [-1, inf), got -2",
        ),
        (
            lambda: gt.one_cycle_lr(0.1, 100, cycle_momentum=False).momentum(),
            "gradtx.torch.one_cycle_lr: cycle_momentum=False",
        ),
        (
            lambda: gt.cyclic_lr(0.01, 0.1, cycle_momentum=False).momentum(),
            "gradtx.torch.cyclic_lr: cycle_momentum=False",
        ),
        (lambda: gt.reduce_lr_on_plateau(0.1, factor=1.0), "reduce_lr_on_plateau: factor must be"),
        (lambda: gt.reduce_lr_on_plateau(0.0), "gradtx.torch.reduce_lr_on_plateau: lr must be in"),
        (lambda: gt.reduce_lr_on_plateau(0.1, "low"), "reduce_lr_on_plateau: mode must be one of"),
    ],
)
def test_bad_arguments_name_the_function_argument_and_range(call, message):
    with pytest.raises(gradtx.HyperparameterError, match=None) as err:
        call()
    assert message in str(err.value), str(err.value)


# --- ReduceLROnPlateau ------------------------------------------------------------------------

PLATEAU = {  # torch kwargs -> gradtx (lr 0.1: min_lr / lr = min_scale, eps / lr = eps)
    "min_rel": dict(
        mode="min", factor=0.7, patience=10, threshold=1e-3, cooldown=3, min_scale=1e-6 / LR
    ),
    "min_abs": dict(mode="min", factor=0.3, patience=8, threshold=0.01, threshold_mode="abs"),
    "max_rel": dict(mode="max", factor=0.5, patience=4, threshold=1e-3, cooldown=2),
}
TORCH_PLATEAU = {  # the same, under torch's names, as tests/torch_cases/schedules.py gave them
    "min_rel": dict(mode="min", factor=0.7, patience=10, threshold=1e-3, cooldown=3, min_lr=1e-6),
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
    np.testing.assert_allclose(got, fixed, rtol=0, atol=TOL_TOP)
    np.testing.assert_array_equal(np.asarray(applied), np.asarray(scales))  # u <- scale * u
    assert len(np.unique(fixed)) > 5  # the case exercises several reductions
    stock = torch_values[f"plateau/{name}/{data}/torch"]
    if np.all(metric >= 0):  # where torch's rule is right, gradtx is torch exactly
        np.testing.assert_allclose(got, stock, rtol=0, atol=TOL_TOP)


@pytest.mark.parametrize("data", ["pos", "neg"])
@pytest.mark.parametrize("name", list(TORCH_PLATEAU))
def test_reduce_lr_on_plateau_under_torchs_names_and_order(name, data, torch_values, x64):
    losses = torch_values[f"plateau/losses_{data}"]
    metric = losses if TORCH_PLATEAU[name]["mode"] == "min" else -losses
    tx = gt.reduce_lr_on_plateau(LR, **TORCH_PLATEAU[name])
    scales, applied = plateau_scales(tx, jnp.asarray(metric))
    # the rate after each scheduler.step(loss) ...
    after = torch_values[f"plateau/{name}/{data}/fixed"]
    np.testing.assert_allclose(LR * np.asarray(scales), after, rtol=0, atol=TOL)
    # ... is the rate of the next optimizer step; the first step uses lr itself
    used = np.concatenate([[LR], after[:-1]])
    np.testing.assert_allclose(LR * np.asarray(applied), used, rtol=0, atol=TOL)
    if np.all(metric >= 0):
        stock = torch_values[f"plateau/{name}/{data}/torch"]
        np.testing.assert_allclose(LR * np.asarray(scales), stock, rtol=0, atol=TOL)


def test_reduce_lr_on_plateau_in_a_chain_steps_like_torch(torch_values, x64):
    # SGD(lr=0.1) on f(x) = x^2 / 2 (grad x) with the scheduler stepped on fixed losses: each
    # step moves x by -rate * x with the rate torch had at that step.
    losses = torch_values["plateau/losses_pos"]
    after = torch_values["plateau/min_abs/pos/torch"]
    rates = np.concatenate([[LR], after[:-1]])
    tx = gradtx.chain(gradtx.sgd(LR), gt.reduce_lr_on_plateau(LR, **TORCH_PLATEAU["min_abs"]))
    x = jnp.asarray([1.0])
    state = tx.init(x)
    want = 1.0
    for k in range(len(losses)):
        u, state = tx.update(x, state, x, loss=losses[k])
        x = gradtx.apply_updates(x, u)
        want = want - rates[k] * want
    np.testing.assert_allclose(float(x[0]), want, rtol=1e-12)


def test_torch_misses_plateaus_below_zero(torch_values):
    # The same curve shifted below zero: torch counts a flat negative loss as improving and
    # stops reducing; gradtx reduces exactly as it does for the positive curve.
    stock = torch_values["plateau/min_rel/neg/torch"]
    fixed_neg = torch_values["plateau/min_rel/neg/fixed"]
    fixed_pos = torch_values["plateau/min_rel/pos/fixed"]
    assert stock[-1] > fixed_neg[-1]
    np.testing.assert_array_equal(fixed_neg, fixed_pos)
