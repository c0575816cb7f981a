"""gradtx._kernel.PerLeaf: one leaf's arithmetic, mapped over the tree and vmapped over stacks.

A toy subclass with every hook (a buffer shaped like the leaf, a scalar buffer per leaf, a
scalar carried field, a PRNG key per leaf, params, a per-leaf static value) is checked against
a NumPy loop over the leaves, on the params tree and on ``gradtx.pack(params, tx)`` (which stacks
equal-shaped leaves for it).
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx._kernel import PerLeaf
from gradtx._transform import pytree_dataclass, value_at


class _ToyState(NamedTuple):
    count: jax.Array
    key: jax.Array
    total: jax.Array  # carried: the sum of the leaves' squared gradient norms, all steps
    m: Any  # like the params
    n: Any  # one scalar per leaf: the last gradient norm


@pytree_dataclass
class _Toy(PerLeaf):
    """u = g / max(||g||, 1) + scale * p - z,  m = b * m + g,  n = ||g||  (z ~ N(0, I))."""

    fn_name = "toy"
    state_type = _ToyState
    reads_params = True
    keyed = True
    carry_fields = ("total",)

    b: Any = 0.5
    scale: Any = 0.1

    def _carry_init(self):
        return {"key": jax.random.key(3), "total": jnp.zeros((), jnp.float32)}

    def _next_carry(self, updates, state):
        sq = sum(jnp.sum(g * g) for g in jax.tree.leaves(updates))
        return {"total": state.total + sq}

    def _checked(self):
        return ("m",)  # n holds a scalar per leaf

    def _init_leaf(self, p):
        return jnp.zeros_like(p), jnp.zeros((), p.dtype)

    def _scalars(self, count, t):
        return {"b": value_at(self.b, count)}

    def _statics(self, updates, params):
        return {"sign": jax.tree.map(lambda _: -1.0, updates)}  # a Python float per leaf

    def _leaf(self, s, g, m, n, p, key, sign):
        norm = jnp.sqrt(jnp.sum(g * g))
        z = jax.random.normal(key, g.shape, g.dtype)
        u = g / jnp.maximum(norm, 1.0) + self.scale * p + sign * z
        return u, s.b * m + g, norm


def _params():
    rng = np.random.default_rng(0)
    shapes = {"a": (3, 4), "b": (3, 4), "c": (5,), "d": (2, 3, 4), "e": ()}
    scale = {"a": 0.1, "b": 3.0, "c": 1.0, "d": 2.0, "e": 3.0}
    return {
        k: jnp.asarray(scale[k] * rng.standard_normal(s), jnp.float32) for k, s in shapes.items()
    }


def _grads(params, t):
    return {k: jnp.cos(v + t) for k, v in params.items()}


def _numpy_run(params, steps):
    """The docstring's formula leaf by leaf in float64, with the noise the tree draws (one key
    per leaf, in leaf order, split from the state's key as the base documents)."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    key, total = jax.random.key(3), 0.0
    for t in range(steps):
        g = {k: np.cos(v + t) for k, v in p.items()}
        key, sample = jax.random.split(key)
        keys = jax.random.split(sample, len(p))
        for i, k in enumerate(sorted(p)):
            z = np.asarray(jax.random.normal(keys[i], p[k].shape, jnp.float32), np.float64)
            norm = np.sqrt(np.sum(g[k] ** 2))
            m[k] = 0.5 * m[k] + g[k]
            total += np.sum(g[k] ** 2)
            p[k] = p[k] + g[k] / max(norm, 1.0) + 0.1 * p[k] - z
    return p, m, total


@pytest.mark.parametrize("stack", [False, True], ids=["tree", "stacked"])
def test_per_leaf_base_matches_numpy(stack):
    tx = _Toy()
    params = _params()
    p = gradtx.pack(params, tx) if stack else params
    state = tx.init(p)
    for t in range(3):
        g = _grads(gradtx.unpack(p) if stack else p, float(t))
        u, state = tx.update(gradtx.pack_like(p, g) if stack else g, state, p)
        p = gradtx.apply_updates(p, u)
    got = gradtx.unpack(p) if stack else p
    m = gradtx.unpack(state.m) if stack else state.m
    want_p, want_m, want_total = _numpy_run(params, 3)
    for k in want_p:
        np.testing.assert_allclose(got[k], want_p[k], rtol=1e-5, atol=1e-5, err_msg=k)
        np.testing.assert_allclose(m[k], want_m[k], rtol=1e-5, atol=1e-5, err_msg=k)
    np.testing.assert_allclose(state.total, want_total, rtol=1e-5)
    # one norm per leaf: per stacked leaf on stacks, a scalar per leaf on the tree
    n_shapes = sorted(x.shape for x in jax.tree.leaves(state.n))
    if stack:
        assert n_shapes == [(), (), (), (2,)]  # one stack of two leaves, three kept as they are
    else:
        assert n_shapes == [()] * 5


def test_per_leaf_base_refuses_raveled_buffers():
    packed = gradtx.pack(_params(), gradtx.adam(0.1))
    # init refuses the layout for the whole transform; the base checks again on its own
    with pytest.raises(TypeError, match=r"_Toy.init: the params were packed .*raveled"):
        _Toy().init(packed)
    with pytest.raises(TypeError, match=r"gradtx.toy: per-leaf statistics cannot run on packed"):
        _Toy()._init(packed)


def test_per_leaf_base_needs_params():
    params = _params()
    tx = _Toy()
    with pytest.raises(ValueError, match=r"gradtx.toy needs params"):
        tx.update(_grads(params, 0.0), tx.init(params))
