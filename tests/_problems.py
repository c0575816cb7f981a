"""Small problems shared by the contract suite, the seed scenarios and other tests."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def quadratic_params(dtype=jnp.float32):
    """SEEDS.md 1's start (x1, x2) = (-5, -2), spread over a nested tree with None leaves."""
    return {
        "a": jnp.array([-5.0], dtype),
        "nested": [jnp.array([[-2.0]], dtype), None, (jnp.array([1.0, -1.0], dtype),)],
    }


def quadratic_loss(params):
    """f = x1^2 + 2 x2^2 (SEEDS.md 1) plus a small well-conditioned extra term."""
    a = params["a"].astype(jnp.float32)
    b = params["nested"][0].astype(jnp.float32)
    c = params["nested"][2][0].astype(jnp.float32)
    return jnp.sum(a**2) + 2.0 * jnp.sum(b**2) + 0.5 * jnp.sum(c**2)


LINEAR_X = np.array([1.0, 2.0, 3.0])
LINEAR_Y = np.array([2.0, 4.0, 6.0])


def linear_params(dtype=jnp.float32):
    """SEEDS.md 2's one-weight model y_hat = w * x from w = 1."""
    return {"w": jnp.array(1.0, dtype)}


def linear_loss(params):
    x = jnp.asarray(LINEAR_X, jnp.float32)
    y = jnp.asarray(LINEAR_Y, jnp.float32)
    w = params["w"].astype(jnp.float32)
    return jnp.mean((x * w - y) ** 2)


def train(tx, params, loss_fn, steps, extra_loss=False):
    """``steps`` updates inside ``lax.scan``; returns (final params, losses)."""

    def body(carry, _):
        p, s = carry
        loss, g = jax.value_and_grad(loss_fn)(p)
        g = jax.tree.map(lambda gi, pi: gi.astype(pi.dtype), g, p)
        extra = {"loss": loss} if extra_loss else {}
        u, s = tx.update(g, s, p, **extra)
        return (apply(p, u), s), loss

    (p, _), losses = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
    return p, losses


def apply(params, updates):
    import gradtx

    return gradtx.apply_updates(params, updates)
