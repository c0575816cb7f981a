"""_tree.batched_map: per-leaf functions run once per group of equal-shaped small leaves."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import _tree


def _tree_of(seed):
    rng = np.random.default_rng(seed)
    shapes = {
        "a": (16,),
        "b": (16,),
        "c": (3, 5),
        "d": {"x": (3, 5), "y": (16,), "z": (7,)},
        "e": (130, 140),
        "f": (130, 140),
        "big": (300, 300),
        "g": (200,),
        "h": (200,),
    }
    return jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s).astype(np.float32)),
        shapes,
        is_leaf=lambda s: isinstance(s, tuple),
    )


def test_same_results_as_tree_map_and_keeps_structure():
    a, b = _tree_of(0), _tree_of(1)
    calls = []

    def fn(x, y):
        calls.append(x.shape)
        return x * y + jnp.sum(x), jnp.max(y, keepdims=True)

    got = _tree.batched_map(fn, a, b, min_size=0, max_size=50_000)
    n_calls = len(calls)
    want = jax.tree.map(fn, a, b)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-7, atol=1e-6)
    # (16,) x3, (3, 5) x2, (130, 140) x2, (200,) x2 batched; (7,) alone; (300, 300) too big.
    assert n_calls == 6


def test_none_arguments_and_dtype_split():
    a = {"p": jnp.ones(4), "q": jnp.ones(4, jnp.bfloat16), "r": jnp.full(4, 2.0)}
    none = {"p": None, "q": None, "r": None}
    got = _tree.batched_map(lambda x, m: (x * 2, m), a, none, min_size=0)
    assert got["q"][0].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got["r"][0]), np.full(4, 4.0, np.float32))
    assert got["p"][1] is None


def test_size_window_and_group_cap():
    tree = {f"s{i}": jnp.ones(8) for i in range(5)} | {
        f"m{i:02d}": jnp.ones(200) for i in range(10)
    }
    calls = []

    def fn(x):
        calls.append(x.shape)
        return (x + 1,)

    got = _tree.batched_map(fn, tree, max_group=4)  # default min_size: the (8,) leaves alone
    assert sorted(calls).count((8,)) == 5
    assert calls.count((200,)) == 3  # ten (200,) leaves in groups of 4, 4 and 2
    assert all(float(v[0][0]) == 2.0 for v in got.values())


@pytest.mark.parametrize("convention", ["torch", "optax"])
def test_adafactor_matches_per_leaf(monkeypatch, convention):
    """Adafactor (which maps its per-leaf rule with batched_map) gives the numbers of the
    one-by-one map on a tree with equal-shaped factored and unfactored leaves."""
    params, grads = _tree_of(2), jax.tree.map(lambda x: 1e-2 * x, _tree_of(3))
    tx = gradtx.adafactor(1e-2, momentum=0.9, convention=convention)

    def run():
        p, s = params, tx.init(params)
        for _ in range(3):
            u, s = tx.update(grads, s, p)
            p = gradtx.apply_updates(p, u)
        return p, s

    batched = run()
    monkeypatch.setattr(_tree, "batched_map", lambda fn, *trees, **kw: jax.tree.map(fn, *trees))
    jax.clear_caches()
    single = run()
    for g, w in zip(jax.tree.leaves(batched), jax.tree.leaves(single)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6, atol=1e-7)
