"""The small problem the NumPy-reference and Optax-parity tests share (float64 NumPy).

A nested pytree (dict, list, a matrix, vectors, a 0-d leaf) and STEPS fixed random gradients from
``np.random.default_rng``; ``b[0]``'s gradient is exactly zero for the first three steps, to reach
the ``s == 0`` / ``v == 0`` corners. Masks are given both as gradtx/Optax arguments and as the
per-leaf lists the NumPy reference takes (JAX's leaf order: dict keys sorted).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

STEPS = 20


def np_params() -> dict[str, Any]:
    """The starting point: a nested dict/list tree with a matrix, vectors and a scalar."""
    rng = np.random.default_rng(0)
    return {
        "w": rng.normal(size=(3, 2)),
        "nested": [rng.normal(size=(4,)), {"s": rng.normal(size=())}],
        "b": rng.normal(size=(2,)),
    }


def np_grads() -> list[dict[str, Any]]:
    """STEPS fixed random gradients shaped like ``np_params()``."""
    rng = np.random.default_rng(1)
    out = []
    for k in range(STEPS):
        g = {
            "w": rng.normal(size=(3, 2)),
            "nested": [rng.normal(size=(4,)), {"s": rng.normal(size=())}],
            "b": rng.normal(size=(2,)),
        }
        if k < 3:  # an exactly-zero gradient entry for the first steps
            g["b"][0] = 0.0
        out.append(g)
    return out


MASK_TREE = {"w": True, "nested": [False, {"s": True}], "b": False}


def MASK_FN(params):
    """Decay the matrices only."""
    return jax.tree.map(lambda x: jnp.ndim(x) > 1, params)


MASK_FN_LEAVES = [False, False, False, True]  # leaf order: b, nested[0], nested[1].s, w
MASK_TREE_LEAVES = jax.tree.leaves(MASK_TREE)
