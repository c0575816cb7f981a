"""Small problems shared by the sweep-at-scale tests and their two-process worker."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

LRS32 = np.geomspace(1e-3, 1.0, 32)
PARAMS = {"w": jnp.zeros(8, jnp.float32), "b": jnp.zeros((), jnp.float32)}


def lsq_data() -> tuple[jnp.ndarray, jnp.ndarray]:
    """64 examples of a noisy linear model with 8 features (fixed seed)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8))
    y = x @ rng.normal(size=8) + 0.1 * rng.normal(size=64)
    return jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)


def lsq_loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)
