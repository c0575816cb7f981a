"""Shared fixtures for the packed layout (gradtx.pack) and 8-device tests, and the check the
contract suite runs on every registry entry: the packed layout gives the tree's numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx


def small_params():
    """Leaves of 1 to 40 elements of five shapes, plus a None: elementwise transforms ravel
    them into one buffer; nothing stacks."""
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


def layout_params():
    """Leaves that pack both ways: square matrices of two shapes in pairs (well-posed for every
    matrix optimizer), a lone matrix, a 3-D leaf, vectors in a pair and alone, scalars and a
    None. Leaves sharing a stack are 10x apart in scale, so a statistic taken over a whole stack
    or buffer instead of per leaf changes the result."""
    rng = np.random.default_rng(0)
    shapes = {
        "w1": ((4, 4), 0.3), "w2": ((4, 4), 3.0), "u1": ((3, 3), 1.0), "u2": ((3, 3), 0.1),
        "lone": ((5, 5), 1.0), "conv": ((2, 3, 3), 0.5), "b1": ((4,), 0.2), "b2": ((4,), 2.0),
        "odd": ((7,), 1.0), "s1": ((), 0.5), "s2": ((), -2.0),
    }  # fmt: skip
    params = {
        k: jnp.asarray(scale * rng.standard_normal(s), jnp.float32)
        for k, (s, scale) in shapes.items()
    }
    return {"layer": params, "skip": None}


def layout_grads(params, k):
    return jax.tree.map(lambda p: jnp.cos(3.0 * p + k) * (1.0 + jnp.abs(p)), params)


#: The partition labels of the contract's second run: a pair member, the lone matrix and a
#: scalar go to another transform, so buffers split by the labels.
LAYOUT_LABELS = {
    "layer": {"w1": "on", "w2": "off", "u1": "on", "u2": "on", "lone": "off", "conv": "on",
              "b1": "on", "b2": "on", "odd": "on", "s1": "off", "s2": "on"},
    "skip": None,
}  # fmt: skip


def run_steps(tx, start, grads_fn, steps, extra, packed):
    """``steps`` updates of ``tx`` from ``start`` (traced inside the caller's jit); on a packed
    ``start`` the gradients are computed on the tree and packed."""

    def body(k, carry):
        p, s = carry
        k = k.astype(jnp.float32)
        if packed:
            g = gradtx.pack_like(p, grads_fn(gradtx.unpack(p), k))
        else:
            g = grads_fn(p, k)
        u, s = tx.update(g, s, p, **extra)
        return gradtx.apply_updates(p, u), s

    return jax.lax.fori_loop(0, steps, body, (start, tx.init(start)))


def run(tx, params, grads_fn, steps, extra=None, packed=False):
    """``steps`` updates of ``tx`` from ``params``, in one jitted loop; on
    ``gradtx.pack(params, tx)`` (gradients computed on the tree and packed) when ``packed``.
    Returns the params tree and the state."""
    extra = extra or {}
    start = gradtx.pack(params, tx) if packed else params
    p, s = jax.jit(lambda tx, p: run_steps(tx, p, grads_fn, steps, extra, packed))(tx, start)
    return (gradtx.unpack(p) if packed else p), s


def check_packed_equals_tree(*txs, extra=None, steps=3):
    """Each of ``txs`` on ``gradtx.pack(layout_params(), tx)`` gives the tree's numbers, leaf by
    leaf, to float32 rounding of the leaf's scale; returns the packed params of each.

    The tree and packed runs of every transform are one compiled program (XLA:CPU's fixed cost
    per program is paid once, not once per run)."""
    params = layout_params()
    extra = extra or {}
    starts = [gradtx.pack(params, tx) for tx in txs]

    @jax.jit
    def both(txs, params, starts):
        refs = [run_steps(tx, params, layout_grads, steps, extra, False)[0] for tx in txs]
        gots = [run_steps(tx, p, layout_grads, steps, extra, True)[0] for tx, p in zip(txs, starts)]
        return refs, [gradtx.unpack(p) for p in gots]

    refs, gots = both(txs, params, starts)
    for ref, got in zip(refs, gots):
        assert jax.tree.structure(got) == jax.tree.structure(ref)
        for path, a, b in zip(_paths(ref), jax.tree.leaves(got), jax.tree.leaves(ref)):
            scale = max(1.0, float(jnp.max(jnp.abs(b))))
            atol = 8 * float(np.finfo(np.float32).eps) * scale
            np.testing.assert_allclose(a, b, rtol=0, atol=atol, err_msg=path)
    return starts


def _paths(tree):
    return [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


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
