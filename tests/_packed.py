"""Shared fixtures for the packed paths (gradtx.grouped, gradtx.flatten) and 8-device tests."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P


def small_params():
    """Leaves of 1 to 40 elements plus a None: with max_leaf_size=16 the 40-element leaf stays
    ungrouped and the other five share one bucket."""
    return {
        "dense": {"kernel": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4)},
        "bias": jnp.array([0.1, -0.2, 0.3], jnp.float32),
        "big": jnp.linspace(0.5, -0.5, 40, dtype=jnp.float32).reshape(5, 8),
        "scalar": jnp.array(0.7, jnp.float32),
        "skip": None,
        "list": [jnp.array([[1.0, 2.0]], jnp.float32), jnp.array([-3.0], jnp.float32)],
    }


def small_grads(params, k):
    return jax.tree.map(lambda p: jnp.cos(3.0 * p + k) - 0.2 * p, params)


def assert_close_packed(a, b, scale=1.0):
    """Equal up to float32 rounding.

    The same elementwise arithmetic on a packed buffer: XLA may contract a multiply-add
    differently in a differently shaped fusion. Some updates are a difference of parameter-sized
    numbers (schedule-free), so their rounding is that of the parameters: a few ulps of ``scale``.
    """
    atol = 4 * float(np.finfo(np.float32).eps) * scale
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=atol), a, b)


def max_abs(tree):
    return max(float(jnp.max(jnp.abs(x))) for x in jax.tree.leaves(tree))


def mesh8_shardings():
    """``(sharded over x, replicated)`` NamedShardings on 8 host devices, or skip the test."""
    devices = np.array(jax.devices()[:8])
    if devices.size < 8:
        pytest.skip("needs 8 host devices (conftest sets XLA_FLAGS)")
    mesh = Mesh(devices, ("x",))
    return NamedSharding(mesh, P("x")), NamedSharding(mesh, P())
