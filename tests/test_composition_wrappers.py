"""accumulate and apply_if_finite against Optax's MultiSteps / apply_if_finite and the laws."""

from __future__ import annotations

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


def test_accumulate_equals_tx_on_mean_grad_every_k(x64):
    params = make_params(jnp.float64)
    k = 3
    grads = grad_seq(params, 2 * k)
    tx = gradtx.adamw(0.05, weight_decay=0.1)
    acc_out, state = run_gradtx(gradtx.accumulate(tx, k), params, grads)
    means = [
        jax.tree.map(lambda *g: sum(np.asarray(x) for x in g) / k, *grads[i : i + k])
        for i in range(0, len(grads), k)
    ]
    ref, _ = run_gradtx(tx, params, [jax.tree.map(jnp.asarray, m) for m in means])
    assert_trees_close(acc_out[k - 1], ref[0], rtol=1e-12)
    assert_trees_close(acc_out[2 * k - 1], ref[1], rtol=1e-12)
    for i in range(k - 1):  # no movement in between
        assert_trees_equal(acc_out[i], params)
    assert int(state.mini_step) == 0


def test_accumulate_sum(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 2)
    tx = gradtx.sgd(0.1)
    out, _ = run_gradtx(gradtx.accumulate(tx, 2, reduce="sum"), params, grads)
    total = jax.tree.map(lambda a, b: a + b, grads[0], grads[1])
    ref, _ = run_gradtx(tx, params, [total])
    assert_trees_close(out[1], ref[0], rtol=1e-14)


def test_accumulate_k1_equals_tx():
    params = make_params()
    grads = grad_seq(params, 3)
    tx = gradtx.adam(0.05)
    a, _ = run_gradtx(gradtx.accumulate(tx, 1), params, grads)
    b, _ = run_gradtx(tx, params, grads)
    assert_trees_equal(a, b)


def test_accumulate_matches_optax_multisteps(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 6)
    ours, _ = run_gradtx(gradtx.accumulate(gradtx.adam(0.1), 3), params, grads)
    ms = optax.MultiSteps(optax.adam(0.1), every_k_schedule=3, accumulator_dtype=jnp.float64)
    with jax.numpy_dtype_promotion("standard"):
        state = ms.init(params)
        update = jax.jit(ms.update)
        p = params
        for i, g in enumerate(grads):
            u, state = update(g, state, p)
            p = optax.apply_updates(p, u)
            assert_trees_close(ours[i], p, rtol=1e-12)


def test_accumulate_runs_inner_under_cond_with_one_buffer():
    params = make_params()
    tx = gradtx.accumulate(gradtx.adam(0.1), 4)
    state = tx.init(params)
    jaxpr = jax.make_jaxpr(lambda s, g: tx._update(g, s, params))(state, params)
    assert "cond" in {e.primitive.name for e in jaxpr.jaxpr.eqns}
    # Extra memory: one gradient-sized buffer (float32 here) plus the mini-step counter.
    inner = gradtx.adam(0.1).init(params)
    n_extra = len(jax.tree.leaves(state)) - len(jax.tree.leaves(inner))
    assert n_extra == len(jax.tree.leaves(params)) + 1
    assert jax.tree.structure(state.acc) == jax.tree.structure(params)


def test_accumulate_inner_state_advances_only_on_emit():
    params = make_params()
    grads = grad_seq(params, 5)
    _, state = run_gradtx(gradtx.accumulate(gradtx.adam(0.1), 2), params, grads)
    assert int(state.inner_state[0].count) == 2
    assert int(state.mini_step) == 1


def test_accumulate_bf16_accumulates_in_float32():
    params = make_params(jnp.bfloat16)
    grads = grad_seq(params, 2)
    tx = gradtx.accumulate(gradtx.adam(0.1, mu_dtype=jnp.float32), 2)
    state = tx.init(params)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.acc))
    u, state = tx.update(grads[0], state, params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
    u, state = tx.update(grads[1], state, params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))


def test_accumulate_invalid():
    with pytest.raises(gradtx.HyperparameterError, match="accumulate: every_k"):
        gradtx.accumulate(gradtx.sgd(0.1), 0)
    with pytest.raises(gradtx.HyperparameterError, match="accumulate: reduce"):
        gradtx.accumulate(gradtx.sgd(0.1), 2, reduce="max")


# ---------------------------------------------------------------------------------------------
# apply_if_finite


def _nan_grads(params, pattern):
    """Gradients where pattern[i] is True means a NaN in step i."""
    grads = grad_seq(params, len(pattern))
    return [
        jax.tree.map(lambda x: x.at[(0,) * x.ndim].set(jnp.nan), g) if bad else g
        for g, bad in zip(grads, pattern)
    ]


def test_apply_if_finite_skips_and_matches_optax_before_give_up(x64):
    params = make_params(jnp.float64)
    pattern = [False, True, False, True, True, False]
    grads = _nan_grads(params, pattern)
    ours, state = run_gradtx(gradtx.apply_if_finite(gradtx.adam(0.1), 3), params, grads)
    ref_tx = optax.apply_if_finite(optax.adam(0.1), 3)
    with jax.numpy_dtype_promotion("standard"):
        s = ref_tx.init(params)
        update = jax.jit(ref_tx.update)
        p = params
        for i, g in enumerate(grads):
            u, s = update(g, s, p)
            p = optax.apply_updates(p, u)
            assert_trees_close(ours[i], p, rtol=1e-12)
    assert int(state.total_notfinite) == int(s.total_notfinite) == 3
    assert int(state.notfinite_count) == 0 and bool(state.last_finite)
    assert int(state.total_skipped) == 3
    assert int(state.inner_state[0].count) == 3  # only finite steps reached adam


def test_apply_if_finite_counters_after_recovery():
    params = {"x": jnp.ones((2,))}
    pattern = [True, True, True, True, True, False]  # max 2: skip, skip, give up, skip, skip, ok
    grads = _nan_grads(params, pattern)
    tx = gradtx.apply_if_finite(gradtx.sgd(gradtx.constant_schedule(0.1)), 2)
    state = tx.init(params)
    seen = []
    for g in grads:
        u, state = tx.update(g, state, params)
        applied = bool(np.any(np.asarray(u["x"]) != 0))
        seen.append(
            (
                int(state.notfinite_count),
                int(state.total_notfinite),
                int(state.total_skipped),
                applied,
            )
        )
    assert seen == [
        (1, 1, 1, False),
        (2, 2, 2, False),
        (0, 3, 2, True),  # gave up: the NaN step is applied and a new run starts
        (1, 4, 3, False),  # the next NaN is skipped again (Optax would apply it)
        (2, 5, 4, False),
        (0, 5, 4, True),
    ]
    assert int(state.inner_state[1].count) == 2  # the learning-rate schedule's count: applied steps


def test_apply_if_finite_cond_in_program():
    params = make_params()
    tx = gradtx.apply_if_finite(gradtx.adam(0.1), 2)
    jaxpr = jax.make_jaxpr(lambda s, g: tx._update(g, s, params))(tx.init(params), params)
    assert "cond" in {e.primitive.name for e in jaxpr.jaxpr.eqns}
