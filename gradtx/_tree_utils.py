"""Arithmetic, reductions, dtypes and random numbers over whole pytrees: the functions behind
``gradtx.tree`` and ``gradtx.tree_utils`` that gradtx had no public form of before.

Every function here takes and returns pytrees of arrays with ``None`` leaves as empty subtrees
(they pass through maps and count for nothing in reductions), as ``jax.tree.map`` does.
Elementwise functions follow JAX's dtype promotion of the leaves, so they give the dtypes JAX's
operators give. Reductions over floating-point leaves (``sum``, ``vdot``, ``norm``) accumulate
in at least float32, as everywhere in gradtx. Trees passed together must have the same
structure; a mismatch raises ``TreeMismatchError`` naming the function, the argument and the
first place they differ.
"""

from __future__ import annotations

import builtins
import functools
import inspect
import operator
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _tree

_NORM_ORDS = (None, 1, 2, "inf", "infinity", np.inf)
_DTYPE_HANDLERS = (None, "promote", "highest", "lowest")


def _is_none(x: Any) -> bool:
    return x is None


def _describe(leaf: Any) -> str:
    if leaf is None:
        return "None"
    shape = getattr(leaf, "shape", None)
    if shape is not None:
        return f"{getattr(leaf, 'dtype', '')}{list(shape)}"
    return type(leaf).__name__


def _structure_difference(ref_name: str, ref: Any, name: str, other: Any) -> str:
    """Where ``other`` first departs from the structure of ``ref``, in words."""
    ref_leaves = jax.tree_util.tree_flatten_with_path(ref, is_leaf=_is_none)[0]
    other_leaves = jax.tree_util.tree_flatten_with_path(other, is_leaf=_is_none)[0]
    for (rp, rv), (op, ov) in zip(ref_leaves, other_leaves):
        r_at, o_at = _checks.path_str(rp), _checks.path_str(op)
        if r_at != o_at:
            return f"{ref_name} has a leaf at {r_at} where {name} has one at {o_at}"
        if (rv is None) != (ov is None):
            return f"at {r_at}, {ref_name} has {_describe(rv)} and {name} has {_describe(ov)}"
    if len(ref_leaves) != len(other_leaves):
        longer, extra = (
            (ref_name, ref_leaves) if len(ref_leaves) > len(other_leaves) else (name, other_leaves)
        )
        at = _checks.path_str(extra[min(len(ref_leaves), len(other_leaves))][0])
        return (
            f"{ref_name} has {len(ref_leaves)} leaves and {name} {len(other_leaves)}; "
            f"{longer} has the extra one at {at}"
        )
    return f"{ref_name} is {jax.tree.structure(ref)} and {name} is {jax.tree.structure(other)}"


def _check_like(
    fn: str, ref_name: str, ref: Any, name: str, other: Any, *, none_is_leaf: bool = False
) -> None:
    """Raises ``TreeMismatchError`` unless ``jax.tree.map`` can walk ``other`` along ``ref``
    (the same structure, or ``ref``'s structure as a prefix of ``other``'s)."""
    is_leaf = _is_none if none_is_leaf else None
    treedef = jax.tree.structure(ref, is_leaf=is_leaf)
    try:
        # A subtree of other where ref has a leaf, as jax.tree.map allows; but not None where
        # ref has a value.
        at_leaves = treedef.flatten_up_to(other)
        ref_leaves = treedef.flatten_up_to(ref)
        if all(o is not None for o, r in zip(at_leaves, ref_leaves) if r is not None):
            return
    except (ValueError, TypeError):
        pass
    raise _checks.TreeMismatchError(
        f"gradtx.tree.{fn}: {name} must have the structure of {ref_name}; "
        f"{_structure_difference(ref_name, ref, name, other)}"
    )


def _leaves(tree: Any) -> list[Any]:
    return [x for x in jax.tree.leaves(tree) if x is not None]


def _inexact(x: Any) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def _accumulate(parts: list[Any], associative: bool) -> jax.Array:
    """The sum of per-leaf scalars, in their promoted dtype (under strict promotion too)."""
    if not parts:
        return jnp.asarray(0)
    dt = _tree.promote(*(p.dtype for p in parts))
    parts = [p.astype(dt) for p in parts]
    if associative:
        return jnp.asarray(_tree.add_pairwise(parts))
    return jnp.asarray(functools.reduce(operator.add, parts))


# --------------------------------------------------------------------------------------------
# Elementwise arithmetic


def tree_add(tree_x: Any, tree_y: Any, *other_trees: Any) -> Any:
    """The leafwise sum of two or more trees::

        out = tree_x + tree_y + other_trees[0] + ...

    Args:
      tree_x: a pytree.
      tree_y: a pytree with the structure of ``tree_x``.
      *other_trees: more such pytrees, added after ``tree_y``.

    Returns:
      A pytree with the structure of ``tree_x``; leaf dtypes as JAX promotes them.

    Conventions:
      ``optax.tree.add``: the same arguments and values (Optax starts its sum from a Python
      ``0``, so ``-0.0 + -0.0`` gives ``+0.0`` there and ``-0.0`` here).
    """
    _check_like("add", "tree_x", tree_x, "tree_y", tree_y)
    for i, other in enumerate(other_trees):
        _check_like("add", "tree_x", tree_x, f"other_trees[{i}]", other)
    return jax.tree.map(
        lambda *xs: functools.reduce(operator.add, xs), tree_x, tree_y, *other_trees
    )


def tree_sub(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise difference ``tree_x - tree_y``.

    Args:
      tree_x: a pytree.
      tree_y: a pytree with the structure of ``tree_x``.

    Conventions:
      ``optax.tree.sub``: the same arguments and values.
    """
    _check_like("sub", "tree_x", tree_x, "tree_y", tree_y)
    return jax.tree.map(operator.sub, tree_x, tree_y)


def tree_mul(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise (Hadamard) product ``tree_x * tree_y``.

    Args:
      tree_x: a pytree.
      tree_y: a pytree with the structure of ``tree_x``.

    Conventions:
      ``optax.tree.mul``: the same arguments and values.
    """
    _check_like("mul", "tree_x", tree_x, "tree_y", tree_y)
    return jax.tree.map(operator.mul, tree_x, tree_y)


def tree_div(tree_x: Any, tree_y: Any) -> Any:
    """The leafwise quotient ``tree_x / tree_y`` (true division: integer leaves give floats).

    Args:
      tree_x: a pytree.
      tree_y: a pytree with the structure of ``tree_x``.

    Conventions:
      ``optax.tree.div``: the same arguments and values.
    """
    _check_like("div", "tree_x", tree_x, "tree_y", tree_y)
    return jax.tree.map(operator.truediv, tree_x, tree_y)


def tree_scale(scalar: Any, tree: Any) -> Any:
    """Every leaf multiplied by one scalar::

        out = scalar * tree

    Args:
      scalar: a number or an array broadcastable against every leaf (a traced value is fine).
      tree: a pytree.

    Conventions:
      ``optax.tree.scale``: the same arguments and values. A Python number keeps each leaf's
      dtype (JAX's weak typing); a float32 array promotes bfloat16 leaves to float32.
    """
    return jax.tree.map(lambda x: scalar * x, tree)


def tree_add_scale(tree_x: Any, scalar: Any, tree_y: Any) -> Any:
    """``tree_x`` plus a scaled ``tree_y``, leaf by leaf (an axpy)::

        out = tree_x + scalar * tree_y

    Args:
      tree_x: a pytree; where a leaf is ``None`` the result is ``None``, whatever ``tree_y``
        holds there.
      scalar: a number or an array (a traced value is fine).
      tree_y: a pytree with the structure of ``tree_x``.

    Conventions:
      ``optax.tree.add_scale``: the same arguments and values. Optax turns ``scalar`` into a
      float32 array first, so a Python number promotes bfloat16 and float16 leaves to float32;
      gradtx keeps a Python number weakly typed, so ``tree_x``'s low-precision leaves keep
      their dtype (as ``tree.scale`` does in both).
    """
    _check_like("add_scale", "tree_x", tree_x, "tree_y", tree_y, none_is_leaf=True)
    if not isinstance(scalar, (int, float, complex)):
        scalar = jnp.asarray(scalar)
    return jax.tree.map(
        lambda x, y: None if x is None else x + scalar * y, tree_x, tree_y, is_leaf=_is_none
    )


def tree_conj(tree: Any) -> Any:
    """The complex conjugate of every leaf (real leaves are returned as they are).

    Conventions:
      ``optax.tree.conj``: the same values.
    """
    return jax.tree.map(jnp.conj, tree)


def tree_real(tree: Any) -> Any:
    """The real part of every leaf (complex64 -> float32; real leaves unchanged).

    Conventions:
      ``optax.tree.real``: the same values.
    """
    return jax.tree.map(jnp.real, tree)


def tree_where(condition: Any, tree_x: Any, tree_y: Any) -> Any:
    """``tree_x`` where ``condition`` holds and ``tree_y`` elsewhere, leaf by leaf::

        out_i = jnp.where(condition, x_i, y_i)

    Args:
      condition: a boolean scalar or an array broadcastable against every leaf (one condition
        for the whole tree, not a tree of conditions).
      tree_x: the pytree taken where ``condition`` is true.
      tree_y: a pytree with the structure of ``tree_x``, taken elsewhere.

    Conventions:
      ``optax.tree.where``: the same arguments and values.
    """
    _check_like("where", "tree_x", tree_x, "tree_y", tree_y)
    return jax.tree.map(lambda x, y: jnp.where(condition, x, y), tree_x, tree_y)


def tree_clip(tree: Any, min_value: Any = None, max_value: Any = None) -> Any:
    """Every element clipped to ``[min_value, max_value]``::

        out = min(max(x, min_value), max_value)

    Args:
      tree: a pytree.
      min_value: the lower bound, or None for none.
      max_value: the upper bound, or None for none. With ``min_value > max_value`` every
        element becomes ``max_value``, as in ``jnp.clip``.

    Conventions:
      ``optax.tree.clip``: the same arguments and values.
    """
    return jax.tree.map(lambda x: jnp.clip(x, min_value, max_value), tree)


# --------------------------------------------------------------------------------------------
# Reductions


def tree_vdot(tree_x: Any, tree_y: Any) -> jax.Array:
    """The inner product of two trees, the first conjugated::

        <x, y> = sum over leaves and elements of conj(x) * y

    Args:
      tree_x: a pytree (conjugated when complex).
      tree_y: a pytree with the structure of ``tree_x``.

    Returns:
      A scalar, complex for complex leaves, integer for integer leaves, otherwise real in the
      widest leaf dtype and at least float32; 0 for trees without leaves.

    Conventions:
      ``optax.tree.vdot``: the same value up to rounding. Optax returns bfloat16 or float16
      for such leaves; gradtx multiplies and sums them in float32 and returns float32.
    """
    _check_like("vdot", "tree_x", tree_x, "tree_y", tree_y)

    def leaf(x, y):
        x, y = jnp.asarray(x), jnp.asarray(y)
        if _inexact(x) or _inexact(y):
            cd = _tree.compute_dtype(x.dtype, y.dtype)
            x, y = x.astype(cd), y.astype(cd)
        return jnp.sum(jnp.conj(x) * y)

    return _accumulate(_leaves(jax.tree.map(leaf, tree_x, tree_y)), associative=False)


def tree_sum(tree: Any, associative_reduction: bool = False) -> jax.Array:
    """The sum of every element of every leaf::

        s = sum over leaves and elements of x

    Args:
      tree: a pytree.
      associative_reduction: add the per-leaf sums as a balanced tree of additions instead of
        left to right (faster to compile with thousands of leaves; the rounding may differ).

    Returns:
      A scalar, integer for integer (and boolean) leaves, complex for complex leaves, at least
      float32 for floating-point leaves; 0 for a tree without leaves.

    Conventions:
      ``optax.tree.sum``: the same arguments and value up to rounding. Optax sums bfloat16 and
      float16 leaves in their own dtype; gradtx in float32 (the result is float32).
      ``associative_reduction=True`` needs no particular JAX version here.
    """

    def leaf(x):
        x = jnp.asarray(x)
        if _inexact(x):
            return jnp.sum(x, dtype=_tree.compute_dtype(x.dtype))
        return jnp.sum(x)

    return _accumulate([leaf(x) for x in _leaves(tree)], bool(associative_reduction))


def _extremum(tree: Any, reduce_leaf: Callable, combine: Callable, identity: float) -> jax.Array:
    """Folds ``combine`` over each nonempty leaf's ``reduce_leaf``, starting from ``identity``
    (an infinity), in the dtype JAX promotes the leaves and a Python float to."""
    parts = [reduce_leaf(x) for x in _leaves(tree) if jnp.size(x)]
    dt = _tree.promote(*(p.dtype for p in parts), float)
    out = jnp.asarray(identity, dt)
    for part in parts:
        out = combine(out, part.astype(dt))
    return out


def tree_max(tree: Any) -> jax.Array:
    """The largest element over every leaf (NaN if any element is NaN).

    Returns:
      A scalar in the leaves' promoted dtype (integer leaves give the default float dtype);
      ``-inf`` for a tree without elements.

    Conventions:
      ``optax.tree.max``: the same value and dtype.
    """
    return _extremum(tree, jnp.max, jnp.maximum, -np.inf)


def tree_min(tree: Any) -> jax.Array:
    """The smallest element over every leaf (NaN if any element is NaN).

    Returns:
      A scalar in the leaves' promoted dtype (integer leaves give the default float dtype);
      ``+inf`` for a tree without elements.

    Conventions:
      ``optax.tree.min``: the same value and dtype.
    """
    return _extremum(tree, jnp.min, jnp.minimum, np.inf)


def tree_size(tree: Any) -> int:
    """The number of elements over every leaf (a Python int; a number leaf counts 1).

    Conventions:
      ``optax.tree.size``: the same value.
    """
    return builtins.sum(int(np.size(x)) for x in _leaves(tree))


def _check_ord(ord: Any) -> str:
    """``ord`` as ``"2"``, ``"1"`` or ``"inf"``, or the error naming the valid values."""
    if ord is None:
        return "2"
    if isinstance(ord, str):
        if ord in ("inf", "infinity"):
            return "inf"
    elif isinstance(ord, (int, float, np.integer, np.floating)) and not isinstance(ord, bool):
        if ord == 2:
            return "2"
        if ord == 1:
            return "1"
        if ord == np.inf:
            return "inf"
    raise _checks.HyperparameterError(
        f"gradtx.tree.norm: ord must be one of None, 1, 2, inf, 'inf' or 'infinity', got {ord!r}"
    )


def tree_norm(tree: Any, ord: int | str | float | None = None, squared: bool = False) -> jax.Array:
    """The vector norm of all the elements of a tree together::

        ord=None or 2:  ||x||_2   = sqrt(sum |x_i|^2)     (complex: |x|^2 = re^2 + im^2)
        ord=1:          ||x||_1   = sum |x_i|
        ord=inf:        ||x||_inf = max |x_i|
        squared=True:   the norm squared (for ord 2, the sum of squares without the root)

    Args:
      tree: a pytree (``None`` leaves count for nothing).
      ord: None, 1, 2, or ``inf`` (``jnp.inf``, ``"inf"`` or ``"infinity"``).
      squared: return the square of the norm.

    Returns:
      A real scalar in the widest real leaf dtype, at least float32; 0 for a tree without
      elements.

    Raises:
      HyperparameterError: for any other ``ord``.

    The L2 norm is the one ``gradtx.global_norm`` and ``clip_by_global_norm`` compute.

    Conventions:
      ``optax.tree.norm``: the same arguments and values up to rounding. Optax computes in
      the leaves' dtype (bfloat16 leaves give a bfloat16 norm, integer leaves an integer L1 or
      L-inf norm); gradtx in at least float32 and returns at least float32, as
      ``gradtx.global_norm`` does. For a tree without elements the L-inf norm is 0 (Optax
      returns ``-inf``).
    """
    kind = _check_ord(ord)
    leaves = _leaves(tree)
    # Integer and boolean leaves are measured as floats (the norm is a float).
    leaves = [x if _inexact(x) else jnp.asarray(x, _tree.float_dtype()) for x in leaves]
    real = [_tree.real_dtype(jnp.result_type(x)) for x in leaves]
    dt = _tree.compute_dtype(*real) if leaves else _tree.float_dtype()
    if kind == "2":
        if squared:
            return jnp.asarray(_tree.tree_sum_squares(leaves), dt)
        return jnp.asarray(_tree.tree_norm(leaves), dt)
    if kind == "1":
        parts = [jnp.sum(jnp.abs(jnp.asarray(x)), dtype=dt) for x in leaves]
        value = _tree.add_pairwise(parts) if parts else jnp.zeros((), dt)
    else:
        value = jnp.zeros((), dt)
        for x in leaves:
            if jnp.size(x):
                value = jnp.maximum(value, jnp.max(jnp.abs(jnp.asarray(x))).astype(dt))
    return value * value if squared else value


def tree_allclose(
    a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False
) -> jax.Array:
    """Whether two trees are elementwise equal within a tolerance, every leaf together::

        all over leaves and elements of  |a - b| <= atol + rtol * |b|

    Args:
      a: a pytree.
      b: a pytree with the structure of ``a``.
      rtol: the relative tolerance, >= 0.
      atol: the absolute tolerance, >= 0.
      equal_nan: count NaNs in the same place as equal.

    Returns:
      A boolean scalar array (True for trees without leaves).

    Raises:
      TreeMismatchError: when the structures differ.
      HyperparameterError: for a negative or NaN ``rtol`` or ``atol``.

    Conventions:
      ``optax.tree.allclose``: the same arguments and result; gradtx rejects negative
      tolerances, which Optax accepts.
    """
    _checks.NONNEGATIVE("tree.allclose", "rtol", rtol)
    _checks.NONNEGATIVE("tree.allclose", "atol", atol)
    _check_like("allclose", "a", a, "b", b)
    flags = _leaves(
        jax.tree.map(
            lambda x, y: jnp.allclose(x, y, rtol=rtol, atol=atol, equal_nan=equal_nan), a, b
        )
    )
    return jnp.asarray(functools.reduce(jnp.logical_and, flags, jnp.asarray(True)))


# --------------------------------------------------------------------------------------------
# Shapes and constant trees


def tree_batch_shape(tree: Any, shape: tuple[int, ...] = ()) -> Any:
    """Every leaf broadcast to leading batch axes ``shape``::

        out_i.shape == (*shape, *x_i.shape)      (the values repeated along the new axes)

    Args:
      tree: a pytree.
      shape: the leading axes to add, a tuple of integers >= 0.

    Raises:
      HyperparameterError: when ``shape`` is not a tuple of integers >= 0.

    Conventions:
      ``optax.tree.batch_shape``: the same arguments and values.
    """
    ok = isinstance(shape, (tuple, list)) and all(
        isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n >= 0 for n in shape
    )
    if not ok:
        raise _checks.HyperparameterError(
            f"gradtx.tree.batch_shape: shape must be a tuple of integers >= 0, got {shape!r}"
        )
    shape = tuple(int(n) for n in shape)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (*shape, *jnp.shape(x))), tree)


def tree_zeros_like(tree: Any, dtype: Any = None) -> Any:
    """Zeros shaped like every leaf, in ``dtype`` or each leaf's own dtype.

    Each leaf keeps the sharding of the leaf it copies, under ``jax.jit`` too.

    Conventions:
      ``optax.tree.zeros_like``: the same arguments and values.
    """
    return _tree.tree_zeros_like(tree, dtype)


def tree_ones_like(tree: Any, dtype: Any = None) -> Any:
    """Ones shaped like every leaf, in ``dtype`` or each leaf's own dtype.

    Each leaf keeps the sharding of the leaf it copies, under ``jax.jit`` too.

    Conventions:
      ``optax.tree.ones_like``: the same arguments and values.
    """
    return _tree.tree_full_like(tree, 1, dtype)


def tree_full_like(tree: Any, fill_value: Any, dtype: Any = None) -> Any:
    """``fill_value`` everywhere, shaped like every leaf, in ``dtype`` or each leaf's dtype.

    Args:
      tree: a pytree.
      fill_value: a scalar, converted to each leaf's dtype as ``jnp.full_like`` converts it.
      dtype: the dtype of every leaf of the result, or None for the leaves' own.

    Each leaf keeps the sharding of the leaf it copies, under ``jax.jit`` too.

    Conventions:
      ``optax.tree.full_like``: the same arguments and values.
    """
    return _tree.tree_full_like(tree, fill_value, dtype)


# --------------------------------------------------------------------------------------------
# Dtypes


def tree_cast(tree: Any, dtype: Any) -> Any:
    """Every leaf converted to ``dtype``; ``dtype=None`` returns ``tree`` itself.

    Conventions:
      ``optax.tree.cast``: the same arguments and values.
    """
    return _tree.tree_cast(tree, dtype)


def tree_cast_like(tree: Any, other_tree: Any) -> Any:
    """Every leaf of ``tree`` converted to the dtype of the same leaf of ``other_tree``.

    Args:
      tree: a pytree of arrays or numbers.
      other_tree: a pytree with the structure of ``tree``.

    Conventions:
      ``optax.tree.cast_like``: the same arguments and values for array leaves. Where a leaf
      of ``other_tree`` is a Python number, gradtx converts to the dtype JAX gives it
      (float32 for a float, int32 for an int) where Optax leaves the leaf alone; leaves of
      ``tree`` that are numbers or NumPy arrays come back as JAX arrays.
    """
    _check_like("cast_like", "tree", tree, "other_tree", other_tree)
    return _tree.tree_cast_like(tree, other_tree)


def _dtype_order(first: np.dtype, second: np.dtype, want_high: bool) -> np.dtype:
    joined = jnp.promote_types(first, second)
    if joined not in (first, second):
        which = "highest" if want_high else "lowest"
        raise ValueError(
            f"gradtx.tree.dtype: the leaves' dtypes {first} and {second} have no {which} "
            f"(neither promotes to the other, both promote to {joined}); pass "
            f"mixed_dtype_handler='promote' to get {joined}"
        )
    high = joined
    low = second if high == first else first
    return high if want_high else low


def tree_dtype(tree: Any, mixed_dtype_handler: str | None = None) -> np.dtype:
    """The dtype of a tree's leaves.

    Args:
      tree: a pytree (a tree without leaves has the default float dtype).
      mixed_dtype_handler: what to do when the leaves' dtypes differ. None raises
        ``ValueError`` naming two leaves that differ; ``"promote"`` gives the dtype JAX
        promotes them all to (``jnp.promote_types``); ``"highest"`` gives the leaf dtype every
        other promotes to and ``"lowest"`` the one that promotes to every other, with
        ``ValueError`` when there is none (int8 and uint8, bfloat16 and float16).

    Returns:
      A NumPy dtype.

    Raises:
      HyperparameterError: for another ``mixed_dtype_handler``.
      ValueError: as described above.

    Conventions:
      ``optax.tree.dtype``: the same arguments and results.
    """
    _checks.check_choice("tree.dtype", "mixed_dtype_handler", mixed_dtype_handler, _DTYPE_HANDLERS)
    flat = [(p, jnp.asarray(x).dtype) for p, x in jax.tree_util.tree_flatten_with_path(tree)[0]]
    if not flat:
        return _tree.float_dtype()
    dtypes = [d for _, d in flat]
    if mixed_dtype_handler is None:
        first_path, first = flat[0]
        for path, d in flat[1:]:
            if d != first:
                raise ValueError(
                    f"gradtx.tree.dtype: the leaves have different dtypes ({first} at "
                    f"{_checks.path_str(first_path)}, {d} at {_checks.path_str(path)}); pass "
                    f"mixed_dtype_handler='promote', 'highest' or 'lowest'"
                )
        return first
    if mixed_dtype_handler == "promote":
        return functools.reduce(jnp.promote_types, dtypes)
    want_high = mixed_dtype_handler == "highest"
    return functools.reduce(lambda a, b: _dtype_order(a, b, want_high), dtypes)


# --------------------------------------------------------------------------------------------
# Random trees


def tree_split_key_like(rng_key: Any, target_tree: Any) -> Any:
    """One key per leaf of ``target_tree``, in a tree of its structure::

        keys = jax.random.split(rng_key, number of leaves), laid out leaf by leaf

    Args:
      rng_key: a PRNG key (``jax.random.key(seed)`` or ``jax.random.PRNGKey(seed)``).
      target_tree: the pytree whose structure the keys take (``None`` leaves stay ``None``).

    Raises:
      TypeError: when ``rng_key`` is not a PRNG key.

    Conventions:
      ``optax.tree.split_key_like``: the same arguments and keys.
    """
    treedef = jax.tree.structure(target_tree)
    try:
        keys = jax.random.split(rng_key, treedef.num_leaves)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"gradtx.tree.split_key_like: rng_key must be a PRNG key (jax.random.key(seed) or "
            f"jax.random.PRNGKey(seed)), got {_describe(rng_key)}"
        ) from err
    return treedef.unflatten(list(keys))


def _takes_out_sharding(sampler: Callable) -> bool:
    try:
        return "out_sharding" in inspect.signature(sampler).parameters
    except (TypeError, ValueError):  # builtins and other objects without a signature
        return False


def tree_random_like(
    rng_key: Any,
    target_tree: Any,
    sampler: Callable[..., Any] = jax.random.normal,
    dtype: Any = None,
) -> Any:
    """Random leaves shaped like those of ``target_tree``, one split key per leaf::

        out_i = sampler(key_i, x_i.shape, dtype or x_i.dtype)
        key_i = tree.split_key_like(rng_key, target_tree)'s leaf i

    Args:
      rng_key: a PRNG key.
      target_tree: the pytree whose structure and shapes to match.
      sampler: ``sampler(key, shape, dtype)`` returning an array, such as
        ``jax.random.normal`` (the default) or ``jax.random.uniform``. When it takes an
        ``out_sharding`` keyword, each leaf is drawn with the sharding of the leaf it mirrors.
      dtype: the dtype passed to ``sampler``; None passes each leaf's dtype.

    Conventions:
      ``optax.tree.random_like``: the same arguments and numbers for the same key. Leaves may
      also be Python numbers (shape ``()``), and a ``np.dtype`` given as ``dtype`` is used
      (Optax tests ``dtype`` for truth, which a NumPy dtype object fails, and ignores it).
    """
    keys = tree_split_key_like(rng_key, target_tree)
    with_sharding = _takes_out_sharding(sampler)

    def leaf(x, key):
        shape = jnp.shape(x)
        leaf_dtype = dtype if dtype is not None else jnp.result_type(x)
        if with_sharding and isinstance(x, jax.Array):
            return sampler(key, shape, leaf_dtype, out_sharding=jax.typeof(x).sharding)
        return sampler(key, shape, leaf_dtype)

    return jax.tree.map(leaf, target_tree, keys)


def tree_unwrap_random_key_data(input_tree: Any) -> Any:
    """Typed PRNG keys (``jax.random.key``) replaced by their raw data (``jax.random.key_data``),
    so that trees holding keys can be compared numerically; other leaves are kept.

    Conventions:
      ``optax.tree.unwrap_random_key_data``: the same values.
    """

    def leaf(x):
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jax.random.key_data(x)
        return x

    return jax.tree.map(leaf, input_tree)
