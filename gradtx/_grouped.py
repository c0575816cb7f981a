"""``gradtx.grouped``: the multi-tensor path. Small leaves are updated as one flat buffer.

A tree of many small leaves costs XLA one loop (and some compile time) per leaf and per
operation. ``grouped(tx)`` concatenates the small leaves that share a dtype and a sharding into
one flat buffer per group ("bucket"), runs ``tx`` on the short tuple of buckets and large leaves,
and slices the updates back into the original tree. The optimizer state stays grouped across
steps (one flat moment buffer per bucket), so only the gradients are packed each step. Leaves
larger than ``max_leaf_size`` are left alone: packing them would copy more than it saves.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _tree, _view
from ._transform import Params, Transform, as_transform, pytree_dataclass, static_field

DEFAULT_MAX_LEAF_SIZE = 4096


class GroupPlan:
    """Which leaf goes where: static (hashable) metadata carried in the state's treedef.

    ``slots`` lists the entries of the packed tuple the inner transform sees, each either
    ``("leaf", i)`` (leaf ``i`` of the params, untouched) or ``("bucket", (i, j, ...))`` (those
    leaves raveled and concatenated in that order).
    """

    __slots__ = ("_hash", "_key", "leaf_meta", "slots", "treedef")

    def __init__(self, treedef: Any, leaf_meta: tuple[Any, ...], slots: tuple[Any, ...]):
        self.treedef = treedef
        self.leaf_meta = leaf_meta  # (shape, dtype name) per leaf
        self.slots = slots
        self._key = (treedef, leaf_meta, slots)
        self._hash = hash(self._key)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return (
            isinstance(other, GroupPlan) and self._hash == other._hash and self._key == other._key
        )

    def __repr__(self) -> str:
        buckets = [len(s[1]) for s in self.slots if s[0] == "bucket"]
        singles = sum(1 for s in self.slots if s[0] == "leaf")
        return f"GroupPlan(buckets={buckets}, ungrouped_leaves={singles})"

    def expected_tree(self) -> Any:
        """The params tree as ``ShapeDtypeStruct`` leaves (for error messages)."""
        leaves = [jax.ShapeDtypeStruct(s, jnp.dtype(d)) for s, d in self.leaf_meta]
        return self.treedef.unflatten(leaves)


def _make_plan(
    params: Params, max_leaf_size: int, signatures: list[Any] | None = None
) -> tuple[GroupPlan, list[Any]]:
    """Builds the plan and each slot's sharding (None where unknown or single-device).

    Leaves share a bucket only when they share a dtype, a sharding and a signature (their
    values under every mask and partition label of the wrapped transform).
    """
    leaves, treedef = jax.tree.flatten(params)
    if signatures is None:
        signatures = [()] * len(leaves)
    table = _tree._PARAM_SHARDINGS.get() or {}
    leaf_meta = tuple((tuple(np.shape(x)), jnp.dtype(jnp.result_type(x)).name) for x in leaves)
    slots: list[Any] = []
    slot_shardings: list[Any] = []
    buckets: dict[tuple[Any, Any], list[int]] = {}
    for i, x in enumerate(leaves):
        sharding = table.get(id(x))
        size = math.prod(leaf_meta[i][0])
        shared = sharding is None or sharding.is_fully_replicated
        if size > max_leaf_size or not shared:
            slots.append(("leaf", i))
            slot_shardings.append(sharding)
            continue
        key = (leaf_meta[i][1], sharding, signatures[i])
        if key not in buckets:
            buckets[key] = []
            slots.append(("bucket", key))  # placeholder, filled below
            slot_shardings.append(sharding)
        buckets[key].append(i)
    final = []
    for s in slots:
        if s[0] == "bucket":
            members = tuple(buckets[s[1]])
            final.append(("leaf", members[0]) if len(members) == 1 else ("bucket", members))
        else:
            final.append(s)
    return GroupPlan(treedef, leaf_meta, tuple(final)), slot_shardings


def _check_tree(plan: GroupPlan, tree: Any, where: str, name: str) -> list[Any]:
    leaves, treedef = jax.tree.flatten(tree)
    if treedef != plan.treedef or len(leaves) != len(plan.leaf_meta):
        _checks.check_same_tree(where, plan.expected_tree(), tree, "params", name)
        raise _checks.TreeMismatchError(
            f"{where}: the {name} tree does not match the params given to init: expected "
            f"{plan.treedef}, got {treedef}. Pass the same structure (or call init again)."
        )
    return leaves


def _bucket_dtype(leaves: list[Any], idx: tuple[int, ...], where: str, name: str) -> Any:
    dtypes = {jnp.result_type(leaves[i]) for i in idx}
    if len(dtypes) > 1:
        raise TypeError(
            f"{where}: the {name} leaves of one group have different dtypes "
            f"({sorted(str(d) for d in dtypes)}) although their params share one; give "
            f"{name} the params' dtypes."
        )
    return dtypes.pop()


def _pack(plan: GroupPlan, tree: Any, where: str, name: str) -> tuple[Any, ...]:
    """The packed tuple: leaves as they are, each bucket concatenated into one flat buffer."""
    leaves = _check_tree(plan, tree, where, name)
    out = []
    for kind, idx in plan.slots:
        if kind == "leaf":
            out.append(leaves[idx])
            continue
        _bucket_dtype(leaves, idx, where, name)
        out.append(jnp.concatenate([jnp.ravel(leaves[i]) for i in idx]))
    return tuple(out)


def _unpack(plan: GroupPlan, packed: tuple[Any, ...], offsets: Any) -> Any:
    """Slices the buckets back into leaves.

    The offsets are traced int32 scalars (kept in the state), so every slice of one leaf shape is
    the same XLA kernel, which XLA compiles once. Constant offsets would make a distinct kernel per
    leaf, and compile time would grow by tens of milliseconds per leaf.
    """
    leaves: list[Any] = [None] * len(plan.leaf_meta)
    for k, ((kind, idx), buf) in enumerate(zip(plan.slots, packed)):
        if kind == "leaf":
            leaves[idx] = buf
            continue
        for i, off in zip(idx, offsets[k]):
            shape = plan.leaf_meta[i][0]
            n = math.prod(shape)
            leaves[i] = jax.lax.dynamic_slice_in_dim(buf, off, n).reshape(shape)
    return plan.treedef.unflatten(leaves)


def _offsets(plan: GroupPlan) -> tuple[Any, ...]:
    out = []
    for kind, idx in plan.slots:
        if kind == "leaf":
            out.append(None)
            continue
        offs, o = [], 0
        for i in idx:
            offs.append(jnp.asarray(o, jnp.int32))
            o += math.prod(plan.leaf_meta[i][0])
        out.append(tuple(offs))
    return tuple(out)


def _plan_view(plan: GroupPlan) -> _view.PackedView:
    """The packed tuple as a view of the params tree, for masks and labels inside ``grouped``."""
    members = tuple((idx,) if kind == "leaf" else idx for kind, idx in plan.slots)
    return _view.PackedView(plan.expected_tree(), members, tuple)


@pytree_dataclass
class GroupedState:
    """The inner transform's state over the packed tree, plus the (static) grouping plan."""

    inner: Any
    offsets: Any  # per bucket, each member's start in the flat buffer (int32 scalars)
    plan: GroupPlan = static_field()

    def __repr__(self) -> str:
        return f"GroupedState(inner={self.inner!r}, plan={self.plan!r})"


@pytree_dataclass
class Grouped(Transform):
    """Runs ``inner`` on small leaves packed into one flat buffer per dtype and sharding.

    See ``grouped``. The state is a ``GroupedState``; its ``inner`` field is the inner
    transform's state over the packed tuple (buckets first-seen order, large leaves as they are).
    """

    inner: Transform
    max_leaf_size: int = static_field(DEFAULT_MAX_LEAF_SIZE)

    def __check_init__(self):
        if any(isinstance(x, Grouped) for x in _view._walk(self.inner, set())):
            raise TypeError(
                "gradtx.grouped: the transform it wraps already contains a gradtx.grouped; "
                "group once, at the outside."
            )

    def _init(self, params):
        original = jax.tree.map(lambda x: jax.ShapeDtypeStruct(np.shape(x), x.dtype), params)
        signatures = _view.leaf_signatures(self.inner, original)
        plan, slot_shardings = _make_plan(params, self.max_leaf_size, signatures)
        packed = _pack(plan, params, self.where("init"), "params")
        table = _tree._PARAM_SHARDINGS.get()
        with _view.active(_plan_view(plan)):
            if table:
                with _tree.param_shardings(list(packed), tuple(slot_shardings)):
                    inner = self.inner._init(packed)
            else:
                inner = self.inner._init(packed)
        return GroupedState(inner, _offsets(plan), plan)

    def _update(self, updates, state, params, **extra):
        where = self.where()
        if not isinstance(state, GroupedState):
            raise _checks.TreeMismatchError(
                f"{where}: expected the GroupedState returned by this transform's init, got "
                f"{type(state).__name__}."
            )
        plan = state.plan
        offs = state.offsets
        packed_u = _pack(plan, updates, where, "updates")
        packed_p = None if params is None else _pack(plan, params, where, "params")
        try:
            with _view.active(_plan_view(plan)):
                new_u, inner = self.inner._update(packed_u, state.inner, packed_p, **extra)
        except (_checks.TreeMismatchError, ValueError) as err:
            raise type(err)(
                f"{where}: the inner transform failed on the grouped tree ({err}). gradtx.grouped "
                f"only suits transforms that treat every element alike: no per-leaf masks, "
                f"norms or shapes."
            ) from err
        return _unpack(plan, new_u, offs), GroupedState(inner, offs, plan)

    def __repr__(self) -> str:
        extra = (
            ""
            if self.max_leaf_size == DEFAULT_MAX_LEAF_SIZE
            else f", max_leaf_size={self.max_leaf_size}"
        )
        return f"Grouped({self.inner!r}{extra})"


def grouped(tx: Any, max_leaf_size: int = DEFAULT_MAX_LEAF_SIZE) -> Grouped:
    """The multi-tensor path: ``tx`` applied to small leaves packed into a few flat buffers.

    Leaves with at most ``max_leaf_size`` elements that share a dtype and a sharding are
    raveled and concatenated into one flat buffer per group; ``tx`` runs on those buffers and on
    the larger leaves (left as they are), and the updates are sliced back into the params tree.
    The state stays grouped between steps (one flat moment buffer per group), so each step packs
    only the gradients (and the params, for transforms that read them) and unpacks the updates.

    Use it for trees with many leaves (transformers, anything with hundreds of biases and norm
    scales): the step compiles to a handful of fusions instead of several per leaf, so compile
    time drops by an order of magnitude and eager ``update`` calls get cheaper. On a few large
    leaves it changes nothing (they stay ungrouped). Leaves sharded over several devices are never
    packed (only single-device or fully replicated leaves are), so shardings are kept.

    Exact for elementwise transforms (Adam, SGD, RMSprop, Adagrad, Lion, ...: each output element
    depends only on the same element of its inputs): the updates equal ``tx``'s within float
    rounding. Not for transforms that use per-leaf norms, shapes or masks (LAMB, LARS, Adafactor,
    Muon, ``weight_decay_mask``, per-leaf clipping); ``registry.Spec.elementwise`` says which
    optimizers qualify. A global norm (``clip_by_global_norm``) is the same over the packed tree.

    Args:
      tx: the transform to run grouped (a gradtx transform or an Optax-style one).
      max_leaf_size: leaves with more elements than this are updated on their own. The default
        (4096) packs biases, norm scales and embeddings of a few rows and leaves weight matrices
        alone: packing costs one copy of each packed gradient per step, which pays only for
        small leaves. Raise it to trade step time for compile time (every packed leaf is one
        fewer set of kernels to compile).

    Example::

        tx = gradtx.grouped(gradtx.adamw(1e-3))
        state = tx.init(params)
        params, state = gradtx.step(tx, grads, state, params)
    """
    if isinstance(max_leaf_size, bool) or not isinstance(max_leaf_size, (int, np.integer)):
        raise TypeError(f"gradtx.grouped: max_leaf_size must be an int, got {max_leaf_size!r}")
    if max_leaf_size < 0:
        raise _checks.HyperparameterError(
            f"gradtx.grouped: max_leaf_size must be in [0, inf), got {max_leaf_size}"
        )
    return Grouped(as_transform(tx), int(max_leaf_size))
