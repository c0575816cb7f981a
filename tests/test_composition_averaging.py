"""ema_params, swa, swa_schedule, lookahead and eval_params against NumPy and Optax."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._composition_util import (
    assert_trees_close,
    assert_trees_equal,
    grad_seq,
    make_params,
    run_gradtx,
)


def _np(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


@pytest.mark.parametrize(
    "debias, warmup", [(True, None), (False, None), (True, 10.0), (False, 4.0)]
)
def test_ema_params_numpy(x64, debias, warmup):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 4)
    decay = 0.8
    tx = gradtx.chain(gradtx.sgd(0.1), gradtx.ema_params(decay, debias=debias, warmup=warmup))
    traj, state = run_gradtx(tx, params, grads)
    # NumPy oracle of the docstring's formula
    e = jax.tree.map(np.zeros_like, _np(params)) if debias else _np(params)
    prod = 1.0
    for t, p in enumerate(traj, start=1):
        d = decay if warmup is None else min(decay, (1 + t) / (warmup + t))
        e = jax.tree.map(lambda a, x, d=d: d * a + (1 - d) * x, e, _np(p))
        prod *= d
    expected = jax.tree.map(lambda a: a / (1 - prod), e) if debias else e
    assert_trees_close(gradtx.eval_params(state, traj[-1]), expected, rtol=1e-12)


def test_eval_params_before_first_step_is_params():
    params = make_params()
    for avg in [gradtx.ema_params(0.9), gradtx.swa(0), gradtx.ema_params(0.9, debias=False)]:
        state = gradtx.chain(gradtx.sgd(0.1), avg).init(params)
        assert_trees_equal(gradtx.eval_params(state, params), params)
    assert_trees_equal(gradtx.eval_params(gradtx.sgd(0.1).init(params), params), params)


@pytest.mark.parametrize("start, every", [(0, 1), (2, 1), (1, 2)])
def test_swa_numpy(x64, start, every):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 6)
    tx = gradtx.chain(gradtx.sgd(0.1, momentum=0.5), gradtx.swa(start, every))
    traj, state = run_gradtx(tx, params, grads)
    taken = [
        _np(p) for t, p in enumerate(traj, start=1) if t > start and (t - start - 1) % every == 0
    ]
    expected = jax.tree.map(lambda *xs: sum(xs) / len(xs), *taken)
    assert int(state[1].n_averaged) == len(taken)
    assert_trees_close(gradtx.eval_params(state, traj[-1]), expected, rtol=1e-12)


def _torch_swalr(lr0, swa_lr, anneal_epochs, strategy, steps):
    """torch.optim.swa_utils.SWALR's recursion, transcribed to NumPy (its get_lr)."""
    f = (lambda t: (1 - math.cos(math.pi * t)) / 2) if strategy == "cos" else (lambda t: t)
    lrs, lr = [], lr0
    for step in range(steps):  # step = scheduler._step_count - 1 after construction
        prev_t = max(0.0, min(1.0, (step - 1) / max(1, anneal_epochs)))
        prev_alpha = f(prev_t)
        if prev_alpha == 1:
            prev_lr = swa_lr
        else:
            prev_lr = (lr - prev_alpha * swa_lr) / (1 - prev_alpha)
        t = max(0.0, min(1.0, step / max(1, anneal_epochs)))
        alpha = f(t)
        lr = swa_lr * alpha + prev_lr * (1 - alpha)
        lrs.append(lr)
    return lrs


@pytest.mark.parametrize("strategy", ["cos", "linear"])
def test_swa_schedule_matches_torch_swalr_recursion(x64, strategy):
    base = gradtx.cosine_decay_schedule(0.1, 100)
    start, anneal = 5, 4
    sched = gradtx.swa_schedule(base, 0.02, start, anneal, strategy)
    base0 = float(base(start))
    torch_like = _torch_swalr(base0, 0.02, anneal, strategy, 8)
    for c in range(start):
        np.testing.assert_allclose(float(sched(c)), float(base(c)), rtol=1e-14)
    for i, lr in enumerate(torch_like):
        np.testing.assert_allclose(float(sched(start + i)), lr, rtol=1e-12)


def test_lookahead_matches_optax(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 7)
    tx = gradtx.lookahead(gradtx.adam(0.1), sync_period=3, slow_step_size=0.5)
    traj, state = run_gradtx(tx, params, grads)
    ref = optax.lookahead(optax.adam(0.1), sync_period=3, slow_step_size=0.5)
    with jax.numpy_dtype_promotion("standard"):
        lp = optax.LookaheadParams.init_synced(params)
        s = ref.init(lp)
        update = jax.jit(ref.update)
        for i, g in enumerate(grads):
            u, s = update(g, s, lp)
            lp = optax.apply_updates(lp, u)
            assert_trees_close(traj[i], lp.fast, rtol=1e-12)
    assert_trees_close(gradtx.eval_params(state, traj[-1]), lp.slow, rtol=1e-12)


def test_lookahead_reset_state_restarts_fast_optimizer():
    params = make_params()
    grads = grad_seq(params, 4)
    _, state = run_gradtx(
        gradtx.lookahead(gradtx.adam(0.1), 2, 0.5, reset_state=True), params, grads
    )
    assert int(state.inner_state[0].count) == 0  # reset after step 4
    _, state = run_gradtx(
        gradtx.lookahead(gradtx.adam(0.1), 3, 0.5, reset_state=True), params, grads
    )
    assert int(state.inner_state[0].count) == 1  # reset at step 3, one step since


def test_eval_params_merges_partition_groups_and_masks(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    labels = {"dense": "avg", "norm": "plain", "head": "avg"}
    tx = gradtx.partition(
        {
            "avg": gradtx.chain(gradtx.sgd(0.1), gradtx.ema_params(0.5, debias=False)),
            "plain": gradtx.sgd(0.1),
        },
        labels,
    )
    traj, state = run_gradtx(tx, params, grads)
    ev = gradtx.eval_params(state, traj[-1])
    assert_trees_equal(ev["norm"], traj[-1]["norm"])  # not averaged: the params
    e = _np(params["head"])
    for p in traj:
        e = 0.5 * e + 0.5 * _np(p["head"])
    np.testing.assert_allclose(np.asarray(ev["head"]), e, rtol=1e-12)


def test_eval_params_rejects_two_averages_of_one_leaf():
    params = make_params()
    tx = gradtx.chain(gradtx.sgd(0.1), gradtx.ema_params(0.9), gradtx.swa(0))
    _, state = run_gradtx(tx, params, grad_seq(params, 1))
    with pytest.raises(ValueError, match="two averaging transforms"):
        gradtx.eval_params(state, params)


def test_averaging_invalid():
    with pytest.raises(gradtx.HyperparameterError, match="ema_params: decay"):
        gradtx.ema_params(1.0)
    with pytest.raises(gradtx.HyperparameterError, match="lookahead: sync_period"):
        gradtx.lookahead(gradtx.sgd(0.1), 0, 0.5)
    with pytest.raises(gradtx.HyperparameterError, match="swa_schedule: anneal"):
        gradtx.swa_schedule(0.1, 0.01, 5, anneal="step")
