"""Packed views: masks and group labels on trees whose leaves are packed into flat buffers.

``gradtx.grouped`` (and ``gradtx.flatten``) hand the transforms inside them a short tree of flat
buffers instead of the user's params. Masks (``masked``, ``freeze``, ``weight_decay_mask``) and
``partition`` labels are written against the user's tree, so each resolution goes through a
``PackedView``: the mask or labelling is evaluated on the original tree (its leaves as
``jax.ShapeDtypeStruct``), and every packed buffer takes the one value its member leaves share.
Members that disagree raise an error naming two of them; ``grouped`` avoids that by splitting its
buffers by every mask and label found in the transform it wraps (``leaf_signatures``).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

from . import _checks, _mask, _tree
from .transforms import _partition


class PackedView:
    """How a packed tree maps onto the user's params tree.

    Args:
      original: the user's params tree with ``jax.ShapeDtypeStruct`` leaves.
      members: for each packed leaf (in the packed tree's flatten order), the indices of the
        original leaves it holds.
      build: ``build(values)`` gives a prefix of the packed tree holding one value per packed leaf.
    """

    __slots__ = ("build", "members", "original", "paths")

    def __init__(
        self, original: Any, members: tuple[tuple[int, ...], ...], build: Callable[[list], Any]
    ):
        self.original = original
        self.members = members
        self.build = build
        self.paths = tuple(
            _checks.path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(original)[0]
        )

    def reduce(self, per_leaf: list[Any], where: str, what: str) -> Any:
        """One value per packed leaf, from one value per original leaf; members must agree."""
        values = []
        for idx in self.members:
            first = per_leaf[idx[0]]
            for i in idx[1:]:
                if per_leaf[i] != first:
                    raise ValueError(
                        f"{where}: the {what} gives {first!r} for {self.paths[idx[0]]} but "
                        f"{per_leaf[i]!r} for {self.paths[i]}, and these leaves share one packed "
                        f"buffer. gradtx.grouped splits its buffers by the masks and labels of the "
                        f"transform it wraps; a {what} built outside it cannot differ inside a "
                        f"buffer (for gradtx.flatten, pass the same mask or labels as split=)."
                    )
            values.append(first)
        return self.build(values)


_ACTIVE: contextvars.ContextVar[PackedView | None] = contextvars.ContextVar(
    "gradtx_packed_view", default=None
)


@contextlib.contextmanager
def active(view: PackedView | None) -> Iterator[None]:
    """Within this block, masks and labels resolve through ``view``."""
    token = _ACTIVE.set(view)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def view_for(params: Any) -> PackedView | None:
    """The view that ``params`` is packed under, if any (a flat params object, or ``grouped``)."""
    hook = getattr(type(params), "_gradtx_view", None)
    if hook is not None:
        return hook(params)
    return _ACTIVE.get()


def _walk(obj: Any, seen: set[int]) -> Iterator[Any]:
    """Every object reachable through the fields of a transform (transforms, masks, labels)."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            yield from _walk(getattr(obj, f.name, None), seen)
    elif isinstance(obj, (tuple, list)):
        for x in obj:
            yield from _walk(x, seen)
    elif isinstance(obj, dict):
        for x in obj.values():
            yield from _walk(x, seen)


def leaf_signatures(tx: Any, original: Any) -> list[tuple[Any, ...]]:
    """Per original leaf, the tuple of every mask value and group label found in ``tx``.

    Leaves with equal signatures are treated alike by every mask and partition of ``tx``, so
    they may share a packed buffer.
    """
    n = len(jax.tree.leaves(original))
    sig: list[tuple[Any, ...]] = [() for _ in range(n)]
    with active(None):
        for obj in _walk(tx, set()):
            if isinstance(obj, (_mask.StaticMask, _mask.MaskFn)):
                where = f"gradtx.grouped (mask {obj!r})"
                vals = jax.tree.leaves(_mask.resolve_mask(obj, original, where))
            elif isinstance(obj, _partition.Partition):
                vals = jax.tree.leaves(obj.resolve(original, "init"))
            else:
                continue
            if len(vals) != n:  # a mask meant for a sub-tree (e.g. inside a partition group)
                continue
            sig = [(*s, v) for s, v in zip(sig, vals)]
    return sig


def check_leafwise(where: str, tree: Any, what: str = "per-leaf statistics") -> None:
    """Raises ``TypeError`` when ``tree`` is packed into flat buffers.

    For transforms whose math depends on each leaf's shape or norm (Adafactor, LAMB, block
    clipping, ...): on a packed buffer they would silently treat many leaves as one. ``tree`` is
    the params or updates the transform received (``None`` is fine: inside ``gradtx.grouped`` the
    active view still counts).
    """
    if view_for(tree) is None:
        return
    raise TypeError(
        f"{where}: {what} cannot run on packed buffers (gradtx.flatten / gradtx.grouped): each "
        f"buffer holds many leaves raveled together, so the result would mix them. Use this "
        f"transform on the params tree itself; gradtx.registry.Spec.elementwise lists the "
        f"optimizers that run packed."
    )


def stack_axes(where: str, tree: Any, what: str = "per-leaf statistics") -> list[int]:
    """Per leaf of ``tree``, how many leading axes index stacked leaves (0 on a plain tree).

    For transforms with per-leaf statistics that treat a leading stacking axis as a batch of
    leaves (Adafactor): ``gradtx.flatten(params, stack=True)`` buffers give 1 (a sharded leaf
    kept whole gives 0). Raveled buffers (``gradtx.flatten`` without ``stack``,
    ``gradtx.grouped``) raise ``TypeError`` as in ``check_leafwise``.
    """
    hook = getattr(type(tree), "_gradtx_stack_axes", None)
    if hook is not None:
        axes = hook(tree)
        if all(a is not None for a in axes):
            return axes
        raise TypeError(
            f"{where}: {what} cannot run on packed buffers of raveled leaves (gradtx.flatten "
            f"without stack=True): "
            f"each buffer holds many leaves raveled together, so the result would mix them. "
            f"Flatten with gradtx.flatten(params, stack=True), which stacks leaves of one shape "
            f"and keeps their axes, or use the params tree itself."
        )
    check_leafwise(where, tree, what)
    return [0] * len(jax.tree.leaves(tree))


def leaf_axes(x: Any, nb: int) -> tuple[int, ...]:
    """The axes of one stacked leaf in ``x``: all but its ``nb`` leading stacking axes."""
    return tuple(range(nb, jnp.ndim(x)))


def leaf_norm(x: Any, nb: int) -> jax.Array:
    """The L2 norm of each leaf stacked in ``x`` (``nb`` from ``stack_axes``), with its axes
    kept (size 1) so that it broadcasts against ``x``; the whole array's norm when ``nb`` is 0."""
    return jnp.sqrt(jnp.sum(_tree.abs_sq(x), axis=leaf_axes(x, nb), keepdims=True))


def _resolve_packed(ref: Any, resolve: Callable[[Any], list[Any]], where: str, what: str) -> Any:
    """Masks and labels on packed params: resolved on the user's tree, one value per buffer."""
    view = view_for(ref)
    if view is None:
        return None
    with active(None):
        full = resolve(view.original)
    return view.reduce(full, where, what)


_mask.PACKED_RESOLVERS.append(_resolve_packed)
