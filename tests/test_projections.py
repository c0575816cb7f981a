"""``gradtx.projections`` against Optax's ``optax.projections`` (0.2.8) and NumPy.

Every function has Optax's signature and gives Optax's numbers on random arrays and pytrees
(float32, and float64 under ``jax.enable_x64``). The nontrivial projections are also checked
against formulas written here in NumPy (float64) and against the optimality condition of a
Euclidean projection onto a convex set C: ``y = P_C(x)`` is feasible and
``<x - y, z - y> <= 0`` for every ``z`` in C (for the two spheres, which are not convex: no
sampled point of the sphere is nearer to ``x``). Then jit and vmap against eager, and the
errors for bad arguments.

Tolerances: each projection computes at most two sums of ``n`` terms (a cumulative sum, an
inner product, a squared norm) and a few operations per element after them. A floating-point
sum of ``n`` terms is within ``(n - 1) * eps / 2 * sum |terms|`` of the exact one (Higham,
*Accuracy and Stability of Numerical Algorithms*, 4.2), so two implementations of the same
formula agree to ``n * eps * M`` per element, ``M`` the largest magnitude among the inputs,
the outputs and the scale.
"""

from __future__ import annotations

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax.projections
import pytest

import gradtx
from gradtx import HyperparameterError, TreeMismatchError

G = gradtx.projections
NAMES = sorted(n for n in dir(optax.projections) if n.startswith("projection_"))
RADIUS = [
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_simplex",
]


# --------------------------------------------------------------------------------------------
# Inputs


def _leaves_of(shape_tree, rng, dtype, scale=1.0):
    return jax.tree.map(
        lambda s: jnp.asarray(scale * rng.standard_normal(s), dtype),
        shape_tree,
        is_leaf=lambda s: isinstance(s, tuple),
    )


# One array and one tree (nested, with a scalar leaf and a None).
SHAPES = {
    "array": (9,),
    "tree": {"w": (2, 3), "b": (3,), "s": (), "n": None, "t": [(3,)]},
}


def _x(kind, dtype, seed=0):
    return _leaves_of(SHAPES[kind], np.random.default_rng(seed), dtype)


def _size(tree):
    return sum(int(np.size(v)) for v in jax.tree.leaves(tree))


def _settings(name, xs, dtype, rng):
    """The arguments after ``x`` for each of the trees ``xs``, chosen to reach every branch:
    inside and outside a ball, an l1 sphere that grows and one that shrinks, a halfspace that
    holds x and one that does not."""
    k = len(xs)
    l1 = [sum(float(np.abs(np.asarray(v, np.float64)).sum()) for v in jax.tree.leaves(x))
          for x in xs]  # fmt: skip
    l2 = [np.sqrt(sum(float((np.asarray(v, np.float64) ** 2).sum()) for v in jax.tree.leaves(x)))
          for x in xs]  # fmt: skip
    full = _full
    if name in ("projection_simplex", "projection_l1_ball", "projection_l1_sphere"):
        return [(0.3 * l1[0],), (2.0 * l1[1],), (1.0,)][:k]
    if name in ("projection_l2_ball", "projection_l2_sphere"):
        return [(0.5 * l2[0],), (2.0 * l2[1],), (1.0,)][:k]
    if name == "projection_linf_ball":
        return [(0.4,), (1.0,), (0.7,)][:k]
    if name == "projection_non_negative":
        return [()] * k
    if name == "projection_hypercube":
        return [(full(x, side),) for x, side in zip(xs, (0.3, 0.6, 1.0))]
    if name == "projection_box":
        return [
            (
                full(x, -0.5),
                jax.tree.map(lambda v: jnp.asarray(rng.uniform(0.1, 1.0, np.shape(v)), dtype), x),
            )
            for x in xs
        ]
    out = []
    for i, x in enumerate(xs):
        a = _leaves_of(jax.tree.map(np.shape, x), rng, dtype)
        if name == "projection_vector":
            out.append((a,))
            continue
        ax = sum(float(np.vdot(np.asarray(u, np.float64), np.asarray(v, np.float64)))
                 for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(x)))  # fmt: skip
        out.append((a, ax + (1.0 if i % 2 else -1.0)))
    return out


# Stacking and slicing on the host: eager JAX would compile a program per leaf shape.
def _stack(*trees):
    return jax.tree.map(lambda *v: jnp.asarray(np.stack([np.asarray(u) for u in v])), *trees)


def _unstack(tree, k):
    tree = jax.tree.map(np.asarray, tree)
    return [jax.tree.map(lambda v: v[i], tree) for i in range(k)]


def _full(tree, value):
    return jax.tree.map(lambda v: jnp.asarray(np.full(np.shape(v), value), v.dtype), tree)


def _magnitude(*trees):
    m = 0.0
    for t in trees:
        for v in jax.tree.leaves(t):
            if np.size(v):
                m = max(m, float(np.max(np.abs(np.asarray(v, np.float64)))))
    return m


def _assert_close(got, want, n, eps, magnitude):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    atol = n * eps * magnitude
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=0, atol=atol)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Names and signatures


def test_the_names_are_optaxs():
    assert len(NAMES) == 12
    assert sorted(G.__all__) == NAMES
    assert gradtx.projections is G and "gradtx.projections" in gradtx.__doc__


@pytest.mark.parametrize("name", NAMES)
def test_signature_is_optaxs(name):
    theirs = inspect.signature(getattr(optax.projections, name)).parameters
    ours = inspect.signature(getattr(G, name)).parameters
    assert list(ours) == list(theirs)
    for key, p in theirs.items():
        q = ours[key]
        assert q.kind == p.kind, (name, key)
        assert type(q.default) is type(p.default) and q.default == p.default, (name, key)
    doc = getattr(G, name).__doc__
    assert f"``optax.projections.{name}`` with the same signature" in doc
    assert "Args:" in doc and "Conventions:" in doc


# --------------------------------------------------------------------------------------------
# Optax's numbers


def _optax(name, x, *args):
    """Optax's projection; its hypercube maps its bounds along the tree (a number fails for
    a tree), so for trees the expected cube is Optax's box with a tree of zeros."""
    if name == "projection_hypercube":
        return optax.projections.projection_box(x, jax.tree.map(jnp.zeros_like, x), *args)
    return getattr(optax.projections, name)(x, *args)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_values_are_optaxs_under_jit_and_vmap(name, dtype, request):
    """Three trees and three settings, through ``jit(vmap(.))`` in both libraries (traced
    under standard promotion, which Optax needs); in float32 gradtx's eager calls, under the
    suite's strict promotion, give the same numbers."""
    if dtype == "float64":
        request.getfixturevalue("x64")
    dt = jnp.dtype(dtype)
    eps = float(jnp.finfo(dt).eps)
    rng = np.random.default_rng(1)
    xs = [_x("tree", dt, seed) for seed in (0, 1, 2)]
    settings = _settings(name, xs, dt, rng)
    batch = (_stack(*xs), *[_stack(*column) for column in zip(*settings)])
    both = lambda *a: (getattr(G, name)(*a), _optax(name, *a))  # one program, one compile
    with jax.numpy_dtype_promotion("standard"):  # Optax's arithmetic mixes dtypes
        got, want = (_unstack(t, 3) for t in jax.jit(jax.vmap(both))(*batch))
    n = _size(xs[0])
    for x, args, g, w in zip(xs, settings, got, want):
        assert all(v.dtype == dt for v in jax.tree.leaves(g)), name
        m = _magnitude(x, w, *[v for v in args if np.ndim(v) == 0])
        _assert_close(g, w, n, eps, m)
        if dtype == "float32":
            _assert_close(getattr(G, name)(x, *args), g, n, eps, m)


def test_number_bounds_are_optaxs_for_arrays_and_apply_to_every_leaf(standard_promotion):
    """A number as bound: Optax takes it for an array; gradtx for any tree, as the tree of
    that number."""
    P = optax.projections

    def both(x, tree):
        full = functools.partial(_full, tree)
        return [
            (G.projection_box(x, -0.5, 0.7), P.projection_box(x, -0.5, 0.7)),
            (
                G.projection_box(x, lower=-0.5, upper=0.7),
                P.projection_box(x, lower=-0.5, upper=0.7),
            ),
            (G.projection_hypercube(x), P.projection_hypercube(x)),
            (G.projection_hypercube(x, scale=0.6), P.projection_hypercube(x, scale=0.6)),
            (G.projection_box(tree, -0.5, 0.7), P.projection_box(tree, full(-0.5), full(0.7))),
            (G.projection_hypercube(tree, 0.6), P.projection_box(tree, full(0.0), full(0.6))),
            (G.projection_linf_ball(tree), P.projection_linf_ball(tree)),
        ]

    for got, want in jax.jit(both)(_x("array", jnp.float32), _x("tree", jnp.float32)):
        _assert_close(got, want, 1, 0.0, 0.0)  # clipping rounds nothing


def test_simplex_derivative_is_optaxs(standard_promotion):
    x = _x("tree", jnp.float32, seed=3)
    t = _x("tree", jnp.float32, seed=4)
    jvp = lambda f, v, dv: jax.jvp(f, (v,), (dv,))[1]
    both = lambda v, dv: [
        jvp(f, v, dv) for f in (G.projection_simplex, optax.projections.projection_simplex)
    ]
    got, want = jax.jit(both)(x, t)
    _assert_close(got, want, _size(x), 1.2e-7, _magnitude(t))


# --------------------------------------------------------------------------------------------
# NumPy references and optimality (float64)


def _np_simplex(v, s):
    """Held, Wolfe & Crowder: sort decreasingly, rho = max{j : u_j > (u_1 + ... + u_j - s) / j},
    theta = (u_1 + ... + u_rho - s) / rho."""
    if s == 0:
        return np.zeros_like(v)
    u = np.sort(v)[::-1]
    css = np.cumsum(u)
    j = np.arange(1, v.size + 1)
    rho = np.nonzero(u - (css - s) / j > 0)[0][-1] + 1
    return np.maximum(v - (css[rho - 1] - s) / rho, 0.0)


def _np_threshold(mag, s):
    """theta with sum(max(mag - theta, 0)) = s, by bisection (independent of the sort)."""
    lo, hi = -s - 1.0, float(mag.max())
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.maximum(mag - mid, 0).sum() > s else (lo, mid)
    return 0.5 * (lo + hi)


def _np_l1_ball(v, s):
    if np.abs(v).sum() <= s:
        return v
    return np.sign(v) * np.maximum(np.abs(v) - _np_threshold(np.abs(v), s), 0)


def _np_l1_sphere(v, s):
    sign = np.where(v < 0, -1.0, 1.0)
    return sign * np.maximum(np.abs(v) - _np_threshold(np.abs(v), s), 0)


def _flat(tree):
    return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


def _unflat(vec, like):
    leaves, treedef = jax.tree.flatten(like)
    out, i = [], 0
    for v in leaves:
        out.append(vec[i : i + np.size(v)].reshape(np.shape(v)))
        i += np.size(v)
    return jax.tree.unflatten(treedef, out)


def _ball_points(rng, n, s, norm, count):
    """Random points of the l1 or l2 ball of radius s (on and inside it)."""
    z = rng.standard_normal((count, n))
    z /= np.linalg.norm(z, ord=norm, axis=1, keepdims=True)
    return z * s * rng.uniform(0.0, 1.0, (count, 1)) ** (1.0 / n)


def _variational(x, y, zs, tol):
    """<x - y, z - y> <= tol for every row z."""
    worst = float(np.max((zs - y) @ (x - y)))
    assert worst <= tol, worst


CONVEX = ["projection_simplex", "projection_l1_ball", "projection_l2_ball"]


@pytest.mark.parametrize("name", [*CONVEX, "projection_l1_sphere", "projection_l2_sphere"])
def test_radius_projections_are_numpys_and_optimal(name, x64):
    rng = np.random.default_rng(5)
    eps = float(np.finfo(np.float64).eps)
    x_tree = _x("tree", jnp.float64, seed=6)
    x = _flat(x_tree)
    n = x.size
    l1, l2 = np.abs(x).sum(), np.linalg.norm(x)
    radius = l1 if "l1" in name or "simplex" in name else l2
    scales = [0.3 * radius, 1.0, 2.0 * radius, 0.0]
    batched = jax.jit(jax.vmap(getattr(G, name), (None, 0)))(x_tree, jnp.asarray(scales))
    for s, y_tree in zip(scales, _unstack(batched, len(scales))):
        tol = n * eps * max(np.abs(x).max(), s) ** 2
        y = _flat(y_tree)
        if name == "projection_simplex":
            want = _np_simplex(x, s)
            assert y.min() >= 0 and abs(y.sum() - s) <= n * eps * s
            vertices = s * np.eye(n)
            zs = np.concatenate([vertices, s * rng.dirichlet(np.ones(n), 64)])
            _variational(x, y, zs, tol)
        elif name == "projection_l1_ball":
            want = _np_l1_ball(x, s)
            assert np.abs(y).sum() <= s * (1 + n * eps)
            vertices = s * np.concatenate([np.eye(n), -np.eye(n)])  # the ball's extreme points
            _variational(x, y, np.concatenate([vertices, _ball_points(rng, n, s, 1, 64)]), tol)
        elif name == "projection_l2_ball":
            want = x * min(1.0, s / l2)
            assert np.linalg.norm(y) <= s * (1 + n * eps)
            dirs = x - y
            nearest = s * dirs / np.linalg.norm(dirs) if np.any(dirs) else np.zeros((0, n))
            zs = np.concatenate([np.reshape(nearest, (-1, n)), _ball_points(rng, n, s, 2, 64)])
            _variational(x, y, zs, tol)
        elif name == "projection_l1_sphere":
            want = _np_l1_sphere(x, s)
            assert abs(np.abs(y).sum() - s) <= n * eps * max(s, l1)
            # Nearer than any sampled point of the sphere; optimal on x's orthant face of it
            # (a convex set).
            zs = rng.choice([-1.0, 1.0], (256, n)) * s * rng.dirichlet(np.ones(n), 256)
            assert np.linalg.norm(x - y) <= np.linalg.norm(x - zs, axis=1).min()
            face = np.where(x < 0, -1.0, 1.0) * s * rng.dirichlet(np.ones(n), 64)
            _variational(x, y, np.concatenate([face, np.where(x < 0, -s, s) * np.eye(n)]), tol)
        else:
            want = s * x / l2
            assert abs(np.linalg.norm(y) - s) <= n * eps * s
            zs = rng.standard_normal((256, n))
            zs *= s / np.linalg.norm(zs, axis=1, keepdims=True)
            assert np.linalg.norm(x - y) <= np.linalg.norm(x - zs, axis=1).min()
        _assert_close(y_tree, _unflat(want, x_tree), n, eps, max(np.abs(x).max(), s))


def test_l1_sphere_puts_zero_elements_on_the_sphere(x64, standard_promotion):
    """Where x has zeros and ||x||_1 < scale, the zeros take a value too: Optax multiplies
    them by sign(0) = 0 and its point is off the sphere."""
    x = np.array([0.0, 0.0, 0.1, -0.2, 0.0])
    both = lambda v: [
        f(v, 1.0) for f in (G.projection_l1_sphere, optax.projections.projection_l1_sphere)
    ]
    y, theirs = (np.asarray(v) for v in jax.jit(both)(jnp.asarray(x)))
    _assert_close(y, _np_l1_sphere(x, 1.0), x.size, float(np.finfo(np.float64).eps), 1.0)
    assert abs(np.abs(y).sum() - 1.0) <= x.size * float(np.finfo(np.float64).eps)
    assert np.abs(theirs).sum() < 0.9


@pytest.mark.parametrize("name", ["projection_hyperplane", "projection_halfspace"])
def test_affine_projections_are_numpys_and_optimal(name, x64):
    rng = np.random.default_rng(8)
    eps = float(np.finfo(np.float64).eps)
    x_tree = _x("tree", jnp.float64, seed=9)
    a_tree = _x("tree", jnp.float64, seed=10)
    x, a = _flat(x_tree), _flat(a_tree)
    n = x.size
    offsets = [a @ x - 1.5, a @ x + 1.5]
    batched = jax.jit(jax.vmap(getattr(G, name), (None, None, 0)))(
        x_tree, a_tree, jnp.asarray(offsets)
    )
    for b, y_tree in zip(offsets, _unstack(batched, 2)):
        y = _flat(y_tree)
        t = (b - a @ x) / (a @ a)
        want = x + (t if name == "projection_hyperplane" else min(t, 0.0)) * a
        m = max(np.abs(x).max(), np.abs(want).max(), abs(b) / np.linalg.norm(a))
        _assert_close(y_tree, _unflat(want, x_tree), n, eps, m)
        tol = n * eps * m * m * 4
        zs = rng.standard_normal((64, n)) * 3
        if name == "projection_hyperplane":
            assert abs(a @ y - b) <= n * eps * np.abs(a).max() * m * n
            zs += np.outer((b - zs @ a) / (a @ a), a)  # onto the plane
            assert float(np.max(np.abs((zs - y) @ (x - y)))) <= tol  # = 0 on an affine set
        else:
            assert a @ y - b <= n * eps * np.abs(a).max() * m * n
            over = np.maximum(zs @ a - b, 0)
            zs -= np.outer(2 * over / (a @ a), a)  # reflected into the halfspace
            _variational(x, y, zs, tol)


def test_vector_projection_is_numpys_for_complex_trees():
    rng = np.random.default_rng(11)
    x = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    a = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    want = np.vdot(a, x) / np.vdot(a, a) * a  # np.vdot conjugates its first argument
    got = G.projection_vector(jnp.asarray(x, jnp.complex64), jnp.asarray(a, jnp.complex64))
    assert got.dtype == jnp.complex64
    np.testing.assert_allclose(got, want, rtol=0, atol=6 * 1.2e-7 * 4 * np.abs(want).max())
    residual = x - np.asarray(got, np.complex128)
    assert abs(np.vdot(a, residual)) <= 6 * 1.2e-7 * 4 * np.linalg.norm(a) * np.linalg.norm(x)


# --------------------------------------------------------------------------------------------
# Bad arguments


@pytest.mark.parametrize("name", RADIUS)
def test_negative_scale_is_refused(name):
    x = _x("array", jnp.float32)
    closed = (
        "]" if name in ("projection_l1_ball", "projection_l2_ball", "projection_linf_ball") else ")"
    )
    with pytest.raises(HyperparameterError) as err:
        getattr(G, name)(x, -1.0)
    assert str(err.value) == (
        f"gradtx.projections.{name}: scale must be in [0, inf{closed}, got -1.0"
    )
    with pytest.raises(HyperparameterError, match="scale must be in"):
        getattr(G, name)(x, jnp.float32(np.nan))


def test_other_bad_arguments_are_refused():
    x = _x("array", jnp.float32)
    tree = _x("tree", jnp.float32)
    with pytest.raises(HyperparameterError, match=r"projection_simplex: scale must be a scalar"):
        G.projection_simplex(x, jnp.ones(9))
    with pytest.raises(HyperparameterError, match=r"projection_l2_sphere: scale must be in"):
        G.projection_l2_sphere(x, np.inf)
    with pytest.raises(
        HyperparameterError,
        match=r"^gradtx\.projections\.projection_box: lower must be <= upper, got lower=1\.0 "
        r"and upper=0\.5$",
    ):
        G.projection_box(x, 1.0, 0.5)
    lo = _full(tree, 0.0)
    lo["b"] = jnp.asarray(np.full(3, 2.0), jnp.float32)
    with pytest.raises(HyperparameterError, match=r"lower must be <= upper at \['b'\]"):
        G.projection_box(tree, lo, 1.0)
    with pytest.raises(TreeMismatchError, match=r"projection_box: upper must be a number"):
        G.projection_box(tree, 0.0, {"w": 1.0})
    with pytest.raises(HyperparameterError, match=r"projection_hypercube: scale must be in"):
        G.projection_hypercube(x, -0.5)
    with pytest.raises(TreeMismatchError, match=r"projection_hyperplane: a must have the"):
        G.projection_hyperplane(tree, {"w": tree["w"]}, 0.0)
    with pytest.raises(TreeMismatchError, match=r"projection_vector: a must have the"):
        G.projection_vector(x, x[:3])
    with pytest.raises(HyperparameterError, match=r"projection_halfspace: b must be a scalar"):
        G.projection_halfspace(x, x, jnp.ones(2))
    # A traced scale is not checked (whoever made it concrete checks it).
    jax.jit(G.projection_l2_ball)(x, jnp.float32(-1.0))


def test_infinite_radii_and_zero_vectors():
    """An infinite radius is the whole space for the balls and the orthant for the cube; the
    ball of radius 0 holds only 0, which is its own projection."""
    balls = ("projection_l1_ball", "projection_l2_ball", "projection_linf_ball")
    zero_scale = ("projection_l1_ball", "projection_l2_ball", "projection_simplex")

    def run(x):
        zero = jnp.zeros_like(x)
        return (
            [getattr(G, name)(x, np.inf) for name in balls],
            G.projection_hypercube(x, np.inf),
            G.projection_non_negative(x),
            [getattr(G, name)(zero, 0.0) for name in zero_scale],
        )

    x = _x("array", jnp.float32)
    whole, cube, orthant, zeros = jax.jit(run)(x)
    assert all(np.array_equal(y, x) for y in whole)
    assert np.array_equal(cube, orthant)
    assert all(np.array_equal(y, np.zeros(9)) for y in zeros)
