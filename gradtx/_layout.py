"""``gradtx.pack``: params, gradients and optimizer state as a few buffers laid out for a transform.

A model with hundreds or thousands of leaves costs XLA a few kernels (and some compile time) per
leaf and per operation of every optimizer step. ``gradtx.pack(params, tx)`` lays the leaves out
once, in the few buffers that ``tx`` can run on unchanged, and keeps them so across steps:

- ``tx`` elementwise (``Transform.is_elementwise``: Adam, SGD, Lion, global-norm clipping...):
  leaves sharing a dtype and a sharding are raveled and concatenated into 1-D buffers;
- ``tx`` stackable (``Transform.is_stackable``: Adafactor, Muon, LAMB, block clipping...): leaves
  of one shape are stacked along a new leading axis, which per-leaf statistics read as the index
  of the leaf (``_kernel.PerLeaf`` vmaps over it);
- anything else: every leaf stays as it is.

Leaves sharded over several devices, and leaves of ``max_buffer_bytes`` or more, stay as they
are in every case; buffers are cut at ``max_buffer_bytes``. Buffers are split by every mask value
and partition label that ``tx`` holds (and by given dimension numbers, such as Muon's), so masks
and labels, written against the params tree, resolve to one value per buffer
(``_mask.PACKED_RESOLVERS``: masks never import this module).

The result, a ``Packed``, is a pytree whose children are the buffers, so ``tx.init``,
``tx.update``, ``apply_updates``, ``gradtx.step``, checkpoints and ``jax.jit``/``vmap``/``grad``
take it as any tree. ``gradtx.unpack`` gives the params tree back by static slices and reshapes,
whose backward pass is one concatenation (or stack) per buffer, so ``jax.grad`` of a loss of
``unpack(packed)`` returns packed gradients directly.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _mask
from ._transform import as_transform
from .transforms import _partition

#: The largest buffer, in bytes. XLA:CPU reuses output buffers up to about 16 MiB between calls
#: but page-faults fresh ones above that, so capped buffers make a call without donation (an
#: eager ``tx.update``) several times faster on large models; a donated step runs the same with
#: one buffer or many.
DEFAULT_MAX_BUFFER_BYTES = 8 * 2**20


class Layout:
    """Static (hashable) description of a ``Packed``: which leaf lives where.

    Attributes:
      treedef: the params tree's structure (``None`` leaves included, as structure).
      leaf_meta: ``(shape, dtype name)`` per leaf, in ``jax.tree.leaves`` order.
      entries: per buffer, ``(kind, members, signature)``. ``kind`` is ``"ravel"`` (the members
        raveled and concatenated, in this order), ``"stack"`` (members of one shape stacked
        along a new leading axis, in this order) or ``"leaf"`` (one leaf as it is);
        ``signature`` is the members' shared values under the transform's masks and labels.
    """

    __slots__ = ("_hash", "_key", "entries", "leaf_meta", "paths", "treedef")

    def __init__(self, treedef: Any, leaf_meta: tuple[Any, ...], entries: tuple[Any, ...]):
        self.treedef = treedef
        self.leaf_meta = leaf_meta
        self.entries = entries
        self._key = (treedef, leaf_meta, entries)
        self._hash = hash(self._key)
        self.paths: tuple[str, ...] | None = None

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        return isinstance(other, Layout) and self._hash == other._hash and self._key == other._key

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

    def leaf_paths(self) -> tuple[str, ...]:
        if self.paths is None:
            self.paths = tuple(_paths(self.original()))
        return self.paths

    def reduce(self, per_leaf: list[Any], where: str, what: str) -> list[Any]:
        """One value per buffer from one value per leaf; the members of a buffer must agree."""
        values = []
        for _, members, _ in self.entries:
            first = per_leaf[members[0]]
            for i in members[1:]:
                if per_leaf[i] != first:
                    paths = self.leaf_paths()
                    raise ValueError(
                        f"{where}: the {what} gives {first!r} for {paths[members[0]]} but "
                        f"{per_leaf[i]!r} for {paths[i]}, and these leaves share one packed "
                        f"buffer. Pack the params for the transform that holds this {what}: "
                        f"gradtx.pack(params, tx) splits its buffers by every mask, label and "
                        f"dimension number of tx."
                    )
            values.append(first)
        return values

    def describe(self) -> str:
        parts = []
        for k, (kind, members, _) in enumerate(self.entries):
            n = len(members)
            what = {
                "leaf": "1 leaf",
                "ravel": f"{n} leaves raveled",
                "stack": f"{n} leaves stacked",
            }
            parts.append(f"{self.buffer_dtype(k)}{list(self.buffer_shape(k))} <- {what[kind]}")
        n, b = len(self.leaf_meta), len(self.entries)
        return f"{n} leaves in {b} buffer{'s' * (b != 1)}: " + "; ".join(parts)

    def __repr__(self) -> str:
        return f"Layout({self.describe()})"


class Packed:
    """A params tree (or gradients, updates, a state buffer) packed by ``gradtx.pack``.

    A pytree: its children are the buffers (see ``buffers``) and its static aux data is the
    ``Layout``, so every gradtx transform, ``apply_updates``, ``gradtx.step``,
    ``gradtx.save_npz``/``load_npz`` and ``jax.jit``, ``vmap`` and ``grad`` take it as any tree.
    The optimizer state built from it is packed too.

    Attributes:
      buffers: the buffers, a tuple: 1-D buffers of raveled leaves, ``(k, *shape)`` stacks of
        ``k`` equal-shaped leaves, and leaves kept as they are (see ``layout.entries``).
      layout: the static ``Layout``.
    """

    __slots__ = ("buffers", "layout")

    def __init__(self, buffers: tuple[Any, ...], layout: Layout):
        self.buffers = tuple(buffers)
        self.layout = layout

    def __repr__(self) -> str:
        return f"Packed({self.layout.describe()})"

    # Hooks read by the rest of gradtx without importing this module.
    def _gradtx_stack_axes(self) -> list[int | None]:
        """Per buffer present (``jax.tree.leaves`` order): 1 for a stack of leaves (its leading
        axis indexes them), 0 for a leaf as it is, None for raveled leaves."""
        code = {"stack": 1, "leaf": 0, "ravel": None}
        return [code[e[0]] for e, b in zip(self.layout.entries, self.buffers) if b is not None]

    def _gradtx_leaf_members(self) -> tuple[int, list[tuple[int, ...]]]:
        """``(n, members)``: the number of params leaves present, and per buffer present (in
        ``jax.tree.leaves`` order) the positions of its leaves among them. What a transform
        that draws per-leaf randomness needs to give each stacked leaf the tree's draw."""
        present = [e[1] for e, b in zip(self.layout.entries, self.buffers) if b is not None]
        order = sorted(i for members in present for i in members)
        pos = {i: k for k, i in enumerate(order)}
        return len(order), [tuple(pos[i] for i in members) for members in present]

    def _gradtx_tree(self) -> Any:
        """The params tree of these buffers (``gradtx.unpack``): what a transform that is not
        gradtx's, whose masks or labels are written against the params tree, runs on."""
        return unpack(self)

    def _gradtx_like(self, tree: Any) -> Packed:
        """``tree``, shaped like the params, packed as these buffers are; a buffer that is None
        here (another group's, inside a partition) stays None."""
        leaves = self.layout.treedef.flatten_up_to(tree)
        where = "gradtx.pack_like"
        return Packed(
            tuple(
                None if buf is None else _pack_entry(self.layout, entry, leaves, where, "tree")
                for entry, buf in zip(self.layout.entries, self.buffers)
            ),
            self.layout,
        )

    def _gradtx_check_layout(self, tx: Any, where: str) -> None:
        """Raises ``TypeError`` when ``tx`` cannot run on these buffers."""
        kinds = {kind for kind, _, _ in self.layout.entries}
        if "ravel" in kinds and not tx.is_elementwise():
            how = "raveled together, a layout for elementwise transforms"
        elif "stack" in kinds and not tx.is_stackable():
            how = "stacked by shape, a layout for transforms with per-leaf statistics"
        else:
            return
        raise TypeError(
            f"{where}: the params were packed with their leaves {how}, which this transform "
            f"cannot run on (it reads whole leaves or their order). Pack them for this "
            f"transform: gradtx.pack(params, tx)."
        )


def _flatten_with_keys(p: Packed):
    return tuple((jax.tree_util.SequenceKey(k), b) for k, b in enumerate(p.buffers)), p.layout


def _flatten(p: Packed):
    return p.buffers, p.layout


def _unflatten(layout: Layout, children: Any) -> Packed:
    obj = object.__new__(Packed)
    obj.buffers = tuple(children)
    obj.layout = layout
    return obj


jax.tree_util.register_pytree_with_keys(Packed, _flatten_with_keys, _unflatten, _flatten)


# --------------------------------------------------------------------------------------------
# Masks and labels


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
    """Per leaf of ``original``, the tuple of every mask value and partition label in ``tx``, and
    of any other per-leaf static choice in ``tx`` (an object with a ``_gradtx_leaf_signature``
    method, such as the dimension numbers of Muon).

    Leaves with equal signatures are treated alike by every mask and partition of ``tx``, so
    they may share a buffer.
    """
    n = len(jax.tree.leaves(original))
    sig: list[tuple[Any, ...]] = [() for _ in range(n)]
    for obj in _walk(tx, set()):
        if isinstance(obj, (_mask.StaticMask, _mask.MaskFn)):
            where = f"gradtx.pack (mask {obj!r})"
            vals = jax.tree.leaves(_mask.resolve_mask(obj, original, where))
        elif isinstance(obj, _partition.Partition):
            vals = jax.tree.leaves(obj.resolve(original, "init"))
        elif hasattr(type(obj), "_gradtx_leaf_signature"):  # other per-leaf static choices
            vals = obj._gradtx_leaf_signature(original)
        else:
            continue
        if len(vals) != n:  # a mask meant for a sub-tree (inside a partition group, say)
            continue
        sig = [(*s, v) for s, v in zip(sig, vals)]
    return sig


def _resolve_packed(ref: Any, resolve: Any, where: str, what: str) -> Any:
    """Masks and labels on packed params: resolved on the params tree, one value per buffer."""
    if not isinstance(ref, Packed):
        return None
    values = ref.layout.reduce(resolve(ref.layout.original()), where, what)
    return Packed(tuple(values), ref.layout)


_mask.PACKED_RESOLVERS.append(_resolve_packed)


# --------------------------------------------------------------------------------------------
# Packing


def _paths(tree: Any) -> list[str]:
    return [_checks.path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _sharding(x: Any) -> Any:
    """A concrete array's sharding (None for tracers and NumPy arrays)."""
    if isinstance(x, jax.core.Tracer):
        return None
    return getattr(x, "sharding", None)


def _nbytes(meta: tuple[Any, str]) -> int:
    return math.prod(meta[0]) * jnp.dtype(meta[1]).itemsize


def _chunks(members: list[int], leaf_meta: tuple[Any, ...], cap: int) -> list[tuple[int, ...]]:
    """``members`` cut, in order, into runs of at most ``cap`` bytes."""
    out: list[list[int]] = []
    size = 0
    for i in members:
        nbytes = _nbytes(leaf_meta[i])
        if not out or size + nbytes > cap:
            out.append([])
            size = 0
        out[-1].append(i)
        size += nbytes
    return [tuple(c) for c in out]


def _plan(leaves: list[Any], treedef: Any, kind: str | None, sigs: list[Any], cap: int) -> Layout:
    leaf_meta = tuple((tuple(np.shape(x)), jnp.dtype(jnp.result_type(x)).name) for x in leaves)
    entries: list[Any] = []
    groups: dict[Any, list[int]] = {}
    for i, x in enumerate(leaves):
        sharding = _sharding(x)
        alone = (
            kind is None
            or (sharding is not None and not sharding.is_fully_replicated)
            or _nbytes(leaf_meta[i]) >= cap
        )
        if alone:
            entries.append(("leaf", (i,), sigs[i]))
            continue
        key = (leaf_meta[i][1], sharding, sigs[i]) + ((leaf_meta[i][0],) if kind == "stack" else ())
        if key not in groups:
            groups[key] = []
            entries.append((kind, key, sigs[i]))
        groups[key].append(i)
    out: list[Any] = []
    for entry_kind, members, sig in entries:
        if entry_kind == "leaf":
            out.append((entry_kind, members, sig))
            continue
        for chunk in _chunks(groups[members], leaf_meta, cap):
            out.append(("leaf" if len(chunk) == 1 else entry_kind, chunk, sig))
    return Layout(treedef, leaf_meta, tuple(out))


def _pack(layout: Layout, leaves: list[Any], where: str, name: str) -> tuple[Any, ...]:
    return tuple(_pack_entry(layout, entry, leaves, where, name) for entry in layout.entries)


def _pack_entry(layout: Layout, entry: Any, leaves: list[Any], where: str, name: str) -> Any:
    """The buffer of one layout entry, from the leaves of a tree shaped like the params."""
    kind, members, _ = entry
    if kind == "leaf":
        return leaves[members[0]]
    dtypes = {jnp.dtype(jnp.result_type(leaves[i])) for i in members}
    if len(dtypes) > 1:
        paths = layout.leaf_paths()
        raise TypeError(
            f"{where}: the {name} leaves {', '.join(paths[i] for i in members[:3])}"
            f"{', ...' if len(members) > 3 else ''} share one buffer but have different "
            f"dtypes ({', '.join(sorted(d.name for d in dtypes))}); give them the params' "
            f"dtypes."
        )
    if kind == "stack":
        return jnp.stack([jnp.asarray(leaves[i]) for i in members])
    return jnp.concatenate([jnp.ravel(leaves[i]) for i in members])


def pack(params: Any, tx: Any, *, max_buffer_bytes: int = DEFAULT_MAX_BUFFER_BYTES) -> Packed:
    """Packs ``params`` into the few buffers that ``tx`` runs on, kept across optimizer steps.

    The layout follows from what ``tx`` declares; the numbers are the params tree's:

    - elementwise ``tx`` (``tx.is_elementwise()``: Adam, SGD, RMSprop, Lion, global-norm
      clipping, ...): leaves sharing a dtype and a sharding are raveled and concatenated, in
      ``jax.tree.leaves`` order, into 1-D buffers;
    - stackable ``tx`` (``tx.is_stackable()``: Adafactor, Muon, SOAP, LAMB, LARS, block and
      unit-wise clipping, ...): leaves of one shape, dtype and sharding are stacked along a new
      leading axis, ``(k, *shape)`` buffers, and every per-leaf statistic is taken per stacked
      leaf;
    - any other ``tx`` (an Optax transform, Kron): every leaf stays as it is. A transform that
      is not gradtx's runs on the tree view of the buffers, so its own masks and labels
      (``optax.masked``, say) stay written against the params tree.

    In every case a leaf sharded over several devices keeps its own buffer, shape and sharding,
    and so does a leaf of ``max_buffer_bytes`` or more; the others are cut, in leaf order, into
    buffers of at most ``max_buffer_bytes``. Buffers are split by every mask value and partition
    label found in ``tx`` (``mask``, ``weight_decay_mask``, ``masked``, ``freeze``,
    ``partition``) and by given dimension numbers (``muon_weight_dimension_numbers``): these
    stay written against the params tree and resolve to one value per buffer.
    ``None`` leaves are kept as structure. The buffers are new arrays, so donating them to
    ``gradtx.step`` leaves ``params`` intact.

    Train on the result instead of the tree: the optimizer state is packed too, and a step is a
    few fused loops that compile in a fraction of a second whatever the number of leaves.

    Args:
      params: a pytree of floating-point arrays (and ``None``). Call ``pack`` outside
        ``jax.jit``, on the concrete params, so that their shardings are known.
      tx: the transform the buffers are for (a gradtx transform or an Optax-style one). Use
        the packed params with this transform (or one with the same capabilities, masks and
        labels); another raises a ``TypeError`` or, for a mask that differs inside a buffer, a
        ``ValueError`` naming two of its leaves.
      max_buffer_bytes: the largest buffer, in bytes (default 8 MiB), in [1, inf).

    Returns:
      A ``Packed``; ``gradtx.unpack`` gives the tree back, ``gradtx.pack_like`` packs
      gradients computed on the tree the same way.

    Raises:
      TypeError: for a non-float leaf (naming its path and dtype), or params already packed.

    Example::

        tx = gradtx.adamw(1e-3)
        packed = gradtx.pack(params, tx)
        state = tx.init(packed)

        @jax.jit
        def train_step(tx, packed, state, x, y):
            loss, grads = jax.value_and_grad(lambda p: loss_fn(gradtx.unpack(p), x, y))(packed)
            updates, state = tx.update(grads, state, packed)
            return gradtx.apply_updates(packed, updates), state, loss

        params = gradtx.unpack(packed)                 # at the end, or to evaluate
    """
    where = "gradtx.pack"
    if isinstance(params, Packed):
        raise TypeError(
            f"{where}: params is already packed; use it as it is (or pack "
            f"gradtx.unpack(params) for another transform)."
        )
    if isinstance(max_buffer_bytes, bool) or not isinstance(max_buffer_bytes, (int, np.integer)):
        raise TypeError(f"{where}: max_buffer_bytes must be an int, got {max_buffer_bytes!r}")
    if max_buffer_bytes < 1:
        raise _checks.HyperparameterError(
            f"{where}: max_buffer_bytes must be in [1, inf), got {max_buffer_bytes}"
        )
    try:
        tx = as_transform(tx)
    except TypeError:
        raise TypeError(
            f"{where}: tx must be a transform (an object with init and update), got "
            f"{type(tx).__name__}"
        ) from None
    _checks.check_float_leaves(where, params, "params")
    leaves, treedef = jax.tree.flatten(params)
    if tx.is_elementwise():
        kind: str | None = "ravel"
    elif tx.is_stackable():
        kind = "stack"
    else:
        kind = None
    if kind is None:
        sigs: list[Any] = [()] * len(leaves)
    else:
        original = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(np.shape(x), jnp.result_type(x)), params
        )
        sigs = leaf_signatures(tx, original)
    layout = _plan(leaves, treedef, kind, sigs, int(max_buffer_bytes))
    buffers = _pack(layout, leaves, where, "params")
    # A buffer that is one of the user's arrays (a leaf kept as it is) is copied, so donating
    # the buffers (gradtx.step) never deletes the params.
    ids = {id(x) for x in leaves}
    buffers = tuple(jnp.copy(b) if id(b) in ids else b for b in buffers)
    return Packed(buffers, layout)


def pack_like(packed: Packed, tree: Any) -> Packed:
    """Packs ``tree`` (gradients, say, shaped like the params) as ``packed`` is packed.

    For gradients computed as a function of the params tree. Each call copies every buffer's
    leaves, so prefer differentiating with respect to the packed params (``gradtx.unpack``
    inside the loss), which returns packed gradients directly.

    Args:
      packed: a ``Packed`` from ``gradtx.pack``.
      tree: a pytree with the params' structure and shapes; the leaves of one buffer must share
        a dtype (it may differ from the params', e.g. float32 gradients of bfloat16 params). A
        ``Packed`` with the same layout is returned as it is.

    Raises:
      TreeMismatchError: ``tree`` differs from the params (naming the first differing path).
    """
    where = "gradtx.pack_like"
    if not isinstance(packed, Packed):
        raise TypeError(
            f"{where}: packed must be a Packed from gradtx.pack, got {type(packed).__name__}"
        )
    layout = packed.layout
    if isinstance(tree, Packed):
        if tree.layout != layout:
            raise _checks.TreeMismatchError(
                f"{where}: tree is packed with another layout ({tree.layout.describe()}); "
                f"expected {layout.describe()}."
            )
        return tree
    leaves, treedef = jax.tree.flatten(tree)
    shapes = tuple(tuple(np.shape(x)) for x in leaves)
    if treedef != layout.treedef or shapes != tuple(s for s, _ in layout.leaf_meta):
        _checks.check_same_tree(where, layout.original(), tree, "params", "tree")
        raise _checks.TreeMismatchError(
            f"{where}: the tree does not match the params that were packed: expected "
            f"{layout.treedef}, got {treedef}."
        )
    _checks.check_float_leaves(where, tree, "tree")
    return Packed(_pack(layout, leaves, where, "tree"), layout)


def unpack(packed: Packed) -> Any:
    """The params tree of ``packed``, by static slicing and reshaping of its buffers.

    Differentiable: the backward pass concatenates (or stacks) the leaves' cotangents into one
    buffer each, so ``jax.grad(lambda p: loss(gradtx.unpack(p)))(packed)`` returns packed
    gradients without a pad or an add per leaf. A ``None`` buffer (one masked out by
    ``gradtx.masked``) gives ``None`` leaves. Buffers with extra leading axes (the output of
    ``jax.vmap`` over a population) give leaves with the same leading axes.
    """
    if not isinstance(packed, Packed):
        raise TypeError(
            f"gradtx.unpack: expected a Packed from gradtx.pack, got {type(packed).__name__}"
        )
    layout = packed.layout
    leaves: list[Any] = [None] * len(layout.leaf_meta)
    for k, ((kind, members, _), buf) in enumerate(zip(layout.entries, packed.buffers)):
        if buf is None:
            continue
        if kind == "leaf":
            leaves[members[0]] = buf
            continue
        if kind == "stack":
            shape = layout.leaf_meta[members[0]][0]
            axis = buf.ndim - len(shape) - 1  # after the leading axes of a vmapped stack
            for i, part in zip(members, jax.lax.split(buf, [1] * len(members), axis)):
                leaves[i] = jnp.squeeze(part, axis)
            continue
        batch = tuple(buf.shape[:-1])  # leading axes of a vmapped population
        parts = jax.lax.split(buf, layout.sizes(k), axis=buf.ndim - 1)
        for i, part in zip(members, parts):
            leaves[i] = part.reshape(batch + layout.leaf_meta[i][0])
    return layout.treedef.unflatten(leaves)
