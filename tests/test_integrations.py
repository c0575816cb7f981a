"""gradtx inside Flax NNX, Equinox and Optax, and Optax inside gradtx."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import gradtx
import gradtx.nnx

X = jax.random.normal(jax.random.key(0), (16, 3))
Y = jnp.sin(X[:, :1])


def _pure_run(tx, params, loss_fn, steps):
    state = tx.init(params)
    for _ in range(steps):
        grads = jax.grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
    return params


def test_flax_nnx_optimizer_matches_pure_loop():
    class MLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(3, 8, rngs=rngs)
            self.l2 = nnx.Linear(8, 1, rngs=rngs)

        def __call__(self, x):
            return self.l2(jnp.tanh(self.l1(x)))

    model = MLP(nnx.Rngs(0))
    graphdef, params0 = nnx.split(model, nnx.Param)
    params0 = jax.tree.map(jnp.array, params0)  # a copy: the optimizer updates the model in place
    tx = gradtx.adamw(1e-2, weight_decay=1e-2)
    optimizer = gradtx.nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(X) - Y) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    losses = [float(step(model, optimizer)) for _ in range(5)]
    assert losses[-1] < losses[0]

    def loss_fn(p):
        return jnp.mean((nnx.merge(graphdef, p)(X) - Y) ** 2)

    expected = _pure_run(tx, params0, loss_fn, 5)
    _, got = nnx.split(model, nnx.Param)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(expected)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_equinox_training_loop_with_filter():
    model = eqx.nn.MLP(3, 1, 8, 2, key=jax.random.key(1))
    params, static = eqx.partition(model, eqx.is_inexact_array)
    tx = gradtx.adam(1e-2)
    state = tx.init(params)

    @eqx.filter_jit
    def step(params, state):
        def loss_fn(p):
            m = eqx.combine(p, static)
            return jnp.mean((jax.vmap(m)(X) - Y) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state, loss

    losses = []
    for _ in range(20):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
    # eqx.apply_updates accepts gradtx's updates too (None leaves where static).
    updates, _ = tx.update(jax.tree.map(jnp.zeros_like, params), state, params)
    same = eqx.apply_updates(params, updates)
    assert jax.tree.structure(same) == jax.tree.structure(params)


def test_gradtx_inside_optax_chain_and_optax_inside_gradtx_chain(standard_promotion):
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    loss_fn = lambda p: jnp.sum(p["w"] ** 2) + p["b"] ** 2
    pure = _pure_run(
        gradtx.chain(gradtx.scale_by_adam(), gradtx.scale_by_learning_rate(0.1)), params, loss_fn, 5
    )
    mixed_1 = optax.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(0.1))
    mixed_2 = gradtx.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(0.1))
    for tx in (mixed_1, mixed_2):
        state = tx.init(params)
        p = params
        for _ in range(5):
            u, state = tx.update(jax.grad(loss_fn)(p), state, p)
            p = optax.apply_updates(p, u)
        # Float32 rounding of Optax's own scale_by_adam: after 5 steps on this problem it is
        # 3.3e-6 from a float64 NumPy Adam (gradtx's is 5e-7), on a total movement of 0.47.
        for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(pure)):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
    # The wrapped Optax transform is a static field: the gradtx chain still jits with tx as an
    # argument.
    traced = jax.jit(lambda tx, p, s: tx.update(p, s, p))(mixed_2, params, mixed_2.init(params))
    assert jax.tree.structure(traced[0]) == jax.tree.structure(params)
