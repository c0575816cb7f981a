"""Clipping transforms against Optax and NumPy; the pre-clip norm in the state."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._composition_util import assert_trees_close, grad_seq, make_params, run_gradtx, run_optax


def _np_norm(tree):
    return np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(tree)))


# Built inside the float64 test (hyperparameters take the precision current at construction).
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda: gradtx.clip(0.3), lambda: optax.clip(0.3)),
        (lambda: gradtx.clip_by_global_norm(1.0), lambda: optax.clip_by_global_norm(1.0)),
        (lambda: gradtx.clip_by_global_norm(100.0), lambda: optax.clip_by_global_norm(100.0)),
        (lambda: gradtx.clip_by_block_rms(0.5), lambda: optax.clip_by_block_rms(0.5)),
        (lambda: gradtx.adaptive_grad_clip(0.05), lambda: optax.adaptive_grad_clip(0.05)),
        (
            lambda: gradtx.adaptive_grad_clip(10.0, eps=1e-2),
            lambda: optax.adaptive_grad_clip(10.0, eps=1e-2),
        ),
    ],
    ids=["clip", "global_norm", "global_norm_inactive", "block_rms", "agc", "agc_loose"],
)
def test_clipping_matches_optax(x64, ours, theirs):
    ours, theirs = ours(), theirs()
    params = make_params(jnp.float64)
    grads = grad_seq(params, 2, scale=2.0)
    a, state = run_gradtx(gradtx.chain(ours, gradtx.sgd(0.1)), params, grads)
    b, _ = run_optax(optax.chain(theirs, optax.sgd(0.1)), params, grads)
    assert_trees_close(a, b, rtol=1e-12)
    # the state keeps the global norm of the last gradient, before clipping
    np.testing.assert_allclose(float(state[0].norm), _np_norm(grads[-1]), rtol=1e-12)


def test_clip_by_global_norm_numpy(x64):
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([[12.0]])}  # norm 13
    tx = gradtx.clip_by_global_norm(6.5)
    u, s = tx.update(g, tx.init(g))
    np.testing.assert_allclose(np.asarray(u["a"]), [1.5, 2.0], rtol=1e-15)
    np.testing.assert_allclose(np.asarray(u["b"]), [[6.0]], rtol=1e-15)
    assert float(s.norm) == 13.0


def test_clip_by_global_norm_is_pairwise_over_many_leaves(x64):
    g = [jnp.full((2,), float(i)) for i in range(65)]
    tx = gradtx.clip_by_global_norm(1.0)
    u, s = tx.update(g, tx.init(g))
    ref = np.sqrt(2 * sum(i * i for i in range(65)))
    np.testing.assert_allclose(float(s.norm), ref, rtol=1e-14)
    np.testing.assert_allclose(_np_norm(u), 1.0, rtol=1e-12)


def test_clip_updates_numpy(x64):
    u = {"a": jnp.array([0.5, -3.0, 0.1]), "b": jnp.array([2.0])}
    tx = gradtx.clip_updates(max_delta=1.0, max_norm=1.0)
    out, s = tx.update(u, tx.init(u))
    clipped = np.clip(np.array([0.5, -3.0, 0.1, 2.0]), -1, 1)
    expected = clipped / max(1.0, np.linalg.norm(clipped))
    np.testing.assert_allclose(np.concatenate([out["a"], out["b"]]), expected, rtol=1e-14)
    np.testing.assert_allclose(float(s.norm), np.linalg.norm([0.5, -3.0, 0.1, 2.0]), rtol=1e-14)
    with pytest.raises(gradtx.HyperparameterError, match="clip_updates"):
        gradtx.clip_updates()


def test_clip_by_block_rms_numpy(x64):
    g = {"a": jnp.array([3.0, 4.0]), "b": jnp.array([0.1, 0.1])}
    out, _ = gradtx.clip_by_block_rms(1.0).update(g, gradtx.clip_by_block_rms(1.0).init(g))
    rms = np.sqrt(12.5)
    np.testing.assert_allclose(np.asarray(out["a"]), np.array([3.0, 4.0]) / rms, rtol=1e-15)
    np.testing.assert_array_equal(np.asarray(out["b"]), [0.1, 0.1])


def test_invalid_thresholds():
    with pytest.raises(gradtx.HyperparameterError, match="clip_by_global_norm: max_norm"):
        gradtx.clip_by_global_norm(0.0)
    with pytest.raises(gradtx.HyperparameterError, match="clip: max_delta"):
        gradtx.clip(-1.0)
    with pytest.raises(gradtx.HyperparameterError, match="adaptive_grad_clip: clipping"):
        gradtx.adaptive_grad_clip(-1.0)


def test_clipping_keeps_bf16():
    params = make_params(jnp.bfloat16)
    grads = grad_seq(params, 1, scale=5.0)
    for tx in [
        gradtx.clip(0.5),
        gradtx.clip_by_global_norm(1.0),
        gradtx.clip_by_block_rms(0.5),
        gradtx.adaptive_grad_clip(0.1),
    ]:
        u, s = tx.update(grads[0], tx.init(params), params)
        assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u))
        assert s.norm.dtype == jnp.float32
        assert np.isfinite(float(s.norm))


def test_scheduled_threshold_and_current_hyperparams():
    params = make_params()
    grads = grad_seq(params, 3, scale=3.0)
    tx = gradtx.chain(
        gradtx.clip_by_global_norm(gradtx.linear_schedule(1.0, 3.0, 2)), gradtx.sgd(0.1)
    )
    _, state = run_gradtx(tx, params, grads)
    hp = gradtx.current_hyperparams(tx, state)
    np.testing.assert_allclose(float(hp["max_norm"]), 3.0)  # linear_schedule(1, 3, 2) at count 2
    np.testing.assert_allclose(float(hp["learning_rate"]), 0.1)


def test_global_norm_over_buckets_mixed_dtypes_and_large_leaves(x64):
    rng = np.random.default_rng(0)
    shapes = [(3,), (70000,), (5, 4), (0,), ()] + [(7,)] * 150  # > one bucket, one large leaf
    tree = [jnp.asarray(rng.normal(size=s)) for s in shapes]
    tree += [jnp.asarray(rng.normal(size=(3,)), jnp.float32), jnp.asarray([1 + 2j, 3j]), None]
    ref = np.sqrt(
        sum(np.sum(np.abs(np.asarray(x, np.complex128)) ** 2) for x in tree if x is not None)
    )
    tx = gradtx.clip_by_global_norm(1.0)
    _, s = tx.update(tree, tx.init(tree))
    np.testing.assert_allclose(float(s.norm), ref, rtol=1e-13)
