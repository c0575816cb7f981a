"""Masks over parameter leaves: ``masked``, ``freeze`` and key-path helpers.

Masked-out leaves are ``None`` inside the inner transform: the inner transform sees the updates
and params with ``None`` in place of every masked-out leaf, so its state has ``None`` there too
(no buffer, no compute). ``None`` is gradtx's empty-subtree convention everywhere (every map
in ``gradtx._tree`` passes it through), so nested ``masked`` calls, ``partition`` groups and
foreign (Optax) inner transforms all see a plain pytree rather than a special placeholder type.
"""

from __future__ import annotations

import fnmatch
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._checks import TreeMismatchError, path_str
from .._mask import PACKED_RESOLVERS, MaskFn, StaticMask, as_mask, resolve_mask
from .._transform import (
    EmptyState,
    Transform,
    as_child,
    as_optional_child,
    field,
    pytree_dataclass,
    static_field,
)

# --------------------------------------------------------------------------------------------
# Key paths


def key_path_str(path: tuple[Any, ...]) -> str:
    """A key path as ``"encoder/layers/0/bias"`` (dict keys, attribute names and indices)."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return "/".join(parts)


def path_matches(path: str, patterns: tuple[str, ...]) -> bool:
    """Whether ``path`` matches any glob pattern (``*`` spans ``/``; case-insensitive)."""
    low = path.lower()
    return any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns)


class _PathMask:
    """``params -> tree of bools`` from a per-leaf predicate ``(path_str, leaf) -> bool``."""

    def __init__(self, pred: Any, desc: str):
        self.pred = pred
        self.desc = desc  # also the identity: equal descriptions make equal (static) masks

    def __hash__(self) -> int:
        return hash(("_PathMask", self.desc))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _PathMask) and other.desc == self.desc

    def __call__(self, params: Any) -> Any:
        return jax.tree_util.tree_map_with_path(
            lambda p, x: bool(self.pred(key_path_str(p), x)), params
        )

    def __repr__(self) -> str:
        return self.desc


def mask_by_path(*patterns: str, invert: bool = False) -> MaskFn:
    """A mask that is True for leaves whose key path matches any of ``patterns``.

    Paths read ``"encoder/layers/0/bias"``; patterns are globs (``*`` also spans ``/``) matched
    case-insensitively, e.g. ``mask_by_path("*bias", "*norm*")``. ``invert=True`` gives True for
    every leaf that matches none of them.
    """
    pats = tuple(patterns)
    return MaskFn(
        _PathMask(
            lambda path, _: path_matches(path, pats) != invert,
            f"mask_by_path({', '.join(map(repr, pats))}, invert={invert})",
        )
    )


NO_DECAY_PATTERNS = ("*bias*", "*norm*", "*scale*", "*ln_*", "*ln[0-9]*")
"""Path globs ``decay_mask`` excludes by default: biases and normalization parameters."""


def decay_mask(exclude: tuple[str, ...] = NO_DECAY_PATTERNS, min_ndim: int = 2) -> MaskFn:
    """The usual weight-decay mask: no decay on biases and normalization scales.

    True (decay) for a leaf with at least ``min_ndim`` dimensions whose path matches none of the
    ``exclude`` globs; False for everything else (biases and norm scales are 1-D, and are also
    caught by name). Pass it as ``weight_decay_mask=gradtx.decay_mask()``.
    """
    pats = tuple(exclude)
    return MaskFn(
        _PathMask(
            lambda path, x: jnp.ndim(x) >= min_ndim and not path_matches(path, pats),
            f"decay_mask(exclude={pats!r}, min_ndim={min_ndim})",
        )
    )


# --------------------------------------------------------------------------------------------
# Selecting and merging leaves


def select(mask: Any, tree: Any) -> Any:
    """``tree`` with ``None`` in place of every leaf where the full bool ``mask`` is False."""
    if tree is None:
        return None
    return jax.tree.map(lambda keep, x: x if keep else None, mask, tree)


def merge(mask: Any, inside: Any, outside: Any) -> Any:
    """``inside`` where ``mask`` is True, ``outside`` elsewhere (``inside`` may hold ``None``)."""
    return jax.tree.map(lambda keep, o, i: i if keep else o, mask, outside, inside)


def _first_uncovered(paths: list[tuple[Any, ...]], others: list[tuple[Any, ...]]) -> Any:
    """The shortest head of a path in ``paths`` that no path in ``others`` starts with."""
    for path in paths:
        for k in range(1, len(path) + 1):
            head = path[:k]
            if not any(o[:k] == head for o in others):
                return head
    return None


def check_prefix(where: str, prefix: Any, params: Any, what: str) -> None:
    """Raises ``TreeMismatchError`` naming the first params path that the ``what`` tree (a mask
    or labels, full or a prefix of the params) lacks, or the first path it has that the params
    lack. Returns quietly when neither exists."""
    is_leaf = lambda x: x is None
    prefix_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(prefix)[0]]
    param_paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(params, is_leaf=is_leaf)[0]]
    missing = _first_uncovered(param_paths, prefix_paths)
    if missing is not None:
        fn = (
            "a labelling function such as gradtx.label_by_path(..., default=...)"
            if what == "labels"
            else "a function of the params"
        )
        raise TreeMismatchError(
            f"{where}: the {what} tree has no entry for the params at {path_str(missing)}. "
            f"Give that path an entry (or one for a prefix of it), or pass {fn} instead."
        )
    extra = _first_uncovered(prefix_paths, param_paths)
    if extra is not None:
        raise TreeMismatchError(
            f"{where}: the {what} tree has an entry at {path_str(extra)}, which is not in the "
            f"params tree. Remove it, or pass the params the {what} was written for."
        )


class _Packed(Exception):
    """Raised by ``_is_packed``'s probe: a packed-layout hook claimed the params."""


def _is_packed(ref: Any) -> bool:
    """Whether ``ref`` is packed into buffers (a registered layout hook claims it)."""

    def probe(_tree: Any) -> list[Any]:
        raise _Packed

    for hook in PACKED_RESOLVERS:
        try:
            if hook(ref, probe, "", "mask") is not None:
                return True
        except _Packed:
            return True
    return False


def _resolve(mask: Any, ref: Any, where: str) -> Any:
    """``resolve_mask``, naming the params path a mask tree lacks when it does not fit."""
    try:
        return resolve_mask(mask, ref, where)
    except ValueError:
        if isinstance(mask, StaticMask) and not _is_packed(ref):
            check_prefix(where, mask.tree(), ref, "mask")
        raise


# --------------------------------------------------------------------------------------------
# masked


class MaskedState(NamedTuple):
    """``inner_state`` is the inner transform's state with ``None`` at masked-out leaves."""

    inner_state: Any


def mask_extra(extra: dict[str, Any], updates: Any, mask: Any) -> dict[str, Any]:
    """``extra`` with ``None`` at masked-out leaves of every value shaped like ``updates``."""
    structure = jax.tree.structure(updates)
    return {
        k: select(mask, v) if jax.tree.structure(v) == structure else v for k, v in extra.items()
    }


class ParamsPlaceholder:
    """Stands for the params in ``init`` when only the state's layout is wanted
    (``gradtx.tree_map_params``): an empty pytree node that wrappers pass through unmasked."""

    def __repr__(self) -> str:
        return "ParamsPlaceholder()"


jax.tree_util.register_pytree_node(
    ParamsPlaceholder, lambda _: ((), None), lambda _aux, _children: ParamsPlaceholder()
)


@pytree_dataclass
class Masked(Transform):
    """Runs ``inner`` on the leaves where ``mask`` is True; the others pass through unchanged.

    The inner transform sees ``None`` at masked-out leaves (no state, no compute there). Extra
    arguments (``loss=``, ...) are passed to the inner transform as given, or masked like the
    updates when ``mask_compatible_extra_args`` and they are shaped like the updates.
    """

    elementwise = True
    fn_name = "masked"

    inner: Transform = field(converter=as_child)
    mask: Any = static_field(None, converter=as_mask)
    mask_compatible_extra_args: bool = static_field(False)

    def _init(self, params):
        if isinstance(params, ParamsPlaceholder):
            return MaskedState(self.inner._init(params))
        m = _resolve(self.mask, params, self.where("init"))
        return MaskedState(self.inner._init(select(m, params)))

    def _update(self, updates, state, params, **extra):
        ref = params if params is not None else updates
        m = _resolve(self.mask, ref, self.where())
        if self.mask_compatible_extra_args:
            extra = mask_extra(extra, updates, m)
        inner_u, inner_s = self.inner._update(
            select(m, updates), state.inner_state, select(m, params), **extra
        )
        return merge(m, inner_u, updates), MaskedState(inner_s)

    def _children(self, state):
        return (("", self.inner, state.inner_state),)


def masked(inner: Any, mask: Any, *, mask_compatible_extra_args: bool = False) -> Masked:
    """Applies ``inner`` only where ``mask`` is True; other updates pass through unchanged::

        u_leaf <- inner's update   where mask_leaf
        u_leaf <- u_leaf           elsewhere

    Args:
      inner: a gradtx transform (or any object with ``init``/``update``).
      mask: a pytree of bools (full or a prefix of the params), a function from params to one,
        ``gradtx.mask_fn(f)``, or a path helper such as ``gradtx.mask_by_path("*/bias")``. A
        callable pytree of bools (an Equinox module) is a tree, never a function.
      mask_compatible_extra_args: also mask every extra argument of ``update`` that has the
        updates' tree structure (per-leaf values such as a second gradient), so the inner
        transform sees it masked like the updates. Other extra arguments pass unchanged.

    Masked-out leaves are ``None`` in the inner state. Nested ``masked`` calls compose: the inner
    mask sees ``None`` where the outer one masked a leaf out.

    Conventions:
      ``optax.masked``: same signature and numbers; Optax's placeholder for masked-out leaves
      is ``MaskedNode``, gradtx's is ``None``.
    """
    return Masked(inner, mask, mask_compatible_extra_args)


# --------------------------------------------------------------------------------------------
# freeze


@pytree_dataclass
class Freeze(Transform):
    """Sets the updates of frozen leaves to ``-0.0`` (``p + (-0.0) == p`` bit for bit)."""

    elementwise = True
    fn_name = "freeze"

    mask: Any = static_field(None, converter=as_mask)
    inner: Any = field(None, converter=as_optional_child)

    def _frozen(self, ref, method="update"):
        return _resolve(self.mask, ref, self.where(method))

    def _init(self, params):
        if self.inner is None:
            return EmptyState()
        if isinstance(params, ParamsPlaceholder):
            return MaskedState(self.inner._init(params))
        frozen = self._frozen(params, "init")
        train = jax.tree.map(lambda b: not b, frozen)
        return MaskedState(self.inner._init(select(train, params)))

    def _update(self, updates, state, params, **extra):
        frozen = self._frozen(params if params is not None else updates)
        if self.inner is not None:
            train = jax.tree.map(lambda b: not b, frozen)
            inner_u, inner_s = self.inner._update(
                select(train, updates), state.inner_state, select(train, params), **extra
            )
            updates = merge(train, inner_u, updates)
            state = MaskedState(inner_s)
        out = jax.tree.map(
            lambda f, u: jnp.full(jnp.shape(u), -0.0, jnp.result_type(u)) if f else u,
            frozen,
            updates,
        )
        return out, state

    def _children(self, state):
        if self.inner is None:
            return ()
        return (("", self.inner, state.inner_state),)


def freeze(mask: Any, inner: Any = None) -> Freeze:
    """Freezes the leaves where ``mask`` is True::

        u_leaf <- -0.0                              where mask_leaf (frozen)
        u_leaf <- u_leaf, or inner's update         elsewhere

    Without ``inner``, place it last in a chain: frozen leaves get the update ``-0.0``, so
    ``apply_updates`` leaves them bit-identical (``x + (-0.0) == x`` for every float, ``-0.0``
    included), whatever the earlier transforms did (weight decay, momentum). With ``inner``, the
    inner transform runs only on the trainable leaves and keeps no state for frozen ones::

        tx = gradtx.freeze(gradtx.mask_by_path("encoder/*"), gradtx.adamw(1e-3))

    Args:
      mask: True = frozen; any mask form accepted by ``masked``.
      inner: optional transform for the trainable leaves (gradtx's addition).

    Conventions:
      ``optax.freeze(mask)`` (``masked(set_to_zero(), mask)``), with ``-0.0`` for Optax's
      ``0.0``; ``freeze(mask, inner)`` is ``optax.selective_transform(inner,
      freeze_mask=mask)``. In torch, frozen parameters get ``requires_grad=False``.
    """
    return Freeze(mask, inner)


def selective_transform(optimizer: Any, *, freeze_mask: Any) -> Freeze:
    """Runs ``optimizer`` on the trainable leaves only; frozen leaves get zero updates::

        u_leaf <- -0.0                  where freeze_mask_leaf
        u_leaf <- optimizer's update    elsewhere (its state covers these leaves only)

    Args:
      optimizer: the transform for the trainable leaves.
      freeze_mask: True = frozen; any mask form accepted by ``masked`` (keyword only, so it is
        not mistaken for a mask of leaves to train).

    Conventions:
      ``optax.selective_transform``: same signature and numbers (the zero is ``-0.0``, which
      leaves every parameter bit-identical). It is ``gradtx.freeze(freeze_mask, optimizer)``;
      the state is a ``MaskedState`` where Optax's is a ``PartitionState``.
    """
    return Freeze(freeze_mask, optimizer)
