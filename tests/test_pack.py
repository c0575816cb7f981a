"""gradtx.pack: params, gradients and state laid out for a transform, with the tree's numbers.

The registry-wide check (every entry, alone and inside a partition) is in tests/test_contract.py
(``test_packed_layout_equals_tree``); stacked buffers in detail are in tests/test_stacked.py.
"""

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._packed import (
    LAYOUT_LABELS,
    assert_close_packed,
    check_packed_equals_tree,
    layout_params,
    max_abs,
    mesh8_shardings,
    run,
    small_grads,
    small_params,
)


def _kinds(packed):
    return [(kind, len(members)) for kind, members, _ in packed.layout.entries]


# ---------------------------------------------------------------------------------------------
# the layout follows from what the transform declares


def test_layout_follows_the_transform():
    params = layout_params()
    n = len(jax.tree.leaves(params))
    # elementwise: every leaf raveled into one buffer (one dtype, no masks)
    assert _kinds(gradtx.pack(params, gradtx.adam(0.1))) == [("ravel", n)]
    assert _kinds(gradtx.pack(params, gradtx.clip_by_global_norm(1.0))) == [("ravel", n)]
    # stackable: equal shapes stacked, the others kept as they are
    stacked = gradtx.pack(params, gradtx.adafactor(0.1))
    shapes = sorted(tuple(b.shape) for b in stacked.buffers)
    assert shapes == sorted([(2, 4, 4), (2, 3, 3), (5, 5), (2, 3, 3), (2, 4), (7,), (2,)])
    assert "2 leaves stacked" in repr(stacked) and "1 leaf" in repr(stacked)
    # a chain of elementwise and per-leaf parts stacks; one that is neither keeps every leaf
    chained = gradtx.chain(gradtx.clip_by_block_rms(1.0), gradtx.adam(0.1))
    assert gradtx.pack(params, chained).layout == stacked.layout
    for tx in (
        gradtx.kron(0.01),
        optax.adam(0.1),
        gradtx.chain(gradtx.adam(0.1), optax.scale(1.0)),
    ):
        assert _kinds(gradtx.pack(params, tx)) == [("leaf", 1)] * n


def test_unpack_round_trips_and_repr():
    params = small_params()
    packed = gradtx.pack(params, gradtx.adam(0.1))
    assert [b.shape for b in packed.buffers] == [(12 + 3 + 40 + 1 + 2 + 1,)]
    back = gradtx.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    assert back["skip"] is None
    assert repr(packed) == "Packed(6 leaves in 1 buffer: float32[59] <- 6 leaves raveled)"
    # The buffer order is jax.tree.leaves order.
    np.testing.assert_array_equal(
        packed.buffers[0], np.concatenate([np.ravel(x) for x in jax.tree.leaves(params)])
    )
    stacked = gradtx.pack(layout_params(), gradtx.adafactor(0.1))
    jax.tree.map(np.testing.assert_array_equal, gradtx.unpack(stacked), layout_params())


def test_mixed_dtypes_get_their_own_buffers():
    params = {
        "a": jnp.ones((3,), jnp.bfloat16),
        "b": jnp.ones((2, 2), jnp.float32),
        "c": jnp.full((4,), 2.0, jnp.bfloat16),
        "d": jnp.ones((5,), jnp.float16),
        "e": jnp.zeros((1,), jnp.float32),
    }
    tx = gradtx.adam(1e-2)
    packed = gradtx.pack(params, tx)
    assert [(b.dtype.name, b.shape) for b in packed.buffers] == [
        ("bfloat16", (7,)),
        ("float32", (5,)),
        ("float16", (5,)),
    ]
    back = gradtx.unpack(packed)
    assert jax.tree.map(lambda x: x.dtype, back) == jax.tree.map(lambda x: x.dtype, params)
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.5, x.dtype), params)
    u_ref, _ = tx.update(g, tx.init(params), params)
    s = tx.init(packed)
    u, s2 = tx.update(gradtx.pack_like(packed, g), s, packed)
    assert jax.tree.structure(s2) == jax.tree.structure(s)
    assert [x.dtype for x in jax.tree.leaves(s2)] == [x.dtype for x in jax.tree.leaves(s)]
    jax.tree.map(
        lambda x, y: np.testing.assert_array_equal(np.float32(x), np.float32(y)),
        gradtx.unpack(u),
        u_ref,
    )


@pytest.mark.parametrize("tx", [gradtx.adam(0.1), gradtx.adafactor(0.1)], ids=["ravel", "stack"])
def test_grad_through_unpack_is_one_concatenation_per_buffer(tx):
    params = {f"w{i}": jnp.full((i % 3 + 1, 2), 0.1 * i, jnp.float32) for i in range(20)}
    params["half"] = jnp.ones((3,), jnp.bfloat16)
    params["half2"] = jnp.ones((3,), jnp.bfloat16)
    packed = gradtx.pack(params, tx)

    def loss(tree):
        return sum(jnp.sum(jnp.sin(x.astype(jnp.float32))) for x in jax.tree.leaves(tree))

    grad_fn = jax.grad(lambda p: loss(gradtx.unpack(p)))
    g = grad_fn(packed)
    assert isinstance(g, gradtx.Packed) and g.layout == packed.layout
    ref = gradtx.pack_like(packed, jax.grad(loss)(params))
    jax.tree.map(np.testing.assert_array_equal, g, ref)
    jaxpr = str(jax.make_jaxpr(grad_fn)(packed))
    assert jaxpr.count("pad[") == 0 and jaxpr.count("add_any") == 0
    assert jaxpr.count("concatenate[") == len(packed.buffers)  # one per buffer


# ---------------------------------------------------------------------------------------------
# masks and labels: written against the tree, buffers split by them


def _decay_params():
    return {
        "layer": {"kernel": jnp.linspace(-1.0, 1.0, 12).reshape(3, 4), "bias": jnp.ones(4)},
        "out": {"kernel": jnp.linspace(0.5, 1.5, 8).reshape(4, 2), "bias": jnp.zeros(2)},
        "norm": {"scale": jnp.ones(4)},
    }


def _ndim_mask(p):
    return jax.tree.map(lambda x: x.ndim > 1, p)


#: name: (transform, the number of buffers its masks and labels require on _decay_params).
MASKED = {
    # kernels decay, biases and the scale do not: two raveled buffers
    "adamw_mask_fn": (lambda: gradtx.adamw(0.05, weight_decay=0.1, mask=_ndim_mask), 2),
    "adamw_decay_mask": (lambda: gradtx.adamw(0.05, weight_decay=0.1, mask=gradtx.decay_mask()), 2),
    "clip_then_masked_adamw": (
        lambda: gradtx.chain(
            gradtx.clip_by_global_norm(0.5),
            gradtx.adamw(0.05, weight_decay=0.1, mask=gradtx.decay_mask()),
        ),
        2,
    ),
    "masked_tree": (
        lambda: gradtx.masked(gradtx.adam(0.05), {"layer": True, "out": False, "norm": True}),
        2,
    ),
    # (outer, inner) mask values: kernels (T, F), biases (T, T), the scale (F, F)
    "nested_masked": (
        lambda: gradtx.masked(
            gradtx.chain(
                gradtx.masked(gradtx.scale(0.5), gradtx.mask_by_path("*bias")), gradtx.sgd(0.1)
            ),
            gradtx.mask_by_path("*kernel", "*bias"),
        ),
        3,
    ),
    "freeze": (lambda: gradtx.freeze(gradtx.mask_by_path("*norm*"), gradtx.adam(0.05)), 2),
    "partition": (
        lambda: gradtx.partition(
            {"decay": gradtx.adamw(0.05, weight_decay=0.1), "plain": gradtx.sgd(0.1, 0.9)},
            gradtx.label_by_path({"*bias": "plain", "norm*": "plain"}, default="decay"),
        ),
        2,
    ),
    # Stacked by shape: the two (4,) leaves (layer/bias, norm/scale) would share a stack, but
    # the mask tells them apart; every other shape is its own. Five buffers of one leaf each.
    "stacked_masked_adafactor": (
        lambda: gradtx.masked(gradtx.adafactor(0.05), gradtx.mask_by_path("*kernel", "*bias")),
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(MASKED))
def test_masks_and_labels_equal_tree(name):
    make, n_buffers = MASKED[name]
    tx = make()
    params = _decay_params()
    ref, _ = run(tx, params, small_grads, 4)
    got, _ = run(tx, params, small_grads, 4, packed=True)
    assert_close_packed(got, ref, scale=max_abs(ref))
    # The buffers are split only as far as the masks and labels require.
    packed = gradtx.pack(params, tx)
    assert len(packed.buffers) == n_buffers, packed


def test_stacks_split_by_a_mask_only_where_it_differs():
    params = {"a": jnp.ones((2, 3)), "b": jnp.full((2, 3), 2.0), "c": jnp.full((2, 3), 3.0)}
    tx = gradtx.masked(gradtx.adafactor(0.05), {"a": True, "b": False, "c": True})
    packed = gradtx.pack(params, tx)
    assert _kinds(packed) == [("stack", 2), ("leaf", 1)]
    assert packed.buffers[0].shape == (2, 2, 3)
    grads = lambda p, k: jax.tree.map(lambda x: jnp.cos(x + k) * x, p)
    ref, _ = run(tx, params, grads, 3)
    got, _ = run(tx, params, grads, 3, packed=True)
    assert_close_packed(got, ref, scale=max_abs(ref))


def test_frozen_leaves_are_bit_identical():
    params = _decay_params()
    tx = gradtx.freeze(gradtx.mask_by_path("*norm*"), gradtx.adam(0.05))
    got, _ = run(tx, params, small_grads, 3, packed=True)
    np.testing.assert_array_equal(got["norm"]["scale"], params["norm"]["scale"])
    assert not np.array_equal(got["layer"]["bias"], params["layer"]["bias"])


def test_clip_masked_adamw_matches_optax(x64, standard_promotion):
    # In float64: Adam's normalized step magnifies float32 rounding where a gradient is near 0,
    # and Optax orders the bias correction and the clipping norm differently.
    params = jax.tree.map(lambda x: x.astype(jnp.float64), _decay_params())
    tx = gradtx.chain(
        gradtx.clip_by_global_norm(0.5), gradtx.adamw(0.05, weight_decay=0.1, mask=_ndim_mask)
    )
    otx = optax.chain(
        optax.clip_by_global_norm(0.5), optax.adamw(0.05, weight_decay=0.1, mask=_ndim_mask)
    )
    got, _ = run(tx, params, small_grads, 5, packed=True)
    q, os_ = params, otx.init(params)
    for k in range(5):
        u, os_ = otx.update(small_grads(q, float(k)), os_, q)
        q = optax.apply_updates(q, u)
    assert got["layer"]["kernel"].dtype == jnp.float64
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13), got, q)


def test_loss_reaches_transforms_inside_masks():
    tx = gradtx.masked(
        gradtx.chain(gradtx.adam(0.1), gradtx.reduce_on_plateau(patience=0, factor=0.5)),
        gradtx.mask_by_path("*kernel"),
    )
    extra = {"loss": jnp.float32(1.0)}
    ref, _ = run(tx, _decay_params(), small_grads, 4, extra)
    got, _ = run(tx, _decay_params(), small_grads, 4, extra, packed=True)
    assert_close_packed(got, ref, scale=max_abs(ref))


def test_a_mask_that_differs_inside_a_buffer_names_two_leaves():
    params = _decay_params()
    packed = gradtx.pack(params, gradtx.adam(0.05))  # one buffer for kernels and biases
    tx = gradtx.adamw(0.05, weight_decay=0.1, mask=gradtx.decay_mask())
    s = tx.init(packed)
    with pytest.raises(ValueError, match=r"\['layer'\]\['bias'\].*share one packed buffer.*pack"):
        tx.update(packed, s, packed)


def test_masked_out_buffers_unpack_to_none():
    tx = gradtx.masked(gradtx.adam(0.1), {"a": False, "b": True})
    packed = gradtx.pack({"a": jnp.ones(2), "b": jnp.ones((2, 2))}, tx)
    half = gradtx.Packed((None, packed.buffers[1]), packed.layout)
    assert gradtx.unpack(half)["a"] is None and gradtx.unpack(half)["b"].shape == (2, 2)


# ---------------------------------------------------------------------------------------------
# transforms on buffers packed for another one


@pytest.mark.parametrize(
    "tx", [gradtx.adafactor(0.1), gradtx.kron(0.01), gradtx.clip_by_block_rms(1.0)],
    ids=["adafactor", "kron", "clip_by_block_rms"],
)  # fmt: skip
def test_raveled_buffers_refuse_transforms_that_read_whole_leaves(tx):
    packed = gradtx.pack(small_params(), gradtx.adam(0.1))
    with pytest.raises(
        TypeError, match=r"init: the params were packed .*gradtx\.pack\(params, tx\)"
    ):
        tx.init(packed)
    s = tx.init(small_params())
    with pytest.raises(TypeError, match="packed"):
        tx.update(packed, s, packed)


def test_stacked_buffers_refuse_transforms_that_read_the_leaf_order():
    packed = gradtx.pack(layout_params(), gradtx.adafactor(0.1))
    with pytest.raises(TypeError, match=r"stacked by shape.*gradtx\.pack\(params, tx\)"):
        gradtx.kron(0.01).init(packed)


# ---------------------------------------------------------------------------------------------
# jit, vmap, step, checkpoints


def _muon_params():
    """Two pairs of equal-shaped matrices (each a stack when packed), a lone matrix, a vector."""
    rng = np.random.default_rng(5)
    shapes = {"a": (4, 6), "b": (4, 6), "c": (3, 3), "d": (3, 3), "lone": (5, 3), "v": (6,)}
    return {k: jnp.asarray(rng.standard_normal(s), jnp.float32) for k, s in shapes.items()}


def test_contrib_muon_stacks_matrices_and_equals_tree():
    """Muon with Optax's contrib signature: equal-shaped matrices stack (each orthogonalised on
    its own), other leaves go to its AdamW; alone and as one group of a partition."""
    packed = check_packed_equals_tree(
        gradtx.contrib.muon(0.05),
        gradtx.partition({"on": gradtx.contrib.muon(0.05), "off": gradtx.sgd(0.05)}, LAYOUT_LABELS),
    )[0]
    assert ("stack", 2) in _kinds(packed), packed


def test_contrib_muon_given_dimension_numbers_split_stacks_and_equal_tree():
    """Given dimension numbers that differ between equal-shaped matrices keep them apart (a
    stack holds one spec), as a tree of specs and as a function of the params."""
    dn = gradtx.contrib.MuonDimensionNumbers
    swap = dn(reduction_axis=1, output_axis=0)
    tree = {"a": dn(), "b": swap, "c": dn(), "d": dn(), "lone": swap, "v": None}
    for given in (tree, lambda params: tree):
        tx = gradtx.contrib.muon(0.05, muon_weight_dimension_numbers=given)
        params = _muon_params()
        packed = gradtx.pack(params, tx)
        # a and b differ: kept apart; c and d agree: stacked
        assert sorted(_kinds(packed)) == [("leaf", 1)] * 4 + [("stack", 2)], packed
        ref, _ = run(tx, params, small_grads, 3)
        got, _ = run(tx, params, small_grads, 3, packed=True)
        assert_close_packed(got, ref, scale=max_abs(ref))
    # With one spec for the whole stack, the two orientations give different updates: the
    # comparison above would catch a stack that read one member's spec for both.
    one = gradtx.contrib.muon(0.05, muon_weight_dimension_numbers={**tree, "b": dn()})
    other, _ = run(one, _muon_params(), small_grads, 3)
    assert not np.allclose(other["b"], ref["b"])


def test_one_compile_for_many_learning_rates():
    traces = []

    @jax.jit
    def train(tx, packed):
        traces.append(1)
        s = tx.init(packed)
        for k in range(2):
            g = gradtx.pack_like(packed, small_grads(gradtx.unpack(packed), float(k)))
            u, s = tx.update(g, s, packed)
            packed = gradtx.apply_updates(packed, u)
        return packed

    packed = gradtx.pack(small_params(), gradtx.adam(0.1))
    outs = [train(gradtx.adam(lr), packed) for lr in (0.1, 0.01, 0.001)]
    assert len(traces) == 1
    # A second pack of the same tree has an equal layout: still no recompile.
    train(gradtx.adam(0.5), gradtx.pack(small_params(), gradtx.adam(0.5)))
    assert len(traces) == 1
    ref, _ = run(gradtx.adam(0.01), small_params(), small_grads, 2)
    assert_close_packed(gradtx.unpack(outs[1]), ref)


def test_vmap_over_learning_rates():
    packed = gradtx.pack(small_params(), gradtx.adam(0.1))
    g = gradtx.pack_like(packed, small_grads(small_params(), 0.0))
    lrs = jnp.array([0.1, 0.01], jnp.float32)

    def one(lr):
        tx = gradtx.adam(lr)
        u, _ = tx.update(g, tx.init(packed), packed)
        return gradtx.apply_updates(packed, u)

    out = jax.vmap(one)(lrs)
    assert out.buffers[0].shape == (2, 59)
    for i in range(2):
        assert_close_packed(gradtx.unpack(out)["big"][i], gradtx.unpack(one(lrs[i]))["big"])


def test_step_donates_packed_buffers_not_the_params():
    tx = gradtx.sgd(0.1, momentum=0.9)
    params = small_params()
    packed = gradtx.pack(params, tx)
    s = tx.init(packed)
    for k in range(3):
        old = packed.buffers[0]
        g = gradtx.pack_like(packed, small_grads(gradtx.unpack(packed), float(k)))
        packed, s = gradtx.step(tx, g, s, packed)
        assert old.is_deleted()
    assert not any(x.is_deleted() for x in jax.tree.leaves(params))
    ref, _ = run(tx, small_params(), small_grads, 3)
    assert_close_packed(gradtx.unpack(packed), ref)
    # A leaf kept as it is in its own buffer is a copy too.
    lone = {"w": jnp.ones((3, 3)), "b": jnp.ones((2, 2))}
    packed = gradtx.pack(lone, gradtx.kron(0.01))
    g = gradtx.pack_like(packed, jax.tree.map(jnp.ones_like, lone))
    gradtx.step(gradtx.sgd(0.1), g, gradtx.sgd(0.1).init(packed), packed)
    assert all(b.is_deleted() for b in packed.buffers)
    assert not lone["w"].is_deleted() and not lone["b"].is_deleted()
    # The gradients are not donated, so they cannot be the params' own arrays.
    packed = gradtx.pack(lone, gradtx.kron(0.01))
    with pytest.raises(ValueError, match=r"gradtx.step: .*grads.*donate.*copy"):
        gradtx.step(gradtx.sgd(0.1), packed, gradtx.sgd(0.1).init(packed), packed)


def test_trains_through_unpack_on_the_seed_quadratic():
    from ._problems import quadratic_loss, quadratic_params

    tx = gradtx.adam(0.1)
    packed = gradtx.pack(quadratic_params(), tx)
    state = tx.init(packed)

    @jax.jit
    def train_step(tx, packed, state):
        loss, grads = jax.value_and_grad(lambda p: quadratic_loss(gradtx.unpack(p)))(packed)
        updates, state = tx.update(grads, state, packed)
        return gradtx.apply_updates(packed, updates), state, loss

    p_ref, s_ref = quadratic_params(), tx.init(quadratic_params())
    for _ in range(50):
        packed, state, _ = train_step(tx, packed, state)
        u, s_ref = tx.update(jax.grad(quadratic_loss)(p_ref), s_ref, p_ref)
        p_ref = gradtx.apply_updates(p_ref, u)
    assert gradtx.unpack(packed)["nested"][1] is None
    assert_close_packed(gradtx.unpack(packed), p_ref, scale=5.0)


def test_checkpoint_round_trip(tmp_path):
    tx = gradtx.adamw(0.05, mask=gradtx.decay_mask())
    packed = gradtx.pack(_decay_params(), tx)
    state = tx.init(packed)
    g = gradtx.pack_like(packed, small_grads(_decay_params(), 0.0))
    u, state = tx.update(g, state, packed)
    packed = gradtx.apply_updates(packed, u)
    gradtx.save_npz(tmp_path / "p.npz", packed)
    gradtx.save_npz(tmp_path / "s.npz", state)
    like = gradtx.pack(_decay_params(), tx)
    p2 = gradtx.load_npz(tmp_path / "p.npz", like)
    s2 = gradtx.load_npz(tmp_path / "s.npz", tx.init(like))
    assert isinstance(p2, gradtx.Packed) and p2.layout == packed.layout
    jax.tree.map(np.testing.assert_array_equal, (p2, s2), (packed, state))
    gradtx.check_state(tx, s2, p2)
    # Packed for another transform (no mask: one buffer) is another structure.
    with pytest.raises(gradtx.TreeMismatchError):
        gradtx.load_npz(tmp_path / "p.npz", gradtx.pack(_decay_params(), gradtx.adam(0.1)))


# ---------------------------------------------------------------------------------------------
# errors, sizes, sharding


def test_errors_name_the_function_and_path():
    packed = gradtx.pack(small_params(), gradtx.adam(0.1))
    bad = small_params()
    bad["list"][1] = jnp.ones((2,), jnp.float32)
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx.pack_like: .*\['list'\]\[1\]"):
        gradtx.pack_like(packed, bad)
    missing = small_params()
    del missing["bias"]
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx.pack_like: .*\['bias'\]"):
        gradtx.pack_like(packed, missing)
    mixed = small_params()
    mixed["bias"] = mixed["bias"].astype(jnp.bfloat16)
    with pytest.raises(TypeError, match=r"gradtx.pack_like: .*different dtypes"):
        gradtx.pack_like(packed, mixed)
    ints = {"w": jnp.ones(3), "step": jnp.arange(3)}
    with pytest.raises(TypeError, match=r"gradtx.pack: params leaf at \['step'\] has dtype int"):
        gradtx.pack(ints, gradtx.adam(0.1))
    with pytest.raises(TypeError, match="already packed"):
        gradtx.pack(packed, gradtx.adam(0.1))
    with pytest.raises(TypeError, match=r"gradtx.pack: tx must be a transform"):
        gradtx.pack(small_params(), 0.1)
    with pytest.raises(TypeError, match=r"gradtx.unpack: expected a Packed"):
        gradtx.unpack(small_params())
    other = gradtx.pack({"x": jnp.ones(3)}, gradtx.adam(0.1))
    with pytest.raises(gradtx.TreeMismatchError, match="another layout"):
        gradtx.pack_like(packed, other)
    assert gradtx.pack_like(packed, packed) is packed


def test_buffers_capped_at_max_buffer_bytes():
    # 4-byte leaves of 3, 5, 2, 7 and 40 elements; a 32-byte cap cuts the group in leaf order
    # and keeps the 160-byte leaf as it is.
    params = {k: jnp.arange(float(n), dtype=jnp.float32) for k, n in zip("abcde", (3, 5, 2, 7, 40))}
    tx = gradtx.adam(0.1)
    packed = gradtx.pack(params, tx, max_buffer_bytes=32)
    assert [b.shape for b in packed.buffers] == [(8,), (2,), (7,), (40,)]
    assert _kinds(packed) == [("ravel", 2), ("leaf", 1), ("leaf", 1), ("leaf", 1)]
    jax.tree.map(np.testing.assert_array_equal, gradtx.unpack(packed), params)
    one = gradtx.pack(params, tx, max_buffer_bytes=2**62)
    assert len(one.buffers) == 1
    g = gradtx.pack_like(packed, jax.tree.map(jnp.cos, params))
    g1 = gradtx.pack_like(one, jax.tree.map(jnp.cos, params))
    u, _ = tx.update(g, tx.init(packed), packed)
    u1, _ = tx.update(g1, tx.init(one), one)
    # Within an ulp or two: XLA's vectorized loop and its scalar tail round a fused
    # multiply-add differently, and the tails fall on other elements in other buffer sizes.
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=4 * float(np.finfo(np.float32).eps)),
        gradtx.unpack(u),
        gradtx.unpack(u1),
    )
    # The default cap is 8 MiB, 2**21 float32 elements per buffer: 2M elements share one, 2.5M
    # do not, and a leaf of 2**21 elements stays alone.
    big = {"x": jnp.zeros((1000, 1000), jnp.float32), "y": jnp.zeros((1000, 1000), jnp.float32)}
    assert _kinds(gradtx.pack(big, tx)) == [("ravel", 2)]
    big["x"] = jnp.zeros((1500, 1000), jnp.float32)
    assert _kinds(gradtx.pack(big, tx)) == [("leaf", 1), ("leaf", 1)]
    huge = {"x": jnp.zeros((2048, 1024), jnp.float32), "y": jnp.zeros((3,), jnp.float32)}
    assert _kinds(gradtx.pack(huge, tx)) == [("leaf", 1), ("leaf", 1)]
    with pytest.raises(
        gradtx.HyperparameterError,
        match=r"gradtx.pack: max_buffer_bytes must be in \[1, inf\), got 0",
    ):
        gradtx.pack(params, tx, max_buffer_bytes=0)
    with pytest.raises(TypeError, match=r"max_buffer_bytes must be an int, got 1\.5"):
        gradtx.pack(params, tx, max_buffer_bytes=1.5)


def test_sharded_leaves_are_never_packed_on_8_devices():
    sharded, replicated = mesh8_shardings()
    params = {
        "b": jax.device_put(jnp.ones((3,), jnp.float32), replicated),
        "c": jax.device_put(jnp.linspace(0.0, 1.0, 2, dtype=jnp.float32), replicated),
        "v": jax.device_put(jnp.linspace(0.0, 1.0, 16, dtype=jnp.float32), sharded),
        "w": jax.device_put(jnp.linspace(0.0, 1.0, 32, dtype=jnp.float32).reshape(8, 4), sharded),
    }
    tx = gradtx.adam(1e-2)
    packed = gradtx.pack(params, tx)
    assert [(k, m) for k, m, _ in packed.layout.entries] == [
        ("ravel", (0, 1)),
        ("leaf", (2,)),
        ("leaf", (3,)),
    ]
    assert packed.buffers[0].shape == (5,) and packed.buffers[0].sharding.is_fully_replicated
    assert packed.buffers[2].sharding.is_equivalent_to(sharded, 2)
    s = tx.init(packed)
    assert s[0].mu.buffers[2].sharding.is_equivalent_to(sharded, 2)
    g = jax.tree.map(lambda x: jnp.full(x.shape, 0.1, x.dtype), params)
    new, s = gradtx.step(tx, gradtx.pack_like(packed, g), s, packed)
    assert gradtx.unpack(new)["w"].sharding.is_equivalent_to(sharded, 2)
    u_ref, _ = tx.update(g, tx.init(params), params)
    assert_close_packed(gradtx.unpack(new), gradtx.apply_updates(params, u_ref))


def test_packed_params_check_like_the_tree():
    check_packed_equals_tree(gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adam(0.05)))


def test_optax_transforms_with_tree_masks_run_on_the_tree_view(standard_promotion):
    """A foreign transform's masks and labels are written against the params tree (a dict mask
    of ``optax.masked``, say): on packed buffers it runs on their tree view, and its state is
    the tree's, so the numbers are the tree's, alone, in a chain and as a partition group."""
    params = layout_params()
    matrices = jax.tree.map(lambda x: None if x is None else x.ndim >= 2, params)
    decay = optax.masked(optax.add_decayed_weights(0.1), matrices)
    txs = (
        gradtx.chain(decay, gradtx.adam(0.05)),
        gradtx.chain(gradtx.clip_by_global_norm(0.5), optax.masked(optax.adam(0.05), matrices)),
        gradtx.partition({"on": optax.chain(decay, optax.sgd(0.05)), "off": gradtx.adam(0.05)},
                         LAYOUT_LABELS),
    )  # fmt: skip
    packed = check_packed_equals_tree(*txs)
    for tx, p, foreign in zip(txs, packed, (0, 1)):  # a chain with a foreign part keeps leaves
        assert all(kind == "leaf" for kind, _, _ in p.layout.entries), p
        tree_state = tx.init(params)[foreign]
        assert jax.tree.structure(tx.init(p)[foreign]) == jax.tree.structure(tree_state)


# ---------------------------------------------------------------------------------------------
# the documented integrations (docs/performance.md): plain JAX, Equinox, Flax NNX

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "performance.md"


def _doc_snippet(name):
    text = DOCS.read_text()
    match = re.search(rf"<!-- pack: {name} -->\n```python\n(.*?)```", text, re.S)
    assert match, f"docs/performance.md has no '<!-- pack: {name} -->' snippet"
    return match.group(1)


def _batches():
    xs = jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(4, 3)
    ys = jnp.sin(xs) @ jnp.ones((3, 2), jnp.float32)
    return [(xs, ys)] * 5


def _mse(pred, y):
    return jnp.mean((pred - y) ** 2)


def _train_tree(params, loss_fn, batches):
    """The same training on the params tree, for the snippets' expected numbers."""
    tx = gradtx.adamw(1e-3)
    state = tx.init(params)
    for x, y in batches:
        grads = jax.grad(loss_fn)(params, x, y)
        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
    return params


def test_docs_snippet_plain_jax():
    params = {"w": jnp.full((3, 2), 0.1, jnp.float32), "b": jnp.zeros(2, jnp.float32)}

    def loss_fn(p, x, y):
        return _mse(x @ p["w"] + p["b"], y)

    ns = {"jax": jax, "gradtx": gradtx, "params": params, "loss_fn": loss_fn, "batches": _batches()}
    exec(_doc_snippet("jax"), ns)
    assert isinstance(ns["packed"], gradtx.Packed)
    assert_close_packed(ns["params"], _train_tree(params, loss_fn, _batches()))


def test_docs_snippet_equinox():
    eqx = pytest.importorskip("equinox")
    model = eqx.nn.MLP(3, 2, 4, 1, key=jax.random.key(0))

    def loss_fn(m, x, y):
        return _mse(jax.vmap(m)(x), y)

    ns = {"jax": jax, "eqx": eqx, "gradtx": gradtx, "model": model, "loss_fn": loss_fn,
          "batches": _batches()}  # fmt: skip
    exec(_doc_snippet("equinox"), ns)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    ref = _train_tree(params, lambda p, x, y: loss_fn(eqx.combine(p, static), x, y), _batches())
    got = eqx.filter(ns["model"], eqx.is_inexact_array)
    assert_close_packed(got, ref)
    assert not np.allclose(got.layers[0].weight, params.layers[0].weight)


def test_docs_snippet_flax_nnx():
    nnx = pytest.importorskip("flax.nnx")
    model = nnx.Linear(3, 2, rngs=nnx.Rngs(0))

    def loss_fn(m, x, y):
        return _mse(m(x), y)

    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    ns = {"jax": jax, "nnx": nnx, "gradtx": gradtx, "model": model, "loss_fn": loss_fn,
          "batches": _batches()}  # fmt: skip
    exec(_doc_snippet("nnx"), ns)
    ref = _train_tree(
        params, lambda p, x, y: loss_fn(nnx.merge(graphdef, p, rest), x, y), _batches()
    )
    _, got, _ = nnx.split(ns["model"], nnx.Param, ...)
    assert_close_packed(got, ref)
    assert not np.allclose(got["kernel"][...], params["kernel"][...])
