"""Adafactor's execution layout: stacked unfactored leaves, the separable rms of factored
updates, and the exact fallback when torch's eps1^2 clamp binds."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

from .test_catalogue_torch_numpy import ref_adafactor


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
        "k": (2, 4, 6),
    }
    return jax.tree.map(
        lambda s: jnp.asarray(rng.standard_normal(s).astype(np.float32)),
        shapes,
        is_leaf=lambda s: isinstance(s, tuple),
    )


def _run(tx, params, grads, steps=3):
    p, s = params, tx.init(params)
    for _ in range(steps):
        u, s = tx.update(grads, s, p)
        p = gradtx.apply_updates(p, u)
    return p, s


@pytest.mark.parametrize("convention", ["torch", "optax"])
def test_tree_matches_leaf_by_leaf(convention):
    """A tree of factored and unfactored leaves, several of one shape, gives each leaf the
    params and statistics it gets on its own: nothing of one leaf reaches another."""
    params, grads = _tree_of(2), jax.tree.map(lambda x: 1e-2 * x, _tree_of(3))
    tx = gradtx.adafactor(1e-2, momentum=0.9, convention=convention)
    t_params, t_state = _run(tx, params, grads)
    kernel = t_state[0]  # the preconditioner's state (momentum is the chain's EMA)
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
    factored = 0
    for path, p, g in zip(paths, jax.tree.leaves(params), jax.tree.leaves(grads)):
        w_params, w_state = _run(tx, {"w": p}, {"w": g})
        got = jax.tree_util.tree_leaves_with_path(t_params)
        np.testing.assert_array_equal(
            np.asarray(dict(got)[path]), np.asarray(w_params["w"]), err_msg=str(path)
        )
        for field in ("v_row", "v_col", "v"):
            mine = getattr(w_state[0], field)["w"]
            theirs = dict(jax.tree_util.tree_leaves_with_path(getattr(kernel, field))).get(path)
            assert (mine is None) == (theirs is None), (path, field)
            if mine is not None:
                np.testing.assert_array_equal(np.asarray(theirs), np.asarray(mine))
        factored += w_state[0].v_row["w"] is not None
    # torch factors every leaf of two or more axes (c, d.x, e, f, big, k); Optax only those
    # whose second-largest axis reaches 128 (e, f, big)
    assert factored == {"torch": 6, "optax": 3}[convention]


def _numpy_run(grads, p0, steps, **kw):
    step, init = ref_adafactor(**kw)
    p = {k: np.asarray(v, np.float64) for k, v in p0.items()}
    st = {k: init(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        for k in p:
            p[k] = step(p[k], grads[k](t), st[k], t, None)
    return p


def _gradtx_run(grads, p0, steps, tx):
    p = {k: jnp.asarray(v, jnp.float64) for k, v in p0.items()}
    s = tx.init(p)
    for t in range(1, steps + 1):
        g = {k: jnp.asarray(grads[k](t)) for k in p}
        u, s = tx.update(g, s, p)
        p = gradtx.apply_updates(p, u)
    return {k: np.asarray(v) for k, v in p.items()}


def _vhat_min(grads, shape, steps, eps1):
    """The smallest torch Vhat over the run (numpy, the reference's formulas)."""
    r, c = np.zeros(shape[:-1]), np.zeros(shape[:-2] + shape[-1:])
    low = np.inf
    for t in range(1, steps + 1):
        g2 = grads(t) ** 2
        w = t**-0.8
        r = (1 - w) * r + w * g2.mean(axis=-1)
        c = (1 - w) * c + w * g2.mean(axis=-2)
        norm = np.maximum(r.mean(axis=-1, keepdims=True), eps1)
        vhat = r[..., :, None] * c[..., None, :] / norm[..., None]
        low = min(low, float(vhat[grads(t) != 0].min()))
    return low


def test_torch_clamp_fallback_is_exact(x64):
    """When torch's max(Vhat, eps1^2) binds for nonzero gradients, the separable rms no longer
    holds; the update switches to the exact form and matches the numpy reference."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((6, 5))
    scale = np.ones((6, 5))
    scale[2, :] = 1e-4  # one row of tiny gradients: Vhat there falls under eps1^2
    eps1 = 1e-3
    grads = {"w": lambda t: base * scale * (1 + 0.1 * t), "b": lambda t: base[0] * 0.5}
    p0 = {"w": rng.standard_normal((6, 5)), "b": rng.standard_normal(5)}
    assert _vhat_min(grads["w"], (6, 5), 4, eps1) < eps1 * eps1  # the clamp does bind
    want = _numpy_run(grads, p0, 4, lr=0.05, eps1=eps1)
    got = _gradtx_run(grads, p0, 4, gradtx.adafactor(0.05, eps=eps1, convention="torch"))
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("shape", [(7, 4), (1, 7, 4), (3, 7, 4)])
@pytest.mark.parametrize("zero", ["row", "column"])
def test_torch_zero_rows_and_columns(x64, zero, shape):
    """Rows (columns) whose gradients are all zero, like unused embedding rows: torch gives them
    a zero update; the separable form must not turn 0 * inf into NaN. (7, 4) and (1, 7, 4) run as
    matrices, (3, 7, 4) has a batch axis and runs the direct form."""
    rng = np.random.default_rng(1)
    base = rng.standard_normal(shape)
    if zero == "row":
        base[..., 3, :] = 0.0
    else:
        base[..., :, 2] = 0.0
    grads = {"k": lambda t: base * (1 + 0.2 * t)}
    p0 = {"k": rng.standard_normal(shape)}
    want = _numpy_run(grads, p0, 3, lr=0.05)
    got = _gradtx_run(grads, p0, 3, gradtx.adafactor(0.05, eps=None, convention="torch"))
    assert np.all(np.isfinite(got["k"]))
    np.testing.assert_allclose(got["k"], want["k"], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("convention", ["torch", "optax"])
def test_matrix_and_direct_forms_agree(x64, convention, dtype):
    """The same numbers from a leaf run as a matrix (4, 6), and from it with a batch axis of one
    extra copy (2, 4, 6) that takes the direct form (the copies are independent rows of stats);
    complex leaves use |g|^2 in both."""
    rng = np.random.default_rng(4)

    def draw():
        x = rng.standard_normal((4, 6))
        if dtype is np.complex128:
            x = x + 1j * rng.standard_normal((4, 6))
        return x

    g, p = draw(), draw()
    kw = dict(convention=convention, min_dim_size_to_factor=2)
    tx = gradtx.adafactor(0.05, multiply_by_parameter_scale=False, **kw)
    mat = {"w": jnp.asarray(p)}
    u1, _ = tx.update({"w": jnp.asarray(g)}, tx.init(mat), mat)
    both = {"w": jnp.asarray(np.stack([p, p]))}
    u2, _ = tx.update({"w": jnp.asarray(np.stack([g, g]))}, tx.init(both), both)
    for k in range(2):
        np.testing.assert_allclose(np.asarray(u2["w"][k]), np.asarray(u1["w"]), rtol=1e-12)
