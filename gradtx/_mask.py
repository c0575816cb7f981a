"""Masks: which leaves a transform acts on.

A mask is either a pytree of bools (a full tree or a prefix of the params tree) or a function
from params to such a tree. A callable pytree whose leaves are all bools (an Equinox module of
bools, say) is a tree, never a function.
"""

from __future__ import annotations

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


def _is_bool_leaf(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and np.dtype(dtype) == np.bool_ and np.ndim(x) == 0


def canonical_mask(mask: Any, fn: str = "mask") -> Any:
    """Validates a mask argument and returns ``None``, a ``StaticMask`` or a function."""
    if mask is None or isinstance(mask, StaticMask):
        return mask
    if isinstance(mask, bool):
        return StaticMask(mask)
    leaves = jax.tree.leaves(mask)
    if leaves and all(_is_bool_leaf(x) for x in leaves):
        return StaticMask(mask)
    if callable(mask):
        return mask
    raise TypeError(
        f"gradtx.{fn}: a mask must be a pytree of bools or a function from params to one, "
        f"got {type(mask).__name__}"
    )


def resolve_mask(mask: Any, params: Any, where: str) -> Any:
    """The mask as a full tree of Python bools with the structure of ``params``.

    A prefix tree is broadcast to the leaves below each of its entries.
    """
    if mask is None:
        return jax.tree.map(lambda _: True, params)
    tree = mask.tree() if isinstance(mask, StaticMask) else mask(params)
    if not isinstance(mask, StaticMask):
        tree = StaticMask(tree).tree() if jax.tree.leaves(tree) else tree
    try:
        return jax.tree.map(lambda m, sub: jax.tree.map(lambda _: bool(m), sub), tree, params)
    except ValueError as err:
        from ._checks import check_same_tree

        check_same_tree(where, tree, params, "mask", "params")
        raise ValueError(f"{where}: the mask does not fit the params tree: {err}") from err
