"""Building blocks against Optax and NumPy: trace, ema, trust ratio, centralize, noise, sign,
non-negativity, zero_nans."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._composition_util import assert_trees_close, grad_seq, make_params, run_gradtx, run_optax

# Built inside each test: hyperparameters are JAX scalars of the precision current at
# construction, and these comparisons run in float64.
CASES = [
    (lambda: gradtx.trace(0.9), lambda: optax.trace(0.9)),
    (lambda: gradtx.trace(0.8, nesterov=True), lambda: optax.trace(0.8, nesterov=True)),
    (lambda: gradtx.ema(0.9), lambda: optax.ema(0.9)),
    (lambda: gradtx.ema(0.7, debias=False), lambda: optax.ema(0.7, debias=False)),
    (lambda: gradtx.scale_by_trust_ratio(), lambda: optax.scale_by_trust_ratio()),
    (
        lambda: gradtx.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.1, eps=1e-3),
        lambda: optax.scale_by_trust_ratio(min_norm=0.5, trust_coefficient=0.1, eps=1e-3),
    ),
    (lambda: gradtx.centralize(), lambda: optax.centralize()),
    (lambda: gradtx.scale_by_sign(), lambda: optax.scale_by_sign()),
]


@pytest.mark.parametrize("ours, theirs", CASES, ids=lambda t: type(t()).__name__)
def test_block_matches_optax(x64, ours, theirs):
    ours, theirs = ours(), theirs()
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    a, _ = run_gradtx(gradtx.chain(ours, gradtx.sgd(0.1)), params, grads)
    b, _ = run_optax(optax.chain(theirs, optax.sgd(0.1)), params, grads)
    assert_trees_close(a, b, rtol=1e-12)


def test_keep_params_nonnegative_matches_optax(x64):
    params = jax.tree.map(jnp.abs, make_params(jnp.float64))
    grads = grad_seq(params, 3, scale=5.0)
    a, _ = run_gradtx(
        gradtx.chain(gradtx.sgd(0.5), gradtx.keep_params_nonnegative()), params, grads
    )
    b, _ = run_optax(optax.chain(optax.sgd(0.5), optax.keep_params_nonnegative()), params, grads)
    assert_trees_close(a, b, rtol=1e-12)
    assert all(np.all(np.asarray(x) >= 0) for x in jax.tree.leaves(a))


def test_zero_nans_matches_optax():
    g = {"a": jnp.array([1.0, jnp.nan, jnp.inf]), "b": jnp.array([2.0])}
    tx = gradtx.zero_nans()
    u, s = tx.update(g, tx.init(g))
    ref, _ = optax.zero_nans().update(g, optax.zero_nans().init(g))
    jax.tree.map(np.testing.assert_array_equal, u, ref)
    assert bool(s.found_nan["a"]) and not bool(s.found_nan["b"])


def test_add_noise_numpy(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 2)
    eta, gamma = 0.3, 0.55
    tx = gradtx.add_noise(eta, gamma, seed=7)
    state = tx.init(params)

    @jax.jit
    def documented_noise(key, g):  # the key schedule the docstring states (Optax's)
        key, sample = jax.random.split(key)
        leaves = jax.tree.leaves(g)
        keys = jax.random.split(sample, len(leaves))
        return key, [jax.random.normal(k, x.shape, jnp.float64) for k, x in zip(keys, leaves)]

    key = jax.random.key(7)
    for t, g in enumerate(grads, start=1):
        u, state = tx.update(g, state, params)
        key, noise = documented_noise(key, g)
        std = np.sqrt(eta / t**gamma)
        for gl, ul, n in zip(jax.tree.leaves(g), jax.tree.leaves(u), noise):
            np.testing.assert_allclose(
                np.asarray(ul), np.asarray(gl) + std * np.asarray(n), rtol=1e-12
            )
    assert int(state.count) == 2


def test_add_noise_statistics():
    g = {"x": jnp.zeros((20000,))}
    tx = gradtx.add_noise(0.25, 0.0, seed=1)
    u, _ = tx.update(g, tx.init(g))
    x = np.asarray(u["x"])
    assert abs(x.mean()) < 0.02 and abs(x.std() - 0.5) < 0.02
    assert "AddNoise(eta=0.25" in repr(tx)
