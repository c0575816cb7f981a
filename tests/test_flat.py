"""gradtx.flatten: params, gradients and state kept as flat buffers equal the tree path."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import _view
from gradtx.registry import OPTIMIZERS

from ._packed import assert_close_packed, max_abs, mesh8_shardings, small_grads, small_params
from ._problems import quadratic_loss, quadratic_params

ELEMENTWISE = [k for k, s in OPTIMIZERS.items() if s.elementwise]
PER_LEAF = [k for k, s in OPTIMIZERS.items() if not s.elementwise]


def _run_tree(tx, params, steps, extra=None):
    s = tx.init(params)
    for k in range(steps):
        u, s = tx.update(small_grads(params, float(k)), s, params, **(extra or {}))
        params = gradtx.apply_updates(params, u)
    return params


def _run_flat(tx, params, steps, extra=None, split=None):
    flat = gradtx.flatten(params, split=tx if split is None else split)
    s = tx.init(flat)
    for k in range(steps):
        g = gradtx.flatten_like(flat, small_grads(flat.unflatten(), float(k)))
        u, s = tx.update(g, s, flat, **(extra or {}))
        assert isinstance(u, gradtx.FlatParams)
        flat = gradtx.apply_updates(flat, u)
    return flat


# ---------------------------------------------------------------------------------------------
# the registry: elementwise optimizers equal the tree path, the others refuse


@pytest.mark.parametrize("key", ELEMENTWISE)
def test_flat_equals_tree(key):
    spec = OPTIMIZERS[key]
    tx = spec.make(learning_rate=0.05)
    extra = {"loss": jnp.float32(1.0)} if spec.reads_loss else {}
    ref = _run_tree(tx, small_params(), 4, extra)
    flat = _run_flat(tx, small_params(), 4, extra)
    assert len(flat.buffers) == 1  # one dtype, no masks in the sample options: one buffer
    assert_close_packed(flat.unflatten(), ref, scale=max_abs(ref))


@pytest.mark.parametrize("key", PER_LEAF)
def test_per_leaf_optimizers_refuse_packed_buffers(key):
    spec = OPTIMIZERS[key]
    flat = gradtx.flatten(small_params())
    with pytest.raises(TypeError, match=f"gradtx.{spec.name}: .*cannot run on packed buffers"):
        spec.make().init(flat)
    with pytest.raises(TypeError, match="cannot run on packed buffers"):
        gradtx.grouped(spec.make()).init(small_params())


@pytest.mark.parametrize(
    "tx, name",
    [
        (gradtx.clip_by_block_rms(1.0), "clip_by_block_rms"),
        (gradtx.adaptive_grad_clip(0.1), "adaptive_grad_clip"),
        (gradtx.scale_by_trust_ratio(), "scale_by_trust_ratio"),
        (gradtx.centralize(), "centralize"),
    ],
)
def test_per_leaf_transforms_refuse_packed_buffers(tx, name):
    params = small_params()
    flat = gradtx.flatten(params)
    with pytest.raises(TypeError, match=f"gradtx.{name}: .*cannot run on packed buffers"):
        tx.init(flat)
    s = tx.init(params)  # a state made on the tree does not get past update either
    with pytest.raises(TypeError, match=f"gradtx.{name}: .*cannot run on packed buffers"):
        tx.update(flat, s, flat)
    # On the tree they still run.
    tx.update(small_grads(params, 0.0), s, params)


def test_mars_without_per_leaf_clipping_runs_flat():
    tx = gradtx.mars(0.05, clip_norm=False)
    ref = _run_tree(tx, small_params(), 3)
    assert_close_packed(_run_flat(tx, small_params(), 3).unflatten(), ref, scale=max_abs(ref))


def test_global_norm_clipping_equals_tree():
    tx = gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adam(0.05))
    ref = _run_tree(tx, small_params(), 4)
    assert_close_packed(_run_flat(tx, small_params(), 4).unflatten(), ref, scale=max_abs(ref))


# ---------------------------------------------------------------------------------------------
# the FlatParams object


def test_pack_unflatten_roundtrip_and_repr():
    params = small_params()
    flat = gradtx.flatten(params)
    assert [b.shape for b in flat.buffers] == [(12 + 3 + 40 + 1 + 2 + 1,)]
    back = flat.unflatten()
    assert jax.tree.structure(back) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    assert gradtx.unflatten(flat)["skip"] is None
    assert jax.tree.map(lambda x: (x.shape, x.dtype), flat.tree) == jax.tree.map(
        lambda x: (x.shape, x.dtype), params
    )
    assert flat.original is not None
    assert repr(flat) == "FlatParams(6 leaves in 1 buffers: float32[59] <- 6 leaves)"
    # The buffer order is jax.tree.leaves order.
    np.testing.assert_array_equal(
        flat.buffers[0], np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])
    )


def test_mixed_dtypes_get_their_own_buffers():
    params = {
        "a": jnp.ones((3,), jnp.bfloat16),
        "b": jnp.ones((2, 2), jnp.float32),
        "c": jnp.full((4,), 2.0, jnp.bfloat16),
        "d": jnp.ones((5,), jnp.float16),
        "e": jnp.zeros((1,), jnp.float32),
    }
    flat = gradtx.flatten(params)
    assert [(b.dtype.name, b.shape) for b in flat.buffers] == [
        ("bfloat16", (7,)),
        ("float32", (5,)),
        ("float16", (5,)),
    ]
    assert "bfloat16[7] <- 2 leaves" in repr(flat)
    back = flat.unflatten()
    assert jax.tree.map(lambda x: x.dtype, back) == jax.tree.map(lambda x: x.dtype, params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    tx = gradtx.adam(1e-2)
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.5, x.dtype), params)
    u_ref, _ = tx.update(g, tx.init(params), params)
    s = tx.init(flat)
    u, s2 = tx.update(gradtx.flatten_like(flat, g), s, flat)
    assert jax.tree.structure(s2) == jax.tree.structure(s)
    assert [x.dtype for x in jax.tree.leaves(s2)] == [x.dtype for x in jax.tree.leaves(s)]
    jax.tree.map(
        lambda x, y: np.testing.assert_array_equal(np.float32(x), np.float32(y)),
        u.unflatten(),
        u_ref,
    )


def test_grad_through_unflatten_is_one_concatenate_per_buffer():
    params = {f"w{i}": jnp.full((i % 3 + 1, 2), 0.1 * i, jnp.float32) for i in range(20)}
    params["half"] = jnp.ones((3,), jnp.bfloat16)
    params["half2"] = jnp.ones((2, 2), jnp.bfloat16)
    flat = gradtx.flatten(params)

    def loss(tree):
        return sum(jnp.sum(jnp.sin(x.astype(jnp.float32))) for x in jax.tree.leaves(tree))

    grad_fn = jax.grad(lambda f: loss(f.unflatten()))
    g = grad_fn(flat)
    assert isinstance(g, gradtx.FlatParams) and g.plan == flat.plan
    ref = gradtx.flatten_like(flat, jax.grad(loss)(params))
    jax.tree.map(np.testing.assert_array_equal, g, ref)
    jaxpr = str(jax.make_jaxpr(grad_fn)(flat))
    assert jaxpr.count("pad[") == 0
    assert jaxpr.count("add_any") == 0
    assert jaxpr.count("concatenate[") == 2  # one per buffer (float32, bfloat16)


def test_masked_out_buffers_unflatten_to_none():
    flat = gradtx.flatten({"a": jnp.ones(2), "b": jnp.ones((2, 2))}, split={"a": 0, "b": 1})
    half = gradtx.FlatParams((None, flat.buffers[1]), flat.plan)
    assert half.unflatten()["a"] is None and half.unflatten()["b"].shape == (2, 2)


# ---------------------------------------------------------------------------------------------
# masks and labels


def _decay_params():
    return {
        "layer": {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "bias": jnp.ones(4)},
        "out": {"kernel": jnp.linspace(0.5, 1.5, 8).reshape(4, 2), "bias": jnp.zeros(2)},
        "norm": {"scale": jnp.ones(4)},
    }


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.adamw(0.05, weight_decay=0.1, weight_decay_mask=gradtx.decay_mask()),
        lambda: gradtx.masked(gradtx.adam(0.05), gradtx.decay_mask()),
        lambda: gradtx.freeze({"layer": True, "out": False, "norm": False}, gradtx.sgd(0.1)),
        lambda: gradtx.partition(
            {"decay": gradtx.adamw(0.05, weight_decay=0.1), "plain": gradtx.sgd(0.1, 0.9)},
            gradtx.label_by_path({"*bias": "plain", "norm*": "plain"}, default="decay"),
        ),
    ],
    ids=["weight_decay_mask", "masked", "freeze", "partition"],
)
def test_masks_and_labels_equal_tree_when_split_by_tx(make):
    tx = make()
    ref = _run_tree(tx, _decay_params(), 3)
    flat = _run_flat(tx, _decay_params(), 3)
    assert len(flat.buffers) == 2  # kernels apart from biases and norm scales
    assert_close_packed(flat.unflatten(), ref, scale=max_abs(ref))


def test_mask_that_differs_inside_a_buffer_is_an_error():
    tx = gradtx.adamw(0.05, weight_decay=0.1, weight_decay_mask=gradtx.decay_mask())
    flat = gradtx.flatten(_decay_params())  # no split: one buffer for kernels and biases
    s = tx.init(flat)
    with pytest.raises(ValueError, match=r"share one packed buffer.*split="):
        tx.update(flat, s, flat)


def test_split_forms():
    params = _decay_params()
    labels = {"layer": "a", "out": "b", "norm": "a"}
    assert len(gradtx.flatten(params, split=labels).buffers) == 2
    by_fn = gradtx.flatten(params, split=lambda path: path.endswith("bias"))
    assert [len(m) for _, m, _ in by_fn.plan.entries] == [2, 3]  # biases first (leaf order)
    by_leaf_fn = gradtx.flatten(params, split=lambda path, x: x.ndim)
    assert sorted(len(m) for _, m, _ in by_leaf_fn.plan.entries) == [2, 3]
    mask = gradtx.flatten(params, split=gradtx.decay_mask())
    assert sorted(s for _, _, s in mask.plan.entries) == [(False,), (True,)]
    with pytest.raises(TypeError, match=r"gradtx.flatten: split gives an unhashable list"):
        gradtx.flatten(params, split=lambda path: [path])
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx.flatten: split"):
        gradtx.flatten(params, split={"layer": 1, "other": 2})


# ---------------------------------------------------------------------------------------------
# jit, vmap, step, checkpoints


def test_one_compile_for_many_learning_rates():
    traces = []

    @jax.jit
    def train(tx, flat):
        traces.append(1)
        s = tx.init(flat)
        for k in range(2):
            g = gradtx.flatten_like(flat, small_grads(flat.unflatten(), float(k)))
            u, s = tx.update(g, s, flat)
            flat = gradtx.apply_updates(flat, u)
        return flat

    flat = gradtx.flatten(small_params())
    outs = [train(gradtx.adam(lr), flat) for lr in (0.1, 0.01, 0.001)]
    assert len(traces) == 1
    # A second flatten of the same tree has an equal plan: still no recompile.
    train(gradtx.adam(0.5), gradtx.flatten(small_params()))
    assert len(traces) == 1
    assert_close_packed(outs[1].unflatten(), _run_tree(gradtx.adam(0.01), small_params(), 2))


def test_vmap_over_learning_rates():
    flat = gradtx.flatten(small_params())
    lrs = jnp.array([0.1, 0.01], jnp.float32)

    def run(lr):
        tx = gradtx.adam(lr)
        u, _ = tx.update(
            gradtx.flatten_like(flat, small_grads(small_params(), 0.0)), tx.init(flat), flat
        )
        return gradtx.apply_updates(flat, u)

    out = jax.vmap(run)(lrs)
    assert out.buffers[0].shape == (2, 59)
    for i in range(2):
        assert_close_packed(out.unflatten()["big"][i], run(lrs[i]).unflatten()["big"])


def test_step_donates_flat_buffers():
    tx = gradtx.sgd(0.1, momentum=0.9)
    flat = gradtx.flatten(small_params())
    s = tx.init(flat)
    p_ref, s_ref = small_params(), tx.init(small_params())
    for k in range(3):
        old = flat.buffers[0]
        g = gradtx.flatten_like(flat, small_grads(flat.unflatten(), float(k)))
        flat, s = gradtx.step(tx, g, s, flat)
        assert old.is_deleted()
        u, s_ref = tx.update(small_grads(p_ref, float(k)), s_ref, p_ref)
        p_ref = gradtx.apply_updates(p_ref, u)
    assert_close_packed(flat.unflatten(), p_ref)


def test_seed_quadratic_trains_through_unflatten():
    tx = gradtx.adam(0.1)
    flat = gradtx.flatten(quadratic_params())
    state = tx.init(flat)

    @jax.jit
    def train_step(tx, flat, state):
        loss, grads = jax.value_and_grad(lambda f: quadratic_loss(f.unflatten()))(flat)
        updates, state = tx.update(grads, state, flat)
        return gradtx.apply_updates(flat, updates), state, loss

    p_ref, s_ref = quadratic_params(), tx.init(quadratic_params())
    for _ in range(50):
        flat, state, _ = train_step(tx, flat, state)
        g = jax.grad(quadratic_loss)(p_ref)
        u, s_ref = tx.update(g, s_ref, p_ref)
        p_ref = gradtx.apply_updates(p_ref, u)
    assert flat.unflatten()["nested"][1] is None
    assert_close_packed(flat.unflatten(), p_ref, scale=5.0)
    assert float(quadratic_loss(flat.unflatten())) < float(quadratic_loss(quadratic_params()))


def test_checkpoint_roundtrip(tmp_path):
    tx = gradtx.adamw(0.05, weight_decay_mask=gradtx.decay_mask())
    flat = gradtx.flatten(_decay_params(), split=tx)
    state = tx.init(flat)
    u, state = tx.update(gradtx.flatten_like(flat, small_grads(_decay_params(), 0.0)), state, flat)
    flat = gradtx.apply_updates(flat, u)
    gradtx.save_npz(tmp_path / "p.npz", flat)
    gradtx.save_npz(tmp_path / "s.npz", state)
    like = gradtx.flatten(_decay_params(), split=tx)
    p2 = gradtx.load_npz(tmp_path / "p.npz", like)
    s2 = gradtx.load_npz(tmp_path / "s.npz", tx.init(like))
    assert isinstance(p2, gradtx.FlatParams) and p2.plan == flat.plan
    jax.tree.map(np.testing.assert_array_equal, (p2, s2), (flat, state))
    gradtx.check_state(tx, s2, p2)
    # A differently split FlatParams is another structure.
    with pytest.raises(gradtx.TreeMismatchError):
        gradtx.load_npz(tmp_path / "p.npz", gradtx.flatten(_decay_params()))


# ---------------------------------------------------------------------------------------------
# errors


def test_errors_name_the_function_and_path():
    flat = gradtx.flatten(small_params())
    bad = small_params()
    bad["list"][1] = jnp.ones((2,), jnp.float32)
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx.flatten_like: .*\['list'\]\[1\]"):
        gradtx.flatten_like(flat, bad)
    missing = small_params()
    del missing["bias"]
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx.flatten_like: .*\['bias'\]"):
        gradtx.flatten_like(flat, missing)
    mixed = small_params()
    mixed["bias"] = mixed["bias"].astype(jnp.bfloat16)
    with pytest.raises(TypeError, match=r"gradtx.flatten_like: .*different dtypes"):
        gradtx.flatten_like(flat, mixed)
    ints = {"w": jnp.ones(3), "step": jnp.arange(3)}
    with pytest.raises(TypeError, match=r"gradtx.flatten: params leaf at \['step'\] has dtype int"):
        gradtx.flatten(ints)
    with pytest.raises(TypeError, match="already a FlatParams"):
        gradtx.flatten(flat)
    with pytest.raises(TypeError, match=r"gradtx.unflatten: expected a FlatParams"):
        gradtx.unflatten(small_params())
    other = gradtx.flatten({"x": jnp.ones(3)})
    with pytest.raises(gradtx.TreeMismatchError, match="another plan"):
        gradtx.flatten_like(flat, other)
    assert gradtx.flatten_like(flat, flat) is flat


def test_check_leafwise_helper():
    _view.check_leafwise("gradtx.test", small_params())
    with pytest.raises(TypeError, match=r"gradtx.test: norms cannot run on packed buffers"):
        _view.check_leafwise("gradtx.test", gradtx.flatten(small_params()), "norms")


# ---------------------------------------------------------------------------------------------
# sharding


def test_sharded_leaves_are_never_concatenated_on_8_devices():
    sharded, replicated = mesh8_shardings()
    params = {
        "b": jax.device_put(jnp.ones((3,), jnp.float32), replicated),
        "c": jax.device_put(jnp.linspace(0.0, 1.0, 2, dtype=jnp.float32), replicated),
        "v": jax.device_put(jnp.linspace(0.0, 1.0, 16, dtype=jnp.float32), sharded),
        "w": jax.device_put(jnp.linspace(0.0, 1.0, 32, dtype=jnp.float32).reshape(8, 4), sharded),
    }
    flat = gradtx.flatten(params)
    assert [(k, m) for k, m, _ in flat.plan.entries] == [
        ("flat", (0, 1)),
        ("leaf", (2,)),
        ("leaf", (3,)),
    ]
    assert "1 sharded leaf" in repr(flat)
    assert flat.buffers[0].shape == (5,) and flat.buffers[0].sharding.is_fully_replicated
    assert flat.buffers[2].shape == (8, 4)
    assert flat.buffers[2].sharding.is_equivalent_to(sharded, 2)
    tx = gradtx.adam(1e-2)
    s = tx.init(flat)
    assert s[0].m.buffers[2].sharding.is_equivalent_to(sharded, 2)
    assert s[0].m.buffers[1].sharding.is_equivalent_to(sharded, 1)
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.1, x.dtype), params)
    new, s = gradtx.step(tx, gradtx.flatten_like(flat, g), s, flat)
    assert new.buffers[2].sharding.is_equivalent_to(sharded, 2)
    assert new.unflatten()["w"].sharding.is_equivalent_to(sharded, 2)
    u_ref, _ = tx.update(g, tx.init(params), params)
    assert_close_packed(new.unflatten(), gradtx.apply_updates(params, u_ref))


def test_flatten_copies_so_donation_keeps_the_params():
    params = {"only": jnp.ones((3,), jnp.float32), "m": jnp.ones((2, 2), jnp.float32)}
    flat = gradtx.flatten(params, split={"only": 0, "m": 1})  # 1-D leaf alone in its buffer
    tx = gradtx.sgd(0.1)
    flat, _ = gradtx.step(tx, gradtx.flatten_like(flat, params), tx.init(flat), flat)
    assert not params["only"].is_deleted() and not params["m"].is_deleted()


def test_buffers_capped_at_max_buffer_bytes():
    # 4-byte leaves of 3, 5, 2, 7 and 40 elements; a 32-byte cap cuts the group in leaf order
    # and gives the 160-byte leaf a buffer of its own.
    params = {
        "a": jnp.arange(3.0, dtype=jnp.float32),
        "b": jnp.arange(5.0, dtype=jnp.float32),
        "c": jnp.arange(2.0, dtype=jnp.float32),
        "d": jnp.arange(7.0, dtype=jnp.float32),
        "e": jnp.arange(40.0, dtype=jnp.float32),
    }
    flat = gradtx.flatten(params, max_buffer_bytes=32)
    assert [b.shape for b in flat.buffers] == [(8,), (2,), (7,), (40,)]
    assert [m for _, m, _ in flat.plan.entries] == [(0, 1), (2,), (3,), (4,)]
    # The same numbers as one buffer, and unflatten gives the tree back.
    jax.tree.map(
        lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)),
        flat.unflatten(),
        params,
    )
    tx = gradtx.adam(0.1)
    one = gradtx.flatten(params, max_buffer_bytes=2**62)
    assert len(one.buffers) == 1
    g = gradtx.flatten_like(flat, jax.tree.map(jnp.cos, params))
    g1 = gradtx.flatten_like(one, jax.tree.map(jnp.cos, params))
    u, _ = tx.update(g, tx.init(flat), flat)
    u1, _ = tx.update(g1, tx.init(one), one)
    # Within an ulp or two: XLA's vectorized loop and its scalar tail round a fused
    # multiply-add differently, and the tails fall on other elements in other buffer sizes.
    np.testing.assert_allclose(
        np.concatenate([np.asarray(b) for b in u.buffers]),
        np.asarray(u1.buffers[0]),
        rtol=4 * float(np.finfo(np.float32).eps),
        atol=0,
    )
    # The default cap is 8 MiB: 2M float32 elements per buffer.
    big = {"x": jnp.zeros((1500, 1000), jnp.float32), "y": jnp.zeros((1000, 1000), jnp.float32)}
    assert [b.shape for b in gradtx.flatten(big).buffers] == [(1_500_000,), (1_000_000,)]
    with pytest.raises(
        gradtx.HyperparameterError, match=r"max_buffer_bytes must be in \[1, inf\), got 0"
    ):
        gradtx.flatten(params, max_buffer_bytes=0)
    with pytest.raises(TypeError, match=r"max_buffer_bytes must be an int, got 1\.5"):
        gradtx.flatten(params, max_buffer_bytes=1.5)
