"""masked, freeze, path masks and partition against Optax and the composition laws."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._composition_util import (
    assert_trees_close,
    assert_trees_equal,
    grad_seq,
    make_params,
    run_gradtx,
    run_optax,
)

MASK = {"dense": {"kernel": True, "bias": False}, "norm": False, "head": True}
LABELS = {"dense": {"kernel": "a", "bias": "b"}, "norm": "b", "head": "a"}


def test_masked_matches_optax(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 4)
    ours, state = run_gradtx(gradtx.masked(gradtx.adam(0.1), MASK), params, grads)
    ref, _ = run_optax(optax.masked(optax.adam(0.1), MASK), params, grads)
    assert_trees_close(ours, ref, rtol=1e-12)
    # masked-out leaves hold no buffer in the inner state
    adam_state = state.inner_state[0]
    assert adam_state.mu["dense"]["bias"] is None and adam_state.mu["norm"]["scale"] is None
    assert adam_state.mu["head"].shape == (4, 2)


def test_masked_and_partition_accept_optax_inner_transforms(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes int counts and floats
        ours, _ = run_gradtx(gradtx.masked(optax.adam(0.1), MASK), params, grads)
    ref, _ = run_optax(optax.masked(optax.adam(0.1), MASK), params, grads)
    assert_trees_close(ours, ref, rtol=1e-12)
    with jax.numpy_dtype_promotion("standard"):
        ours, _ = run_gradtx(
            gradtx.partition({"a": optax.adam(0.1), "b": gradtx.sgd(0.1)}, LABELS), params, grads
        )
    ref, _ = run_optax(
        optax.partition({"a": optax.adam(0.1), "b": optax.sgd(0.1)}, LABELS), params, grads
    )
    assert_trees_close(ours, ref, rtol=1e-12)


def test_masked_all_true_equals_tx(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    tx = gradtx.adamw(0.05, weight_decay=0.1)
    ours, _ = run_gradtx(gradtx.masked(tx, True), params, grads)
    plain, _ = run_gradtx(tx, params, grads)
    assert_trees_equal(ours, plain)
    ours_fn, _ = run_gradtx(
        gradtx.masked(tx, lambda p: jax.tree.map(lambda _: True, p)), params, grads
    )
    assert_trees_equal(ours_fn, plain)


def test_masked_prefix_mask_and_function_mask_agree():
    params = make_params()
    grads = grad_seq(params, 2)
    full, _ = run_gradtx(gradtx.masked(gradtx.sgd(0.1, momentum=0.9), MASK), params, grads)
    fn = gradtx.masked(
        gradtx.sgd(0.1, momentum=0.9),
        lambda p: {
            "dense": {"kernel": True, "bias": False},
            "norm": {"scale": False},
            "head": True,
        },
    )
    by_fn, _ = run_gradtx(fn, params, grads)
    assert_trees_equal(full, by_fn)


def test_nested_masks_compose(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    inner_mask = lambda p: jax.tree.map(lambda x: x.ndim > 1, p)
    outer = {"dense": True, "norm": True, "head": False}
    tx = gradtx.masked(gradtx.masked(gradtx.adam(0.1), inner_mask), outer)
    ours, _ = run_gradtx(tx, params, grads)
    both = {"dense": {"kernel": True, "bias": False}, "norm": False, "head": False}
    ref, _ = run_optax(optax.masked(optax.adam(0.1), both), params, grads)
    assert_trees_close(ours, ref, rtol=1e-12)


class _Model(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return x @ self.w + self.b


def test_callable_pytree_mask_is_a_tree_not_a_function():
    model = _Model(jnp.ones((2, 2)), jnp.zeros((2,)))
    mask = _Model(True, False)  # callable Equinox module of bools: a tree
    tx = gradtx.masked(gradtx.sgd(1.0), mask)
    g = _Model(jnp.ones((2, 2)), jnp.ones((2,)))
    u, _ = tx.update(g, tx.init(model), model)
    np.testing.assert_array_equal(u.w, -jnp.ones((2, 2)))
    np.testing.assert_array_equal(u.b, jnp.ones((2,)))  # passed through unchanged


def test_model_passed_as_mask_is_rejected_with_a_hint():
    model = _Model(jnp.ones((2, 2)), jnp.zeros((2,)))
    with pytest.raises(TypeError, match="Equinox model"):
        gradtx.masked(gradtx.sgd(1.0), model)
    # an explicit mask_fn is called even when it is a pytree
    fn = jax.tree_util.Partial(lambda flag, p: jax.tree.map(lambda _: flag, p), True)
    tx = gradtx.masked(gradtx.sgd(1.0), gradtx.mask_fn(fn))
    u, _ = tx.update(model, tx.init(model), model)
    np.testing.assert_array_equal(u.w, -jnp.ones((2, 2)))


def test_mask_function_returning_arrays_of_values_is_rejected():
    params = make_params()
    tx = gradtx.masked(gradtx.sgd(1.0), lambda p: jax.tree.map(lambda x: x > 0, p))
    with pytest.raises(TypeError, match="decided by structure"):
        tx.init(params)


def test_path_helpers():
    params = make_params()
    m = gradtx.mask_by_path("*bias", "norm/*")(params)
    assert m == {"dense": {"kernel": False, "bias": True}, "norm": {"scale": True}, "head": False}
    inv = gradtx.mask_by_path("*bias", "norm/*", invert=True)(params)
    assert inv == jax.tree.map(lambda b: not b, m)
    d = gradtx.decay_mask()(params)
    assert d == {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}, "head": True}
    # Flax-style names are caught case-insensitively, even for 2-D scales
    flax_like = {
        "LayerNorm_0": {"scale": jnp.ones((2, 2))},
        "Dense_0": {"kernel": jnp.ones((2, 2))},
    }
    assert gradtx.decay_mask()(flax_like) == {
        "LayerNorm_0": {"scale": False},
        "Dense_0": {"kernel": True},
    }
    assert gradtx.key_path_str(jax.tree_util.tree_flatten_with_path([{"a": 1}])[0][0][0]) == "0/a"


def test_decay_mask_in_adamw_matches_optax(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    tx = gradtx.adamw(0.05, weight_decay=0.1, mask=gradtx.decay_mask())
    ours, _ = run_gradtx(tx, params, grads)
    ref_mask = {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}, "head": True}
    ref, _ = run_optax(optax.adamw(0.05, weight_decay=0.1, mask=ref_mask), params, grads)
    assert_trees_close(ours, ref, rtol=1e-12)


def _bits(tree):
    return jax.tree.map(lambda x: np.asarray(x).view(np.uint32), tree)


def test_freeze_leaves_params_bit_identical():
    params = make_params()
    params["head"] = params["head"].at[0, 0].set(-0.0)  # -0.0 must survive too
    grads = grad_seq(params, 3)
    frozen = {"dense": False, "norm": True, "head": True}
    tx = gradtx.chain(gradtx.adamw(0.1, weight_decay=0.5), gradtx.freeze(frozen))
    out, _ = run_gradtx(tx, params, grads)
    for p in out:
        assert_trees_equal(_bits(p["norm"]), _bits(params["norm"]))
        assert_trees_equal(_bits(p["head"]), _bits(params["head"]))
        assert not np.array_equal(p["dense"]["kernel"], params["dense"]["kernel"])


def test_freeze_with_inner_keeps_no_state_for_frozen_leaves(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    frozen = gradtx.mask_by_path("dense/*")
    tx = gradtx.freeze(frozen, gradtx.adam(0.1))
    out, state = run_gradtx(tx, params, grads)
    assert state.inner_state[0].mu["dense"]["kernel"] is None
    ref_tx = optax.chain(
        optax.masked(optax.adam(0.1), {"dense": False, "norm": True, "head": True}),
        optax.masked(optax.set_to_zero(), {"dense": True, "norm": False, "head": False}),
    )
    ref, _ = run_optax(ref_tx, params, grads)
    assert_trees_close(out, ref, rtol=1e-12)
    assert_trees_equal(
        _bits(jax.tree.map(lambda x: x.astype(jnp.float32), out[-1]["dense"])),
        _bits(jax.tree.map(lambda x: x.astype(jnp.float32), params["dense"])),
    )


# ---------------------------------------------------------------------------------------------
# partition


def test_partition_matches_optax(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 4)
    ours, _ = run_gradtx(
        gradtx.partition({"a": gradtx.adam(0.1), "b": gradtx.sgd(0.05, momentum=0.9)}, LABELS),
        params,
        grads,
    )
    ref, _ = run_optax(
        optax.partition({"a": optax.adam(0.1), "b": optax.sgd(0.05, momentum=0.9)}, LABELS),
        params,
        grads,
    )
    assert_trees_close(ours, ref, rtol=1e-12)


def test_partition_label_function_of_path_and_leaf():
    params = make_params()
    grads = grad_seq(params, 2)
    txs = {"a": gradtx.adam(0.1), "b": gradtx.sgd(0.05, momentum=0.9)}
    by_tree, _ = run_gradtx(gradtx.partition(txs, LABELS), params, grads)
    by_path, _ = run_gradtx(
        gradtx.partition(txs, gradtx.label_by_path({"*bias": "b", "norm/*": "b"}, default="a")),
        params,
        grads,
    )
    by_leaf, _ = run_gradtx(
        gradtx.partition(txs, lambda path, x: "a" if x.ndim > 1 else "b"), params, grads
    )
    assert_trees_equal(by_tree, by_path)
    assert_trees_equal(by_tree, by_leaf)


def test_partition_one_group_equals_tx():
    params = make_params()
    grads = grad_seq(params, 3)
    tx = gradtx.adamw(0.05, weight_decay=0.1)
    ours, _ = run_gradtx(gradtx.partition({"all": tx}, "all"), params, grads)
    plain, _ = run_gradtx(tx, params, grads)
    assert_trees_equal(ours, plain)


def test_partition_unknown_label_names_the_path():
    params = make_params()
    tx = gradtx.partition({"a": gradtx.sgd(0.1)}, {**LABELS, "head": "a"})
    with pytest.raises(ValueError, match=r"\['dense'\]\['bias'\].*'b'"):
        tx.init(params)
    with pytest.raises(ValueError, match="no pattern matches the path 'head'"):
        gradtx.partition({"a": gradtx.sgd(0.1)}, gradtx.label_by_path({"dense/*": "a"})).init(
            params
        )


def test_reset_group_touches_only_that_group():
    params = make_params()
    grads = grad_seq(params, 3)
    tx = gradtx.chain(
        gradtx.clip_by_global_norm(1.0),
        gradtx.partition({"a": gradtx.adam(0.1), "b": gradtx.sgd(0.05, momentum=0.9)}, LABELS),
    )
    _, state = run_gradtx(tx, params, grads)
    reset = gradtx.reset_group(tx, state, "b", params)
    fresh = tx.init(params)
    assert_trees_equal(reset[1].inner_states["b"], fresh[1].inner_states["b"])
    untouched = lambda a, b: all(x is y for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert untouched(reset[1].inner_states["a"], state[1].inner_states["a"])
    assert untouched(reset[0], state[0])
    assert int(reset[1].inner_states["a"][0].count) == 3  # adam advanced by the 3 steps
    with pytest.raises(ValueError, match="no partition"):
        gradtx.reset_group(tx, state, "c", params)
