"""gradtx._resident: hyperparameters passed to the compiled step as cached device scalars."""

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import _resident
from gradtx._step import _compiled_step


def test_scalars_match_what_jit_would_make():
    tx = gradtx.chain(gradtx.clip_by_global_norm(1), gradtx.adam(1e-3, b1=0.0))
    raw = jax.tree.leaves(tx)
    res = jax.tree.leaves(_resident.resident(tx))
    assert len(raw) == len(res)
    for r, x in zip(raw, res):
        if isinstance(r, (bool, int, float)):
            want = jnp.asarray(r)
            assert isinstance(x, jax.Array)
            assert (x.dtype, x.weak_type) == (want.dtype, want.weak_type)
            np.testing.assert_array_equal(np.asarray(x), np.asarray(want))
        else:
            assert x is r


def test_values_that_compare_equal_stay_apart():
    a = _resident._scalar(0.0, False)
    b = _resident._scalar(-0.0, False)
    assert np.signbit(np.asarray(b)) and not np.signbit(np.asarray(a))
    assert _resident._scalar(1, False).dtype == jnp.int32
    assert _resident._scalar(1.0, False).dtype == jnp.float32
    assert _resident._scalar(True, False).dtype == jnp.bool_


def test_cached_by_identity_and_by_value():
    tx = gradtx.adam(3e-4)
    assert _resident.resident(tx) is _resident.resident(tx)
    other = gradtx.adam(3e-4)
    a, b = _resident.resident(tx), _resident.resident(other)
    assert a is not b
    assert all(x is y for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_x64_mode_gets_its_own_scalars():
    tx = gradtx.sgd(0.1)
    with jax.enable_x64(True):
        lr = jax.tree.leaves(_resident.resident(tx))[0]
        assert lr.dtype == jnp.float64
    assert jax.tree.leaves(_resident.resident(tx))[0].dtype == jnp.float32


def test_untouched_under_a_trace():
    tx = gradtx.adam(1e-3)

    @jax.jit
    def inside(x):
        assert _resident.resident(tx) is tx
        return x

    inside(1.0)


def test_step_same_bits_as_python_numbers():
    """gradtx.step (device scalars) against the compiled step fed the Python numbers."""
    params = {"w": jnp.linspace(-1.0, 1.0, 257, dtype=jnp.float32)}
    grads = {"w": jnp.cos(params["w"])}
    tx = gradtx.adamw(3e-3, weight_decay=0.1)
    p1, s1 = jax.tree.map(jnp.copy, params), tx.init(params)
    p2, s2 = jax.tree.map(jnp.copy, params), tx.init(params)
    for _ in range(3):
        p1, s1 = gradtx.step(tx, grads, s1, p1)
        s2, p2 = _compiled_step(tx, grads, s2, p2, {})
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_vmap_over_learning_rate_still_traces():
    x0 = jnp.linspace(-1.0, 1.0, 8)

    def final(lr):
        tx = gradtx.sgd(lr, momentum=0.9)
        x, s = x0, tx.init(x0)
        for _ in range(2):
            u, s = tx.update(2 * x, s, x)
            x = gradtx.apply_updates(x, u)
        return jnp.sum(x * x)

    lrs = jnp.array([0.0, 0.1], jnp.float32)
    out = jax.vmap(final)(lrs)
    np.testing.assert_allclose(np.asarray(out[0]), float(jnp.sum(x0 * x0)))
    assert float(out[1]) < float(out[0])
