"""gradtx.grouped around masks and parameter groups: buckets split by mask, results unchanged."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx import _view


def _params(n_layers=6):
    """An MLP-like tree: kernels (decayed), biases and norm scales (not decayed), one big leaf."""
    params = {"big": jnp.linspace(-0.5, 0.5, 600, dtype=jnp.float32).reshape(20, 30)}
    for i in range(n_layers):
        params[f"layer{i}"] = {
            "kernel": jnp.linspace(-1.0, 1.0, 12, dtype=jnp.float32).reshape(3, 4) * (i + 1),
            "bias": jnp.full((4,), 0.1 * (i - 2), jnp.float32),
            "norm": {"scale": jnp.full((4,), 1.0 + 0.05 * i, jnp.float32)},
        }
    return params


def _grads(params, k):
    return jax.tree.map(lambda p: jnp.sin(2.0 * p + k) + 0.1 * p, params)


def _assert_close(a, b):
    # Same elementwise arithmetic on packed buffers; the global norm sums in another order.
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=2e-6, atol=2e-7), a, b)


def _run(tx, params, steps=5, **extra):
    s = tx.init(params)
    for k in range(steps):
        u, s = tx.update(_grads(params, float(k)), s, params, **extra)
        params = gradtx.apply_updates(params, u)
    return params, s


def _ndim_mask(p):
    return jax.tree.map(lambda x: x.ndim > 1, p)


MASKED_SETUPS = {
    "adamw_decay_mask": lambda: gradtx.adamw(0.05, weight_decay=0.1, weight_decay_mask=_ndim_mask),
    "adamw_path_mask": lambda: gradtx.adamw(
        0.05, weight_decay=0.1, weight_decay_mask=gradtx.decay_mask()
    ),
    "clip_then_masked_adamw": lambda: gradtx.chain(
        gradtx.clip_by_global_norm(0.5),
        gradtx.adamw(0.05, weight_decay=0.1, weight_decay_mask=gradtx.decay_mask()),
    ),
    "masked_tree": lambda: gradtx.masked(
        gradtx.adam(0.05),
        {"big": False, **{f"layer{i}": i % 2 == 0 for i in range(6)}},
    ),
    "nested_masked": lambda: gradtx.masked(
        gradtx.chain(
            gradtx.masked(gradtx.scale(0.5), gradtx.mask_by_path("*bias")), gradtx.sgd(0.1)
        ),
        gradtx.mask_by_path("*kernel", "*bias"),
    ),
    "freeze_norms": lambda: gradtx.freeze(gradtx.mask_by_path("*norm*"), gradtx.adam(0.05)),
    "partition": lambda: gradtx.partition(
        {
            "decay": gradtx.adamw(0.05, weight_decay=0.1),
            "no_decay": gradtx.sgd(0.1, momentum=0.9),
        },
        gradtx.label_by_path({"*bias": "no_decay", "*norm*": "no_decay"}, default="decay"),
    ),
}


@pytest.mark.parametrize("name", sorted(MASKED_SETUPS))
def test_grouped_masked_equals_per_leaf(name):
    tx = MASKED_SETUPS[name]()
    p_ref, _ = _run(tx, _params())
    p, s = _run(gradtx.grouped(tx, max_leaf_size=64), _params())
    _assert_close(p, p_ref)
    # The big leaf is alone; the 18 small leaves are split only as far as the masks require.
    buckets = [idx for kind, idx in s.plan.slots if kind == "bucket"]
    assert sum(len(b) for b in buckets) == 18
    sig = _view.leaf_signatures(
        tx, jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), _params())
    )
    leaves = list(range(len(sig)))
    for b in buckets:  # one signature per bucket, and as few buckets as signatures
        assert len({sig[i] for i in b}) == 1
    small = [i for i in leaves if i != 0]  # leaf 0 is "big" (sorted keys)
    assert len(buckets) == len({sig[i] for i in small})


def test_frozen_leaves_bit_identical_when_grouped():
    params = _params()
    tx = gradtx.grouped(gradtx.freeze(gradtx.mask_by_path("*norm*"), gradtx.adam(0.05)), 64)
    p, _ = _run(tx, params)
    for i in range(6):
        np.testing.assert_array_equal(
            np.asarray(p[f"layer{i}"]["norm"]["scale"]),
            np.asarray(params[f"layer{i}"]["norm"]["scale"]),
        )
    assert not np.array_equal(np.asarray(p["layer0"]["bias"]), np.asarray(params["layer0"]["bias"]))


def test_grouped_clip_masked_adamw_matches_optax(x64, standard_promotion):
    # In float64: Adam's normalized step magnifies float32 rounding where a gradient is near 0,
    # and Optax orders the bias correction and the clipping norm differently.
    params = jax.tree.map(lambda x: x.astype(jnp.float64), _params())
    mask = _ndim_mask
    gtx = gradtx.grouped(
        gradtx.chain(
            gradtx.clip_by_global_norm(0.5),
            gradtx.adamw(0.05, weight_decay=0.1, weight_decay_mask=mask),
        )
    )
    otx = optax.chain(
        optax.clip_by_global_norm(0.5), optax.adamw(0.05, weight_decay=0.1, mask=mask)
    )
    p, _ = _run(gtx, params)
    q, os_ = params, otx.init(params)
    for k in range(5):
        u, os_ = otx.update(_grads(q, float(k)), os_, q)
        q = optax.apply_updates(q, u)
    assert p["layer0"]["kernel"].dtype == jnp.float64
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-12, atol=1e-13), p, q)


def test_grouped_masked_contract():
    """jit once for several learning rates, vmap over the learning rate, dtypes kept."""
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), _params())
    params["big"] = params["big"].astype(jnp.float32)
    traces = []

    @jax.jit
    def train(lr, p):
        traces.append(1)
        tx = gradtx.grouped(
            gradtx.adamw(lr, weight_decay=0.1, weight_decay_mask=gradtx.decay_mask()), 64
        )
        return _run(tx, p, steps=2)[0]

    outs = [train(jnp.float32(lr), params) for lr in (0.1, 0.01)]
    assert len(traces) == 1
    assert [x.dtype for x in jax.tree.leaves(outs[0])] == [x.dtype for x in jax.tree.leaves(params)]
    batched = jax.vmap(train, in_axes=(0, None))(jnp.array([0.1, 0.01], jnp.float32), params)
    for i in range(2):
        jax.tree.map(
            lambda x, y: np.testing.assert_array_equal(np.asarray(x[i]), np.asarray(y)),
            batched,
            outs[i],
        )


def test_loss_reaches_transforms_inside_grouped_masks():
    tx = gradtx.grouped(
        gradtx.masked(
            gradtx.chain(gradtx.adam(0.1), gradtx.reduce_on_plateau(patience=0, factor=0.5)),
            gradtx.mask_by_path("*kernel"),
        ),
        64,
    )
    ref = gradtx.masked(
        gradtx.chain(gradtx.adam(0.1), gradtx.reduce_on_plateau(patience=0, factor=0.5)),
        gradtx.mask_by_path("*kernel"),
    )
    p, _ = _run(tx, _params(), loss=jnp.float32(1.0))
    q, _ = _run(ref, _params(), loss=jnp.float32(1.0))
    _assert_close(p, q)


def test_packed_view_rejects_mixed_buffer():
    original = {
        "a": jax.ShapeDtypeStruct((2,), jnp.float32),
        "b": jax.ShapeDtypeStruct((3,), jnp.float32),
    }
    view = _view.PackedView(original, ((0, 1),), tuple)
    with pytest.raises(
        ValueError, match=r"True for \['a'\] but False for \['b'\].*share one packed buffer"
    ):
        view.reduce([True, False], "gradtx.test", "mask")
    assert view.reduce([True, True], "gradtx.test", "mask") == (True,)


def test_nested_grouped_rejected():
    with pytest.raises(TypeError, match=r"already contains a gradtx\.grouped"):
        gradtx.grouped(gradtx.chain(gradtx.grouped(gradtx.adam(0.1)), gradtx.scale(1.0)))
