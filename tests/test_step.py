"""gradtx.step: fused update + apply with the old params and state donated."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx._step import _compiled_step

from ._packed import mesh8_shardings


def _params():
    return {
        "w": jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10,
        "b": [jnp.array([0.5, -1.0], jnp.float32), None],
    }


def _grads(params, k=1.0):
    return jax.tree.map(lambda p: k * (jnp.sin(p) + 0.25), params)


def _copy(tree):
    return jax.tree.map(jnp.copy, tree)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.adam(1e-2),
        lambda: gradtx.adamw(1e-2, weight_decay=0.1),
        lambda: gradtx.sgd(0.1, momentum=0.9, nesterov=True),
    ],
    ids=["adam", "adamw", "sgd_nesterov"],
)
def test_step_equals_update_then_apply(make):
    tx = make()
    p_ref = _params()
    s_ref = tx.init(p_ref)
    p = _copy(p_ref)
    s = tx.init(p)
    for k in range(3):
        g = _grads(p_ref, 1.0 + k)
        u, s_ref = tx.update(g, s_ref, p_ref)
        p_ref = gradtx.apply_updates(p_ref, u)
        p, s = gradtx.step(tx, g, s, p)
    # One fused program against two: XLA may contract a multiply-add differently (float rounding).
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), p, p_ref)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), s, s_ref)


def test_step_donates_params_and_state_but_not_grads():
    tx = gradtx.adam(1e-2)
    p = _params()
    s = tx.init(p)
    g = _grads(p)
    new_p, new_s = gradtx.step(tx, g, s, p)
    for old in jax.tree.leaves((p, s)):
        assert old.is_deleted()
    for x in jax.tree.leaves(g):
        assert not x.is_deleted()
    with pytest.raises(RuntimeError, match="deleted"):
        np.asarray(p["w"])
    # Rebinding the names is all a loop needs.
    p, s = gradtx.step(tx, g, new_s, new_p)
    assert all(not x.is_deleted() for x in jax.tree.leaves((p, s)))


def test_step_compiles_once_across_learning_rates():
    p = {"x": jnp.ones((5,), jnp.float32)}
    g = {"x": jnp.full((5,), 0.5, jnp.float32)}
    tx = gradtx.sgd(0.1, momentum=0.5)
    s = tx.init(p)
    p, s = gradtx.step(tx, g, s, p)
    before = _compiled_step._cache_size()
    for lr in (0.3, 0.01, 1e-4):
        p, s = gradtx.step(gradtx.sgd(lr, momentum=0.5), g, s, p)
    assert _compiled_step._cache_size() == before


def test_step_keeps_dtypes():
    p = {"w": jnp.ones((4,), jnp.bfloat16), "v": jnp.ones((3,), jnp.float32)}
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.5, x.dtype), p)
    tx = gradtx.adam(1e-2, mu_dtype=jnp.float32)
    s = tx.init(p)
    dtypes = jax.tree.map(lambda x: x.dtype, s)
    p2, s2 = gradtx.step(tx, g, s, p)
    assert p2["w"].dtype == jnp.bfloat16 and p2["v"].dtype == jnp.float32
    assert jax.tree.map(lambda x: x.dtype, s2) == dtypes


def test_step_accepts_optax_transforms():
    with jax.numpy_dtype_promotion("standard"):  # Optax's internals mix int and float scalars
        _check_optax_step()


def _check_optax_step():
    opt = optax.adam(1e-2)
    p_ref = _params()
    s_ref = opt.init(p_ref)
    p = _copy(p_ref)
    s = opt.init(p)
    g = _grads(p_ref)
    u, s_ref = opt.update(g, s_ref, p_ref)
    p_ref = optax.apply_updates(p_ref, u)
    p, s = gradtx.step(opt, g, s, p)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), p, p_ref)


def test_step_keeps_sharding_on_8_devices():
    sharded, replicated = mesh8_shardings()
    p = {
        "w": jax.device_put(jnp.arange(32.0, dtype=jnp.float32).reshape(8, 4), sharded),
        "b": jax.device_put(jnp.ones((3,), jnp.float32), replicated),
    }
    g = jax.tree.map(lambda x: jax.device_put(jnp.full(x.shape, 0.1, x.dtype), x.sharding), p)
    tx = gradtx.adamw(1e-2)
    for packed in (False, True):
        pp = gradtx.pack(p, tx) if packed else _copy(p)
        s = tx.init(pp)
        gg = gradtx.pack_like(pp, g) if packed else g
        pp, s = gradtx.step(tx, gg, s, pp)
        pp, s = gradtx.step(tx, gg, s, pp)
        pp = gradtx.unpack(pp) if packed else pp
        assert pp["w"].sharding.is_equivalent_to(sharded, 2)
        assert pp["b"].sharding.is_equivalent_to(replicated, 1)
        m = jax.tree.leaves(s)
        assert any(x.shape == (8, 4) and x.sharding.is_equivalent_to(sharded, 2) for x in m)
