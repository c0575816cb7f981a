"""Finding and replacing values by name in optimizer states and transforms.

A state is a tree of NamedTuples, dicts and arrays; a transform is a tree of pytree dataclasses
whose fields are its hyperparameters. ``tree_get``, ``tree_set`` and ``tree_get_all_with_path``
look values up by a field name, a dict key or a class name in either, and ``tree_map_params``
maps over the params-shaped parts of a state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from .transforms._masking import ParamsPlaceholder

KeyPath = tuple[Any, ...]


@dataclasses.dataclass(frozen=True)
class NamedTupleKey:
    """A path entry for a field of a NamedTuple (or of a pytree dataclass).

    ``tuple_name`` is the class name and ``name`` the field, so a ``filtering`` function can
    tell ``AdamState.count`` from ``ClipState.count``.
    """

    tuple_name: str
    name: str

    def __str__(self) -> str:
        return f"{self.tuple_name}.{self.name}"


def _is_named_tuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def _is_fields_node(x: Any) -> bool:
    """A node searched by field name: a NamedTuple or a pytree dataclass (a transform)."""
    return _is_named_tuple(x) or (
        dataclasses.is_dataclass(x) and not isinstance(x, type) and hasattr(type(x), "_data_fields")
    )


def _field_names(node: Any) -> tuple[str, ...]:
    return node._fields if _is_named_tuple(node) else type(node)._data_fields


def _children(node: Any) -> list[tuple[Any, Any]]:
    """``(key entry, child)`` for each child of a pytree node (none for a leaf)."""
    if _is_fields_node(node):
        name = type(node).__name__
        return [(NamedTupleKey(name, f), getattr(node, f)) for f in _field_names(node)]
    if isinstance(node, dict):
        return [(jax.tree_util.DictKey(k), v) for k, v in node.items()]
    if node is None:
        return []
    flat, _ = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    if len(flat) == 1 and flat[0][0] == () and flat[0][1] is node:  # a leaf
        return []
    return [(path[0], child) for path, child in flat]


def _key_name(entry: Any) -> Any:
    """The name a key entry is looked up by (a field, a dict key, an index)."""
    if isinstance(entry, NamedTupleKey):
        return entry.name
    if isinstance(entry, jax.tree_util.DictKey):
        return entry.key
    if isinstance(entry, jax.tree_util.GetAttrKey):
        return entry.name
    if isinstance(entry, jax.tree_util.SequenceKey):
        return entry.idx
    if isinstance(entry, jax.tree_util.FlattenedIndexKey):
        return entry.key
    return entry


def _names_key(node: Any) -> bool:
    return isinstance(node, dict) or _is_fields_node(node)


def _search(tree: Any, key: Any, path: KeyPath, out: list[tuple[KeyPath, Any]]) -> None:
    if _is_fields_node(tree) and type(tree).__name__ == key:
        out.append((path, tree))
    for entry, child in _children(tree):
        child_path = (*path, entry)
        if _names_key(tree) and _key_name(entry) == key:
            out.append((child_path, child))
        _search(child, key, child_path, out)


def tree_get_all_with_path(
    tree: Any, key: Any, filtering: Callable[[KeyPath, Any], bool] | None = None
) -> list[tuple[KeyPath, Any]]:
    """Every value in ``tree`` found under ``key``, with its path.

    ``key`` matches a dict key, a field of a NamedTuple (a state), a field of a gradtx transform
    or schedule (a hyperparameter), or the class name of a NamedTuple or transform (then the
    whole node is the value). Values nested in a match are searched too.

    Args:
      tree: a state, a transform, or any pytree.
      key: the key, field or class name to look for.
      filtering: optional ``f(path, value) -> bool`` keeping only some matches. Paths are tuples
        of JAX key entries, with ``NamedTupleKey(tuple_name, name)`` for fields of NamedTuples
        and transforms (``jax.tree_util.keystr`` prints them).

    Returns:
      A list of ``(path, value)``, outer matches first.

    Conventions:
      ``optax.tree_utils.tree_get_all_with_path``, extended to gradtx's pytree dataclasses.
    """
    found: list[tuple[KeyPath, Any]] = []
    _search(tree, key, (), found)
    if filtering is not None:
        found = [(p, v) for p, v in found if filtering(p, v)]
    return found


def tree_get(
    tree: Any,
    key: Any,
    default: Any = None,
    filtering: Callable[[KeyPath, Any], bool] | None = None,
) -> Any:
    """The one value in ``tree`` under ``key``, or ``default`` when there is none::

        gradtx.tree_get(state, "count")              # a state's step count
        gradtx.tree_get(tx, "learning_rate")         # a transform's hyperparameter
        gradtx.tree_get(state, "ScaleByAdamState")   # a whole sub-state by its class name

    Args:
      tree: a state, a transform, or any pytree.
      key: a dict key, a field name or a class name (see ``tree_get_all_with_path``).
      default: returned when nothing matches.
      filtering: optional ``f(path, value) -> bool`` to choose among several matches.

    Raises:
      KeyError: when several values match.

    Conventions:
      ``optax.tree_utils.tree_get``, extended to gradtx's pytree dataclasses.
    """
    found = tree_get_all_with_path(tree, key, filtering)
    if len(found) > 1:
        paths = ", ".join(jax.tree_util.keystr(p) for p, _ in found)
        raise KeyError(
            f"gradtx.tree_get: {len(found)} values match {key!r} (at {paths}); pass filtering= "
            f"to choose one."
        )
    return found[0][1] if found else default


def _with_children(node: Any, new: dict[Any, Any]) -> Any:
    """``node`` with the children named in ``new`` replaced (by key name)."""
    if not new:
        return node
    if _is_named_tuple(node):
        return node._replace(**new)
    if _is_fields_node(node):  # a transform: validated and converted as at construction
        return dataclasses.replace(node, **new)
    if isinstance(node, dict):
        out = dict(node)
        out.update(new)
        return type(node)(out) if type(node) is not dict else out
    leaves, treedef = jax.tree_util.tree_flatten_with_path(node, is_leaf=lambda x: x is not node)
    return treedef.unflatten([new.get(_key_name(p[0]), v) for p, v in leaves])


def _replace(
    node: Any, path: KeyPath, kwargs: dict[str, Any], filtering: Callable[..., bool] | None
) -> Any:
    if (
        _is_fields_node(node)
        and type(node).__name__ in kwargs
        and (filtering is None or filtering(path, node))
    ):
        return kwargs[type(node).__name__]
    new = {}
    for entry, child in _children(node):
        child_path = (*path, entry)
        name = _key_name(entry)
        if (
            _names_key(node)
            and name in kwargs
            and (filtering is None or filtering(child_path, child))
        ):
            new[name] = kwargs[name]
            continue
        replaced = _replace(child, child_path, kwargs, filtering)
        if replaced is not child:
            new[name] = replaced
    return _with_children(node, new)


def tree_set(
    tree: Any, filtering: Callable[[KeyPath, Any], bool] | None = None, /, **kwargs: Any
) -> Any:
    """A copy of ``tree`` with the values under the given keys replaced::

        state = gradtx.tree_set(state, count=jnp.asarray(10))
        tx = gradtx.tree_set(tx, learning_rate=3e-4)    # re-validated like the constructor

    Args:
      tree: a state, a transform, or any pytree.
      filtering: optional ``f(path, value) -> bool``; only matches it accepts are replaced.
      **kwargs: ``key=new_value`` for dict keys, field names or class names (see
        ``tree_get_all_with_path``). Every key must match at least once.

    A transform's field is replaced through ``dataclasses.replace``, so a new hyperparameter
    value is checked and converted as at construction.

    Raises:
      KeyError: when a key matches nothing.

    Conventions:
      ``optax.tree_utils.tree_set``, extended to gradtx's pytree dataclasses.
    """
    for key in kwargs:
        if not tree_get_all_with_path(tree, key, filtering):
            extra = " accepted by filtering" if filtering is not None else ""
            raise KeyError(f"gradtx.tree_set: no value{extra} matches {key!r}")
    return _replace(tree, (), kwargs, filtering)


def tree_map_params(
    initable: Any,
    f: Callable[..., Any],
    state: Any,
    /,
    *rest: Any,
    transform_non_params: Callable[..., Any] | None = None,
    is_leaf: Callable[[Any], bool] | None = None,
) -> Any:
    """Maps ``f`` over every params-shaped tree inside an optimizer state::

        specs = gradtx.tree_map_params(tx, lambda _, spec: spec, state, param_specs,
                                       transform_non_params=lambda _: None)

    Args:
      initable: the transform that made ``state`` (anything with ``init``), or an init
        function ``params -> state``.
      f: called leaf by leaf on each params-shaped tree of the state, with the matching leaves
        of ``rest``.
      state: the state to map over.
      *rest: trees with the params' structure, passed to ``f`` after the state's leaf.
      transform_non_params: applied to every other leaf (counts, scalars); default: kept.
      is_leaf: passed to ``jax.tree.map`` over the params-shaped trees (for example
        ``lambda x: x is None`` to reach the ``None`` that ``masked`` and ``partition`` leave
        at leaves another group owns).

    The params-shaped trees are found by running ``init`` on a placeholder instead of params.

    Conventions:
      ``optax.tree_utils.tree_map_params``: same signature and result.
    """
    placeholder = ParamsPlaceholder()
    private_init = getattr(initable, "_init", None)
    if private_init is not None and hasattr(initable, "_update"):  # a gradtx transform
        with_placeholders = private_init(placeholder)
    elif hasattr(initable, "init"):
        with_placeholders = initable.init(placeholder)
    else:
        with_placeholders = initable(placeholder)

    def visit(marker: Any, value: Any) -> Any:
        if isinstance(marker, ParamsPlaceholder):
            return jax.tree.map(f, value, *rest, is_leaf=is_leaf)
        if transform_non_params is not None:
            return transform_non_params(value)
        return value

    return jax.tree.map(
        visit, with_placeholders, state, is_leaf=lambda x: isinstance(x, ParamsPlaceholder)
    )
