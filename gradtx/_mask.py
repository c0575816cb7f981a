"""Masks: which leaves a transform acts on.

A mask is one of:

- a pytree of bools with the structure of the params, or a prefix of it (``{"encoder": False,
  "head": True}`` covers every leaf below each key);
- a function ``params -> pytree of bools`` (called at trace time, so it must return Python or
  NumPy bools decided by structure, shape or path, never by values);
- ``gradtx.mask_fn(f)``, which marks ``f`` explicitly as a function.

Classification never guesses from ``callable()`` alone. A pytree whose leaves are all bools is a
tree even when it is callable (an Equinox module of bools). A plain function (an object that is
its own single leaf, or a ``functools.partial``) is a function. A callable pytree with non-bool
leaves (an Equinox model passed by mistake) is rejected with a message, instead of being called.

Masks are static: they are resolved to Python bools at trace time, so a masked-out leaf costs
nothing in the compiled program.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


class StaticMask:
    """A hashable, static pytree of Python bools."""

    __slots__ = ("flags", "treedef")

    def __init__(self, tree: Any):
        leaves, self.treedef = jax.tree.flatten(tree)
        self.flags = tuple(bool(np.asarray(x)) for x in leaves)

    def tree(self) -> Any:
        return jax.tree.unflatten(self.treedef, self.flags)

    def __hash__(self) -> int:
        return hash((self.treedef, self.flags))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, StaticMask)
            and self.treedef == other.treedef
            and self.flags == other.flags
        )

    def __repr__(self) -> str:
        return f"StaticMask({self.tree()!r})"


class MaskFn:
    """A function ``params -> pytree of bools``, marked explicitly as a mask function.

    Use ``gradtx.mask_fn(f)`` when ``f`` is itself a pytree (a ``jax.tree_util.Partial`` or a
    callable Equinox module) that should be called rather than read as a mask tree.
    """

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]):
        if not callable(fn):
            raise TypeError(f"gradtx.mask_fn: expected a callable, got {type(fn).__name__}")
        self.fn = fn

    def __call__(self, params: Any) -> Any:
        return self.fn(params)

    def __hash__(self) -> int:
        try:
            return hash(("MaskFn", self.fn))
        except TypeError:  # an unhashable callable: identity
            return hash(("MaskFn", id(self.fn)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MaskFn):
            return False
        if other.fn is self.fn:
            return True
        try:
            return bool(other.fn == self.fn)
        except Exception:
            return False

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", type(self.fn).__name__)
        return f"mask_fn({name})"


def mask_fn(fn: Callable[[Any], Any]) -> MaskFn:
    """Marks ``fn`` (``params -> pytree of bools``) as a mask function, whatever its type."""
    return MaskFn(fn)


def _is_bool_leaf(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype) == np.bool_ and np.ndim(x) == 0


def _is_plain_function(x: Any) -> bool:
    """A callable that is not a pytree container (its only leaf is itself), or a partial."""
    if isinstance(x, functools.partial):
        return True
    leaves = jax.tree.leaves(x)
    return len(leaves) == 1 and leaves[0] is x


def canonical_mask(mask: Any, fn: str = "mask", name: str = "mask") -> Any:
    """Validates a mask argument and returns ``None``, a ``StaticMask`` or a ``MaskFn``.

    A container with no leaves (``{}``, ``[]``) is the mask of empty params, a ``StaticMask``.
    """
    if mask is None or isinstance(mask, (StaticMask, MaskFn)):
        return mask
    if isinstance(mask, (bool, np.bool_)):
        return StaticMask(bool(mask))
    leaves = jax.tree.leaves(mask)
    if leaves and all(_is_bool_leaf(x) for x in leaves):
        return StaticMask(mask)
    if not leaves and not callable(mask):
        return StaticMask(mask)
    if callable(mask) and _is_plain_function(mask):
        return MaskFn(mask)
    bad = next((x for x in leaves if not _is_bool_leaf(x)), None)
    what = type(bad).__name__ if bad is not None else "no leaves"
    hint = (
        " It is callable but also a pytree with non-bool leaves (an Equinox model?): pass a "
        "tree of bools such as jax.tree.map(lambda x: x.ndim > 1, model), or wrap a function "
        "in gradtx.mask_fn(...)."
        if callable(mask)
        else ""
    )
    raise TypeError(
        f"gradtx.{fn}: {name} must be a pytree of bools (a full tree or a prefix of the params) "
        f"or a function from params to one, got {type(mask).__name__} with a leaf of type "
        f"{what}.{hint}"
    )


def as_mask(fn: str, name: str, value: Any) -> Any:
    """The converter of a transform's mask field (``static_field(None, converter=as_mask)``)."""
    return canonical_mask(value, fn, name)


#: How masks and partition labels resolve on params packed by the layout layer, which registers
#: the hook (so masks never import the layout): ``hook(params, resolve, where, what)`` returns one
#: value per packed buffer, computed by ``resolve(tree) -> leaf values`` on the user's own tree,
#: or None when ``params`` are not packed.
PACKED_RESOLVERS: list[Callable[[Any, Callable[[Any], list[Any]], str, str], Any]] = []


def resolve_mask(mask: Any, params: Any, where: str) -> Any:
    """The mask as a full tree of Python bools with the structure of ``params``.

    A prefix tree is broadcast to the leaves below each of its entries. ``None`` leaves of
    ``params`` (for example leaves masked out by an enclosing ``masked``) stay ``None``.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    for hook in PACKED_RESOLVERS:  # params packed into buffers: resolve on the user's tree
        per_buffer = hook(
            params, lambda t: jax.tree.leaves(resolve_mask(mask, t, where)), where, "mask"
        )
        if per_buffer is not None:
            return _broadcast(per_buffer, params, where)
    if isinstance(mask, StaticMask):
        tree = mask.tree()
    else:
        tree = mask(params)
        leaves = jax.tree.leaves(tree)
        if not all(_is_bool_leaf(x) for x in leaves):
            bad = next(x for x in leaves if not _is_bool_leaf(x))
            raise TypeError(
                f"{where}: the mask function returned a leaf of type {type(bad).__name__}; it "
                f"must return Python or NumPy bools decided by structure (ndim, path), not by "
                f"array values, because masks are resolved when the step is compiled."
            )
        tree = StaticMask(tree).tree() if leaves else tree
    return _broadcast(tree, params, where)


def _broadcast(tree: Any, params: Any, where: str) -> Any:
    """The bool prefix ``tree`` broadcast to a full tree of bools over ``params``."""
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    except ValueError as err:
        from ._checks import check_same_tree

        check_same_tree(where, tree, params, "mask", "params")
        raise ValueError(f"{where}: the mask does not fit the params tree: {err}") from err
