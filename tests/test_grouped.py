"""gradtx.grouped: the multi-tensor path equals the per-leaf transform."""

import jax
import jax.numpy as jnp
import pytest

import gradtx
from gradtx.registry import OPTIMIZERS

from ._packed import assert_close_packed, max_abs, mesh8_shardings, small_grads, small_params

ELEMENTWISE = [k for k, s in OPTIMIZERS.items() if s.elementwise]


@pytest.mark.parametrize("key", ELEMENTWISE)
def test_grouped_equals_ungrouped(key):
    spec = OPTIMIZERS[key]
    tx = spec.make(learning_rate=0.05)
    gtx = gradtx.grouped(tx, max_leaf_size=16)
    p_ref = small_params()
    p = small_params()
    s_ref = tx.init(p_ref)
    s = gtx.init(p)
    extra = {"loss": jnp.float32(1.0)} if spec.reads_loss else {}
    for k in range(4):
        u_ref, s_ref = tx.update(small_grads(p_ref, float(k)), s_ref, p_ref, **extra)
        u, s = gtx.update(small_grads(p, float(k)), s, p, **extra)
        assert_close_packed(u, u_ref, scale=max_abs(p_ref))
        p_ref = gradtx.apply_updates(p_ref, u_ref)
        p = gradtx.apply_updates(p, u)
    assert_close_packed(p, p_ref, scale=max_abs(p_ref))


def test_plan_groups_small_leaves_only():
    gtx = gradtx.grouped(gradtx.adam(1e-2), max_leaf_size=16)
    s = gtx.init(small_params())
    plan = s.plan
    buckets = [idx for kind, idx in plan.slots if kind == "bucket"]
    singles = [idx for kind, idx in plan.slots if kind == "leaf"]
    assert len(buckets) == 1 and len(buckets[0]) == 5
    assert len(singles) == 1
    assert plan.leaf_meta[singles[0]][0] == (5, 8)
    # The state holds one flat moment per bucket, and the big leaf's moment as it is.
    m = s.inner[0].m
    assert [x.shape for x in m] == [(3 + 12 + 1 + 2 + 1,), (5, 8)]
    # max_leaf_size=0 groups nothing, and a huge one groups everything.
    assert gradtx.grouped(gradtx.adam(1e-2), 0).init(small_params()).plan.slots == tuple(
        ("leaf", i) for i in range(6)
    )
    everything = gradtx.grouped(gradtx.adam(1e-2), 10**9).init(small_params()).plan
    assert [k for k, _ in everything.slots] == ["bucket"]


def test_state_structure_stable_and_dtypes_kept():
    params = {
        "a": jnp.ones((3,), jnp.bfloat16),
        "b": jnp.ones((2, 2), jnp.float32),
        "c": jnp.ones((4,), jnp.bfloat16),
        "d": jnp.ones((5,), jnp.float32),
    }
    gtx = gradtx.grouped(gradtx.adam(1e-2))
    s = gtx.init(params)
    # One bucket per dtype.
    assert sorted(len(idx) for kind, idx in s.plan.slots if kind == "bucket") == [2, 2]
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.5, x.dtype), params)
    u, s2 = gtx.update(g, s, params)
    assert jax.tree.map(lambda x: x.dtype, u) == jax.tree.map(lambda x: x.dtype, params)
    assert jax.tree.structure(s2) == jax.tree.structure(s)
    assert [x.dtype for x in jax.tree.leaves(s2)] == [x.dtype for x in jax.tree.leaves(s)]


def test_one_compile_for_many_learning_rates_and_step():
    params = small_params()
    traces = []

    @jax.jit
    def train(tx, p):
        traces.append(1)
        s = tx.init(p)
        for k in range(2):
            u, s = tx.update(small_grads(p, float(k)), s, p)
            p = gradtx.apply_updates(p, u)
        return p

    outs = [train(gradtx.grouped(gradtx.adam(lr), 16), params) for lr in (0.1, 0.01, 0.001)]
    assert len(traces) == 1
    ref = train.__wrapped__(gradtx.adam(0.01), params)
    assert_close_packed(outs[1], ref)
    # gradtx.step with a grouped transform: donated and equal.
    tx = gradtx.grouped(gradtx.sgd(0.1, momentum=0.9), 16)
    p = small_params()
    s = tx.init(p)
    p_ref, s_ref = small_params(), gradtx.sgd(0.1, momentum=0.9).init(small_params())
    for k in range(3):
        p, s = gradtx.step(tx, small_grads(p, float(k)), s, p)
        u, s_ref = gradtx.sgd(0.1, momentum=0.9).update(small_grads(p_ref, float(k)), s_ref, p_ref)
        p_ref = gradtx.apply_updates(p_ref, u)
    assert_close_packed(p, p_ref)


def test_vmap_over_learning_rates():
    params = small_params()
    lrs = jnp.array([0.1, 0.01], jnp.float32)

    def run(lr):
        tx = gradtx.grouped(gradtx.adam(lr), 16)
        s = tx.init(params)
        u, _ = tx.update(small_grads(params, 0.0), s, params)
        return gradtx.apply_updates(params, u)

    out = jax.vmap(run)(lrs)
    for i in range(2):
        assert_close_packed(jax.tree.map(lambda x: x[i], out), run(lrs[i]))


def test_errors():
    gtx = gradtx.grouped(gradtx.adam(1e-2))
    s = gtx.init(small_params())
    bad = {"only": jnp.ones((3,), jnp.float32)}
    with pytest.raises(gradtx.TreeMismatchError, match="Grouped"):
        gtx.update(bad, s, None)
    with pytest.raises(gradtx.HyperparameterError, match="max_leaf_size must be in"):
        gradtx.grouped(gradtx.adam(1e-2), -1)
    with pytest.raises(TypeError, match="max_leaf_size must be an int"):
        gradtx.grouped(gradtx.adam(1e-2), 1.5)
    assert "Grouped(Chain(" in repr(gtx)


def test_sharded_leaves_stay_ungrouped_on_8_devices():
    sharded, replicated = mesh8_shardings()
    params = {
        "w": jax.device_put(jnp.linspace(0.0, 1.0, 32, dtype=jnp.float32).reshape(8, 4), sharded),
        "b": jax.device_put(jnp.ones((3,), jnp.float32), replicated),
        "c": jax.device_put(jnp.ones((2,), jnp.float32), replicated),
    }
    gtx = gradtx.grouped(gradtx.adam(1e-2))
    s = gtx.init(params)
    kinds = {kind: idx for kind, idx in s.plan.slots}
    assert kinds["leaf"] == 2  # "w" (sorted keys: b, c, w) stays alone although it is small
    m = s.inner[0].m
    assert m[1].sharding.is_equivalent_to(sharded, 2)
    assert m[0].shape == (5,) and m[0].sharding.is_equivalent_to(replicated, 1)
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.1, x.dtype), params)
    u, _ = gtx.update(g, s, params)
    assert u["w"].sharding.is_equivalent_to(sharded, 2)
    u_ref, _ = gradtx.adam(1e-2).update(g, gradtx.adam(1e-2).init(params), params)
    assert_close_packed(u, u_ref)
