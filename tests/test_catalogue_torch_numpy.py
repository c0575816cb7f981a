"""gradtx.torch's catalogue against NumPy references written from torch_optim.md (float64).

Each reference below is the formula of ../shared/reference/torch_optim.md section 2 (and
optax.md section 5 for the Optax conventions), written per leaf with NumPy and independent of
gradtx's code. 20 steps on the catalogue problem (``g = c * (p - target) + noise_t``), float64,
within 1e-12.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

from .torch_cases.catalogue_torch import SHAPES, inputs

STEPS = 20
DATA = inputs()
LEAVES = tuple(SHAPES)


def _run_numpy(step, init, leaves=LEAVES, lr_at=None):
    """Runs ``step(name, p, g, st, t, lr) -> p`` for STEPS steps; returns params and states."""
    p = {n: DATA[f"inputs/p0/{n}"].copy() for n in leaves}
    st = {n: init(p[n]) for n in leaves}
    for t in range(1, STEPS + 1):
        lr = lr_at(t - 1) if lr_at is not None else None
        for n in leaves:
            g = DATA[f"inputs/c/{n}"] * (p[n] - DATA[f"inputs/target/{n}"])
            g = g + DATA[f"inputs/noise/{n}"][t - 1]
            p[n] = step(p[n], g, st[n], t, lr)
    return p, st


def _run_gradtx(tx, leaves=LEAVES):
    params = {n: jnp.asarray(DATA[f"inputs/p0/{n}"]) for n in leaves}
    c = {n: jnp.asarray(DATA[f"inputs/c/{n}"]) for n in leaves}
    tgt = {n: jnp.asarray(DATA[f"inputs/target/{n}"]) for n in leaves}
    noise = {n: jnp.asarray(DATA[f"inputs/noise/{n}"][:STEPS]) for n in leaves}

    def body(carry, nz):
        p, s = carry
        g = jax.tree.map(lambda pi, ci, ti, ni: ci * (pi - ti) + ni, p, c, tgt, nz)
        u, s = tx.update(g, s, p)
        return (gradtx.apply_updates(p, u), s), None

    (p, s), _ = jax.lax.scan(body, (params, tx.init(params)), noise)
    return {n: np.asarray(v) for n, v in p.items()}, s


def _close(got, want, tol=1e-12):
    for n in want:
        np.testing.assert_allclose(got[n], want[n], rtol=tol, atol=tol, err_msg=n)


def _wd(p, g, wd, maximize):
    g = -g if maximize else g
    return g + wd * p


# ------------------------------------------------------------------------------------------
# Adadelta


def ref_adadelta(lr=1.0, rho=0.9, eps=1e-6, wd=0.0, maximize=False):
    def init(p):
        return {"eg": np.zeros_like(p), "ed": np.zeros_like(p)}

    def step(p, g, st, t, _):
        g = _wd(p, g, wd, maximize)
        st["eg"] = rho * st["eg"] + (1 - rho) * g * g
        dx = np.sqrt(st["ed"] + eps) / np.sqrt(st["eg"] + eps) * g
        st["ed"] = rho * st["ed"] + (1 - rho) * dx * dx
        return p - lr * dx

    return step, init


# Adamax


def ref_adamax(lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, maximize=False):
    def init(p):
        return {"m": np.zeros_like(p), "u": np.zeros_like(p)}

    def step(p, g, st, t, _):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["u"] = np.maximum(b2 * st["u"], np.abs(g) + eps)
        return p - lr / (1 - b1**t) * st["m"] / st["u"]

    return step, init


# NAdam (torch's momentum schedule; psi = inf is Optax's constant momentum)


def ref_nadam(lr=2e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, psi=4e-3, decoupled=False,
              maximize=False, constant_mu=False):  # fmt: skip
    def mu(t):
        return b1 if constant_mu else b1 * (1 - 0.5 * 0.96 ** (t * psi))

    def init(p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p), "prod": 1.0}

    def step(p, g, st, t, lr_t):
        lr_ = lr if lr_t is None else lr_t
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr_ * wd)
        else:
            g = g + wd * p
        mu_t, mu_n = mu(t), mu(t + 1)
        st["prod"] = st["prod"] * mu_t
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["v"] = b2 * st["v"] + (1 - b2) * g * g
        d = np.sqrt(st["v"] / (1 - b2**t)) + eps
        pr = st["prod"]
        return p - lr_ * (1 - mu_t) / (1 - pr) * g / d - lr_ * mu_n / (1 - pr * mu_n) * st["m"] / d

    return step, init


# RAdam


def ref_radam(lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, decoupled=False, maximize=False,
              inclusive=False, eps_corrected=False, threshold=5.0):  # fmt: skip
    def init(p):
        return {"m": np.zeros_like(p), "v": np.zeros_like(p)}

    def step(p, g, st, t, _):
        g = -g if maximize else g
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        st["m"] = b1 * st["m"] + (1 - b1) * g
        st["v"] = b2 * st["v"] + (1 - b2) * g * g
        bc1, bc2 = 1 - b1**t, 1 - b2**t
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / bc2
        on = rho >= threshold if inclusive else rho > threshold
        if not on:
            return p - lr * st["m"] / bc1
        r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
        if eps_corrected:
            return p - lr * r * (st["m"] / bc1) / (np.sqrt(st["v"] / bc2) + eps)
        return p - lr * (st["m"] / bc1) * r * math.sqrt(bc2) / (np.sqrt(st["v"]) + eps)

    return step, init


# Rprop (iRprop-)


def ref_rprop(lr=1e-2, etam=0.5, etap=1.2, smin=1e-6, smax=50.0, maximize=False):
    def init(p):
        return {"prev": np.zeros_like(p), "step": np.full_like(p, lr)}

    def step(p, g, st, t, _):
        g = -g if maximize else g
        s = np.sign(g * st["prev"])
        eta = np.where(s > 0, etap, np.where(s < 0, etam, 1.0))
        st["step"] = np.clip(st["step"] * eta, smin, smax)
        g = np.where(s < 0, 0.0, g)
        st["prev"] = g
        return p - np.sign(g) * st["step"]

    return step, init


# ASGD


def ref_asgd(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, wd=0.0, maximize=False, sched=None):
    def init(p):
        return {"eta": sched(0) if sched else lr, "mu": 1.0, "ax": np.zeros_like(p)}

    def step(p, g, st, t, lr_t):
        lr_ = lr_t if sched else lr
        g = _wd(p, g, wd, maximize)
        p = p * (1 - lambd * st["eta"]) - st["eta"] * g
        st["ax"] = p.copy() if st["mu"] == 1 else st["ax"] + st["mu"] * (p - st["ax"])
        st["eta"] = lr_ / (1 + lambd * lr_ * t) ** alpha
        st["mu"] = 1 / max(1, t - t0)
        return p

    return step, init


# Adafactor (torch; and Optax's convention)


def ref_adafactor(lr=1e-2, beta2_decay=-0.8, eps1=None, eps2=1e-3, d=1.0, wd=0.0,
                  maximize=False, optax=False, min_dim=128):  # fmt: skip
    def dims(shape):
        if len(shape) < 2:
            return None
        if not optax:
            return len(shape) - 2, len(shape) - 1
        order = np.argsort(shape)
        if shape[order[-2]] < min_dim:
            return None
        return tuple(sorted((int(order[-2]), int(order[-1]))))

    def init(p):
        dd = dims(p.shape)
        if dd is None:
            return {"v": np.zeros_like(p)}
        r, c = dd
        return {"R": np.zeros_like(p.mean(axis=c)), "C": np.zeros_like(p.mean(axis=r))}

    def step(p, g, st, t, lr_t):
        lr_ = lr if lr_t is None else lr_t
        g = -g if maximize else g
        e1 = (np.finfo(np.float64).eps if not optax else 1e-30) if eps1 is None else eps1
        w = t**beta2_decay
        rho = lr_ if optax else min(lr_, 1 / math.sqrt(t))
        a = max(eps2, np.sqrt(np.mean(p * p))) * rho
        p = p * (1 - lr_ * wd)
        g2 = g * g + (e1 if optax else 0.0)
        dd = dims(g.shape)
        if dd is None:
            st["v"] = (1 - w) * st["v"] + w * g2
            vhat = st["v"]
        else:
            r, c = dd
            st["R"] = (1 - w) * st["R"] + w * g2.mean(axis=c)
            st["C"] = (1 - w) * st["C"] + w * g2.mean(axis=r)
            rr = r if r < c else r - 1
            norm = st["R"].mean(axis=rr, keepdims=True)
            if not optax:
                norm = np.maximum(norm, e1)
            vhat = (np.expand_dims(st["R"], c) * np.expand_dims(st["C"], r)
                    / np.expand_dims(norm, c))  # fmt: skip
        u = g / np.sqrt(vhat if optax else np.maximum(vhat, e1 * e1))
        u = u / max(1.0, np.sqrt(np.mean(u * u)) / d)
        return p - a * u

    return step, init


# Muon (Newton-Schulz in float64 here; torch's bf16 is a separate, documented tolerance)


def ref_muon(lr=1e-3, wd=0.1, mu=0.95, nesterov=True, abc=(3.4445, -4.7750, 2.0315), eps=1e-7,
             ns_steps=5, adjust=None):  # fmt: skip
    a, b, c = abc

    def ns(x):
        tr = x.shape[0] > x.shape[1]
        x = x.T if tr else x
        x = x / max(np.linalg.norm(x), eps)
        for _ in range(ns_steps):
            A = x @ x.T
            x = a * x + (b * A + c * A @ A) @ x
        return x.T if tr else x

    def init(p):
        return {"B": np.zeros_like(p)}

    def step(p, g, st, t, _):
        st["B"] = mu * st["B"] + (1 - mu) * g
        u = (1 - mu) * g + mu * st["B"] if nesterov else st["B"]
        mats = u.reshape(-1, *u.shape[-2:])
        o = np.stack([ns(m) for m in mats]).reshape(u.shape)
        rows, cols = u.shape[-2:]
        s = 0.2 * math.sqrt(max(rows, cols)) if adjust else math.sqrt(max(1, rows / cols))
        return p * (1 - lr * wd) - lr * s * o

    return step, init


# ------------------------------------------------------------------------------------------

MATS = ("w", "v", "k")
T = gradtx.torch
# case -> (factory, keyword arguments, NumPy reference). gradtx.torch takes torch's names; the
# Optax conventions of the same algorithms are options of the top-level factories.
CASES = {
    "adadelta": (T.adadelta, {}, ref_adadelta()),
    "adadelta_opts": (
        T.adadelta,
        {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1, "maximize": True},
        ref_adadelta(0.5, 0.8, 1e-5, 0.1, True),
    ),
    "adamax": (T.adamax, {"lr": 0.05}, ref_adamax(0.05)),
    "adamax_wd": (
        T.adamax,
        {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1},
        ref_adamax(0.05, 0.8, 0.99, 1e-6, 0.1),
    ),
    "adamax_dwd_max": (
        gradtx.adamax,
        {
            "learning_rate": 0.05,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "maximize": True,
        },
        ref_adamax(0.05, wd=0.1, decoupled=True, maximize=True),
    ),
    "nadam": (T.nadam, {"lr": 0.05}, ref_nadam(0.05)),
    "nadam_wd": (
        T.nadam,
        {"lr": 0.05, "weight_decay": 0.1, "momentum_decay": 0.01},
        ref_nadam(0.05, wd=0.1, psi=0.01),
    ),
    "nadam_dwd_max": (
        T.nadam,
        {
            "lr": 0.05,
            "betas": (0.8, 0.99),
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "maximize": True,
        },
        ref_nadam(0.05, 0.8, 0.99, wd=0.1, decoupled=True, maximize=True),
    ),
    "nadam_optax": (gradtx.nadam, {"learning_rate": 0.05}, ref_nadam(0.05, constant_mu=True)),
    "radam": (T.radam, {"lr": 0.05}, ref_radam(0.05)),
    "radam_wd": (
        T.radam,
        {"lr": 0.05, "betas": (0.8, 0.99), "weight_decay": 0.1},
        ref_radam(0.05, 0.8, 0.99, wd=0.1),
    ),
    "radam_dwd_max": (
        T.radam,
        {"lr": 0.05, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True},
        ref_radam(0.05, wd=0.1, decoupled=True, maximize=True),
    ),
    "radam_optax": (
        gradtx.radam,
        {
            "learning_rate": 0.05,
            "b2": 0.99,
            "threshold_inclusive": True,
            "eps_placement": "corrected",
            "eps": 1e-3,
        },
        ref_radam(0.05, b2=0.99, eps=1e-3, inclusive=True, eps_corrected=True),
    ),
    "rprop": (T.rprop, {}, ref_rprop()),
    "rprop_opts": (
        T.rprop,
        {"lr": 0.02, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05), "maximize": True},
        ref_rprop(0.02, 0.3, 1.5, 1e-3, 0.05, maximize=True),
    ),
    "asgd": (T.asgd, {"lr": 0.05}, ref_asgd(0.05)),
    "asgd_avg": (
        T.asgd,
        {
            "lr": 0.05,
            "lambd": 1e-2,
            "alpha": 0.5,
            "t0": 5.0,
            "weight_decay": 0.1,
            "maximize": True,
        },
        ref_asgd(0.05, 1e-2, 0.5, 5.0, 0.1, True),
    ),
    "adafactor": (T.adafactor, {"lr": 0.05}, ref_adafactor(0.05)),
    "adafactor_opts": (
        T.adafactor,
        {
            "lr": 0.5,
            "beta2_decay": -0.5,
            "eps": (1e-20, 1e-2),
            "d": 0.5,
            "weight_decay": 0.1,
            "maximize": True,
        },
        ref_adafactor(0.5, -0.5, 1e-20, 1e-2, 0.5, 0.1, True),
    ),
    "adafactor_optax": (
        gradtx.adafactor,
        {"learning_rate": 0.05, "convention": "optax", "min_dim_size_to_factor": 2},
        ref_adafactor(0.05, optax=True, min_dim=2),
    ),
    "adafactor_optax_unfactored": (
        gradtx.adafactor,
        {"learning_rate": 0.05, "convention": "optax", "weight_decay": 0.1},
        ref_adafactor(0.05, wd=0.1, optax=True),
    ),
    "muon": (T.muon, {"lr": 0.02, "ns_dtype": jnp.float64}, ref_muon(0.02)),
    "muon_opts": (
        T.muon,
        {
            "lr": 0.02,
            "weight_decay": 0.0,
            "momentum": 0.9,
            "nesterov": False,
            "ns_steps": 3,
            "adjust_lr_fn": "match_rms_adamw",
            "ns_dtype": jnp.float64,
        },
        ref_muon(0.02, 0.0, 0.9, False, ns_steps=3, adjust=True),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_matches_numpy_reference(case, x64):
    factory, kwargs, (step, init) = CASES[case]
    leaves = MATS if factory is T.muon else LEAVES
    want, _ = _run_numpy(step, init, leaves)
    got, _ = _run_gradtx(factory(**kwargs), leaves)
    _close(got, want)


def test_schedules_follow_torch(x64):
    """Rprop reads the rate once; ASGD lags it by a step; NAdam and Adafactor read it each step."""
    sched = lambda k: 0.05 * 0.9**k
    jsched = lambda k: 0.05 * 0.9 ** jnp.asarray(k, jnp.float64)
    for factory, (step, init) in (
        (T.nadam, ref_nadam(0.05)),
        (T.adafactor, ref_adafactor(0.05)),
        (T.asgd, ref_asgd(0.05, lambd=1e-2, sched=sched)),
    ):
        kwargs = {"lambd": 1e-2} if factory is T.asgd else {}
        want, _ = _run_numpy(step, init, lr_at=sched)
        got, _ = _run_gradtx(factory(jsched, **kwargs))
        _close(got, want)
    step, init = ref_rprop(0.05)
    want, _ = _run_numpy(step, init)
    got, _ = _run_gradtx(T.rprop(jsched))
    _close(got, want)


def test_asgd_averaged_params(x64):
    step, init = ref_asgd(0.05, 1e-2, 0.5, 5.0)
    _, st = _run_numpy(step, init)
    params, state = _run_gradtx(T.asgd(0.05, 1e-2, 0.5, 5.0))
    ax = gradtx.eval_params(state, params)
    _close({n: np.asarray(ax[n]) for n in LEAVES}, {n: st[n]["ax"] for n in LEAVES})


# ------------------------------------------------------------------------------------------
# Muon's rules for leaves that are not matrices (torch accepts 2-D parameters only)


def _two_updates(tx, params, grads):
    state = tx.init(params)
    u1, state = tx.update(grads, state, params)
    u2, _ = tx.update(jax.tree.map(lambda g: -0.5 * g, grads), state, params)
    return u1, u2


def _rand(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape))


def test_muon_reshapes_kernels_and_stacks(x64):
    tx = lambda **kw: T.muon(0.02, ns_dtype=jnp.float64, **kw)
    cases = [
        # (leaf shape, options, the equivalent matrices: reshape of the leaf)
        ((4, 2, 3, 3), {}, (4, 18)),  # torch OIHW kernel -> (out, in * kh * kw)
        ((3, 3, 2, 4), {"conv_layout": "hwio"}, (18, 4)),  # Flax HWIO -> (kh * kw * in, out)
        ((2, 4, 2, 1, 1), {}, (2, 4, 2)),  # a stack of OIHW kernels -> a stack of matrices
        ((2, 2, 3, 4), {"batch_dims": 2}, (4, 3, 4)),  # a (2, 2) stack of 3x4 matrices
    ]
    for i, (shape, kw, flat) in enumerate(cases):
        p = {"x": _rand(shape, i)}
        g = {"x": _rand(shape, 10 + i)}
        got = _two_updates(tx(**kw), p, g)
        pf = {"x": p["x"].reshape(flat)}
        gf = {"x": g["x"].reshape(flat)}
        want = _two_updates(tx(), pf, gf)
        for a, b in zip(got, want):
            np.testing.assert_allclose(a["x"], b["x"].reshape(shape), rtol=1e-12, atol=1e-12)


def test_muon_sends_vectors_and_scalars_to_the_fallback(x64):
    p = {"w": _rand((2, 3), 0), "b": _rand((3,), 1), "s": jnp.asarray(0.7), "none": None}
    g = {"w": _rand((2, 3), 2), "b": _rand((3,), 3), "s": jnp.asarray(-0.2), "none": None}
    kw = {"weight_decay": 0.05, "ns_dtype": jnp.float64}
    got = _two_updates(T.muon(0.02, **kw), p, g)
    mat = _two_updates(T.muon(0.02, **kw), {"w": p["w"]}, {"w": g["w"]})
    vec = _two_updates(T.adamw(0.02, weight_decay=0.05), {"b": p["b"], "s": p["s"]},
                       {"b": g["b"], "s": g["s"]})  # fmt: skip
    for u, um, uv in zip(got, mat, vec):
        assert u["none"] is None
        np.testing.assert_allclose(u["w"], um["w"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(u["b"], uv["b"], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(u["s"], uv["s"], rtol=1e-12, atol=1e-12)
    # A configurable fallback (here plain SGD), and maximize reaching both parts.
    u1, _ = _two_updates(T.muon(0.02, fallback=T.sgd(0.1), maximize=True, **kw), p, g)
    np.testing.assert_allclose(u1["b"], 0.1 * g["b"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(u1["w"], -mat[0]["w"] - 2 * 0.02 * 0.05 * p["w"], atol=1e-12)
