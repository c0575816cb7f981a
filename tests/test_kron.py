"""Kron (PSGD): the docstring's formulas in NumPy, the update-probability schedule, convergence."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

SEED = 3


def _probes(count, shapes):
    """The probe vectors V the docstring specifies: the update's key is
    fold_in(key(seed), count), split into (decision key, probe key); leaf i draws
    normal(fold_in(probe key, i))."""
    step_key = jax.random.fold_in(jax.random.key(SEED), count)
    _, k_probe = jax.random.split(step_key)
    return [
        np.asarray(jax.random.normal(jax.random.fold_in(k_probe, i), s, jnp.float32), np.float64)
        for i, s in enumerate(shapes)
    ]


def _lb(m):
    """||M c|| / ||c|| with c the column of M of largest norm."""
    c = m[:, np.argmax(np.sum(m * m, axis=0))]
    return np.linalg.norm(m @ c) / np.linalg.norm(c)


def _balance(fs):
    norms = np.array([np.max(np.abs(f)) for f in fs])
    g = np.prod(norms) ** (1 / len(fs))
    return [f * g / n for f, n in zip(fs, norms)]


def _ref_matrix(Q1, Q2, h, V, lr):
    """A 2-D leaf with two triangular factors, in matrix form."""
    Q1, Q2 = _balance([Q1, Q2])
    A = Q1 @ h @ Q2.T
    B = np.linalg.inv(Q1).T @ V @ np.linalg.inv(Q2)
    new = []
    for Q, T1, T2 in ((Q1, A @ A.T, B @ B.T), (Q2, A.T @ A, B.T @ B)):
        new.append(Q - lr * np.triu(T1 - T2) / _lb(T1 + T2) @ Q)
    Q1, Q2 = new
    return Q1, Q2, Q1.T @ Q1 @ h @ Q2.T @ Q2


def _ref_diag(q, h, V, lr):
    """A vector (or scalar) leaf with one diagonal factor."""
    A, B = q * h, V / q
    T1, T2 = A * A, B * B
    q = q - lr * (T1 - T2) / np.max(np.abs(T1 + T2)) * q
    return q, q * q * h


def _ref_3d_one_diag(Qa, qb, Qc, h, V, lr):
    """A (3, 5, 4) leaf with memory_save_mode="one_diag": axis 1 (the largest) diagonal."""
    Qa, qb, Qc = _balance([Qa, qb, Qc])
    A = np.einsum("ai,j,ck,ijk->ajc", Qa, qb, Qc, h)
    B = np.einsum("ia,j,kc,ijk->ajc", np.linalg.inv(Qa), 1 / qb, np.linalg.inv(Qc), V)
    T1a, T2a = np.einsum("ajc,bjc->ab", A, A), np.einsum("ajc,bjc->ab", B, B)
    T1b, T2b = np.einsum("ajc,ajc->j", A, A), np.einsum("ajc,ajc->j", B, B)
    T1c, T2c = np.einsum("ajc,ajd->cd", A, A), np.einsum("ajc,ajd->cd", B, B)
    Qa = Qa - lr * np.triu(T1a - T2a) / _lb(T1a + T2a) @ Qa
    qb = qb - lr * (T1b - T2b) / np.max(np.abs(T1b + T2b)) * qb
    Qc = Qc - lr * np.triu(T1c - T2c) / _lb(T1c + T2c) @ Qc
    Pa, Pc = Qa.T @ Qa, Qc.T @ Qc
    u = np.einsum("ia,j,kc,ajc->ijk", Pa, qb * qb, Pc, h)
    return Qa, qb, Qc, u


def test_kron_matches_numpy_formulas():
    """Five updates with the preconditioner refitted every time (probability 1): momentum,
    balancing, the triangular and diagonal fits and the preconditioned step, on a matrix, a
    vector, a scalar and a 3-D leaf with one diagonal axis, against the formulas in NumPy."""
    rng = np.random.default_rng(0)
    shapes = {"m": (4, 3), "s": (), "t": (3, 5, 4), "v": (5,)}  # leaf order: m, s, t, v
    params = {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()}
    grads = [
        {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()} for _ in range(5)
    ]
    lr, lr_p, b1, init = 0.05, 0.2, 0.9, 1.5
    tx = gradtx.kron(
        lr, b1, preconditioner_update_probability=1.0, memory_save_mode=None,
        preconditioner_lr=lr_p, preconditioner_init_scale=init, seed=SEED,
    )  # fmt: skip
    tx3 = gradtx.kron(
        lr, b1, preconditioner_update_probability=1.0, memory_save_mode="one_diag",
        preconditioner_lr=lr_p, preconditioner_init_scale=init, seed=SEED,
    )  # fmt: skip
    state, state3 = tx.init(params), tx3.init(params)
    update, update3 = jax.jit(tx.update), jax.jit(tx3.update)  # one program each, not op by op

    mu = {k: np.zeros(s) for k, s in shapes.items()}
    c2, c3 = init ** (1 / 2), init ** (1 / 3)
    Q = {"m": [c2 * np.eye(4), c2 * np.eye(3)], "s": [init * 1.0], "v": [init * np.ones(5)]}
    Q3 = [c3 * np.eye(3), c3 * np.ones(5), c3 * np.eye(4)]
    for t, g in enumerate(grads, start=1):
        V = dict(zip(sorted(shapes), _probes(t - 1, [shapes[k] for k in sorted(shapes)])))
        h = {}
        for k in shapes:
            mu[k] = b1 * mu[k] + (1 - b1) * g[k]
            h[k] = mu[k] / (1 - b1**t)
        Q["m"][0], Q["m"][1], um = _ref_matrix(*Q["m"], h["m"], V["m"], lr_p)
        Q["s"][0], us = _ref_diag(Q["s"][0], h["s"], V["s"], lr_p)
        Q["v"][0], uv = _ref_diag(Q["v"][0], h["v"], V["v"], lr_p)
        *Q3, ut = _ref_3d_one_diag(*Q3, h["t"], V["t"], lr_p)
        u, state = update(g, state, params)
        u3, state3 = update3(g, state3, params)
        for got, want in ((u["m"], um), (u["s"], us), (u["v"], uv), (u3["t"], ut)):
            np.testing.assert_allclose(got, -lr * want, rtol=2e-4, atol=1e-6)
    kron_state = state[0]
    np.testing.assert_allclose(kron_state.Q["m"][0], Q["m"][0], rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(kron_state.Q["m"][1], Q["m"][1], rtol=2e-4, atol=1e-6)
    np.testing.assert_allclose(state3[0].Q["t"][1], Q3[1], rtol=2e-4, atol=1e-6)
    # the factors' layout: triangular where the docstring says, diagonal elsewhere
    assert [q.shape for q in state3[0].Q["t"]] == [(3, 3), (5,), (4, 4)]
    assert [q.shape for q in kron_state.Q["t"]] == [(3, 3), (5, 5), (4, 4)]


def test_factor_layout_options():
    params = {"w": jnp.zeros((6, 3)), "big": jnp.zeros((2, 20)), "k": jnp.zeros((2, 3, 4))}
    shapes = lambda tx: {k: [q.shape for q in v] for k, v in tx.init(params)[0].Q.items()}
    got = shapes(gradtx.kron(max_size_triangular=10, min_ndim_triangular=3))
    assert got == {"big": [(2,), (20,)], "k": [(2, 2), (3, 3), (4, 4)], "w": [(6,), (3,)]}
    got = shapes(gradtx.kron(memory_save_mode="all_diag"))
    assert got == {"big": [(2,), (20,)], "k": [(2,), (3,), (4,)], "w": [(6,), (3,)]}
    got = shapes(gradtx.kron(memory_save_mode="one_diag"))
    assert got == {"big": [(2, 2), (20,)], "k": [(2, 2), (3, 3), (4,)], "w": [(6,), (3, 3)]}


def test_update_probability_schedule():
    """psgd_jax's defaults: 1.0 for 250 updates, then exp(-0.001 (n - 250)), floor 0.03."""
    sched = gradtx.precond_update_prob_schedule()
    n = np.array([0, 100, 250, 251, 1000, 3000, 3755, 10000])
    want = np.clip(np.exp(-0.001 * (n - 250.0)), 0.03, 1.0)
    np.testing.assert_allclose([float(sched(int(k))) for k in n], want, rtol=1e-6)


def test_zero_probability_keeps_the_initial_preconditioner():
    """p = 0: Q stays scale^(1/d) I, so the step is scale^2 * mhat (Adam-free momentum SGD)."""
    params = {"w": jnp.ones((3, 2))}
    tx = gradtx.kron(0.1, 0.5, preconditioner_update_probability=0.0,
                     preconditioner_init_scale=2.0)  # fmt: skip
    s = tx.init(params)
    g1, g2 = np.full((3, 2), 1.0, np.float32), np.full((3, 2), -3.0, np.float32)
    _, s = tx.update({"w": g1}, s, params)
    u, s = tx.update({"w": g2}, s, params)
    m = 0.5 * (0.5 * g1) + 0.5 * g2
    np.testing.assert_allclose(u["w"], -0.1 * 4.0 * m / (1 - 0.25), rtol=1e-6)
    np.testing.assert_allclose(s[0].Q["w"][0], np.sqrt(2.0) * np.eye(3), rtol=1e-6)


def test_converges_on_ill_conditioned_least_squares():
    """min ||X W - Y||^2 with column scales 100x apart (condition number 1e4): Kron with a
    cosine-decayed rate reaches 1e-6 of the initial loss in 300 steps, where plain SGD (at a
    stable rate) is still above 1e-3."""
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(64, 8)) * np.geomspace(0.1, 10.0, 8), jnp.float32)
    w_true = jnp.asarray(rng.normal(size=(8, 3)), jnp.float32)
    y = x @ w_true
    loss = lambda p: jnp.mean((x @ p["w"] - y) ** 2)

    def run(tx):
        def body(carry, _):
            p, s = carry
            u, s = tx.update(jax.grad(loss)(p), s, p)
            return (gradtx.apply_updates(p, u), s), None

        p0 = {"w": jnp.zeros((8, 3), jnp.float32)}
        (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=300)
        return float(loss(p)) / float(loss(p0))

    assert run(gradtx.kron(gradtx.cosine_decay_schedule(0.05, 300))) < 1e-6
    assert run(gradtx.sgd(1e-2)) > 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"b1": 1.0}, "gradtx.kron: b1 must be in [0, 1), got 1.0"),
        ({"preconditioner_lr": 0.0}, "gradtx.kron: preconditioner_lr must be in (0, 1], got 0.0"),
        ({"preconditioner_update_probability": 1.5},
         "gradtx.kron: preconditioner_update_probability must be in [0, 1], got 1.5"),
        ({"preconditioner_init_scale": -1.0},
         "gradtx.kron: preconditioner_init_scale must be in (0, inf), got -1.0"),
        ({"memory_save_mode": "some_diag"}, "gradtx.kron: memory_save_mode must be one of"),
        ({"max_size_triangular": -1}, "gradtx.kron: max_size_triangular must be in [0, inf)"),
    ],
)  # fmt: skip
def test_invalid_hyperparameters(kwargs, message):
    with pytest.raises(gradtx.HyperparameterError, match=message.replace("(", r"\(")
                       .replace(")", r"\)").replace("[", r"\[")):  # fmt: skip
        gradtx.kron(**kwargs)
