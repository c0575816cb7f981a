"""The seed tutorials' scenarios (../shared/SEEDS.md 1, 2, 4 and 5) with their numbers.

Each expected value is derived here: a NumPy float64 loop of the same formula, or a closed form.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

# ---------------------------------------------------------------------------------------------
# SEEDS.md 1: noisy SGD on f(x1, x2) = x1^2 + 2 x2^2 from (-5, -2), eta = 0.1, 50 steps.

ETA, STEPS = 0.1, 50
NOISE = np.asarray(jax.random.normal(jax.random.key(0), (STEPS, 2), jnp.float32), np.float64)


def _noisy_sgd_gradtx(learning_rate):
    tx = gradtx.sgd(learning_rate)

    def body(carry, noise):
        x, s = carry
        g = jnp.array([2.0, 4.0]) * x + noise
        u, s = tx.update(g, s, x)
        x = gradtx.apply_updates(x, u)
        return (x, s), x

    x0 = jnp.array([-5.0, -2.0])
    _, xs = jax.lax.scan(body, (x0, tx.init(x0)), jnp.asarray(NOISE, jnp.float32))
    return np.asarray(xs, np.float64)


def _noisy_sgd_numpy(rate_at):
    x = np.array([-5.0, -2.0])
    out = []
    for t in range(STEPS):
        x = x - rate_at(t) * (np.array([2.0, 4.0]) * x + NOISE[t])
        out.append(x)
    return np.array(out)


D2L_SCHEDULES = {
    "constant": (gradtx.constant_schedule(ETA), lambda t: ETA),
    # eta_t = eta0 * exp(-lambda t), lambda = 0.1
    "exponential": (
        gradtx.exponential_decay(ETA, 1, math.exp(-0.1)),
        lambda t: ETA * math.exp(-0.1 * t),
    ),
    # eta_t = eta0 * (beta t + 1)^(-alpha), alpha = 0.5, beta = 1
    "polynomial": (
        gradtx.inverse_time_decay_schedule(ETA, 1.0, 0.5),
        lambda t: ETA * (t + 1.0) ** -0.5,
    ),
}


@pytest.mark.parametrize("name", list(D2L_SCHEDULES))
def test_seed1_d2l_schedules_trajectory(name):
    schedule, formula = D2L_SCHEDULES[name]
    for t in (0, 1, 10, 49):
        np.testing.assert_allclose(float(schedule(t)), formula(t), rtol=1e-6)
    np.testing.assert_allclose(
        _noisy_sgd_gradtx(schedule), _noisy_sgd_numpy(formula), rtol=1e-5, atol=1e-5
    )


def test_seed1_d2l_code_indexing_reproduced():
    # d2l's code increments t before use from t = 1, so its first step uses exp(-0.2):
    # exponential_decay(eta0 * exp(-0.2), 1, exp(-0.1)) reproduces its sequence exactly.
    d2l = gradtx.exponential_decay(ETA * math.exp(-0.2), 1, math.exp(-0.1))
    for count in range(5):
        np.testing.assert_allclose(float(d2l(count)), ETA * math.exp(-0.1 * (count + 2)), rtol=1e-6)


def test_seed1_constant_rate_never_settles_decaying_rate_does():
    def last_moves(name):
        xs = _noisy_sgd_gradtx(D2L_SCHEDULES[name][0])
        return float(np.mean(np.linalg.norm(np.diff(xs[-10:], axis=0), axis=1)))

    constant = last_moves("constant")
    for decayed in ("exponential", "polynomial"):
        assert last_moves(decayed) < 0.5 * constant, (decayed, last_moves(decayed), constant)


# ---------------------------------------------------------------------------------------------
# SEEDS.md 2: GD vs per-sample SGD on y_hat = w x, x = [1, 2, 3], y = [2, 4, 6], w0 = 1, lr 0.01.

X = np.array([1.0, 2.0, 3.0])
Y = np.array([2.0, 4.0, 6.0])


def _mse(w, x, y):
    return jnp.mean((x * w - y) ** 2)


def test_seed2_full_batch_gd():
    tx = gradtx.sgd(0.01)
    w, s = jnp.array(1.0), tx.init(jnp.array(1.0))
    x, y = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    for _ in range(100):
        u, s = tx.update(jax.grad(_mse)(w, x, y), s, w)
        w = gradtx.apply_updates(w, u)
    # gradient = mean(2 x (x w - y)) = (28/3)(w - 2), so w_t - 2 = (1 - 0.01 * 28/3)^t (w_0 - 2)
    expected = 2.0 - (1.0 - 0.01 * 28.0 / 3.0) ** 100
    np.testing.assert_allclose(float(w), expected, rtol=1e-6)
    assert abs(float(w) - 2.0) < 1e-4
    np.testing.assert_allclose(float(w) * 4.0, 8.0, atol=1e-3)


def test_seed2_per_sample_sgd():
    tx = gradtx.sgd(0.01)
    w, s = jnp.array(1.0), tx.init(jnp.array(1.0))
    for _ in range(100):
        for xi, yi in zip(X, Y):
            g = jax.grad(_mse)(w, jnp.float32(xi), jnp.float32(yi))
            u, s = tx.update(g, s, w)
            w = gradtx.apply_updates(w, u)
    # each sample multiplies (w - 2) by (1 - 0.01 * 2 x^2)
    factor = np.prod([1.0 - 0.02 * xi**2 for xi in X])
    expected = 2.0 - factor**100
    np.testing.assert_allclose(float(w), expected, rtol=1e-6)
    np.testing.assert_allclose(float(w) * 4.0, 8.0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# SEEDS.md 4: J(x) = 0.5 (x - 1)^2 + 0.5 from x = -1, 10 steps: x_t - 1 = -2 (1 - eta)^t.


def _iterates(eta):
    rates = jnp.asarray(eta, jnp.float32)

    def run(lr):
        tx = gradtx.sgd(lr)
        x = jnp.array(-1.0)

        def body(carry, _):
            x, s = carry
            u, s = tx.update(x - 1.0, s, x)
            x = gradtx.apply_updates(x, u)
            return (x, s), x

        return jax.lax.scan(body, (x, tx.init(x)), None, length=10)[1]

    return np.asarray(jax.vmap(run)(rates))


def test_seed4_learning_rate_cases():
    etas = [0.05, 0.33, 1.87, 2.18]
    xs = _iterates(etas)  # one vmapped program for the four rates
    t = np.arange(1, 11)
    for row, eta in zip(xs, etas):
        np.testing.assert_allclose(row - 1.0, -2.0 * (1.0 - eta) ** t, rtol=1e-5, atol=1e-6)
    dist = np.abs(xs - 1.0)
    assert dist[0, -1] > 1.0  # 0.05: too slow, far from the minimum after 10 steps
    assert dist[1, -1] < 0.05  # 0.33: nearly converged
    assert np.all(np.diff(np.sign(xs[2] - 1.0)) != 0)  # 1.87: crosses the minimum every step
    assert np.all(np.diff(dist[2]) < 0)  # ... and still converges
    assert np.all(np.diff(dist[3]) > 0) and dist[3, -1] > 10.0  # 2.18: diverges


# ---------------------------------------------------------------------------------------------
# SEEDS.md 5: Linear(2, 1) on [[0,0],[0,1],[1,0],[1,1]] -> [0,0,1,1], summed squared error,
# SGD lr 0.1, 20 iterations. The tutorial's random init is not given; w = (0.6, 0.2), b = -0.3
# starts at its loss (0.84, "about 0.85").

DATA_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
DATA_Y = np.array([0.0, 0.0, 1.0, 1.0])


def test_seed5_linear_layer_sgd():
    params = {"w": jnp.array([0.6, 0.2]), "b": jnp.array(-0.3)}
    x, y = jnp.asarray(DATA_X, jnp.float32), jnp.asarray(DATA_Y, jnp.float32)
    loss_fn = lambda p: jnp.sum((x @ p["w"] + p["b"] - y) ** 2)
    tx = gradtx.torch.sgd(lr=0.1)  # the tutorial's torch.optim.SGD(model.parameters(), lr=0.1)
    state = tx.init(params)
    step = jax.jit(lambda p, s: _seed5_step(tx, loss_fn, p, s))
    losses = []
    for _ in range(20):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    # NumPy float64 reference of the same 20 steps.
    theta = np.array([0.6, 0.2, -0.3])
    a = np.c_[DATA_X, np.ones(4)]
    ref_losses = []
    for _ in range(20):
        r = a @ theta - DATA_Y
        ref_losses.append(float(r @ r))
        theta = theta - 0.1 * 2 * a.T @ r
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(params["w"], theta[:2], rtol=1e-4, atol=1e-6)
    assert 0.8 < losses[0] < 0.9 and losses[-1] < 1e-4
    final = float(loss_fn(params))
    assert final < 1e-4
    np.testing.assert_allclose(params["w"], [1.0, 0.0], atol=0.02)
    np.testing.assert_allclose(params["b"], 0.0, atol=0.02)


def _seed5_step(tx, loss_fn, params, state):
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state, loss


# ---------------------------------------------------------------------------------------------
# SEEDS.md 3: the tinynn-style zoo. Each optimizer computes a "decrement", weight decay is added
# to it (decrement += wd * params) and the parameters move by -decrement. In gradtx that is
# chain(preconditioner, scale(lr), add_decayed_weights(wd), negate()), or a gradtx.torch optimizer
# (its step is -decrement) in chain(opt, negate(), add_decayed_weights(wd), negate()).

WD = 0.01
ZOO_GRADS = np.asarray(jax.random.normal(jax.random.key(3), (20, 3)), np.float64)


def _zoo_numpy(kind, lr):
    p = np.array([1.0, -2.0, 0.5])
    b = np.zeros(3)
    s = np.zeros(3)
    m = np.zeros(3)
    v = np.zeros(3)
    for t, g in enumerate(ZOO_GRADS, start=1):
        if kind == "sgd":
            dec = lr * g
        elif kind == "momentum":
            b = 0.9 * b + (1 - 0.9) * g
            dec = lr * b
        elif kind == "adagrad":
            s = s + g**2
            dec = lr * g / (np.sqrt(s) + 1e-8)
        elif kind == "rmsprop":
            s = 0.99 * s + (1 - 0.99) * g**2
            dec = lr * g / (np.sqrt(s) + 1e-8)
        else:
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g**2
            dec = lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        dec = dec + WD * p
        p = p - dec
    return p


# Factories, called inside the float64 test: hyperparameters take the precision current at
# construction.
ZOO = {
    "sgd": (gradtx.identity, 0.1),
    "momentum": (lambda: gradtx.scale_by_momentum(0.9, form="ema"), 0.1),
    "adagrad": (lambda: gradtx.scale_by_adagrad(eps=1e-8), 0.1),
    "rmsprop": (lambda: gradtx.scale_by_rmsprop(decay=0.99, eps=1e-8), 0.01),
    "adam": (gradtx.scale_by_adam, 0.01),
}
# The same optimizers from gradtx.torch, whose defaults are the tutorial's (Adagrad's s_0 = 0
# and RMSprop's alpha = 0.99, eps outside the root) and whose keyword momentum_form="ema" is its
# moving-average momentum. Each steps by -decrement without the decay.
TORCH_ZOO = {
    "sgd": lambda: gradtx.torch.sgd(0.1),
    "momentum": lambda: gradtx.torch.sgd(0.1, momentum=0.9, momentum_form="ema"),
    "adagrad": lambda: gradtx.torch.adagrad(0.1, eps=1e-8),
    "rmsprop": lambda: gradtx.torch.rmsprop(0.01),
    "adam": lambda: gradtx.torch.adam(0.01),
}


def _seed3_chain(kind, form):
    if form == "blocks":
        pre, lr = ZOO[kind]
        return gradtx.chain(
            pre(), gradtx.scale(lr), gradtx.add_decayed_weights(WD), gradtx.negate()
        )
    # -(-step + wd * p): the decay added to the decrement, not to the gradient.
    return gradtx.chain(
        TORCH_ZOO[kind](), gradtx.negate(), gradtx.add_decayed_weights(WD), gradtx.negate()
    )


@pytest.mark.parametrize("form", ["blocks", "torch"])
@pytest.mark.parametrize("kind", list(ZOO))
def test_seed3_decrement_style_zoo(kind, form, x64):
    lr = ZOO[kind][1]
    tx = _seed3_chain(kind, form)
    p = jnp.array([1.0, -2.0, 0.5], jnp.float64)
    s = tx.init(p)
    for g in ZOO_GRADS:
        u, s = tx.update(jnp.asarray(g), s, p)
        p = gradtx.apply_updates(p, u)
    np.testing.assert_allclose(np.asarray(p), _zoo_numpy(kind, lr), rtol=1e-12, atol=1e-14)
