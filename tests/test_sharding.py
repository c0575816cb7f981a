"""Sharding on 8 host CPU devices: init keeps shardings, data parallel, FSDP, ZeRO-1, shard_map."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx import registry

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8"
)


def _mesh(axis_type=AxisType.Auto):
    return jax.make_mesh((8,), ("data",), axis_types=(axis_type,))


def _params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {"w": jax.random.normal(k1, (16, 4)), "b": jax.random.normal(k2, (8,))}


def _batch():
    k1, k2 = jax.random.split(jax.random.PRNGKey(1))
    return jax.random.normal(k1, (32, 16)), jax.random.normal(k2, (32, 4))


def _loss(params, x, y):
    pred = x @ params["w"] + jnp.mean(params["b"])
    return jnp.mean((pred - y) ** 2)


@functools.partial(jax.jit, donate_argnums=())
def _step(tx, params, state, x, y):
    grads = jax.grad(_loss)(params, x, y)
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state


def _run(tx, params, x, y, steps=3):
    state = tx.init(params)
    for _ in range(steps):
        params, state = _step(tx, params, state, x, y)
    return params, state


def _spec(x):
    """The partition spec without trailing Nones."""
    spec = list(x.sharding.spec)
    while spec and spec[-1] is None:
        spec.pop()
    return tuple(spec)


def _same_layout(a, b):
    """Whether two arrays are laid out alike over the same devices."""
    return a.sharding.is_equivalent_to(b.sharding, a.ndim)


def _fsdp(params, mesh):
    return {
        "w": jax.device_put(params["w"], NamedSharding(mesh, P("data"))),
        "b": jax.device_put(params["b"], NamedSharding(mesh, P("data"))),
    }


def _check_state_follows_params(state, params):
    """Every state buffer shaped like a parameter has that parameter's sharding."""
    pleaves = jax.tree.leaves(params)
    checked = 0
    for leaf in jax.tree.leaves(state):
        same = [p for p in pleaves if p.shape == leaf.shape]
        if leaf.ndim and same:
            assert any(_same_layout(leaf, p) for p in same), (leaf.shape, leaf.sharding)
            checked += 1
    return checked


@pytest.mark.parametrize("key", sorted(registry.OPTIMIZERS))
def test_init_gives_state_the_params_sharding(key):
    mesh = _mesh()
    params = _fsdp(_params(), mesh)
    tx = registry.OPTIMIZERS[key].make()
    state = tx.init(params)
    _check_state_follows_params(state, params)
    for leaf in jax.tree.leaves(state):
        assert len(leaf.sharding.device_set) == 8


def test_init_explicit_axes_mesh():
    mesh = _mesh(AxisType.Explicit)
    params = _fsdp(_params(), mesh)
    tx = gradtx.adam(1e-2, amsgrad=True)
    state = tx.init(params)
    assert _check_state_follows_params(state, params) == 6
    with jax.set_mesh(mesh):
        state2 = jax.jit(tx.init)(params)  # inside a user's jit: the type carries the sharding
    assert _check_state_follows_params(state2, params) == 6


def test_init_inside_user_jit_auto_axes():
    """Inside a user's jit the params are tracers without a sharding (Auto axes): the buffers
    are computed from the params, so XLA's propagation gives them the params' shardings (with
    Optax they land on one device). state_shardings states the layout up front."""
    mesh = _mesh()
    params = _fsdp(_params(), mesh)
    tx = gradtx.adam(1e-2, amsgrad=True)
    naive = jax.jit(tx.init)(params)
    assert _check_state_follows_params(naive, params) == 6
    shardings = gradtx.state_shardings(tx, params)
    state = jax.jit(tx.init, out_shardings=shardings)(params)
    assert _check_state_follows_params(state, params) == 6
    # state_shardings also takes abstract params (no allocation).
    abstract = jax.tree.map(
        lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype, sharding=p.sharding), params
    )
    assert jax.tree.leaves(gradtx.state_shardings(tx, abstract)) == jax.tree.leaves(shardings)


def test_data_parallel_replicated_params_sharded_batch():
    mesh = _mesh()
    params, (x, y) = _params(), _batch()
    tx = gradtx.adam(1e-2)
    ref_params, _ = _run(tx, params, x, y)
    rep = NamedSharding(mesh, P())
    p_rep = jax.device_put(params, rep)
    xs = jax.device_put(x, NamedSharding(mesh, P("data")))
    ys = jax.device_put(y, NamedSharding(mesh, P("data")))
    out_params, out_state = _run(tx, p_rep, xs, ys)
    for leaf in jax.tree.leaves((out_params, out_state)):
        assert leaf.sharding.is_fully_replicated
        assert len(leaf.sharding.device_set) == 8
    # Only the order of the gradient's batch reduction differs from one device.
    for a, b in zip(jax.tree.leaves(out_params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["sgd_momentum", "adam_amsgrad"])
def test_fsdp_sharded_params(name):
    mesh = _mesh()
    tx = {
        "sgd_momentum": gradtx.sgd(0.05, momentum=0.9),
        "adam_amsgrad": gradtx.adam(1e-2, amsgrad=True, weight_decay=1e-2),
    }[name]
    params, (x, y) = _params(), _batch()
    ref_params, _ = _run(tx, params, x, y)
    sharded = _fsdp(params, mesh)
    out_params, out_state = _run(tx, sharded, x, y)
    for k in ("w", "b"):
        assert _spec(out_params[k])[0] == "data"
    assert _check_state_follows_params(out_state, out_params) >= 2
    for a, b in zip(jax.tree.leaves(out_params), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_zero1_shards_state_and_saves_memory():
    mesh = _mesh()
    params = {"w": jnp.ones((256, 64)) * 0.01, "b": jnp.zeros((64,)), "odd": jnp.ones((3,))}
    params = jax.device_put(params, NamedSharding(mesh, P()))
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    plain = gradtx.adam(1e-3)
    z = gradtx.zero1(plain, mesh, "data")
    s_plain, s_zero = plain.init(params), z.init(params)
    # Buffers with a dimension divisible by 8 are split along it; the rest stay replicated.
    assert _spec(s_zero[-2].mu["w"]) == ("data",)
    assert _spec(s_zero[-2].nu["b"]) == ("data",)
    assert s_zero[-2].mu["odd"].sharding.is_fully_replicated
    for leaf in jax.tree.leaves(params):
        assert leaf.sharding.is_fully_replicated
    # Same numbers as the unsharded optimizer, over a few jitted steps.
    step = jax.jit(lambda tx, g, s, p: tx.update(g, s, p))
    for _ in range(3):
        u_plain, s_plain = step(plain, grads, s_plain, params)
        u_zero, s_zero = step(z, grads, s_zero, params)
        for a, b in zip(jax.tree.leaves(u_zero), jax.tree.leaves(u_plain)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert _spec(s_zero[-2].mu["w"]) == ("data",)
    # Memory: bytes of optimizer state per device.
    per_plain = gradtx.bytes_per_device(s_plain)
    per_zero = gradtx.bytes_per_device(s_zero)
    assert len(per_zero) == 8 and len(set(per_zero.values())) == 1
    plain_b, zero_b = max(per_plain.values()), max(per_zero.values())
    # Adam keeps mu and nu: 2 * 4 bytes * (256*64 + 64 + 3), and its int32 count, replicated (a
    # constant learning rate keeps no count).
    n_moments = 256 * 64 + 64 + 3
    assert plain_b == 2 * 4 * n_moments + 4
    assert zero_b == 2 * 4 * ((256 * 64 + 64) // 8 + 3) + 4
    print(f"\nZeRO-1 adam state per device: {plain_b} B -> {zero_b} B ({plain_b / zero_b:.2f}x)")


def test_zero1_rejects_unknown_axis():
    with pytest.raises(ValueError, match=r"gradtx.zero1: axis 'model' is not an axis"):
        gradtx.zero1(gradtx.adam(1e-3), _mesh(), "model")


def test_update_inside_shard_map_with_psum_gradients():
    mesh = _mesh()
    params, (x, y) = _params(), _batch()
    tx = gradtx.adam(1e-2)
    ref_params, _ = _run(tx, params, x, y, steps=2)

    def local_step(tx, params, state, x, y):
        # Each device holds 1/8 of the batch; the mean loss's gradient is the mean of theirs.
        grads = jax.grad(_loss)(params, x, y)
        grads = jax.tree.map(lambda g: jax.lax.psum(g, "data") / 8, grads)
        updates, state = tx.update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    step = jax.jit(
        jax.shard_map(
            local_step,
            mesh=mesh,
            in_specs=(P(), P(), P(), P("data"), P("data")),
            out_specs=(P(), P()),
        )
    )
    p = jax.device_put(params, NamedSharding(mesh, P()))
    state = tx.init(p)
    for _ in range(2):
        p, state = step(tx, p, state, x, y)
    for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_master_weights_keep_fsdp_sharding():
    mesh = _mesh()
    params = jax.tree.map(lambda p: p.astype(jnp.bfloat16), _fsdp(_params(), mesh))
    tx = gradtx.with_master_weights(gradtx.adam(1e-2))
    state = tx.init(params)
    assert state.master["w"].dtype == jnp.float32
    assert _check_state_follows_params(state, params) == 6  # master, m, v for w and b


def test_zero1_on_explicit_axes_mesh_in_a_jitted_step():
    mesh = _mesh(AxisType.Explicit)
    params, (x, y) = _params(), _batch()
    tx = gradtx.zero1(gradtx.adam(1e-2), mesh, "data")
    ref_params, _ = _run(gradtx.adam(1e-2), params, x, y)
    with jax.set_mesh(mesh):
        p = jax.device_put(params, NamedSharding(mesh, P()))
        xs = jax.device_put(x, NamedSharding(mesh, P("data")))
        ys = jax.device_put(y, NamedSharding(mesh, P("data")))
        out, state = _run(tx, p, xs, ys)
    assert _spec(state[0].mu["w"]) == ("data",)
    assert out["w"].sharding.is_fully_replicated
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(ref_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
