"""Euclidean projections onto convex sets (and two spheres), under Optax's
``optax.projections`` names.

``gradtx.projections.<name>`` takes the arguments of ``optax.projections.<name>``, in the same
order and with the same keywords and defaults. Each returns the point of a set nearest to its
input in the Euclidean norm, ``argmin_{y in C} ||y - x||_2``, for a pytree ``x`` read as one
vector (all its elements together): a projected-gradient step is ``projection(params -
lr * grads)``.

Floating-point leaves keep their dtype; integer leaves become floating point where the
projection needs division (the box, cube and l-infinity projections clip them as they are).
Sums and norms accumulate in at least float32. ``None`` leaves are empty subtrees. A
concrete ``scale`` (or bound) outside its range raises ``HyperparameterError``; traced values
are not checked.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _tree
from ._tree_utils import _structure_difference, tree_norm, tree_vdot

__all__ = [
    "projection_box",
    "projection_halfspace",
    "projection_hypercube",
    "projection_hyperplane",
    "projection_l1_ball",
    "projection_l1_sphere",
    "projection_l2_ball",
    "projection_l2_sphere",
    "projection_linf_ball",
    "projection_non_negative",
    "projection_simplex",
    "projection_vector",
]


# --------------------------------------------------------------------------------------------
# Argument checks (concrete values only)


def _fn(name: str) -> str:
    return f"projections.{name}"


def _check_scalar(name: str, arg: str, value: Any) -> None:
    """A scale or offset must be one number: an array with several would broadcast against
    the leaves instead of defining one set."""
    shape = np.shape(value) if not hasattr(value, "shape") else value.shape
    if len(shape) != 0:
        raise _checks.HyperparameterError(
            f"gradtx.{_fn(name)}: {arg} must be a scalar, got an array of shape {tuple(shape)}"
        )


def _check_radius(name: str, value: Any, allow_inf: bool) -> None:
    """``scale`` in [0, inf) (spheres, simplex), or [0, inf] where an infinite radius is the
    whole space (balls, the hypercube)."""
    if not allow_inf:
        _checks.check_range(_fn(name), "scale", value, 0.0, math.inf)
        return
    for leaf in jax.tree.leaves(value):
        arr = _checks.concrete_values(leaf)
        if arr is not None and (np.any(np.isnan(arr)) or np.any(arr < 0)):
            raise _checks.HyperparameterError(
                f"gradtx.{_fn(name)}: scale must be in [0, inf], got {_checks._fmt(leaf)}"
            )


def _bound_leaves(name: str, arg: str, tree: Any, bound: Any) -> list[Any]:
    """``bound`` as one entry per leaf of ``tree``: a number or an array applies to every leaf,
    a tree must have ``tree``'s structure."""
    treedef = jax.tree.structure(tree)
    bound_def = jax.tree.structure(bound)
    if bound is not None and jax.tree_util.treedef_is_leaf(bound_def):
        return [bound] * treedef.num_leaves
    try:
        return treedef.flatten_up_to(bound)
    except (ValueError, TypeError):
        raise _checks.TreeMismatchError(
            f"gradtx.{_fn(name)}: {arg} must be a number, an array or a tree with the "
            f"structure of tree; {_structure_difference('tree', tree, arg, bound)}"
        ) from None


def _check_same_tree(name: str, x: Any, a: Any) -> None:
    diff = _checks.first_difference(x, a)
    if diff is not None:
        path, want, got = diff
        raise _checks.TreeMismatchError(
            f"gradtx.{_fn(name)}: a must have the structure and shapes of x; at {path} x has "
            f"{want} and a has {got}"
        )


# --------------------------------------------------------------------------------------------
# Leafwise helpers


def _float(x: Any) -> jax.Array:
    """``x`` as an array, integer and boolean leaves cast to the default float dtype."""
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return x
    return x.astype(_tree.float_dtype())


def _scale_leaves(factor: jax.Array, tree: Any) -> Any:
    """``factor * tree``, the scalar cast to each leaf's dtype (no leaf is promoted)."""

    def leaf(x):
        x = _float(x)
        return factor.astype(x.dtype) * x

    return jax.tree.map(leaf, tree)


def _axpy(x: Any, alpha: jax.Array, a: Any) -> Any:
    """``x + alpha * a`` leaf by leaf, in each leaf of ``x``'s dtype."""

    def leaf(xi, ai):
        xi = _float(xi)
        return xi + alpha.astype(xi.dtype) * jnp.asarray(ai).astype(xi.dtype)

    return jax.tree.map(leaf, x, a)


def _ravel(tree: Any) -> tuple[jax.Array, Any]:
    """Every element of ``tree`` as one vector (in the leaves' compute dtype, at least
    float32) and the function that puts a vector back into ``tree``'s shapes and dtypes."""
    floats = jax.tree.map(_float, tree)
    leaves = jax.tree.leaves(floats)
    dt = _tree.compute_dtype(*(x.dtype for x in leaves)) if leaves else _tree.float_dtype()
    return _tree.ravel(floats, dt), lambda vector: _tree.unravel(floats, vector)


def _simplex_threshold(v: jax.Array, s: jax.Array) -> jax.Array:
    """The threshold ``theta`` with ``sum_i max(v_i - theta, 0) = s`` (for ``s >= 0``).

    With ``u`` the entries of ``v`` sorted in decreasing order, ``theta = max_j (u_1 + ... +
    u_j - s) / j``: every term is at most ``theta`` (the first ``j`` entries exceed ``theta``
    by at most what they contribute to ``s``), and the term of ``j = rho``, the number of
    entries above ``theta``, equals it. This is the sorting method of Held, Wolfe & Crowder
    (1974) and Duchi et al. (2008), with the maximum in place of the search for ``rho``; its
    derivative is ``1 / rho`` on the ``rho`` largest entries.
    """
    u = -jnp.sort(-v)
    j = jnp.arange(1, v.shape[0] + 1, dtype=v.dtype)
    return jnp.max((jnp.cumsum(u) - s) / j)


# --------------------------------------------------------------------------------------------
# Orthant, box, cube, l-infinity ball


def projection_non_negative(tree: Any) -> Any:
    """Projection onto the non-negative orthant::

        argmin_{y >= 0} ||y - x||_2   =   max(x, 0)  elementwise

    Args:
      tree: the pytree ``x`` to project.

    Returns:
      A pytree with ``tree``'s structure, shapes and dtypes.

    Conventions:
      Optax's ``optax.projections.projection_non_negative`` with the same signature and values.
    """
    return jax.tree.map(jax.nn.relu, tree)


def projection_box(tree: Any, lower: Any, upper: Any) -> Any:
    """Projection onto a box::

        argmin_{lower <= y <= upper} ||y - x||_2   =   min(max(x, lower), upper)  elementwise

    Args:
      tree: the pytree ``x`` to project.
      lower: the lower bound: a number or an array (broadcast against every leaf), or a tree
        with ``tree``'s structure whose leaves broadcast against ``tree``'s. ``-inf`` leaves a
        side open.
      upper: the upper bound, in the same forms; ``lower <= upper`` wherever both are concrete.

    Returns:
      A pytree with ``tree``'s structure. Floating-point leaves keep their dtype (the bounds are
      cast to it); integer leaves take the dtype JAX promotes them and the bounds to.

    Raises:
      HyperparameterError: where a concrete ``lower`` exceeds a concrete ``upper``.
      TreeMismatchError: when a tree bound does not have ``tree``'s structure.

    Conventions:
      Optax's ``optax.projections.projection_box`` with the same signature and values. Optax
      maps over ``tree`` and the bounds together, so a number as bound works only when ``tree``
      is a single array; here it applies to every leaf of any tree.
    """
    name = "projection_box"
    leaves, treedef = jax.tree.flatten(tree)
    lowers = _bound_leaves(name, "lower", tree, lower)
    uppers = _bound_leaves(name, "upper", tree, upper)
    paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    out = []
    for path, x, lo, hi in zip(paths, leaves, lowers, uppers):
        lo_c, hi_c = _checks.concrete_values(lo), _checks.concrete_values(hi)
        if lo_c is not None and hi_c is not None and np.any(lo_c > hi_c):
            at = "" if not path else f" at {_checks.path_str(path)}"
            raise _checks.HyperparameterError(
                f"gradtx.{_fn(name)}: lower must be <= upper{at}, got lower="
                f"{_checks._fmt(lo)} and upper={_checks._fmt(hi)}"
            )
        x = jnp.asarray(x)
        if jnp.issubdtype(x.dtype, jnp.inexact):
            dt = x.dtype
        else:
            dt = _tree.promote(x.dtype, jnp.result_type(lo), jnp.result_type(hi))
        out.append(jnp.clip(x.astype(dt), jnp.asarray(lo).astype(dt), jnp.asarray(hi).astype(dt)))
    return jax.tree.unflatten(treedef, out)


def projection_hypercube(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the hypercube ``[0, scale]^n``::

        argmin_{0 <= y <= scale} ||y - x||_2   =   min(max(x, 0), scale)  elementwise

    Args:
      tree: the pytree ``x`` to project.
      scale: the side of the cube, >= 0: a number or an array (for every leaf), or a tree with
        ``tree``'s structure (default 1, the unit cube). ``inf`` gives the orthant.

    Returns:
      A pytree with ``tree``'s structure, as ``projection_box(tree, 0, scale)``.

    Raises:
      HyperparameterError: for a concrete negative or NaN ``scale``.

    Conventions:
      Optax's ``optax.projections.projection_hypercube`` with the same signature and values;
      a number as ``scale`` works for any tree (Optax's only for a single array).
    """
    _check_radius("projection_hypercube", scale, allow_inf=True)
    return projection_box(tree, 0, scale)


def projection_linf_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l-infinity ball of radius ``scale``::

        argmin_{||y||_inf <= scale} ||y - x||_2   =   min(max(x, -scale), scale)  elementwise

    Args:
      tree: the pytree ``x`` to project.
      scale: the radius, >= 0 (default 1); an array broadcastable to every leaf gives a radius
        per element. ``inf`` gives ``x``.

    Returns:
      A pytree with ``tree``'s structure, shapes and dtypes (the radius is cast to each leaf's
      dtype, integer leaves included).

    Raises:
      HyperparameterError: for a concrete negative or NaN ``scale``.

    Conventions:
      Optax's ``optax.projections.projection_linf_ball`` with the same signature and values.
    """
    _check_radius("projection_linf_ball", scale, allow_inf=True)

    def leaf(x):
        x = jnp.asarray(x)
        s = jnp.broadcast_to(jnp.asarray(scale).astype(x.dtype), x.shape)
        return jnp.clip(x, -s, s)

    return jax.tree.map(leaf, tree)


# --------------------------------------------------------------------------------------------
# Simplex, l1 ball and sphere


def projection_simplex(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the simplex of sum ``scale``, all of ``tree``'s elements as one vector::

        argmin_{y >= 0, sum_i y_i = scale} ||y - x||_2   =   max(x - theta, 0)

    where ``theta`` solves ``sum_i max(x_i - theta, 0) = scale``: with ``u`` the elements
    sorted in decreasing order, ``theta = max_j (u_1 + ... + u_j - scale) / j`` (Held, Wolfe
    & Crowder 1974; Duchi et al. 2008, "Efficient projections onto the l1-ball for learning
    in high dimensions"). One sort of all the elements, O(n log n).

    Args:
      tree: the pytree ``x`` to project (its leaves are concatenated into one vector).
      scale: the sum of the result, a scalar >= 0 (default 1, the probability simplex).

    Returns:
      A pytree with ``tree``'s structure: non-negative, its elements summing to ``scale``.

    Raises:
      HyperparameterError: for a concrete negative, infinite or NaN ``scale``, or a ``scale``
        that is not a scalar.

    Conventions:
      Optax's ``optax.projections.projection_simplex`` with the same signature and values up to
      rounding. ``scale=0`` gives zeros (Optax divides by ``scale`` and returns NaN). The
      derivative is the one of the formula above (Optax defines the same one by hand).
    """
    name = "projection_simplex"
    _check_scalar(name, "scale", scale)
    _check_radius(name, scale, allow_inf=False)
    v, unravel = _ravel(tree)
    if v.shape[0] == 0:
        return tree
    s = jnp.asarray(scale).astype(v.dtype)
    theta = _simplex_threshold(v, s)
    return unravel(jnp.maximum(v - theta, 0))


def _l1_projection(tree: Any, scale: Any, ball: bool) -> Any:
    v, unravel = _ravel(tree)
    if v.shape[0] == 0:
        return tree
    s = jnp.asarray(scale).astype(v.dtype)
    mag = jnp.abs(v)
    theta = _simplex_threshold(mag, s)
    # A zero element takes the + side: both signs are equally near, and the sphere may need
    # it to grow.
    sign = jnp.where(v < 0, -1, 1).astype(v.dtype)
    y = sign * jnp.maximum(mag - theta, 0)
    if ball:
        y = jnp.where(theta > 0, y, v)  # inside the ball: x itself
    return unravel(y)


def projection_l1_sphere(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l1 sphere of radius ``scale``, all elements as one vector::

        argmin_{||y||_1 = scale} ||y - x||_2   =   s * max(|x| - theta, 0)

    where ``max(|x| - theta, 0)`` is the simplex projection of ``|x|`` (``theta`` solves
    ``sum_i max(|x_i| - theta, 0) = scale``; it is negative when ``||x||_1 < scale``) and
    ``s_i = sign(x_i)``, ``+1`` where ``x_i = 0``.

    Args:
      tree: the pytree ``x`` to project.
      scale: the radius, a scalar >= 0 (default 1).

    Returns:
      A pytree with ``tree``'s structure whose elements' absolute values sum to ``scale``.

    Raises:
      HyperparameterError: for a concrete negative, infinite or NaN ``scale``, or a ``scale``
        that is not a scalar.

    Conventions:
      Optax's ``optax.projections.projection_l1_sphere`` with the same signature and values up
      to rounding, except where ``x`` has zero elements and ``||x||_1 < scale``: Optax
      multiplies by ``sign(0) = 0``, so those elements stay 0 and its result is not on the
      sphere; here they take a positive value and the result is a nearest point of the sphere.
      ``scale=0`` gives zeros (Optax returns NaN).
    """
    name = "projection_l1_sphere"
    _check_scalar(name, "scale", scale)
    _check_radius(name, scale, allow_inf=False)
    return _l1_projection(tree, scale, ball=False)


def projection_l1_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l1 ball of radius ``scale``, all elements as one vector::

        argmin_{||y||_1 <= scale} ||y - x||_2
            =  x                               if ||x||_1 <= scale
            =  sign(x) * max(|x| - theta, 0)   otherwise

    where ``theta > 0`` solves ``sum_i max(|x_i| - theta, 0) = scale`` (soft thresholding at
    the level found by the simplex projection of ``|x|``; Duchi et al. 2008).

    Args:
      tree: the pytree ``x`` to project.
      scale: the radius, a scalar >= 0 (default 1); ``inf`` gives ``x``.

    Returns:
      A pytree with ``tree``'s structure.

    Raises:
      HyperparameterError: for a concrete negative or NaN ``scale``, or a ``scale`` that is not
        a scalar.

    Conventions:
      Optax's ``optax.projections.projection_l1_ball`` with the same signature and values up to
      rounding; ``scale=0`` gives zeros (Optax returns NaN). Both branches are computed and one
      selected (no ``lax.cond``), so it costs the same under ``vmap`` and ``jit``.
    """
    name = "projection_l1_ball"
    _check_scalar(name, "scale", scale)
    _check_radius(name, scale, allow_inf=True)
    return _l1_projection(tree, scale, ball=True)


# --------------------------------------------------------------------------------------------
# l2 ball and sphere


def _scale_dtype(tree: Any) -> Any:
    leaves = [_float(x) for x in jax.tree.leaves(tree)]
    real = [_tree.real_dtype(x.dtype) for x in leaves]
    return _tree.compute_dtype(*real) if leaves else _tree.float_dtype()


def projection_l2_sphere(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l2 sphere of radius ``scale``, all elements as one vector::

        argmin_{||y||_2 = scale} ||y - x||_2   =   scale * x / ||x||_2

    Args:
      tree: the pytree ``x`` to project; every point of the sphere is nearest to ``x = 0``,
        which gives NaN.
      scale: the radius, a scalar >= 0 (default 1).

    Returns:
      A pytree with ``tree``'s structure.

    Raises:
      HyperparameterError: for a concrete negative, infinite or NaN ``scale``, or a ``scale``
        that is not a scalar.

    Conventions:
      Optax's ``optax.projections.projection_l2_sphere`` with the same signature and values
      (NaN for ``x = 0`` too).
    """
    name = "projection_l2_sphere"
    _check_scalar(name, "scale", scale)
    _check_radius(name, scale, allow_inf=False)
    dt = _scale_dtype(tree)
    factor = jnp.asarray(scale).astype(dt) / tree_norm(tree).astype(dt)
    return _scale_leaves(factor, tree)


def projection_l2_ball(tree: Any, scale: Any = 1) -> Any:
    """Projection onto the l2 ball of radius ``scale``, all elements as one vector::

        argmin_{||y||_2 <= scale} ||y - x||_2   =   x * min(1, scale / ||x||_2)

    Args:
      tree: the pytree ``x`` to project.
      scale: the radius, a scalar >= 0 (default 1); ``inf`` gives ``x``.

    Returns:
      A pytree with ``tree``'s structure.

    Raises:
      HyperparameterError: for a concrete negative or NaN ``scale``, or a ``scale`` that is not
        a scalar.

    Conventions:
      Optax's ``optax.projections.projection_l2_ball`` with the same signature and values;
      ``x = 0`` with ``scale = 0`` gives zeros (Optax: NaN).
    """
    name = "projection_l2_ball"
    _check_scalar(name, "scale", scale)
    _check_radius(name, scale, allow_inf=True)
    dt = _scale_dtype(tree)
    s = jnp.asarray(scale).astype(dt)
    squared = tree_norm(tree, squared=True).astype(dt)
    inside = squared <= s * s
    # The quotient is taken only outside the ball, so no 0/0 reaches the value or its gradient.
    factor = jnp.where(inside, 1, s / jnp.sqrt(jnp.where(inside, 1, squared))).astype(dt)
    return _scale_leaves(factor, tree)


# --------------------------------------------------------------------------------------------
# Line, hyperplane, halfspace


def _coefficient(name: str, x: Any, a: Any, b: Any) -> jax.Array:
    """``(b - <a, x>) / <a, a>``; ``b=None`` for ``<a, x> / <a, a>``."""
    _check_same_tree(name, x, a)
    ax = tree_vdot(a, x)
    aa = tree_vdot(a, a)
    dt = jnp.result_type(ax)
    if not jnp.issubdtype(dt, jnp.inexact):
        dt = _tree.float_dtype()
    ax, aa = ax.astype(dt), aa.astype(dt)
    if b is None:
        return ax / aa
    _check_scalar(name, "b", b)
    return (jnp.asarray(b).astype(dt) - ax) / aa


def projection_vector(x: Any, a: Any) -> Any:
    """Projection onto the line spanned by ``a``::

        argmin_{y = t a, t scalar} ||y - x||_2   =   (<a, x> / <a, a>) a

    with ``<a, x>`` the inner product of all elements of the trees (``a`` conjugated when
    complex).

    Args:
      x: the pytree to project.
      a: a nonzero pytree with ``x``'s structure and shapes, the direction of the line
        (``a = 0`` gives NaN).

    Returns:
      A pytree with ``a``'s structure, in ``a``'s leaf dtypes.

    Raises:
      TreeMismatchError: when ``a`` does not have ``x``'s structure and shapes.

    Conventions:
      Optax's ``optax.projections.projection_vector`` with the same signature and values for
      real trees. For complex ones Optax's coefficient is ``<x, a> / <a, a>``, the conjugate of
      the projection's; here it is ``<a, x> / <a, a>``.
    """
    t = _coefficient("projection_vector", x, a, None)
    return _scale_leaves(t, a)


def projection_hyperplane(x: Any, a: Any, b: Any) -> Any:
    """Projection onto the hyperplane ``{y : <a, y> = b}``::

        argmin_{<a, y> = b} ||y - x||_2   =   x + ((b - <a, x>) / <a, a>) a

    Args:
      x: the pytree to project.
      a: the hyperplane's normal, a nonzero pytree with ``x``'s structure and shapes
        (``a = 0`` gives NaN).
      b: the offset, a scalar.

    Returns:
      A pytree with ``x``'s structure, in ``x``'s leaf dtypes.

    Raises:
      HyperparameterError: when ``b`` is not a scalar.
      TreeMismatchError: when ``a`` does not have ``x``'s structure and shapes.

    Conventions:
      Optax's ``optax.projections.projection_hyperplane`` with the same signature and values
      for real trees (for complex ones, ``<a, x>`` conjugates ``a`` as above).
    """
    t = _coefficient("projection_hyperplane", x, a, b)
    return _axpy(x, t, a)


def projection_halfspace(x: Any, a: Any, b: Any) -> Any:
    """Projection onto the halfspace ``{y : <a, y> <= b}``::

        argmin_{<a, y> <= b} ||y - x||_2   =   x + min(0, (b - <a, x>) / <a, a>) a

    (``x`` itself when it satisfies the constraint, else its projection onto the boundary
    hyperplane).

    Args:
      x: the pytree to project (real leaves).
      a: the halfspace's normal, a nonzero pytree with ``x``'s structure and shapes
        (``a = 0`` gives NaN).
      b: the offset, a real scalar.

    Returns:
      A pytree with ``x``'s structure, in ``x``'s leaf dtypes.

    Raises:
      HyperparameterError: when ``b`` is not a scalar.
      TreeMismatchError: when ``a`` does not have ``x``'s structure and shapes.

    Conventions:
      Optax's ``optax.projections.projection_halfspace`` with the same signature and values.
    """
    t = _coefficient("projection_halfspace", x, a, b)
    return _axpy(x, jnp.minimum(t, 0), a)
