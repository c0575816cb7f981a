"""gradtx.Elementwise's optional hooks: scalar state fields carried across steps, and params.

A toy subclass with a carried running product and a leaf that reads its parameter is checked
against a NumPy loop of its formula; NAdam's running product and ASGD's step size and average
use the same hooks and are checked against torch in the catalogue tests.
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import _tree
from gradtx._checks import TreeMismatchError
from gradtx._transform import pytree_dataclass, value_at


class _ToyState(NamedTuple):
    count: jax.Array
    prod: jax.Array  # carried: b^count
    m: Any  # the sum of the gradients


@pytree_dataclass
class _Toy(gradtx.Elementwise):
    """pi_t = b * pi_{t-1} (pi_0 = 1),  m_t = m_{t-1} + g_t,  u_t = pi_t * m_t + lam * p."""

    fn_name = "toy"
    state_type = _ToyState
    reads_params = True
    carry_fields = ("prod",)

    b: Any = 0.5
    lam: Any = 0.25

    def _carry_init(self):
        return {"prod": jnp.ones((), _tree.float_dtype())}

    def _next_carry(self, updates, state):
        return {"prod": state.prod * jnp.asarray(value_at(self.b, state.count), state.prod.dtype)}

    def _scalars(self, count, t, dtype, prod):
        return dict(pi=prod.astype(dtype) * value_at(self.b, count), lam=self.lam)

    def _leaf(self, s, g, p, m):
        m = m + g
        return s.pi * m + s.lam * p, m


def _numpy(params, grads, b, lam):
    prod, m, out = 1.0, [np.zeros_like(p) for p in params], []
    for g in grads:
        prod *= b
        m = [mi + gi for mi, gi in zip(m, g)]
        out.append([prod * mi + lam * p for mi, p in zip(m, params)])
    return out, prod, m


def test_carry_and_params_match_numpy(x64):
    params = {"w": jnp.linspace(-1.0, 1.0, 6).reshape(2, 3), "skip": None, "b": [jnp.ones(4)]}
    leaves = [np.asarray(x) for x in jax.tree.leaves(params)]
    keys = jax.random.split(jax.random.key(0), 3)
    grads = [jax.tree.map(lambda p, k=k: jax.random.normal(k, p.shape), params) for k in keys]
    tx = _Toy(b=0.5, lam=0.25)
    state = tx.init(params)
    assert state.prod.dtype == jnp.float64 and float(state.prod) == 1.0
    want, prod, m = _numpy(leaves, [[np.asarray(x) for x in jax.tree.leaves(g)] for g in grads],
                           0.5, 0.25)  # fmt: skip
    for g, w in zip(grads, want):
        u, state = tx.update(g, state, params)
        assert u["skip"] is None
        for got, ref in zip(jax.tree.leaves(u), w):
            np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-15, atol=1e-15)
    assert int(state.count) == 3
    np.testing.assert_allclose(float(state.prod), prod, rtol=1e-15)
    for got, ref in zip(jax.tree.leaves(state.m), m):
        np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-15, atol=1e-15)


def test_carried_field_is_not_a_buffer_and_keeps_its_dtype():
    params = {"w": jnp.ones((3,), jnp.bfloat16)}
    tx = _Toy()
    state = tx.init(params)
    assert tx._buffers() == ("m",)
    u, state = tx.update({"w": jnp.ones((3,), jnp.bfloat16)}, state, params)
    assert u["w"].dtype == jnp.bfloat16 and state.m["w"].dtype == jnp.bfloat16
    assert state.prod.dtype == jnp.float32 and state.prod.shape == ()
    # 0.5 * 1 + 0.25 * 1, exact in bfloat16
    np.testing.assert_array_equal(np.asarray(u["w"], np.float32), np.full(3, 0.75, np.float32))


def test_params_tree_mismatch_names_params():
    params = {"w": jnp.ones(3)}
    tx = _Toy()
    state = tx.init(params)
    with pytest.raises(TreeMismatchError, match="params"):
        tx.update(params, state, {"v": jnp.ones(3)})
