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
    name, kw, lr_fn, b1, wd, warmup, adam = case
    factory = gradtx.schedule_free_adamw if adam else gradtx.schedule_free_sgd
    tx = factory(lr_fn(0), b1=b1, **kw)
    ours, state = run_gradtx(tx)
    ys, x = schedule_free_np(lr_fn, b1, wd, warmup, adam)
    assert_close(ours, ys)
    ev = gradtx.schedule_free_eval_params(state, ours[-1])
    assert_close([jax.tree.map(np.asarray, ev)], [x])


def test_schedule_free_uses_schedule_zero_first(x64):
    # A schedule that is 0 at count 0: the first update must not move anything (Optax's
    # schedule_free evaluates its averaging weight at count 1 instead).
    sched = lambda c: 0.1 * jnp.minimum(jnp.asarray(c, jnp.float64), 1.0)  # noqa: E731
    ours, _ = run_gradtx(gradtx.schedule_free_sgd(sched, b1=0.9))
    for k in P0:
        np.testing.assert_array_equal(ours[0][k], P0[k])
    ys, _ = schedule_free_np(lambda c: 0.1 * min(c, 1.0), 0.9, 0.0, 0)
    assert_close(ours, ys)
