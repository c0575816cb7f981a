"""``gradtx.tree`` and ``gradtx.tree_utils`` against Optax's ``optax.tree`` and
``optax.tree_utils`` (0.2.8): the same names, signatures and defaults, one function under both
names, and the same results on the same inputs (nested dicts, tuples and NamedTuples with
``None`` leaves, in float32, bfloat16, complex64 and int32), with NumPy in float64 as a second
reference for the reductions. Where gradtx differs on purpose (reductions over bfloat16 leaves
return float32, ``add_scale`` keeps bfloat16 leaves bfloat16), the test checks the difference
the docstring states.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.tree
import optax.tree_utils
import pytest

import gradtx
from gradtx import HyperparameterError, TreeMismatchError

# Optax mixes dtypes (an int32 count and float leaves, a float32 scalar and bfloat16 leaves);
# gradtx's functions run under the strict promotion the other tests use (checked below).
pytestmark = pytest.mark.usefixtures("standard_promotion")

TREE_NAMES = sorted(n for n in dir(optax.tree) if not n.startswith("_"))
# optax.tree_utils also shows the modules its __init__ imports for its deprecation table.
TREE_UTILS_NAMES = sorted(
    n for n in dir(optax.tree_utils) if not n.startswith("_") and n not in {"functools", "typing"}
)


class Pair(NamedTuple):
    x: Any
    y: Any


DTYPES = [jnp.float32, jnp.bfloat16, jnp.complex64, jnp.int32]
DTYPE_IDS = ["float32", "bfloat16", "complex64", "int32"]


def _leaf(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    if jnp.issubdtype(dtype, jnp.integer):
        # Nonzero, so that division is defined; both signs.
        v = rng.integers(1, 6, size=shape) * rng.choice([-1, 1], size=shape)
        return jnp.asarray(v, dtype)
    v = rng.standard_normal(shape)
    if jnp.issubdtype(dtype, jnp.complexfloating):
        v = v + 1j * rng.standard_normal(shape)
    return jnp.asarray(v, dtype)


def _tree(dtype: Any, seed: int = 0) -> dict:
    """Nested dict, tuple and NamedTuple with ``None`` leaves."""
    rng = np.random.default_rng(seed)
    return {
        "w": _leaf(rng, (3, 2), dtype),
        "b": _leaf(rng, (3,), dtype),
        "none": None,
        "t": (_leaf(rng, (2,), dtype), Pair(x=_leaf(rng, (4,), dtype), y=None)),
        "s": _leaf(rng, (), dtype),
    }


def _np(x: Any) -> np.ndarray:
    x = np.asarray(x)
    return x.astype(np.complex128 if np.iscomplexobj(x) else np.float64)


def _flat64(tree: Any) -> np.ndarray:
    leaves = [_np(x).ravel() for x in jax.tree.leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def _tol(dtype: Any) -> dict:
    return {"rtol": 2e-2, "atol": 2e-2} if dtype == jnp.bfloat16 else {"rtol": 1e-6, "atol": 1e-6}


def _assert_trees(ours: Any, theirs: Any, *, dtype: bool = True, **tol: float) -> None:
    """Same structure (``None`` leaves included), values within ``tol``, and the same dtypes."""
    is_none = lambda x: x is None
    assert jax.tree.structure(ours, is_leaf=is_none) == jax.tree.structure(theirs, is_leaf=is_none)
    for a, b in zip(
        jax.tree.leaves(ours, is_leaf=is_none), jax.tree.leaves(theirs, is_leaf=is_none)
    ):
        if b is None:
            assert a is None
            continue
        assert np.shape(a) == np.shape(b)
        if dtype:
            assert jnp.result_type(a) == jnp.result_type(b), (
                jnp.result_type(a),
                jnp.result_type(b),
            )
        np.testing.assert_allclose(_np(a), _np(b), **(tol or {"rtol": 0, "atol": 0}))


# --------------------------------------------------------------------------------------------
# Names, objects and signatures


def test_the_namespaces_list_exactly_optaxs_names():
    ours = sorted(n for n in dir(gradtx.tree) if not n.startswith("_"))
    assert ours == TREE_NAMES
    ours = sorted(n for n in dir(gradtx.tree_utils) if not n.startswith("_"))
    assert ours == TREE_UTILS_NAMES
    assert len(TREE_NAMES) == 35 and "NamedTupleKey" in TREE_UTILS_NAMES


@pytest.mark.parametrize("name", TREE_NAMES)
def test_tree_utils_tree_name_is_tree_name(name):
    assert getattr(gradtx.tree_utils, f"tree_{name}") is getattr(gradtx.tree, name)
    # Optax binds them the same way, so the pairing is Optax's.
    assert getattr(optax.tree_utils, f"tree_{name}") is getattr(optax.tree, name)


def test_existing_gradtx_functions_are_reused():
    t, tu = gradtx.tree, gradtx.tree_utils
    assert tu.NamedTupleKey is gradtx.NamedTupleKey
    assert t.get is gradtx.tree_get and t.set is gradtx.tree_set
    assert t.get_all_with_path is gradtx.tree_get_all_with_path
    assert t.map_params is gradtx.tree_map_params
    assert t.bias_correction is gradtx.bias_correction
    assert t.update_moment is gradtx.update_moment
    assert t.update_infinity_moment is gradtx.update_infinity_moment
    assert t.update_moment_per_elem_norm is gradtx.update_moment_per_elem_norm


def test_import_gradtx_gives_the_namespaces():
    import subprocess
    import sys

    code = "import gradtx; print(gradtx.tree.norm.__name__, gradtx.tree_utils.tree_norm.__name__)"
    root = Path(__file__).resolve().parent.parent  # this checkout's gradtx, not an installed one
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=root
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["tree_norm", "tree_norm"]


POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize("name", TREE_NAMES)
def test_signature_is_optaxs(name):
    theirs = inspect.signature(getattr(optax.tree, name)).parameters
    ours = inspect.signature(getattr(gradtx.tree, name)).parameters
    assert [k for k, p in ours.items() if p.kind in POSITIONAL][: len(theirs)] == [
        k for k, p in theirs.items() if p.kind in POSITIONAL
    ]
    for key, p in theirs.items():
        q = ours[key]
        assert q.kind == p.kind, (name, key)
        if callable(p.default) and p.default is not inspect.Parameter.empty:
            assert q.default is p.default, (name, key)  # random_like's sampler
        else:
            assert type(q.default) is type(p.default) and q.default == p.default, (name, key)
    assert set(ours) == set(theirs), name


# --------------------------------------------------------------------------------------------
# Elementwise functions


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_arithmetic_matches_optax(dtype):
    x, y, z = _tree(dtype, 0), _tree(dtype, 1), _tree(dtype, 2)
    t, o = gradtx.tree, optax.tree
    tol = _tol(dtype) if dtype == jnp.bfloat16 else {}
    _assert_trees(t.add(x, y), o.add(x, y), **tol)
    _assert_trees(t.add(x, y, z), o.add(x, y, z), **tol)
    _assert_trees(t.sub(x, y), o.sub(x, y), **tol)
    _assert_trees(t.mul(x, y), o.mul(x, y), **tol)
    _assert_trees(t.div(x, y), o.div(x, y), **(tol or {"rtol": 1e-7}))
    _assert_trees(t.scale(0.5, x), o.scale(0.5, x), **tol)
    _assert_trees(t.scale(jnp.asarray(3, dtype), x), o.scale(jnp.asarray(3, dtype), x), **tol)
    _assert_trees(t.conj(x), o.conj(x))
    _assert_trees(t.real(x), o.real(x))
    for cond in (True, False, jnp.asarray(True)):
        _assert_trees(t.where(cond, x, y), o.where(cond, x, y))


def test_add_takes_numpy_references():
    x, y, z = _tree(jnp.float32, 0), _tree(jnp.float32, 1), _tree(jnp.float32, 2)
    out = gradtx.tree.add(x, y, z)
    expected = _flat64(x) + _flat64(y) + _flat64(z)
    np.testing.assert_allclose(_flat64(out), expected, rtol=1e-6)
    out = gradtx.tree.add_scale(x, -0.25, y)
    np.testing.assert_allclose(_flat64(out), _flat64(x) - 0.25 * _flat64(y), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_add_scale_matches_optax(dtype):
    x, y = _tree(dtype, 0), _tree(dtype, 1)
    for scalar in (0.5, -2, jnp.asarray(0.5, jnp.float32)):
        ours = gradtx.tree.add_scale(x, scalar, y)
        theirs = optax.tree.add_scale(x, scalar, y)
        if dtype == jnp.bfloat16 and isinstance(scalar, (int, float)):
            # Optax makes a Python scalar a float32 array, which promotes bfloat16 leaves.
            _assert_trees(ours, theirs, dtype=False, **_tol(dtype))
            assert all(v.dtype == jnp.bfloat16 for v in jax.tree.leaves(ours))
        elif dtype == jnp.int32 and isinstance(scalar, float):
            # A float scalar and int leaves: a float result in both; Optax's is float32.
            _assert_trees(ours, theirs, rtol=1e-7)
        elif dtype == jnp.int32 and isinstance(scalar, int):
            _assert_trees(ours, theirs, dtype=False)  # values; dtype int32 (ours) vs int32
        else:
            _assert_trees(
                ours, theirs, **(_tol(dtype) if dtype == jnp.bfloat16 else {"rtol": 1e-7})
            )


def test_add_scale_passes_none_leaves_of_tree_x_as_optax_does():
    x = {"a": None, "b": jnp.ones(2)}
    y = {"a": jnp.ones(3), "b": jnp.arange(2.0)}
    _assert_trees(gradtx.tree.add_scale(x, 2.0, y), optax.tree.add_scale(x, 2.0, y))


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.int32], ids=["f32", "bf16", "i32"]
)
def test_clip_matches_optax(dtype):
    x = _tree(dtype, 3)
    for lo, hi in [(None, None), (-0.5, None), (None, 0.5), (-1, 2), (1.0, -1.0)]:
        _assert_trees(gradtx.tree.clip(x, lo, hi), optax.tree.clip(x, lo, hi))
        _assert_trees(gradtx.tree.clip(x, min_value=lo), optax.tree.clip(x, min_value=lo))
        _assert_trees(gradtx.tree.clip(x, max_value=hi), optax.tree.clip(x, max_value=hi))
    ref = np.clip(_flat64(x), -1, 2)
    np.testing.assert_allclose(_flat64(gradtx.tree.clip(x, -1, 2)), ref)


def test_clip_and_where_take_arrays():
    x, y = _tree(jnp.float32, 0), _tree(jnp.float32, 1)
    lo = jnp.asarray(-0.1)
    _assert_trees(gradtx.tree.clip(x, lo, 0.3), optax.tree.clip(x, lo, 0.3))
    cond = jnp.asarray([True, False, True])  # broadcast against the trailing axis of length 3
    xs, ys = {"a": jnp.arange(3.0)}, {"a": -jnp.arange(3.0)}
    _assert_trees(gradtx.tree.where(cond, xs, ys), optax.tree.where(cond, xs, ys))
    step = jax.jit(gradtx.tree.where)(jnp.asarray(False), x, y)
    _assert_trees(step, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_constant_trees_match_optax(dtype):
    x = _tree(dtype, 4)
    t, o = gradtx.tree, optax.tree
    for out_dtype in (None, jnp.float32, jnp.bfloat16, jnp.int32):
        _assert_trees(t.zeros_like(x, out_dtype), o.zeros_like(x, out_dtype))
        _assert_trees(t.ones_like(x, dtype=out_dtype), o.ones_like(x, dtype=out_dtype))
        _assert_trees(t.full_like(x, 3, out_dtype), o.full_like(x, 3, out_dtype))
    if not jnp.issubdtype(dtype, jnp.integer):
        _assert_trees(t.full_like(x, -2.5), o.full_like(x, -2.5))
        _assert_trees(jax.jit(t.zeros_like)(x), o.zeros_like(x))
        _assert_trees(jax.jit(t.full_like)(x, 1.5), o.full_like(x, 1.5))
    for shape in [(), (2,), (3, 1)]:
        _assert_trees(t.batch_shape(x, shape), o.batch_shape(x, shape))
    _assert_trees(t.batch_shape(x), o.batch_shape(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_casts_match_optax(dtype):
    x = _tree(dtype, 5)
    complex_ = jnp.issubdtype(dtype, jnp.complexfloating)
    # Casting complex to real warns (the imaginary part is dropped), in Optax too.
    targets = (
        (None, jnp.complex64)
        if complex_
        else (None, jnp.float32, jnp.bfloat16, jnp.complex64, jnp.int32)
    )
    for to in targets:
        _assert_trees(gradtx.tree.cast(x, to), optax.tree.cast(x, to))
    like = jax.tree.map(lambda v: v.astype(jnp.bfloat16), _tree(jnp.float32, 6))
    like["b"] = like["b"].astype(jnp.int32)
    if complex_:
        like = jax.tree.map(lambda v: v.astype(jnp.complex64), like)
    _assert_trees(gradtx.tree.cast_like(x, like), optax.tree.cast_like(x, like))


# --------------------------------------------------------------------------------------------
# Reductions


def _reduction_tol(dtype: Any) -> dict:
    return {"rtol": 1e-2, "atol": 5e-2} if dtype == jnp.bfloat16 else {"rtol": 2e-6, "atol": 1e-5}


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("associative", [False, True])
def test_sum_matches_optax_and_numpy(dtype, associative):
    x = _tree(dtype, 7)
    ours = gradtx.tree.sum(x, associative_reduction=associative)
    theirs = optax.tree.sum(x, associative_reduction=associative)
    np.testing.assert_allclose(_np(ours), _np(theirs), **_reduction_tol(dtype))
    # NumPy in float64 on the same values: gradtx sums bfloat16 in float32.
    np.testing.assert_allclose(_np(ours), _flat64(x).sum(), rtol=1e-6, atol=1e-5)
    if dtype == jnp.bfloat16:
        assert ours.dtype == jnp.float32  # Optax's is bfloat16
    else:
        assert ours.dtype == jnp.result_type(theirs)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_vdot_matches_optax_and_numpy(dtype):
    x, y = _tree(dtype, 8), _tree(dtype, 9)
    ours, theirs = gradtx.tree.vdot(x, y), optax.tree.vdot(x, y)
    np.testing.assert_allclose(_np(ours), _np(theirs), **_reduction_tol(dtype))
    np.testing.assert_allclose(_np(ours), np.vdot(_flat64(x), _flat64(y)), rtol=1e-6, atol=1e-5)
    assert ours.dtype == (jnp.float32 if dtype == jnp.bfloat16 else jnp.result_type(theirs))
    np.testing.assert_allclose(_np(jax.jit(gradtx.tree.vdot)(x, y)), _np(ours), rtol=1e-6)


NORMS = [None, 1, 2, jnp.inf, "inf", "infinity", 2.0]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("ord", NORMS, ids=[str(o) for o in NORMS])
@pytest.mark.parametrize("squared", [False, True])
def test_norm_matches_optax_and_numpy(dtype, ord, squared):
    x = _tree(dtype, 10)
    ours = gradtx.tree.norm(x, ord, squared)
    theirs = optax.tree.norm(x, ord=ord, squared=squared)
    flat = _flat64(x)
    np_ord = {None: None, 1: 1, 2: 2, "inf": np.inf, "infinity": np.inf}.get(ord, ord)
    expected = np.linalg.norm(flat, np_ord) ** (2 if squared else 1)
    np.testing.assert_allclose(_np(ours), expected, rtol=2e-6)
    np.testing.assert_allclose(_np(ours), _np(theirs), **_reduction_tol(dtype))
    # At least float32, real: float32 for every leaf dtype here (Optax: bfloat16 or int32 too).
    assert ours.dtype == jnp.float32 and ours.shape == ()
    if dtype in (jnp.float32, jnp.complex64):
        assert ours.dtype == jnp.result_type(theirs)
    np.testing.assert_allclose(
        _np(jax.jit(gradtx.tree.norm, static_argnums=(1, 2))(x, ord, squared)), _np(ours), rtol=1e-6
    )


def test_norm_is_global_norm_for_ord_2():
    x = _tree(jnp.float32, 11)
    assert float(gradtx.tree.norm(x)) == float(gradtx.global_norm(x))


@pytest.mark.parametrize("ord", [None, 1, jnp.inf])
def test_norm_of_a_tree_without_elements_is_zero(ord):
    empty_ref = np.linalg.norm(np.zeros(1), ord)  # 0, the norm of the zero vector
    for tree in ({}, {"a": None}, {"a": jnp.zeros((0, 3))}):
        assert float(gradtx.tree.norm(tree, ord)) == empty_ref
    if ord == jnp.inf:  # Optax's identity for its max; gradtx's documented difference
        assert float(optax.tree.norm({}, ord)) == -np.inf


def test_norm_of_a_complex_tree_uses_the_modulus():
    x = {"a": jnp.asarray([3 + 4j, 0 + 1j], jnp.complex64)}
    for ord in (None, 1, jnp.inf):
        np.testing.assert_allclose(
            float(gradtx.tree.norm(x, ord)), np.linalg.norm(_np(x["a"]), ord), rtol=1e-6
        )


@pytest.mark.parametrize(
    "dtype", [jnp.float32, jnp.bfloat16, jnp.int32], ids=["f32", "bf16", "i32"]
)
def test_max_min_match_optax(dtype):
    x = _tree(dtype, 12)
    x["empty"] = jnp.zeros((0,), dtype)
    for ours_fn, theirs_fn, np_fn in [
        (gradtx.tree.max, optax.tree.max, np.max),
        (gradtx.tree.min, optax.tree.min, np.min),
    ]:
        ours, theirs = ours_fn(x), theirs_fn(x)
        assert float(ours) == float(theirs) == np_fn(_flat64(x))
        assert ours.dtype == jnp.result_type(theirs)
    assert float(gradtx.tree.max({})) == float(optax.tree.max({})) == -np.inf
    assert float(gradtx.tree.min({"a": None})) == float(optax.tree.min({"a": None})) == np.inf
    x["nan"] = jnp.asarray([jnp.nan], jnp.float32)
    assert np.isnan(float(gradtx.tree.max(x))) and np.isnan(float(optax.tree.max(x)))


def test_size_matches_optax():
    for tree in (_tree(jnp.float32), {}, {"a": None}, {"a": 1.0, "b": jnp.zeros((2, 0))}):
        assert gradtx.tree.size(tree) == optax.tree.size(tree)
        assert isinstance(gradtx.tree.size(tree), int)
    assert gradtx.tree.size(_tree(jnp.float32)) == _flat64(_tree(jnp.float32)).size


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["f32", "c64"])
def test_allclose_matches_optax(dtype):
    x = _tree(dtype, 13)
    near = jax.tree.map(lambda v: v * (1 + 1e-6), x)
    far = jax.tree.map(lambda v: v + 1e-2, x)
    cases = [
        (x, x, {}),
        (x, near, {}),
        (x, far, {}),
        (x, far, {"atol": 0.1}),
        (x, far, {"rtol": 0.0, "atol": 0.0}),
        (x, near, {"rtol": 0.0, "atol": 0.0}),
    ]
    nan = {"a": jnp.asarray([1.0, jnp.nan])}
    cases += [(nan, nan, {}), (nan, nan, {"equal_nan": True}), ({}, {}, {})]
    for a, b, kw in cases:
        ours, theirs = gradtx.tree.allclose(a, b, **kw), optax.tree.allclose(a, b, **kw)
        assert bool(ours) == bool(theirs), kw
        assert jnp.result_type(ours) == jnp.bool_
    assert bool(gradtx.tree.allclose(x, far, 1e-5, 0.1)) == bool(
        optax.tree.allclose(x, far, 1e-5, 0.1)
    )


# --------------------------------------------------------------------------------------------
# Moments and bias correction (gradtx's numerics helpers under the tree names)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex64], ids=["f32", "c64"])
def test_moment_updates_match_optax(dtype):
    g, m = _tree(dtype, 14), _tree(dtype, 15)
    m_real = jax.tree.map(lambda v: jnp.abs(v).astype(jnp.float32), m)
    t, o = gradtx.tree, optax.tree
    tol = {"rtol": 1e-6, "atol": 1e-7}
    for order in (1, 2, 3):
        _assert_trees(t.update_moment(g, m, 0.9, order), o.update_moment(g, m, 0.9, order), **tol)
        _assert_trees(
            t.update_moment_per_elem_norm(g, m_real, 0.99, order),
            o.update_moment_per_elem_norm(g, m_real, 0.99, order),
            **tol,
        )
    _assert_trees(
        t.update_infinity_moment(g, m_real, 0.9, 1e-8),
        o.update_infinity_moment(g, m_real, 0.9, 1e-8),
        **tol,
    )
    count = jnp.asarray(3, jnp.int32)
    _assert_trees(t.bias_correction(m, 0.9, count), o.bias_correction(m, 0.9, count), **tol)


def test_state_utilities_match_optax():
    params = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-3))
    state = tx.init(params)
    _assert_trees(gradtx.tree.get(state, "mu"), optax.tree.get(state, "mu"))
    count = jnp.asarray(7, jnp.int32)
    _assert_trees(gradtx.tree.set(state, count=count), optax.tree.set(state, count=count))
    ours = gradtx.tree.map_params(tx, lambda v: v + 1, state, transform_non_params=lambda v: v)
    theirs = optax.tree.map_params(tx, lambda v: v + 1, state, transform_non_params=lambda v: v)
    _assert_trees(ours, theirs)
    ours = [p for p, _ in gradtx.tree_utils.tree_get_all_with_path(state, "count")]
    theirs = [p for p, _ in optax.tree_utils.tree_get_all_with_path(state, "count")]
    assert [jax.tree_util.keystr(p) for p in ours] == [jax.tree_util.keystr(p) for p in theirs]


# --------------------------------------------------------------------------------------------
# Dtypes


def test_dtype_matches_optax_in_every_mode():
    f32, bf16 = jnp.ones(2, jnp.float32), jnp.ones(2, jnp.bfloat16)
    i32, u32, f16 = jnp.ones(2, jnp.int32), jnp.ones(2, jnp.uint32), jnp.ones(2, jnp.float16)
    trees = [
        {"a": f32, "b": (f32, None)},
        {"a": f32, "b": Pair(bf16, None)},
        {"a": i32, "b": f32, "c": bf16},
        {"a": i32, "b": u32},
        {"a": jnp.ones(2, jnp.int8), "b": jnp.ones(2, jnp.uint8)},
        {"a": bf16, "b": f16},
        {"a": jnp.ones(2, jnp.complex64), "b": f32},
        {},
        {"a": None},
        {"a": 1.0},
    ]
    for tree in trees:
        for mode in (None, "promote", "highest", "lowest"):
            try:
                expected = optax.tree.dtype(tree, mode)
            except ValueError:
                with pytest.raises(ValueError, match=r"gradtx\.tree\.dtype: "):
                    gradtx.tree.dtype(tree, mode)
                continue
            assert gradtx.tree.dtype(tree, mode) == expected, (tree, mode)
    assert gradtx.tree.dtype({"a": f32, "b": bf16}, "lowest") == np.dtype(jnp.bfloat16)
    assert gradtx.tree.dtype({"a": f32, "b": bf16}, "highest") == np.dtype(jnp.float32)


def test_dtype_errors_name_the_leaves_and_the_mode():
    with pytest.raises(
        ValueError, match=r"gradtx\.tree\.dtype: .*float32 at \['a'\], bfloat16 at \['b'\]"
    ):
        gradtx.tree.dtype({"a": jnp.ones(1), "b": jnp.ones(1, jnp.bfloat16)})
    with pytest.raises(ValueError, match=r"gradtx\.tree\.dtype: .*int8 and uint8 have no highest"):
        gradtx.tree.dtype({"a": jnp.ones(1, jnp.int8), "b": jnp.ones(1, jnp.uint8)}, "highest")
    with pytest.raises(
        HyperparameterError,
        match=r"gradtx\.tree\.dtype: mixed_dtype_handler must be one of None, 'promote', 'highest', 'lowest', got 'max'",
    ):
        gradtx.tree.dtype({"a": jnp.ones(1)}, "max")


# --------------------------------------------------------------------------------------------
# Random trees


def _uniform_no_sharding(key, shape, dtype):
    return jax.random.uniform(key, shape, dtype, minval=-1.0, maxval=2.0)


@pytest.mark.parametrize("typed", [True, False], ids=["key", "PRNGKey"])
def test_random_like_and_split_key_like_give_optaxs_numbers(typed):
    key = jax.random.key(42) if typed else jax.random.PRNGKey(42)
    target = _tree(jnp.float32, 16)
    target["h"] = jnp.ones((2, 2), jnp.bfloat16)
    unwrap = gradtx.tree.unwrap_random_key_data
    _assert_trees(
        unwrap(gradtx.tree.split_key_like(key, target)),
        optax.tree.unwrap_random_key_data(optax.tree.split_key_like(key, target)),
    )
    for sampler in (jax.random.normal, jax.random.uniform, _uniform_no_sharding):
        for dtype in (None, jnp.float32, jnp.bfloat16):
            _assert_trees(
                gradtx.tree.random_like(key, target, sampler, dtype),
                optax.tree.random_like(key, target, sampler=sampler, dtype=dtype),
            )
    _assert_trees(gradtx.tree.random_like(key, target), optax.tree.random_like(key, target))
    ours = jax.jit(gradtx.tree.random_like)(key, target)
    _assert_trees(ours, optax.tree.random_like(key, target))


def test_split_key_like_keys_are_jax_random_split():
    key = jax.random.key(3)
    target = {"a": jnp.ones(2), "b": None, "c": (jnp.ones(1), jnp.ones(3))}
    keys = gradtx.tree.split_key_like(key, target)
    expected = jax.random.key_data(jax.random.split(key, 3))
    got = np.stack([np.asarray(jax.random.key_data(k)) for k in jax.tree.leaves(keys)])
    np.testing.assert_array_equal(got, np.asarray(expected))
    assert keys["b"] is None


def test_unwrap_random_key_data_matches_optax():
    tree = {"k": jax.random.key(1), "raw": jax.random.PRNGKey(2), "x": jnp.ones(2), "n": None}
    ours, theirs = gradtx.tree.unwrap_random_key_data(tree), optax.tree.unwrap_random_key_data(tree)
    _assert_trees(ours, theirs)
    np.testing.assert_array_equal(ours["k"], jax.random.key_data(tree["k"]))


# --------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda t: t.add({"a": 1.0}, {"b": 1.0}),
            r"gradtx\.tree\.add: tree_y must have the structure of tree_x; tree_x has a leaf at \['a'\] where tree_y has one at \['b'\]",
        ),
        (
            lambda t: t.add({"a": 1.0}, {"a": 1.0}, {"a": None}),
            r"gradtx\.tree\.add: other_trees\[0\] must have the structure of tree_x",
        ),
        (
            lambda t: t.sub((1.0, 2.0), (1.0,)),
            r"gradtx\.tree\.sub: tree_y must have the structure of tree_x; .*2 leaves and tree_y 1",
        ),
        (
            lambda t: t.where(True, {"a": jnp.ones(2)}, {"a": None}),
            r"gradtx\.tree\.where: .*at \['a'\], tree_x has float32\[2\] and tree_y has None",
        ),
        (
            lambda t: t.vdot((1.0, 2.0), [1.0, 2.0]),
            r"gradtx\.tree\.vdot: tree_y must have the structure of tree_x",
        ),
        (
            lambda t: t.allclose({"a": 1.0}, {"b": 1.0}),
            r"gradtx\.tree\.allclose: b must have the structure of a",
        ),
        (
            lambda t: t.norm({"a": 1.0}, 3),
            r"gradtx\.tree\.norm: ord must be one of None, 1, 2, inf, 'inf' or 'infinity', got 3",
        ),
        (
            lambda t: t.norm({"a": 1.0}, "fro"),
            r"gradtx\.tree\.norm: ord must be one of .*, got 'fro'",
        ),
        (
            lambda t: t.allclose({"a": 1.0}, {"a": 1.0}, rtol=-1.0),
            r"gradtx\.tree\.allclose: rtol must be in \[0, inf\), got -1\.0",
        ),
        (
            lambda t: t.allclose({"a": 1.0}, {"a": 1.0}, atol=np.nan),
            r"gradtx\.tree\.allclose: atol must be in \[0, inf\), got nan",
        ),
        (
            lambda t: t.batch_shape({"a": 1.0}, (2, -1)),
            r"gradtx\.tree\.batch_shape: shape must be a tuple of integers >= 0, got \(2, -1\)",
        ),
        (
            lambda t: t.batch_shape({"a": 1.0}, 3),
            r"gradtx\.tree\.batch_shape: shape must be a tuple of integers >= 0, got 3",
        ),
        (
            lambda t: t.split_key_like("seed", {"a": 1.0}),
            r"gradtx\.tree\.split_key_like: rng_key must be a PRNG key .*got str",
        ),
        (
            lambda t: t.cast_like({"a": 1.0}, {"b": jnp.ones(1)}),
            r"gradtx\.tree\.cast_like: other_tree must have the structure of tree",
        ),
    ],
)
def test_bad_input_names_the_function_argument_and_value(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call(gradtx.tree)


def test_structure_errors_are_tree_mismatch_errors_where_optax_raises():
    x, y = {"a": jnp.ones(2)}, {"a": jnp.ones(2), "b": jnp.ones(2)}
    with pytest.raises(ValueError):
        optax.tree.add(x, y)
    with pytest.raises(TreeMismatchError):
        gradtx.tree.add(x, y)
    # A prefix of the other tree is fine, as in jax.tree.map.
    out = gradtx.tree.allclose({"a": (1.0, 2.0)}, {"a": (1.0, 2.0)})
    assert bool(out)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradtx_functions_need_no_standard_promotion(dtype):
    """Under strict promotion (gradtx's test default), every function runs on trees of one
    dtype, and on the reductions' mixed float32, bfloat16 and int32 trees, with the values
    it gives under standard promotion."""
    x, y = _tree(dtype, 20), _tree(dtype, 21)
    mixed = {"f": _tree(jnp.float32, 22), "h": _tree(jnp.bfloat16, 23), "i": _tree(jnp.int32, 24)}
    t = gradtx.tree
    calls = [
        lambda: t.add(x, y, x),
        lambda: t.sub(x, y),
        lambda: t.mul(x, y),
        lambda: t.scale(2, x),
        lambda: t.add_scale(x, 2, y),
        lambda: t.where(True, x, y),
        lambda: t.vdot(x, y),
        lambda: t.sum(x),
        lambda: t.sum(mixed, True),
        lambda: t.norm(mixed),
        lambda: t.norm(mixed, 1, True),
        lambda: t.norm(x, "inf"),
        lambda: t.allclose(x, y),
        lambda: t.full_like(x, 2),
        lambda: t.batch_shape(x, (2,)),
        lambda: t.bias_correction(x, 0.9, jnp.asarray(2)) if dtype != jnp.int32 else x,
    ]
    if dtype != jnp.complex64:
        calls += [lambda: t.max(mixed), lambda: t.min(x), lambda: t.clip(x, -1, 1)]
    with jax.numpy_dtype_promotion("strict"):
        strict = [call() for call in calls]
    standard = [call() for call in calls]
    for ours, ref in zip(strict, standard):
        _assert_trees(ours, ref)
