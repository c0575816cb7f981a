"""Modern optimizers against NumPy transcriptions of their papers' algorithm boxes (float64).

Each reference below is written from the paper (cited in the optimizer's docstring), not from
gradtx's code. Both are driven with the same 20 gradients on a small tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

STEPS = 20
RNG = np.random.default_rng(0)
P0 = {"w": RNG.normal(size=(3, 4)), "b": RNG.normal(size=(4,))}
# Gradients that depend on the params (a quadratic) plus fixed noise, so stateful methods that
# evaluate at different points (schedule-free) are exercised honestly.
A = {k: RNG.uniform(0.5, 2.0, size=v.shape) for k, v in P0.items()}
NOISE = [{k: 0.1 * RNG.normal(size=v.shape) for k, v in P0.items()} for _ in range(STEPS)]


def grad_np(p, t):
    return {k: A[k] * p[k] + NOISE[t][k] for k in p}


def run_gradtx(tx, extra_out=None):
    """(list of params after each step, final state) in float64, eagerly compiled updates."""
    params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), P0)
    state = tx.init(params)
    out = []
    for t in range(STEPS):
        g = jax.tree.map(
            lambda x, a, n: a * x + n,
            params,
            jax.tree.map(jnp.asarray, A),
            jax.tree.map(jnp.asarray, NOISE[t]),
        )
        u, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, u)
        out.append(jax.tree.map(np.asarray, params))
    return out, state


def assert_close(ours, ref, rtol=1e-10, atol=1e-12):
    for t, (a, b) in enumerate(zip(ours, ref)):
        for k in b:
            np.testing.assert_allclose(a[k], b[k], rtol=rtol, atol=atol, err_msg=f"step {t + 1}")


# --- schedule-free (Defazio et al. 2024, Algorithm 1) ----------------------------------------


def schedule_free_np(lr_fn, b1, wd, warmup, adam=None, r=2.0):
    """Returns (y after each step, final x). adam = (b2, eps) for AdamW, None for SGD."""
    y = {k: v.copy() for k, v in P0.items()}
    z = {k: v.copy() for k, v in P0.items()}
    x = {k: v.copy() for k, v in P0.items()}
    v = {k: np.zeros_like(p) for k, p in P0.items()}
    wsum = 0.0
    ys = []
    for t in range(1, STEPS + 1):
        g = grad_np(y, t - 1)
        gamma = lr_fn(t - 1) * (min(1.0, t / warmup) if warmup else 1.0)
        if adam is not None:
            b2, eps = adam
            gamma *= np.sqrt(1 - b2**t)
        for k in P0:
            if adam is not None:
                v[k] = b2 * v[k] + (1 - b2) * g[k] ** 2
                d = g[k] / (np.sqrt(v[k]) + eps)
            else:
                d = g[k]
            z[k] = z[k] - gamma * d - gamma * wd * y[k]
        wsum += gamma**r
        c = gamma**r / wsum if wsum > 0 else 0.0
        for k in P0:
            x[k] = (1 - c) * x[k] + c * z[k]
            y[k] = (1 - b1) * z[k] + b1 * x[k]
        ys.append({k: a.copy() for k, a in y.items()})
    return ys, x


SF_CASES = [
    ("sgd", dict(), lambda c: 0.1, 0.9, 0.0, 0, None),
    ("sgd-decay-warmup", dict(weight_decay=0.05, warmup_steps=5), lambda c: 0.1, 0.5, 0.05, 5, None),
    ("adamw", dict(), lambda c: 0.05, 0.9, 0.0, 0, (0.999, 1e-8)),
    ("adamw-options", dict(b2=0.99, eps=1e-6, weight_decay=0.1, warmup_steps=4), lambda c: 0.05,
     0.8, 0.1, 4, (0.99, 1e-6)),
]  # fmt: skip


@pytest.mark.parametrize("case", SF_CASES, ids=[c[0] for c in SF_CASES])
def test_schedule_free_matches_paper(case, x64):
    _, kw, lr_fn, b1, wd, warmup, adam = case
    factory = gradtx.schedule_free_adamw if adam else gradtx.schedule_free_sgd
    tx = factory(lr_fn(0), b1=b1, **kw)
    ours, state = run_gradtx(tx)
    ys, x = schedule_free_np(lr_fn, b1, wd, warmup, adam)
    assert_close(ours, ys)
    ev = gradtx.eval_params(state, ours[-1])
    assert_close([jax.tree.map(np.asarray, ev)], [x])


def test_schedule_free_uses_schedule_zero_first(x64):
    # A schedule that is 0 at count 0: the first update must not move anything (Optax's
    # schedule_free evaluates its averaging weight at count 1 instead).
    sched = lambda c: 0.1 * jnp.minimum(jnp.asarray(c, jnp.float64), 1.0)
    ours, _ = run_gradtx(gradtx.schedule_free_sgd(sched, b1=0.9))
    for k in P0:
        np.testing.assert_array_equal(ours[0][k], P0[k])
    ys, _ = schedule_free_np(lambda c: 0.1 * min(c, 1.0), 0.9, 0.0, 0)
    assert_close(ours, ys)


# --- ADOPT (Taniguchi et al. 2024, Algorithm 1 with the clipped variant) ---------------------


def adopt_np(lr, b1, b2, eps, clip=True, wd=0.0):
    p = {k: v.copy() for k, v in P0.items()}
    m = {k: np.zeros_like(v) for k, v in P0.items()}
    out = []
    g0 = grad_np(p, 0)
    v = {k: (g0[k] + wd * p[k]) ** 2 for k in P0}  # v_0 = g_0^2; no step
    out.append({k: a.copy() for k, a in p.items()})
    for t in range(1, STEPS):
        g = grad_np(p, t)
        for k in P0:
            gk = g[k] + wd * p[k]
            n = gk / np.maximum(np.sqrt(v[k]), eps)
            if clip:
                n = np.clip(n, -(t**0.25), t**0.25)
            m[k] = b1 * m[k] + (1 - b1) * n
            p[k] = p[k] - lr * m[k]
            v[k] = b2 * v[k] + (1 - b2) * gk**2
        out.append({k: a.copy() for k, a in p.items()})
    return out


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(b1=0.8, b2=0.99, eps=1e-3, use_clipping=False, weight_decay=0.1)],
    ids=["default", "options"],
)
def test_adopt_matches_paper(kw, x64):
    ours, _ = run_gradtx(gradtx.adopt(0.05, **kw))
    ref = adopt_np(
        0.05,
        kw.get("b1", 0.9),
        kw.get("b2", 0.9999),
        kw.get("eps", 1e-6),
        kw.get("use_clipping", True),
        kw.get("weight_decay", 0.0),
    )
    assert_close(ours, ref)


# --- AdEMAMix (Pagliardini et al. 2024, Algorithm 1) -----------------------------------------


def ademamix_np(lr, b1, b2, b3, alpha, eps, wd, T=None):
    p = {k: v.copy() for k, v in P0.items()}
    m1 = {k: np.zeros_like(v) for k, v in P0.items()}
    m2 = {k: np.zeros_like(v) for k, v in P0.items()}
    nu = {k: np.zeros_like(v) for k, v in P0.items()}
    out = []
    for t in range(1, STEPS + 1):
        g = grad_np(p, t - 1)
        a, b3t = alpha, b3
        if T is not None:
            a = min(t * alpha / T, alpha)
            lb, l1 = np.log(b3), np.log(b1)
            b3t = min(np.exp(l1 * lb / ((1 - t / T) * lb + (t / T) * l1)), b3)
        for k in P0:
            m1[k] = b1 * m1[k] + (1 - b1) * g[k]
            m2[k] = b3t * m2[k] + (1 - b3t) * g[k]
            nu[k] = b2 * nu[k] + (1 - b2) * g[k] ** 2
            m1h = m1[k] / (1 - b1**t)
            nuh = nu[k] / (1 - b2**t)
            p[k] = p[k] - lr * ((m1h + a * m2[k]) / (np.sqrt(nuh) + eps) + wd * p[k])
        out.append({k: x.copy() for k, x in p.items()})
    return out


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(b1=0.8, b2=0.99, b3=0.999, alpha=3.0, eps=1e-6, weight_decay=0.1),
     dict(warmup_steps=10)],
    ids=["default", "options", "paper-schedulers"],
)  # fmt: skip
def test_ademamix_matches_paper(kw, x64):
    ours, _ = run_gradtx(gradtx.ademamix(0.01, **kw))
    ref = ademamix_np(
        0.01,
        kw.get("b1", 0.9),
        kw.get("b2", 0.999),
        kw.get("b3", 0.9999),
        kw.get("alpha", 5.0),
        kw.get("eps", 1e-8),
        kw.get("weight_decay", 0.0),
        kw.get("warmup_steps"),
    )
    assert_close(ours, ref)


# --- Prodigy (Mishchenko & Defazio 2024, Algorithm for Adam) ---------------------------------


def prodigy_np(lr, b1, b2, eps, d0, wd=0.0, bias_correction=False, safeguard=False):
    b3 = np.sqrt(b2)
    x0 = {k: v.copy() for k, v in P0.items()}
    x = {k: v.copy() for k, v in P0.items()}
    m = {k: np.zeros_like(v) for k, v in P0.items()}
    v = {k: np.zeros_like(a) for k, a in P0.items()}
    s = {k: np.zeros_like(a) for k, a in P0.items()}
    r, d = 0.0, d0
    out = []
    for k in range(STEPS):
        g = grad_np(x, k)
        c = np.sqrt(1 - b2 ** (k + 1)) / (1 - b1 ** (k + 1)) if bias_correction else 1.0
        w = lr * d**2 * c
        ws = d**2 if safeguard else w
        r = b3 * r + (1 - b3) * w * sum(np.sum(g[n] * (x0[n] - x[n])) for n in P0)
        for n in P0:
            m[n] = b1 * m[n] + (1 - b1) * d * g[n]
            v[n] = b2 * v[n] + (1 - b2) * d**2 * g[n] ** 2
            s[n] = b3 * s[n] + (1 - b3) * ws * g[n]
        d_new = max(d, r / sum(np.sum(np.abs(s[n])) for n in P0))
        for n in P0:
            x[n] = x[n] - lr * d * c * (m[n] / (np.sqrt(v[n]) + d * eps) + wd * x[n])
        d = d_new
        out.append({n: a.copy() for n, a in x.items()})
    return out


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(b1=0.8, b2=0.99, eps=1e-6, d0=1e-3, weight_decay=0.1),
     dict(bias_correction=True, safeguard_warmup=True, d0=1e-4)],
    ids=["default", "options", "bias-correction-safeguard"],
)  # fmt: skip
def test_prodigy_matches_paper(kw, x64):
    ours, state = run_gradtx(gradtx.prodigy(0.5, **kw))
    ref = prodigy_np(
        0.5,
        kw.get("b1", 0.9),
        kw.get("b2", 0.999),
        kw.get("eps", 1e-8),
        kw.get("d0", 1e-6),
        kw.get("weight_decay", 0.0),
        kw.get("bias_correction", False),
        kw.get("safeguard_warmup", False),
    )
    assert_close(ours, ref)
    if not kw.get("safeguard_warmup"):
        assert float(state[0].d) > kw.get("d0", 1e-6)  # the estimate grew


# --- MARS (Yuan et al. 2024, Algorithm 2: MARS-AdamW, approximate form) ---------------------


def mars_np(lr, b1, b2, eps, gamma, wd, clip=True):
    p = {k: v.copy() for k, v in P0.items()}
    m = {k: np.zeros_like(v) for k, v in P0.items()}
    v = {k: np.zeros_like(a) for k, a in P0.items()}
    g_prev = None
    out = []
    for t in range(1, STEPS + 1):
        g = grad_np(p, t - 1)
        if g_prev is None:
            g_prev = g
        for k in P0:
            c = g[k] + gamma * b1 / (1 - b1) * (g[k] - g_prev[k])
            n = np.linalg.norm(c)
            if clip and n > 1:
                c = c / n
            m[k] = b1 * m[k] + (1 - b1) * c
            v[k] = b2 * v[k] + (1 - b2) * c**2
            mh, vh = m[k] / (1 - b1**t), v[k] / (1 - b2**t)
            p[k] = p[k] - lr * (mh / (np.sqrt(vh) + eps) + wd * p[k])
        g_prev = g
        out.append({k: a.copy() for k, a in p.items()})
    return out


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(b1=0.9, b2=0.999, eps=1e-6, weight_decay=0.1, gamma=0.5, clip_norm=False)],
    ids=["default", "options"],
)
def test_mars_matches_paper(kw, x64):
    ours, _ = run_gradtx(gradtx.mars(0.01, **kw))
    ref = mars_np(
        0.01,
        kw.get("b1", 0.95),
        kw.get("b2", 0.99),
        kw.get("eps", 1e-8),
        kw.get("gamma", 0.025),
        kw.get("weight_decay", 0.0),
        kw.get("clip_norm", True),
    )
    assert_close(ours, ref)


# --- SOAP (Vyas et al. 2024, Algorithms 3 and 4) ---------------------------------------------


def soap_np(lr, b1, b2, eps, wd, freq, bs=None, bias_correction=True):
    bs = b2 if bs is None else bs
    p = {k: v.copy() for k, v in P0.items()}
    m = {k: np.zeros_like(v) for k, v in P0.items()}
    v = {k: np.zeros_like(a) for k, a in P0.items()}
    w = P0["w"]
    L, R = np.zeros((w.shape[0],) * 2), np.zeros((w.shape[1],) * 2)
    QL = QR = None
    out = []
    for t in range(1, STEPS + 1):
        g = grad_np(p, t - 1)
        c = np.sqrt(1 - b2**t) / (1 - b1**t) if bias_correction else 1.0
        # 2-D leaf: Algorithm 3; statistics first (they do not enter this step's direction).
        G = g["w"]
        L = bs * L + (1 - bs) * G @ G.T
        R = bs * R + (1 - bs) * G.T @ G
        if t == 1:
            QL, QR = np.linalg.eigh(L)[1], np.linalg.eigh(R)[1]
        m["w"] = b1 * m["w"] + (1 - b1) * G
        Gr = QL.T @ G @ QR
        Mr = QL.T @ m["w"] @ QR
        v["w"] = b2 * v["w"] + (1 - b2) * Gr**2
        N = QL @ (Mr / (np.sqrt(v["w"]) + eps)) @ QR.T
        p["w"] = p["w"] - lr * (c * N + wd * p["w"])
        if t % freq == 0:  # Algorithm 4: one power-iteration step, then QR
            QL, QR = np.linalg.qr(L @ QL)[0], np.linalg.qr(R @ QR)[0]
        # 1-D leaf: identity bases (Adam with the step-size bias correction).
        gb = g["b"]
        m["b"] = b1 * m["b"] + (1 - b1) * gb
        v["b"] = b2 * v["b"] + (1 - b2) * gb**2
        p["b"] = p["b"] - lr * (c * m["b"] / (np.sqrt(v["b"]) + eps) + wd * p["b"])
        out.append({k: a.copy() for k, a in p.items()})
    return out


# eps is 1e-4 here, not the default 1e-8: on the first step the 3 x 4 leaf's right statistic
# has rank 3, so one rotated coordinate of G is pure rounding (~1e-16), and its ratio to eps
# would amplify rounding differences between LAPACK calls to ~1e-10 in the params.
@pytest.mark.parametrize(
    "kw",
    [dict(eps=1e-4), dict(b1=0.9, b2=0.99, eps=1e-4, weight_decay=0.0, precondition_frequency=3,
                          shampoo_beta=0.8, bias_correction=False)],
    ids=["default", "options"],
)  # fmt: skip
def test_soap_matches_paper(kw, x64):
    ours, _ = run_gradtx(gradtx.soap(0.01, **kw))
    ref = soap_np(
        0.01,
        kw.get("b1", 0.95),
        kw.get("b2", 0.95),
        kw.get("eps", 1e-8),
        kw.get("weight_decay", 0.01),
        kw.get("precondition_frequency", 10),
        kw.get("shampoo_beta"),
        kw.get("bias_correction", True),
    )
    assert_close(ours, ref)
