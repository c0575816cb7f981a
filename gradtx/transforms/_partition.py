"""Parameter groups: a different transform per labelled group of leaves (torch's param groups)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from .. import _checks
from .._mask import PACKED_RESOLVERS, _is_plain_function
from .._transform import Transform, as_transform, pytree_dataclass, static_field
from ._masking import check_prefix, key_path_str, merge, path_matches, select


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
        try:
            params = [
                p
                for p in inspect.signature(fn).parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            ]
            self.with_leaf = len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            self.with_leaf = False

    def __call__(self, path: str, leaf: Any) -> Any:
        return self.fn(path, leaf) if self.with_leaf else self.fn(path)

    def __hash__(self) -> int:
        return hash(("_LabelFn", id(self.fn)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _LabelFn) and other.fn is self.fn

    def __repr__(self) -> str:
        return getattr(self.fn, "__qualname__", repr(self.fn))


@pytree_dataclass
class Partition(Transform):
    """Routes each leaf to the transform of its label; each group keeps its own state."""

    elementwise = True

    transforms: dict[Any, Transform]
    labels: Any = static_field()

    def __check_init__(self):
        if not isinstance(self.transforms, dict) or not self.transforms:
            raise TypeError(
                "gradtx.partition: transforms must be a non-empty dict {label: transform}, got "
                f"{type(self.transforms).__name__}"
            )
        object.__setattr__(
            self, "transforms", {k: as_transform(t) for k, t in self.transforms.items()}
        )
        labels = self.labels
        if not isinstance(labels, (_StaticLabels, _LabelFn)):
            if callable(labels) and _is_plain_function(labels):
                labels = _LabelFn(labels)
            else:
                labels = _StaticLabels(labels)
        object.__setattr__(self, "labels", labels)

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
        if isinstance(self.labels, _LabelFn):
            tree = jax.tree_util.tree_map_with_path(
                lambda p, x: self.labels(key_path_str(p), x), ref
            )
        else:
            try:
                tree = jax.tree.map(
                    lambda lab, sub: jax.tree.map(lambda _: lab, sub), self.labels.tree(), ref
                )
            except ValueError:
                check_prefix(where, self.labels.tree(), ref, "labels")
                _checks.check_same_tree(where, self.labels.tree(), ref, "labels", "params")
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
        masks = self._masks(params, "init")
        return PartitionState(
            {k: t._init(select(masks[k], params)) for k, t in self.transforms.items()}
        )

    def _update(self, updates, state, params, **extra):
        masks = self._masks(params if params is not None else updates)
        out = updates
        new_states = {}
        for k, t in self.transforms.items():
            u, s = t._update(
                select(masks[k], updates), state.inner_states[k], select(masks[k], params), **extra
            )
            out = merge(masks[k], u, out)
            new_states[k] = s
        return out, PartitionState(new_states)

    def _children(self, state):
        return tuple((str(k), t, state.inner_states[k]) for k, t in self.transforms.items())


def partition(transforms: dict[Any, Any], labels: Any) -> Partition:
    """Parameter groups: each leaf is updated by the transform of its label.

    torch's ``param_groups`` with their own learning rate, weight decay and schedule::

        tx = gradtx.partition(
            {"decay": gradtx.adamw(3e-4, weight_decay=0.1), "no_decay": gradtx.adam(3e-4)},
            gradtx.label_by_path({"*bias": "no_decay", "*norm*": "no_decay"}, default="decay"),
        )

    Args:
      transforms: ``{label: transform}``.
      labels: a pytree of labels (full, or a prefix of the params tree), or a function called
        for each leaf as ``fn(path)`` or ``fn(path, leaf)``, where ``path`` reads
        ``"encoder/layers/0/bias"``. Every label must have a transform.

    Each group's transform sees ``None`` at the other groups' leaves, so it keeps state only for
    its own. ``gradtx.reset_group(tx, state, label, params)`` re-initializes one group's state and
    leaves the others untouched. Extra arguments (``loss=``) reach every group. Same results as
    ``optax.partition``.
    """
    return Partition(transforms, labels)


def label_by_path(rules: dict[str, Any], default: Any = None) -> Callable[[str], Any]:
    """A labelling function from path globs: the first matching pattern's label wins.

    ``label_by_path({"*bias": "no_decay", "*norm*": "no_decay"}, default="decay")``. Without a
    default, a path that matches nothing raises an error naming it.
    """
    items = tuple(rules.items())

    def label(path: str) -> Any:
        for pattern, lab in items:
            if path_matches(path, (pattern,)):
                return lab
        if default is None:
            raise ValueError(
                f"gradtx.label_by_path: no pattern matches the path {path!r}; patterns are "
                f"{[p for p, _ in items]}. Add a pattern or pass default=."
            )
        return default

    return label


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
