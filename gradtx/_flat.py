"""``gradtx.flatten``: params, gradients and optimizer state kept as a few flat buffers.

A model with hundreds or thousands of leaves costs XLA a few kernels (and some compile time) per
leaf and per operation of every optimizer step. ``gradtx.flatten(params)`` packs the leaves that
share a dtype and a sharding into one 1-D buffer per group, once. The result, a ``FlatParams``,
is a pytree whose children are those buffers, so every transform, ``apply_updates``,
``gradtx.step``, checkpointing and ``jax.jit``/``vmap``/``grad`` take it as they take any tree:
the optimizer state is a handful of flat moment buffers and an Adam step is a handful of fused
loops, whatever the number of leaves. The model reads its leaves with ``flat.unflatten()``
(static slices and reshapes, whose backward pass is one concatenation per buffer), so
``jax.grad`` of a loss of ``flat`` returns flat gradients directly.

Compared with ``gradtx.grouped`` (which packs the gradients on every step and keeps only the
state packed), nothing is concatenated per step: the buffers persist across steps.

``gradtx.flatten(params, stack=True)`` packs differently: leaves of one shape (and dtype and
sharding) are stacked along a new leading axis, a ``(k, *shape)`` buffer per group, so each leaf
keeps its own axes. Transforms with per-leaf statistics that know that leading axis (Adafactor)
run on such buffers leaf by leaf, with a few kernels per group instead of per leaf.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _tree, _view
from ._mask import MaskFn, StaticMask, _is_plain_function, resolve_mask
from ._transform import Transform

_WHERE = "gradtx.flatten"


class FlatPlan:
    """Static (hashable) description of a ``FlatParams``: which leaf lives where.

    Attributes:
      treedef: the params tree's structure (``None`` leaves included, as structure).
      leaf_meta: ``(shape, dtype name)`` per leaf, in ``jax.tree.leaves`` order.
      entries: per buffer, ``(kind, members, split)``. ``kind`` is ``"flat"`` (the members
        raveled and concatenated, in this order), ``"stack"`` (members of one shape stacked
        along a new leading axis, in this order: ``flatten(..., stack=True)``) or ``"leaf"`` (one
        leaf kept with its own shape, because its sharding is not fully replicated); ``split`` is
        the members' shared value under ``split=`` (``()`` without one).
    """

    __slots__ = ("_hash", "_key", "_view", "entries", "leaf_meta", "treedef")

    def __init__(self, treedef: Any, leaf_meta: tuple[Any, ...], entries: tuple[Any, ...]):
        self.treedef = treedef
        self.leaf_meta = leaf_meta
        self.entries = entries
        self._key = (treedef, leaf_meta, entries)
        self._hash = hash(self._key)
        self._view = None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, FlatPlan) and self._hash == other._hash and self._key == other._key

    def sizes(self, k: int) -> tuple[int, ...]:
        """The element counts of buffer ``k``'s members."""
        return tuple(math.prod(self.leaf_meta[i][0]) for i in self.entries[k][1])

    def buffer_shape(self, k: int) -> tuple[int, ...]:
        kind, members, _ = self.entries[k]
        if kind == "leaf":
            return self.leaf_meta[members[0]][0]
        if kind == "stack":
            return (len(members), *self.leaf_meta[members[0]][0])
        return (sum(self.sizes(k)),)

    def buffer_dtype(self, k: int) -> str:
        return self.leaf_meta[self.entries[k][1][0]][1]

    def original(self) -> Any:
        """The params tree with ``jax.ShapeDtypeStruct`` leaves."""
        leaves = [jax.ShapeDtypeStruct(s, jnp.dtype(d)) for s, d in self.leaf_meta]
        return self.treedef.unflatten(leaves)

    def view(self) -> _view.PackedView:
        if self._view is None:
            members = tuple(m for _, m, _ in self.entries)
            plan = self
            self._view = _view.PackedView(
                self.original(), members, lambda values: FlatParams(tuple(values), plan)
            )
        return self._view

    def describe(self) -> str:
        parts = []
        for k, (kind, members, split) in enumerate(self.entries):
            shape = list(self.buffer_shape(k))
            n = len(members)
            what = "1 sharded leaf" if kind == "leaf" else f"{n} leaf" if n == 1 else f"{n} leaves"
            if kind == "stack":
                what += " stacked"
            extra = f", split {split!r}" if split != () else ""
            parts.append(f"{self.buffer_dtype(k)}{shape} <- {what}{extra}")
        return f"{len(self.leaf_meta)} leaves in {len(self.entries)} buffers: " + "; ".join(parts)

    def __repr__(self) -> str:
        return f"FlatPlan({self.describe()})"


class FlatParams:
    """A params tree packed into a few flat buffers that persist across steps.

    Made by ``gradtx.flatten``. It is a pytree: its children are the buffers (a tuple, see
    ``buffers``) and its static aux data is the ``FlatPlan``, so every gradtx transform, Optax's
    ``apply_updates``, ``gradtx.step``, ``gradtx.save_npz``/``load_npz`` and ``jax.jit``,
    ``vmap`` and ``grad`` take it unchanged. The optimizer state built from it is flat too.

    Attributes:
      buffers: the flat buffers (1-D, one per dtype, sharding and ``split`` group; with
        ``stack=True``, ``(k, *shape)`` stacks of equal-shaped leaves; a leaf whose sharding is
        not fully replicated is its own buffer with its own shape).
      plan: the static ``FlatPlan``.
    """

    __slots__ = ("buffers", "plan")

    def __init__(self, buffers: tuple[Any, ...], plan: FlatPlan):
        self.buffers = tuple(buffers)
        self.plan = plan

    @property
    def tree(self) -> Any:
        """The original params tree as ``jax.ShapeDtypeStruct`` leaves."""
        return self.plan.original()

    original = tree

    def unflatten(self) -> Any:
        """The params tree, by static slicing and reshaping of the buffers.

        Differentiable: its backward pass concatenates the leaves' cotangents into one buffer
        per group (the transpose of ``lax.split``), so ``jax.grad(lambda f: loss(f.unflatten()))``
        returns a ``FlatParams`` of flat gradients without a pad or add per leaf. A ``None``
        buffer (one masked out by ``gradtx.masked``) gives ``None`` leaves. Buffers with leading
        axes (the output of ``jax.vmap`` over a population) give leaves with the same leading
        axes.
        """
        plan = self.plan
        leaves: list[Any] = [None] * len(plan.leaf_meta)
        for k, ((kind, members, _), buf) in enumerate(zip(plan.entries, self.buffers)):
            if buf is None:
                continue
            if kind == "leaf":
                leaves[members[0]] = buf
                continue
            if kind == "stack":
                shape = plan.leaf_meta[members[0]][0]
                axis = buf.ndim - len(shape) - 1  # after the leading axes of a vmapped stack
                parts = [buf] if len(members) == 1 else jax.lax.split(buf, [1] * len(members), axis)
                for i, part in zip(members, parts):
                    leaves[i] = jnp.squeeze(part, axis)
                continue
            sizes = plan.sizes(k)
            batch = tuple(buf.shape[:-1])  # leading axes of a stack of FlatParams (vmap's output)
            parts = [buf] if len(members) == 1 else jax.lax.split(buf, sizes, axis=buf.ndim - 1)
            for i, part in zip(members, parts):
                leaves[i] = part.reshape(batch + plan.leaf_meta[i][0])
        return plan.treedef.unflatten(leaves)

    def _gradtx_view(self) -> _view.PackedView:
        """How masks and partition labels written for the params tree apply to the buffers."""
        return self.plan.view()

    def _gradtx_stack_axes(self) -> list[int | None]:
        """Per buffer present (``jax.tree.leaves`` order): 1 for a stack of leaves (its leading
        axis indexes them), 0 for a leaf kept whole, None for raveled leaves."""
        code = {"stack": 1, "leaf": 0, "flat": None}
        return [code[e[0]] for e, b in zip(self.plan.entries, self.buffers) if b is not None]

    def _gradtx_leaf_members(self) -> tuple[int, list[tuple[int, ...]]]:
        """``(n, members)``: the number of params leaves present, and per buffer present (in
        ``jax.tree.leaves`` order) the positions of its leaves among them. What a transform
        that draws per-leaf randomness needs to give each stacked leaf the tree's draw."""
        present = [(e[1], b) for e, b in zip(self.plan.entries, self.buffers) if b is not None]
        order = sorted(i for members, _ in present for i in members)
        pos = {i: k for k, i in enumerate(order)}
        return len(order), [tuple(pos[i] for i in members) for members, _ in present]

    def __repr__(self) -> str:
        return f"FlatParams({self.plan.describe()})"


def _flatten_with_keys(flat: FlatParams):
    return (
        tuple((jax.tree_util.SequenceKey(k), b) for k, b in enumerate(flat.buffers)),
        flat.plan,
    )


def _flatten(flat: FlatParams):
    return flat.buffers, flat.plan


def _unflatten(plan: FlatPlan, children: Any) -> FlatParams:
    obj = object.__new__(FlatParams)
    obj.buffers = tuple(children)
    obj.plan = plan
    return obj


jax.tree_util.register_pytree_with_keys(FlatParams, _flatten_with_keys, _unflatten, _flatten)


# --------------------------------------------------------------------------------------------
# Building the plan


def _sharding(x: Any) -> Any:
    """``x``'s sharding: of a concrete array, or from gradtx's table while ``init`` traces."""
    if isinstance(x, jax.core.Tracer):
        table = _tree._PARAM_SHARDINGS.get() or {}
        return table.get(id(x))
    return getattr(x, "sharding", None)


def _split_values(split: Any, original: Any) -> list[Any]:
    """Per leaf of ``original``, its value under ``split`` (a transform, labels or a mask)."""
    from .transforms import _masking, _partition

    n = len(jax.tree.leaves(original))
    if split is None:
        return [()] * n
    if isinstance(split, Transform) or (hasattr(split, "init") and hasattr(split, "update")):
        return [tuple(s) for s in _view.leaf_signatures(split, original)]
    with _view.active(None):
        if isinstance(split, (MaskFn, StaticMask)):
            tree = resolve_mask(split, original, f"{_WHERE}: split")
        elif callable(split) and _is_plain_function(split):
            fn = _partition._LabelFn(split)
            tree = jax.tree_util.tree_map_with_path(
                lambda p, x: fn(_masking.key_path_str(p), x), original
            )
        else:
            try:
                tree = jax.tree.map(
                    lambda lab, sub: jax.tree.map(lambda _: lab, sub), split, original
                )
            except ValueError:
                _checks.check_same_tree(f"{_WHERE}: split", split, original, "split", "params")
                raise
    values = jax.tree.structure(original).flatten_up_to(tree)
    for p, v in zip(_paths(original), values):
        try:
            hash(v)
        except TypeError:
            raise TypeError(
                f"{_WHERE}: split gives an unhashable {type(v).__name__} for {p}; labels must "
                f"be hashable (strings, numbers, bools)."
            ) from None
    return [(v,) for v in values]


def _paths(tree: Any) -> list[str]:
    return [_checks.path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


DEFAULT_MAX_BUFFER_BYTES = 8 * 2**20


def _chunks(members: list[int], leaf_meta: tuple[Any, ...], cap: int) -> list[tuple[int, ...]]:
    """``members`` cut, in order, into runs of at most ``cap`` bytes (a bigger leaf runs alone)."""
    out: list[list[int]] = []
    size = 0
    for i in members:
        shape, dtype = leaf_meta[i]
        nbytes = math.prod(shape) * jnp.dtype(dtype).itemsize
        if not out or size + nbytes > cap:
            out.append([])
            size = 0
        out[-1].append(i)
        size += nbytes
    return [tuple(c) for c in out]


def flatten(
    params: Any,
    split: Any = None,
    max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES,
    *,
    stack: bool = False,
) -> FlatParams:
    """Packs ``params`` into a few flat buffers that persist across optimizer steps.

    Leaves that share a dtype and a sharding (single-device or fully replicated) are raveled
    and concatenated, in ``jax.tree.leaves`` order, into 1-D buffers of at most
    ``max_buffer_bytes`` each (one buffer per group for models up to 2M float32 parameters). A leaf whose
    sharding is not fully replicated is never concatenated: it stays its own buffer, with its
    own shape and sharding. ``None`` leaves are kept as structure. Train on the result instead
    of the tree: the optimizer state becomes a few flat buffers, and a step costs a few fused
    loops and compiles in a fraction of a second, whatever the number of leaves.

    Elementwise optimizers (``gradtx.registry.Spec.elementwise``: Adam, AdamW, SGD, RMSprop,
    Lion, ...) give the same numbers on a ``FlatParams`` as on the tree (within float rounding),
    and so does global-norm clipping. Transforms whose math depends on each leaf's shape or norm
    (Adafactor, Muon, SOAP, LAMB, LARS, NovoGrad, SM3, ``clip_by_block_rms``, ...) raise a
    ``TypeError`` instead of running on raveled buffers; all of them (``Spec.stack_aware``, and
    the per-leaf clipping, trust-ratio and centralization transforms) run leaf by leaf on
    ``stack=True`` buffers.

    Masks and partition labels (``weight_decay_mask``, ``masked``, ``freeze``, ``partition``)
    are written against the params tree as usual. They resolve through the plan, so each buffer
    must hold leaves that the mask treats alike: pass the transform as ``split=`` and the
    buffers are split by every mask value and label it contains (a mask that differs inside a
    buffer raises a ``ValueError`` naming two leaves).

    The buffers are new arrays (the params are copied), so donating them to ``gradtx.step``
    leaves ``params`` intact.

    Args:
      params: a pytree of floating-point arrays (and ``None``). Call ``flatten`` outside
        ``jax.jit``, on the concrete params, so that their shardings are known.
      max_buffer_bytes: the largest buffer, in bytes (default 8 MiB): a group is cut, in leaf
        order, into buffers of at most this size, and a bigger leaf is a buffer of its own.
        XLA:CPU reuses output buffers up to about 16 MiB between calls but page-faults fresh
        ones above that, so capped buffers make a call without donation (eager ``tx.update``)
        about 5x faster on a 25M-parameter model; a donated step runs the same with one buffer
        or many. ``2**62`` gives one buffer per group.
      stack: False ravels the leaves of a group into 1-D buffers (for elementwise optimizers).
        True stacks leaves of one shape along a new leading axis instead, ``(k, *shape)``
        buffers (groups are also split by shape), so that transforms with per-leaf statistics
        (Adafactor, Muon, SOAP, LAMB, ...) run on them leaf by leaf: the fast layout for them
        on models with many leaves. Elementwise optimizers run on either.
      split: optional further split of the groups: a transform (the buffers are split by every
        mask and partition label found in it), a pytree of labels or bools (a full tree or a
        prefix, as ``gradtx.partition`` labels), a labelling function ``(path) -> label`` or
        ``(path, leaf) -> label``, or a mask (``gradtx.mask_fn(f)``, ``gradtx.decay_mask()``;
        a plain function is read as a labelling function, so wrap a ``params -> bools``
        function in ``gradtx.mask_fn``).

    Returns:
      A ``FlatParams``; ``flat.unflatten()`` gives the tree back.

    Raises:
      TypeError: for a non-float leaf (naming its path and dtype), or an unhashable label.

    Example::

        flat = gradtx.flatten(params, split=tx)        # tx may hold a weight_decay_mask
        state = tx.init(flat)

        def loss_fn(flat, x, y):
            return loss(flat.unflatten(), x, y)        # the model sees the usual tree

        @jax.jit
        def train_step(tx, flat, state, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(flat, x, y)   # flat gradients
            updates, state = tx.update(grads, state, flat)
            return gradtx.apply_updates(flat, updates), state, loss

        flat, state, loss = train_step(tx, flat, state, x, y)
        params = flat.unflatten()                      # at the end, or to evaluate

    Gradients computed with respect to the tree can be packed with ``gradtx.flatten_like``
    (one concatenation per buffer and step, which costs bandwidth on large models).
    """
    if isinstance(params, FlatParams):
        raise TypeError(
            f"{_WHERE}: params is already a FlatParams; use it as it is (or flatten "
            f"params.unflatten() to change the split)."
        )
    if isinstance(max_buffer_bytes, bool) or not isinstance(max_buffer_bytes, (int, np.integer)):
        raise TypeError(f"{_WHERE}: max_buffer_bytes must be an int, got {max_buffer_bytes!r}")
    if max_buffer_bytes < 1:
        raise _checks.HyperparameterError(
            f"{_WHERE}: max_buffer_bytes must be in [1, inf), got {max_buffer_bytes}"
        )
    if not isinstance(stack, bool):
        raise TypeError(f"{_WHERE}: stack must be a bool, got {stack!r}")
    kind = "stack" if stack else "flat"
    _checks.check_float_leaves(_WHERE, params, "params")
    leaves, treedef = jax.tree.flatten(params)
    leaf_meta = tuple((tuple(np.shape(x)), jnp.dtype(jnp.result_type(x)).name) for x in leaves)
    original = treedef.unflatten([jax.ShapeDtypeStruct(s, jnp.dtype(d)) for s, d in leaf_meta])
    values = _split_values(split, original)
    entries: list[Any] = []
    groups: dict[Any, list[int]] = {}
    for i, x in enumerate(leaves):
        sharding = _sharding(x)
        if sharding is not None and not sharding.is_fully_replicated:
            entries.append(("leaf", (i,), values[i]))
            continue
        key = (leaf_meta[i][1], sharding, values[i]) + ((leaf_meta[i][0],) if stack else ())
        if key not in groups:
            groups[key] = []
            entries.append((kind, key, values[i]))
        groups[key].append(i)
    chunked: list[Any] = []
    for entry_kind, members, value in entries:
        if entry_kind == "leaf":
            chunked.append((entry_kind, members, value))
            continue
        for chunk in _chunks(groups[members], leaf_meta, max_buffer_bytes):
            chunked.append((entry_kind, chunk, value))
    plan = FlatPlan(treedef, leaf_meta, tuple(chunked))
    buffers = _pack(plan, leaves, _WHERE, "params")
    # A buffer that is one of the user's arrays (a sharded leaf, or a 1-D leaf alone in its
    # group) is copied, so donating the buffers (gradtx.step) never deletes the params.
    ids = {id(x) for x in leaves}
    buffers = tuple(jnp.copy(b) if id(b) in ids else b for b in buffers)
    return FlatParams(buffers, plan)


def _pack(plan: FlatPlan, leaves: list[Any], where: str, name: str) -> tuple[Any, ...]:
    out = []
    for kind, members, _ in plan.entries:
        if kind == "leaf":
            out.append(leaves[members[0]])
            continue
        dtypes = {jnp.dtype(jnp.result_type(leaves[i])) for i in members}
        if len(dtypes) > 1:
            paths = _paths(plan.original())
            raise TypeError(
                f"{where}: the {name} leaves {', '.join(paths[i] for i in members[:3])}"
                f"{', ...' if len(members) > 3 else ''} share one buffer but have different "
                f"dtypes ({', '.join(sorted(d.name for d in dtypes))}); give them the params' "
                f"dtypes."
            )
        if kind == "stack":
            out.append(jnp.stack([jnp.asarray(leaves[i]) for i in members]))
        elif len(members) == 1:
            out.append(jnp.ravel(leaves[members[0]]))
        else:
            out.append(jnp.concatenate([jnp.ravel(leaves[i]) for i in members]))
    return tuple(out)


def flatten_like(flat: FlatParams, tree: Any) -> FlatParams:
    """Packs ``tree`` (gradients, say, shaped like the params) with ``flat``'s plan.

    Use it when the gradients come from a function of the params tree rather than of ``flat``.
    Each call concatenates every group (one copy of the gradients), so prefer differentiating
    with respect to ``flat`` (``flat.unflatten()`` inside the loss) where you can.

    Args:
      flat: a ``FlatParams`` from ``gradtx.flatten``.
      tree: a pytree with the params' structure and shapes; the leaves of one buffer must share
        a dtype (it may differ from the params', e.g. float32 gradients of bfloat16 params).

    Raises:
      TreeMismatchError: ``tree`` differs from the params (naming the first differing path).
    """
    where = "gradtx.flatten_like"
    if not isinstance(flat, FlatParams):
        raise TypeError(
            f"{where}: flat must be a FlatParams from gradtx.flatten, got {type(flat).__name__}"
        )
    plan = flat.plan
    if isinstance(tree, FlatParams):
        if tree.plan != plan:
            raise _checks.TreeMismatchError(
                f"{where}: tree is a FlatParams with another plan ({tree.plan.describe()}); "
                f"expected {plan.describe()}."
            )
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    shapes = tuple(tuple(np.shape(x)) for x in leaves)
    if treedef != plan.treedef or shapes != tuple(s for s, _ in plan.leaf_meta):
        _checks.check_same_tree(where, plan.original(), tree, "params", "tree")
        raise _checks.TreeMismatchError(
            f"{where}: the tree does not match the params that were flattened: expected "
            f"{plan.treedef}, got {treedef}."
        )
    _checks.check_float_leaves(where, tree, "tree")
    return FlatParams(_pack(plan, leaves, where, "tree"), plan)


def unflatten(flat: FlatParams) -> Any:
    """The params tree of ``flat`` (``flat.unflatten()``); differentiable, see there."""
    if not isinstance(flat, FlatParams):
        raise TypeError(
            f"gradtx.unflatten: expected a FlatParams from gradtx.flatten, got {type(flat).__name__}"
        )
    return flat.unflatten()
