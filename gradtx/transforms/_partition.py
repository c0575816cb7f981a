"""Parameter groups: a different transform per labelled group of leaves (torch's param groups)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping
from typing import Any, NamedTuple

import jax

from .. import _checks
from .._mask import PACKED_RESOLVERS, _is_plain_function
from .._transform import Transform, as_transform, field, pytree_dataclass, static_field
from ._masking import (
    ParamsPlaceholder,
    check_prefix,
    key_path_str,
    mask_extra,
    merge,
    path_matches,
    select,
)


class PartitionState(NamedTuple):
    """One inner state per group label; each has ``None`` at the leaves of other groups."""

    inner_states: dict[Any, Any]


class _StaticLabels:
    """A hashable, static pytree of labels."""

    __slots__ = ("labels", "treedef")

    def __init__(self, tree: Any):
        self.labels, self.treedef = jax.tree.flatten(tree)
        self.labels = tuple(self.labels)
        hash(self.labels)

    def tree(self) -> Any:
        return jax.tree.unflatten(self.treedef, self.labels)

    def __hash__(self) -> int:
        return hash((self.treedef, self.labels))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, _StaticLabels)
            and self.treedef == other.treedef
            and self.labels == other.labels
        )

    def __repr__(self) -> str:
        return repr(self.tree())


class _LabelFn:
    """A per-leaf labelling function ``(path) -> label`` or ``(path, leaf) -> label``."""

    __slots__ = ("fn", "with_leaf")

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.with_leaf = _positional_count(fn) >= 2

    def __call__(self, path: str, leaf: Any) -> Any:
        return self.fn(path, leaf) if self.with_leaf else self.fn(path)

    def __hash__(self) -> int:
        return hash(("_LabelFn", id(self.fn)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _LabelFn) and other.fn is self.fn

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


class _TreeLabelFn:
    """A function ``params -> pytree of labels`` (Optax's callable ``param_labels``)."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[Any], Any]):
        self.fn = fn

    def __call__(self, params: Any) -> Any:
        return self.fn(params)

    def __hash__(self) -> int:
        return hash(("_TreeLabelFn", id(self.fn)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _TreeLabelFn) and other.fn is self.fn

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


def _positional_count(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (2 when it takes ``*args``)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return 1
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 2
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


class PathLabels:
    """``label_by_path``'s labeller: a per-leaf function of the key path string."""

    __slots__ = ("default", "items")

    def __init__(self, items: tuple[tuple[str, Any], ...], default: Any):
        self.items = items
        self.default = default

    def __call__(self, path: str, leaf: Any = None) -> Any:
        for pattern, lab in self.items:
            if path_matches(path, (pattern,)):
                return lab
        if self.default is None:
            raise ValueError(
                f"gradtx.label_by_path: no pattern matches the path {path!r}; patterns are "
                f"{[p for p, _ in self.items]}. Add a pattern or pass default=."
            )
        return self.default

    def __hash__(self) -> int:
        return hash(("PathLabels", self.items, self.default))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, PathLabels)
            and other.items == self.items
            and other.default == self.default
        )

    def __repr__(self) -> str:
        return f"label_by_path({dict(self.items)!r}, default={self.default!r})"


def _canonical_labels(fn: str, name: str, labels: Any) -> Any:
    """The converter of ``param_labels``: a tree of labels, or a function making one."""
    if isinstance(labels, (_StaticLabels, _LabelFn, _TreeLabelFn)):
        return labels
    if isinstance(labels, PathLabels):
        return _LabelFn(labels)
    if callable(labels) and _is_plain_function(labels):
        if _positional_count(labels) >= 2:
            return _LabelFn(labels)
        return _TreeLabelFn(labels)
    return _StaticLabels(labels)


def _transforms_by_label(fn: str, name: str, value: Any) -> dict[Any, Transform]:
    """The converter of ``transforms``: a non-empty dict of transforms, each one converted."""
    if not isinstance(value, Mapping) or not value:
        raise TypeError(
            f"gradtx.{fn}: {name} must be a non-empty dict {{label: transform}}, got "
            f"{type(value).__name__}"
        )
    return {k: as_transform(t, fn, f"{name}[{k!r}]") for k, t in value.items()}


@pytree_dataclass
class Partition(Transform):
    """Routes each leaf to the transform of its label; each group keeps its own state."""

    elementwise = True

    fn_name = "partition"

    transforms: dict[Any, Transform] = field(converter=_transforms_by_label)
    param_labels: Any = static_field(converter=_canonical_labels)
    mask_compatible_extra_args: bool = static_field(False)

    def resolve(self, ref: Any, method: str = "update") -> Any:
        """The full tree of labels for ``ref`` (params or updates), checked against the groups."""
        where = self.where(method)
        for hook in PACKED_RESOLVERS:  # ref packed into buffers: label the user's tree
            per_slot = hook(
                ref, lambda t: jax.tree.leaves(self.resolve(t, method)), where, "labels"
            )
            if per_slot is not None:
                return jax.tree.map(
                    lambda lab, sub: jax.tree.map(lambda _: lab, sub), per_slot, ref
                )
        labels = self.param_labels
        if isinstance(labels, _LabelFn):
            tree = jax.tree_util.tree_map_with_path(lambda p, x: labels(key_path_str(p), x), ref)
        else:
            given = labels(ref) if isinstance(labels, _TreeLabelFn) else labels.tree()
            try:
                tree = jax.tree.map(lambda lab, sub: jax.tree.map(lambda _: lab, sub), given, ref)
            except ValueError:
                check_prefix(where, given, ref, "labels")
                _checks.check_same_tree(where, given, ref, "labels", "params")
                raise
        for path, lab in jax.tree_util.tree_flatten_with_path(tree)[0]:
            if lab not in self.transforms:
                groups = ", ".join(sorted(map(repr, self.transforms)))
                raise ValueError(
                    f"{where}: the leaf at {_checks.path_str(path)} has label {lab!r}, which has "
                    f"no transform; the groups are {groups}."
                )
        return tree

    def _masks(self, ref, method="update"):
        tree = self.resolve(ref, method)
        return {k: jax.tree.map(lambda lab, k=k: lab == k, tree) for k in self.transforms}

    def _init(self, params):
        if isinstance(params, ParamsPlaceholder):
            return PartitionState({k: t._init(params) for k, t in self.transforms.items()})
        masks = self._masks(params, "init")
        return PartitionState(
            {k: t._init(select(masks[k], params)) for k, t in self.transforms.items()}
        )

    def _update(self, updates, state, params, **extra):
        masks = self._masks(params if params is not None else updates)
        out = updates
        new_states = {}
        for k, t in self.transforms.items():
            kw = mask_extra(extra, updates, masks[k]) if self.mask_compatible_extra_args else extra
            u, s = t._update(
                select(masks[k], updates), state.inner_states[k], select(masks[k], params), **kw
            )
            out = merge(masks[k], u, out)
            new_states[k] = s
        return out, PartitionState(new_states)

    def _children(self, state):
        return tuple((str(k), t, state.inner_states[k]) for k, t in self.transforms.items())


def partition(
    transforms: Mapping[Hashable, Any],
    param_labels: Any,
    *,
    mask_compatible_extra_args: bool = False,
) -> Partition:
    """Parameter groups: each leaf is updated by the transform of its label::

        u_leaf <- transforms[label(leaf)]'s update of u_leaf

    torch's ``param_groups`` with their own learning rate, weight decay and schedule::

        tx = gradtx.partition(
            {"decay": gradtx.adamw(3e-4, weight_decay=0.1), "no_decay": gradtx.adam(3e-4)},
            gradtx.label_by_path({"*bias": "no_decay", "*norm*": "no_decay"}, default="decay"),
        )

    Args:
      transforms: ``{label: transform}``; a transform may be any object with init/update.
      param_labels: the label of every leaf: a pytree of labels (full, or a prefix of the params
        tree), a function ``params -> pytree of labels`` (as in Optax), a labeller from
        ``gradtx.label_by_path``, or a per-leaf function ``fn(path, leaf) -> label`` where
        ``path`` reads ``"encoder/layers/0/bias"``. Every label must have a transform.
      mask_compatible_extra_args: give each group the extra arguments of ``update`` that have
        the updates' tree structure masked to its own leaves (other extra arguments reach every
        group unchanged).

    Each group's transform sees ``None`` at the other groups' leaves, so it keeps state only for
    its own. ``gradtx.reset_group(tx, state, label, params)`` re-initializes one group's state and
    leaves the others untouched. Extra arguments (``loss=``) reach every group.

    Conventions:
      ``optax.partition``: same signature, state (``PartitionState(inner_states)``) and numbers.
      ``gradtx.multi_transform`` is this function under Optax's older name.
      torch.optim's ``param_groups`` are the same idea with a list of dicts.
    """
    return Partition(dict(transforms), param_labels, mask_compatible_extra_args)


#: ``partition`` under Optax's older name (``optax.multi_transform``), so that code written for
#: it runs unchanged.
multi_transform = partition


def label_by_path(rules: dict[str, Any], default: Any = None) -> PathLabels:
    """A labeller from path globs for ``partition``: the first matching pattern's label wins.

    ``label_by_path({"*bias": "no_decay", "*norm*": "no_decay"}, default="decay")``. Paths read
    ``"encoder/layers/0/bias"``; patterns are globs (``*`` also spans ``/``) matched
    case-insensitively. Without a default, a path that matches nothing raises an error naming
    it. The labeller is called per leaf as ``labeller(path)``.
    """
    return PathLabels(tuple(rules.items()), default)


def reset_group(tx: Transform, state: Any, label: Any, params: Any) -> Any:
    """``state`` with the state of group ``label`` re-initialized; other groups are untouched.

    Works wherever the ``partition`` sits inside ``tx`` (a chain, a wrapper); every partition
    that has a group ``label`` is reset.
    """
    fresh = tx.init(params)
    found = []

    def fix(old: Any, new: Any) -> Any:
        if isinstance(old, PartitionState) and label in old.inner_states:
            found.append(True)
            groups = dict(old.inner_states)
            groups[label] = new.inner_states[label]
            return PartitionState(groups)
        return old

    out = jax.tree.map(fix, state, fresh, is_leaf=lambda x: isinstance(x, PartitionState))
    if not found:
        raise ValueError(
            f"gradtx.reset_group: no partition in this transform has a group {label!r}"
        )
    return out
