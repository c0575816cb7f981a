"""Shared trees and loops for the composition tests (not a test module)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


def make_params(dtype=jnp.float32, seed=0):
    """A small nested tree with a matrix, biases and a norm scale."""
    rng = np.random.default_rng(seed)
    return {
        "dense": {
            "kernel": jnp.asarray(rng.normal(size=(3, 4)), dtype),
            "bias": jnp.asarray(rng.normal(size=(4,)), dtype),
        },
        "norm": {"scale": jnp.asarray(1.0 + 0.1 * rng.normal(size=(4,)), dtype)},
        "head": jnp.asarray(rng.normal(size=(4, 2)), dtype),
    }


def grad_seq(params, n, seed=1, scale=1.0):
    """``n`` deterministic gradient trees shaped like ``params``."""
    rng = np.random.default_rng(seed)
    return [
        jax.tree.map(
            lambda p: jnp.asarray(scale * rng.normal(size=p.shape), jnp.result_type(p)), params
        )
        for _ in range(n)
    ]


def run_gradtx(tx, params, grads, **extra):
    """Applies ``tx`` to a list of gradients; returns the params after each step and the state."""
    state = tx.init(params)
    out = []
    for g in grads:
        u, state = tx.update(g, state, params, **extra)
        params = gradtx.apply_updates(params, u)
        out.append(params)
    return out, state


def run_optax(tx, params, grads):
    """The Optax loop, under standard dtype promotion (Optax mixes int counts and floats)."""
    import optax

    with jax.numpy_dtype_promotion("standard"):
        state = tx.init(params)
        update = jax.jit(tx.update)
        out = []
        for g in grads:
            u, state = update(g, state, params)
            params = optax.apply_updates(params, u)
            out.append(params)
    return out, state


def assert_trees_close(a, b, rtol=1e-6, atol=0.0):
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(
            np.asarray(x, np.float64), np.asarray(y, np.float64), rtol=rtol, atol=atol
        ),
        a,
        b,
    )


def assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)
