"""gradtx schedules against Optax's functions, the d2l formulas (NumPy), and schedules driving
momentum, b1, b2, decay, dampening and weight decay (NumPy oracles)."""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

COUNTS = np.arange(0, 420, dtype=np.int32)
TOL = 1e-12


def optax_values(schedule, counts=COUNTS):
    """Optax's values; under x64 its counts are int64 so that it computes in float64 (with int32
    counts some Optax schedules divide in float32)."""
    wide = jax.config.read("jax_enable_x64")
    counts = jnp.asarray(counts.astype(np.int64) if wide else counts)
    with jax.numpy_dtype_promotion("standard"):
        return np.asarray(jax.vmap(schedule)(counts))


# name -> (positional arguments, keyword arguments): Optax's schedule and gradtx's of the same
# name, called the same way.
SAME_CALL = {
    "constant_schedule": ((0.3,), {}),
    "linear_schedule": ((0.5, 0.01, 200, 30), {}),
    "linear_schedule/no_steps": ((0.5, 0.01, 0), {}),
    "polynomial_schedule": ((1.0, 0.01, 3.0, 250, 20), {}),
    "polynomial_schedule/sqrt": ((1.0, 0.0, 0.5, 300), {}),
    "polynomial_schedule/no_steps": ((1.0, 0.0, 2.0, 0), {}),
    "cosine_decay_schedule": ((0.8, 300), dict(alpha=0.1, exponent=2.0)),
    "cosine_decay_schedule/positional": ((0.8, 300, 0.25), {}),
    "warmup_cosine_decay_schedule": ((0.01, 1.0, 40, 350, 0.05), {}),
    "warmup_cosine_decay_schedule/no_warmup": ((0.0, 1.0, 0, 300), dict(exponent=1.5)),
    "exponential_decay": ((1.0, 10, 0.8, 25), {}),
    "exponential_decay/staircase_end": ((1.0, 30, 0.5), dict(staircase=True, end_value=0.05)),
    "exponential_decay/growth_end": ((0.01, 20, 1.5), dict(end_value=0.9)),
    "exponential_decay/no_steps": ((0.7, 0, 0.5), {}),
    "piecewise_constant_schedule": ((1.0, {100: 0.1, 50: 0.5, 300: 2.0}), {}),
    "piecewise_constant_schedule/none": ((1.0,), {}),
    "piecewise_interpolate_schedule/linear": (("linear", 1.0, {40: 3.0, 150: 0.1, 151: 0.5}), {}),
    "piecewise_interpolate_schedule/cosine": (("cosine", 0.5, {0: 2.0, 200: 0.01}), {}),
    "warmup_constant_schedule": ((0.0, 0.7, 60), {}),
    "warmup_exponential_decay_schedule": (
        (0.0, 1.0, 50, 20, 0.7),
        dict(transition_begin=10, staircase=True, end_value=0.02),
    ),
    "warmup_exponential_decay_schedule/positional": ((0.1, 1.0, 30, 15, 0.9, 5, False, 0.3), {}),
    "linear_onecycle_schedule": ((333, 1.0, 0.3, 0.85, 25.0, 1e4), {}),
    "linear_onecycle_schedule/defaults": ((400, 0.5), {}),
    "cosine_onecycle_schedule": ((333, 1.0, 0.3, 25.0, 1e4), {}),
    "cosine_onecycle_schedule/defaults": ((400, 0.5), {}),
    "sgdr_schedule/restarts": (
        (
            [
                dict(init_value=0.5, peak_value=0.5, warmup_steps=0, decay_steps=p, end_value=0.01)
                for p in (20, 40, 80, 160, 320)
            ],
        ),
        {},
    ),
    "sgdr_schedule/warmups": (
        (
            [
                dict(init_value=0.0, peak_value=1.0, warmup_steps=10, decay_steps=100),
                dict(
                    init_value=0.1,
                    peak_value=0.5,
                    warmup_steps=20,
                    decay_steps=300,
                    end_value=0.01,
                    exponent=2.0,
                ),
            ],
        ),
        {},
    ),
}


def _same_call(case):
    name = case.split("/")[0]
    args, kwargs = SAME_CALL[case]
    return (
        lambda: getattr(optax, name)(*args, **kwargs),
        lambda: getattr(gradtx, name)(*args, **kwargs),
    )


# (Optax schedule, a gradtx schedule documented as its equivalent)
OPTAX_CASES = {case: _same_call(case) for case in SAME_CALL}
OPTAX_CASES.update(
    {
        "cosine_decay_schedule/end_value": (
            lambda: optax.cosine_decay_schedule(0.8, 300, alpha=0.1, exponent=2.0),
            lambda: gradtx.cosine_decay_schedule(0.8, 300, end_value=0.1 * 0.8, exponent=2.0),
        ),
        "sgdr_schedule/cosine_restarts_schedule": (
            lambda: optax.sgdr_schedule(
                [
                    dict(
                        init_value=0.5,
                        peak_value=0.5,
                        warmup_steps=0,
                        decay_steps=p,
                        end_value=0.01,
                    )
                    for p in (20, 40, 80, 160, 320)
                ]
            ),
            lambda: gradtx.cosine_restarts_schedule(0.5, 20, 2, 0.01),
        ),
        "join_schedules": (
            lambda: optax.join_schedules(
                [
                    optax.linear_schedule(0.0, 1.0, 30),
                    optax.constant_schedule(1.0),
                    optax.exponential_decay(1.0, 1, 0.99),
                ],
                [30, 130],
            ),
            lambda: gradtx.join_schedules(
                [
                    gradtx.linear_schedule(0.0, 1.0, 30),
                    gradtx.constant_schedule(1.0),
                    gradtx.exponential_decay(1.0, 1, 0.99),
                ],
                [30, 130],
            ),
        ),
    }
)


def test_every_optax_schedule_is_compared():
    import optax.schedules

    names = {n for n in dir(optax.schedules) if n.endswith("_schedule") and not n.startswith("_")}
    names.add("join_schedules")
    names.add("exponential_decay")
    compared = {case.split("/")[0] for case in OPTAX_CASES}
    assert names <= compared, names - compared


@pytest.mark.parametrize("case", list(OPTAX_CASES))
def test_matches_optax(case, x64):
    make_optax, make_gradtx = OPTAX_CASES[case]
    want = optax_values(make_optax())
    got = np.asarray(make_gradtx()(jnp.asarray(COUNTS)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=0, atol=TOL, err_msg=case)


def test_matches_optax_in_float32():
    # the default precision, through jit, for a few of the common ones
    for case in ("warmup_cosine_decay_schedule",):
        make_optax, make_gradtx = OPTAX_CASES[case]
        want = optax_values(make_optax())
        got = np.asarray(jax.jit(lambda s: jax.vmap(s)(jnp.asarray(COUNTS)))(make_gradtx()))
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=case)


def test_optax_fails_on_traced_peak_gradtx_does_not():
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.jit(lambda peak: optax.warmup_cosine_decay_schedule(0.0, peak, 10, 100)(20))(1.0)
    got = jax.jit(lambda peak: gradtx.warmup_cosine_decay_schedule(0.0, peak, 10, 100)(20))(1.0)
    np.testing.assert_allclose(
        float(got), float(optax.warmup_cosine_decay_schedule(0.0, 1.0, 10, 100)(20)), rtol=1e-6
    )


# --- d2l (SEEDS.md 1) -------------------------------------------------------------------------

ETA0 = 0.1


def test_d2l_schedules_values(x64):
    t = np.arange(300, dtype=np.float64)
    exp_want = ETA0 * np.exp(-0.1 * t)
    poly_want = ETA0 * (1.0 * t + 1.0) ** -0.5
    counts = jnp.arange(300, dtype=jnp.int32)
    exp_got = np.asarray(gradtx.exponential_decay(ETA0, 1, math.exp(-0.1))(counts))
    np.testing.assert_allclose(exp_got, exp_want, rtol=TOL, atol=0)
    inverse_time = gradtx.inverse_time_decay_schedule(ETA0, 1.0, 0.5)
    for poly in (inverse_time, gradtx.inverse_sqrt_schedule(ETA0, 1)):
        np.testing.assert_allclose(np.asarray(poly(counts)), poly_want, rtol=TOL, atol=0)


@jax.jit
def _noisy_sgd(tx, x0, noise):
    def step(carry, n):
        x, state = carry
        g = jnp.stack([2.0 * x[0], 4.0 * x[1]]) + n
        u, state = tx.update(g, state, x)
        x = gradtx.apply_updates(x, u)
        return (x, state), x

    return jax.lax.scan(step, (x0, tx.init(x0)), noise)[1]


@pytest.mark.parametrize("name", ["constant", "exponential", "polynomial"])
def test_d2l_noisy_sgd_trajectory(name, x64):
    # f(x1, x2) = x1^2 + 2 x2^2, gradient plus N(0, 1) noise, 50 steps from (-5, -2).
    noise = np.random.default_rng(0).standard_normal((50, 2))
    rate = {
        "constant": lambda t: ETA0,
        "exponential": lambda t: ETA0 * math.exp(-0.1 * t),
        "polynomial": lambda t: ETA0 * (t + 1.0) ** -0.5,
    }[name]
    schedule = {
        "constant": gradtx.constant_schedule(ETA0),
        "exponential": gradtx.exponential_decay(ETA0, 1, math.exp(-0.1)),
        "polynomial": gradtx.inverse_time_decay_schedule(ETA0, 1.0, 0.5),
    }[name]
    x, want = np.array([-5.0, -2.0]), []
    for t in range(50):
        g = np.array([2.0 * x[0], 4.0 * x[1]]) + noise[t]
        x = x - rate(t) * g
        want.append(x)
    got = _noisy_sgd(gradtx.sgd(schedule), jnp.asarray([-5.0, -2.0]), jnp.asarray(noise))
    np.testing.assert_allclose(np.asarray(got), np.stack(want), rtol=0, atol=1e-12)


# --- schedules for momentum, b1, b2, decay, dampening and weight decay -------------------------

STEPS = 12
MOM = gradtx.onecycle_momentum_schedule(STEPS, 0.3, 0.85, 0.95)
B2 = gradtx.linear_schedule(0.9, 0.999, 8)
WD = gradtx.cosine_decay_schedule(0.1, STEPS)
DAMP = gradtx.linear_schedule(0.0, 0.5, STEPS)


def sched(s, k):
    return float(s(k))


def numpy_run(update_fn, steps=STEPS):
    rng = np.random.default_rng(1)
    grads = rng.standard_normal((steps, 3))
    p = np.array([1.0, -2.0, 0.5])
    state, out = None, []
    for k in range(steps):
        p, state = update_fn(k, p, grads[k], state)
        out.append(p.copy())
    return grads, np.stack(out)


@jax.jit
def gradtx_run(tx, p0, grads):
    def step(carry, g):
        p, state = carry
        u, state = tx.update(g, state, p)
        p = gradtx.apply_updates(p, u)
        return (p, state), p

    return jax.lax.scan(step, (p0, tx.init(p0)), grads)[1]


def check(tx, update_fn):
    grads, want = numpy_run(update_fn)
    got = gradtx_run(tx, jnp.asarray([1.0, -2.0, 0.5]), jnp.asarray(grads))
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=1e-12)


def test_sgd_scheduled_momentum_dampening_weight_decay(x64):
    lr = 0.05

    def fn(k, p, g, b):
        g = g + sched(WD, k) * p
        m, d = sched(MOM, k), sched(DAMP, k)
        b = g.copy() if b is None else m * b + (1 - d) * g
        return p - lr * b, b

    check(gradtx.sgd(lr, momentum=MOM, dampening=DAMP, weight_decay=WD), fn)


def test_sgd_scheduled_nesterov_momentum(x64):
    lr = 0.05

    def fn(k, p, g, b):
        m = sched(MOM, k)
        b = g.copy() if b is None else m * b + g
        return p - lr * (g + m * b), b

    check(gradtx.sgd(lr, momentum=MOM, nesterov=True), fn)


def test_adam_scheduled_b1_b2_weight_decay(x64):
    lr, eps = 0.01, 1e-8

    def fn(k, p, g, st):
        m, v = st if st is not None else (np.zeros(3), np.zeros(3))
        b1, b2, t = sched(MOM, k), sched(B2, k), k + 1
        g = g + sched(WD, k) * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        u = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        return p - lr * u, (m, v)

    check(gradtx.adam(lr, b1=MOM, b2=B2, weight_decay=WD), fn)


def test_adamw_scheduled_decoupled_weight_decay(x64):
    lr_s, eps = gradtx.warmup_cosine_decay_schedule(0.0, 0.01, 3, STEPS), 1e-8

    def fn(k, p, g, st):
        m, v = st if st is not None else (np.zeros(3), np.zeros(3))
        t = k + 1
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        u = (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + eps)
        return p - sched(lr_s, k) * (u + sched(WD, k) * p), (m, v)

    check(gradtx.adamw(lr_s, weight_decay=WD), fn)


def test_rmsprop_scheduled_momentum_and_decay(x64):
    lr, eps = 0.01, 1e-8

    def fn(k, p, g, st):
        v, b = st if st is not None else (np.zeros(3), np.zeros(3))
        a = sched(B2, k)
        v = a * v + (1 - a) * g * g
        b = sched(MOM, k) * b + g / (np.sqrt(v) + eps)
        return p - lr * b, (v, b)

    check(gradtx.rmsprop(lr, decay=B2, eps_in_sqrt=False, momentum=MOM), fn)


def test_add_decayed_weights_schedule(x64):
    lr = 0.1

    def fn(k, p, g, st):
        return p - lr * (g + sched(WD, k) * p), None

    check(gradtx.chain(gradtx.add_decayed_weights(WD), gradtx.scale_by_learning_rate(lr)), fn)


@pytest.mark.parametrize("convention", ["optax", "torch"])
def test_onecycle_momentum_cycles_against_the_rate(convention):
    lr = gradtx.cosine_onecycle_schedule(100, 1.0, convention=convention)
    mom = lr.momentum(0.85, 0.95)
    counts = jnp.arange(100, dtype=jnp.int32)
    a, b = np.asarray(lr(counts)), np.asarray(mom(counts))
    assert np.argmax(a) == np.argmin(b)
    # in the first phase (counts 0 .. 0.3 * 100 - 1) each is an affine image of the other
    rise = slice(0, 30)
    np.testing.assert_allclose(
        (b[rise] - 0.95) / (0.85 - 0.95), (a[rise] - 0.04) / (1.0 - 0.04), atol=1e-5
    )
    assert np.all(np.diff(a[30:]) < 0) and np.all(np.diff(b[30:]) > 0)
    assert repr(mom) == repr(gradtx.onecycle_momentum_schedule(100, convention=convention))


# --- reduce_on_plateau --------------------------------------------------------------------------


def _plateau_losses():
    rng = np.random.default_rng(3)
    k = np.arange(200.0)
    curve = 0.5 + np.exp(-k / 25.0)
    curve[120:] = curve[119]
    return curve + 0.003 * rng.standard_normal(200)


@jax.jit
def _scan_updates(tx, losses):
    p = jnp.ones((2,), losses.dtype)

    def step(state, loss):
        u, state = tx.update(-p, state, p, loss=loss)
        return state, u[0]

    return jax.lax.scan(step, tx.init(p), losses)[1]


@pytest.mark.parametrize("accumulation_size", [1, 3])
def test_reduce_on_plateau_matches_optax_for_positive_losses(accumulation_size, x64):
    losses = jnp.asarray(_plateau_losses())
    p = jnp.ones((2,), jnp.float64)
    kw = dict(
        factor=0.5, rtol=1e-3, cooldown=2, accumulation_size=accumulation_size, min_scale=0.01
    )
    opt = optax.contrib.reduce_on_plateau(patience=5, **kw)

    @jax.jit
    def optax_run(losses):
        def step(state, loss):
            with jax.numpy_dtype_promotion("standard"):
                u, state = opt.update(-p, state, p, value=loss)
            return state, u[0]

        return jax.lax.scan(step, opt.init(p), losses)[1]

    want = np.asarray(optax_run(losses))
    tx = gradtx.reduce_on_plateau(
        0.5,
        patience=4,
        threshold=1e-3,
        threshold_mode="rel",
        cooldown=2,
        min_scale=0.01,
        accumulation_size=accumulation_size,
    )
    got = np.asarray(_scan_updates(tx, losses))
    assert len(np.unique(want)) >= 3  # several reductions happen
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)


def test_reduce_on_plateau_chain_checkpoint_and_errors(x64):
    tx = gradtx.chain(gradtx.sgd(0.1), gradtx.reduce_on_plateau(patience=1, factor=0.5))
    p = jnp.asarray([1.0, 2.0])
    state = tx.init(p)
    losses = [-1.0, -1.0, -1.0, -1.0, -2.0, -2.0, -2.0, -2.0]
    for loss in losses[:4]:
        _, state = tx.update(p, state, p, loss=loss)
    # a checkpoint: leaves to NumPy and back
    leaves, treedef = jax.tree.flatten(state)
    restored = jax.tree.unflatten(treedef, [np.asarray(x) for x in leaves])
    a, b = state, restored
    for loss in losses[4:]:
        ua, a = tx.update(p, a, p, loss=loss)
        ub, b = tx.update(p, b, p, loss=loss)
        np.testing.assert_array_equal(np.asarray(ua), np.asarray(ub))
    plateau = a[1]
    assert isinstance(plateau, gradtx.ReduceOnPlateauState)
    # flat at -1 for 4 checks (patience 1): reduced once at the 3rd; -2 improves; then 3 flat
    assert float(plateau.scale) == 0.25 and float(plateau.best) == -2.0
    with pytest.raises(TypeError, match="loss="):
        tx.update(p, state, p)
    with pytest.raises(gradtx.HyperparameterError, match="factor must be in"):
        gradtx.reduce_on_plateau(factor=1.5)


# --- plotting -----------------------------------------------------------------------------------


def test_plot_schedules_draws_every_schedule():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    schedules = {
        "onecycle": gradtx.cosine_onecycle_schedule(100, 0.1),
        "wsd": gradtx.warmup_stable_decay_schedule(0.1, 10, 60, 30, decay_shape="sqrt"),
        "python": lambda c: 0.05,
    }
    ax = gradtx.plot_schedules(schedules, 100, title="schedules")
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == list(schedules)
    np.testing.assert_allclose(
        lines[0].get_ydata(), np.asarray(schedules["onecycle"](jnp.arange(100))), rtol=1e-6
    )
    np.testing.assert_allclose(lines[2].get_ydata(), 0.05)
    ax2 = gradtx.plot_schedules([gradtx.constant_schedule(0.1)], np.arange(5, 50), log_scale=True)
    assert ax2.get_lines()[0].get_label().startswith("Constant(")
    plt.close("all")


def test_matplotlib_is_imported_lazily():
    code = "import sys, gradtx; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
