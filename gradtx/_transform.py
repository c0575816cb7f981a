"""The Transform base: a frozen dataclass registered as a pytree, with compiled init/update.

A transform's numeric hyperparameters are pytree leaves and its structural options are static
fields, so one compiled program serves every hyperparameter value, ``vmap`` batches over them and
``jax.grad`` differentiates through them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sys
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol, TypeVar, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from . import _base, _checks, _tree

T = TypeVar("T")

#: Type aliases for annotations, as Optax's: a tree of parameters, a tree of updates shaped like
#: it, and a transform's state (any pytree).
Params = Any
Updates = Any
OptState = Any


# --------------------------------------------------------------------------------------------
# Pytree dataclasses


def static_field(
    default: Any = dataclasses.MISSING,
    *,
    choices: tuple[Any, ...] | None = None,
    check: Any = None,
    converter: Any = None,
    **kwargs: Any,
) -> Any:
    """A dataclass field that is part of the treedef (hashable, never traced).

    ``choices`` lists the valid values of an option (``static_field("raw", choices=("raw",
    "corrected"))``); ``check`` is a range as in ``field`` (for integer options such as a number
    of iterations). Both raise ``HyperparameterError`` at construction. ``converter`` is as in
    ``field`` (for example ``_mask.as_mask``, which turns any accepted mask into its canonical
    hashable form).
    """
    metadata = {"static": True, "choices": choices, "check": check, "converter": converter}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def field(
    default: Any = dataclasses.MISSING,
    *,
    check: Any = None,
    converter: Any = None,
    **kwargs: Any,
) -> Any:
    """A hyperparameter field (a pytree leaf), declared with its valid range.

    Every non-static field of a ``pytree_dataclass`` is converted at construction: a callable
    that is not a schedule becomes a ``FunctionSchedule`` and a Python or NumPy number becomes a
    JAX scalar (so ``jax.jit``, ``eqx.filter_jit`` and ``nnx.jit`` all trace it, and one compile
    serves every value). ``check`` (for example ``_checks.UNIT`` for ``[0, 1)``) runs on the
    value the user gave, before the conversion, and raises ``HyperparameterError`` naming the
    function (the class's ``fn_name``), the argument, the value and the valid range.

    ``converter(fn, name, value)`` runs first, on the value given, and its result is what the
    field holds (``as_child`` makes an inner transform of any ``init``/``update`` object); it
    raises with the same naming as a check when the value cannot be converted.
    """
    metadata = {"check": check, "converter": converter}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


_INT32 = np.iinfo(np.int32)


def _leaf_value(fn: str, name: str, value: Any) -> Any:
    """A hyperparameter as the pytree leaf a transform holds (see ``field``)."""
    if value is None or isinstance(value, (bool, np.bool_, Schedule, Transform)):
        return value
    if isinstance(value, jax.Array):
        return value
    if isinstance(value, (int, np.integer)):
        if not jax.config.jax_enable_x64 and not _INT32.min <= int(value) <= _INT32.max:
            # Step counts beyond int32 (``decay_steps=10**10``): exact as a float up to 2**24
            # times a power of two, and counts saturate at 2**31 - 1 anyway.
            return jnp.asarray(float(value))
        return jnp.asarray(value)
    if isinstance(value, (float, complex, np.number, np.ndarray)):
        return jnp.asarray(value)
    if isinstance(value, str):
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: {name} must be a number, an array or a schedule, got {value!r}"
        )
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_leaf_value(fn, name, v) for v in value)
    if isinstance(value, list):
        return [_leaf_value(fn, name, v) for v in value]
    if isinstance(value, dict):
        return {k: _leaf_value(fn, name, v) for k, v in value.items()}
    if callable(value) and not hasattr(value, "init"):
        return FunctionSchedule(value)
    return value


def _convert_fields(self: Any) -> None:
    """Runs at construction: declared checks on the given values, then the leaf conversion."""
    cls = type(self)
    # An instance's own ``fn`` field (one class behind several factories) names it first.
    fn = getattr(self, "fn", "") or getattr(cls, "fn_name", "") or cls.__name__
    for f in dataclasses.fields(self):
        converter = f.metadata.get("converter")
        if converter is not None:
            object.__setattr__(self, f.name, converter(fn, f.name, getattr(self, f.name)))
    for f in dataclasses.fields(self):
        choices = f.metadata.get("choices")
        if choices is not None:
            _checks.check_choice(fn, f.name, getattr(self, f.name), choices)
        check = f.metadata.get("check")
        if check is not None:  # skips schedules and tracers: only concrete values are checked
            check(fn, f.name, getattr(self, f.name))
    user = getattr(cls, "_check_init", None)
    if user is not None:
        user(self)
    for f in dataclasses.fields(self):
        if not f.metadata.get("static", False):
            value = getattr(self, f.name)
            object.__setattr__(self, f.name, _leaf_value(fn, f.name, value))


def pytree_dataclass(cls: type[T]) -> type[T]:
    """Makes ``cls`` a frozen dataclass registered as a pytree.

    Fields declared with ``static_field`` go into the treedef; all others are children
    (hyperparameters), converted at construction as ``field`` describes. Children may be numbers,
    arrays, ``None``, schedules or other transforms. A ``__check_init__(self)`` method (or a
    ``__post_init__``) runs after the declared checks, for checks across fields. Unflattening
    bypasses ``__init__``, so conversion and validation run only when users construct objects.
    """
    own_check = cls.__dict__.get("__check_init__") or cls.__dict__.get("__post_init__")
    if own_check is not None:
        cls._check_init = own_check  # type: ignore[attr-defined]
    cls.__post_init__ = _convert_fields  # type: ignore[attr-defined]
    cls = dataclasses.dataclass(frozen=True, repr=False, eq=False)(cls)
    fields = dataclasses.fields(cls)
    data = tuple(f.name for f in fields if not f.metadata.get("static", False))
    meta = tuple(f.name for f in fields if f.metadata.get("static", False))
    keys = tuple(jax.tree_util.GetAttrKey(n) for n in data)

    def flatten_with_keys(obj):
        return (
            tuple(zip(keys, (getattr(obj, n) for n in data))),
            tuple(getattr(obj, n) for n in meta),
        )

    def flatten(obj):
        return tuple(getattr(obj, n) for n in data), tuple(getattr(obj, n) for n in meta)

    def unflatten(aux, children):
        obj = object.__new__(cls)
        for n, v in zip(data, children):
            object.__setattr__(obj, n, v)
        for n, v in zip(meta, aux):
            object.__setattr__(obj, n, v)
        return obj

    jax.tree_util.register_pytree_with_keys(cls, flatten_with_keys, unflatten, flatten)
    cls._data_fields = data  # type: ignore[attr-defined]
    cls._static_fields = meta  # type: ignore[attr-defined]
    return cls


def _repr_value(v: Any) -> str:
    if isinstance(v, (jax.Array, np.ndarray)) and not isinstance(v, jax.core.Tracer):
        arr = np.asarray(v)
        if arr.ndim == 0:
            return str(arr[()])  # NumPy's shortest repr for the dtype: 0.1, not 0.100000001
        return f"{arr.dtype}{list(arr.shape)}"
    if isinstance(v, jax.core.Tracer):
        return f"Traced<{v.dtype}{list(v.shape)}>"
    if isinstance(v, tuple) and any(isinstance(x, Transform) for x in v):
        return "(" + ", ".join(_repr_value(x) for x in v) + ")"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k!r}: {_repr_value(x)}" for k, x in v.items()) + "}"
    if callable(v) and hasattr(v, "__name__") and not isinstance(v, (Transform, Schedule)):
        return getattr(v, "__qualname__", v.__name__)
    return repr(v)


class _ReprMixin:
    #: The public name that validation errors give (``gradtx.<fn_name>: ...``); the class name
    #: when empty.
    fn_name = ""
    _check_init = None

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.repr:
                continue
            v = getattr(self, f.name)
            is_static = f.metadata.get("static", False)
            if is_static and f.default is not dataclasses.MISSING and _same_default(v, f.default):
                continue
            if v is None and not is_static:
                continue
            parts.append(f"{f.name}={_repr_value(v)}")
        return f"{type(self).__name__}({', '.join(parts)})"


def _same_default(v: Any, default: Any) -> bool:
    try:
        if v is default:
            return True
        if isinstance(v, (jax.Array, np.ndarray)):
            return False
        return bool(type(v) is type(default) and v == default)
    except Exception:
        return False


# --------------------------------------------------------------------------------------------
# Schedules (the base lives here because every transform resolves them)


class Schedule(_ReprMixin):
    """A pytree ``count -> value``. Subclasses are ``pytree_dataclass``es.

    ``count`` is the number of updates applied before this one, so the first update uses
    ``schedule(0)``.
    """

    def __call__(self, count: Any) -> jax.Array:  # pragma: no cover - abstract
        raise NotImplementedError


@pytree_dataclass
class FunctionSchedule(Schedule):
    """Wraps a plain Python callable ``count -> value``, held static (not traced)."""

    fn: Callable[[Any], Any] = static_field()

    def __call__(self, count: Any) -> jax.Array:
        return jnp.asarray(self.fn(count))


#: A hyperparameter: a number, an array, a ``Schedule`` or any callable ``count -> value``.
ScalarOrSchedule = float | jax.Array | Schedule | Callable[[Any], Any]
#: A mask: a tree of booleans shaped like the params (or a prefix of it), or a function
#: ``params -> mask``; ``None`` for no mask.
MaskOrFn = Any | Callable[[Params], Any] | None


def as_schedule(value: Any) -> Any:
    """Leaves numbers, arrays and schedules alone; wraps any other callable as a schedule."""
    if isinstance(value, (Schedule, Transform)) or value is None:
        return value
    if isinstance(value, (int, float, np.number, np.ndarray, jax.Array)):
        return value
    if callable(value):
        return FunctionSchedule(value)
    return value


def value_at(value: Any, count: Any) -> Any:
    """The value of a hyperparameter at ``count``: calls schedules, returns numbers as they are."""
    if isinstance(value, Schedule):
        return value(count)
    return value


def is_scheduled(value: Any) -> bool:
    return isinstance(value, Schedule)


# --------------------------------------------------------------------------------------------
# Transforms


class EmptyState(NamedTuple):
    """The state of a stateless transform."""


class CountState(NamedTuple):
    """The state of a transform that only counts updates (for its schedules)."""

    count: jax.Array


def schedule_count(tx: Any) -> CountState | EmptyState:
    """The initial state of a transform whose only state is the count its schedules read: a
    count where some hyperparameter is a schedule, nothing where all are values (Optax's
    ``scale_by_schedule`` and ``scale`` states)."""
    scheduled = any(is_scheduled(getattr(tx, n)) for n in getattr(tx, "_data_fields", ()))
    return CountState(jnp.zeros((), jnp.int32)) if scheduled else EmptyState()


def count_of(state: Any) -> Any:
    """The count a ``schedule_count`` state holds (``None`` for no count: no schedule reads it)."""
    return state.count if isinstance(state, CountState) else None


def next_count(state: Any) -> Any:
    """A ``schedule_count`` state one update later."""
    return CountState(_tree.safe_increment(state.count)) if isinstance(state, CountState) else state


@runtime_checkable
class GradientTransformationLike(Protocol):
    def init(self, params: Params) -> OptState: ...

    def update(self, updates: Updates, state: OptState, params: Params = None) -> Any: ...


@functools.partial(jax.jit, static_argnums=(2,), keep_unused=True)
def _compiled_init(tx: Transform, params: Params, shardings: tuple[Any, ...] | None) -> OptState:
    leaves = jax.tree.leaves(params)
    with _tree.param_shardings(leaves, shardings):
        return tx._init(params)


class _Static:
    """Extra arguments that are not arrays (a ``value_fn``, a string), held static by ``jit``.

    Hashed by value where possible, else by identity, so the same function object reuses the
    compiled program.
    """

    def __init__(self, items: dict[str, Any]):
        self.items = items
        self._key = tuple(sorted((k, _hash_key(v)) for k, v in items.items()))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, _Static) and self._key == other._key


def _hash_key(v: Any) -> Any:
    try:
        hash(v)
    except TypeError:
        return ("id", id(v))
    return ("value", type(v), v)


def _is_array_tree(value: Any) -> bool:
    leaves = jax.tree.leaves(value)
    return bool(leaves) and all(
        isinstance(x, (jax.Array, np.ndarray, np.number, int, float, complex))
        and not isinstance(x, bool)
        for x in leaves
    )


def split_extra(extra: dict[str, Any]) -> tuple[dict[str, Any], _Static]:
    """Extra ``update`` arguments as (traced arrays, static rest)."""
    dynamic = {k: v for k, v in extra.items() if _is_array_tree(v)}
    static = {k: v for k, v in extra.items() if k not in dynamic}
    return dynamic, _Static(static)


def _traced_update(
    tx: Transform, updates: Updates, state: OptState, params: Params, extra: dict[str, Any]
) -> tuple[Updates, OptState]:
    # Checked while tracing only, so they cost nothing per step. Transforms that keep per-leaf
    # state also check the updates against it (naming the buffer).
    where = tx.where()
    _checks.check_float_leaves(where, updates, "updates")
    _check_layout(tx, updates, where)
    if params is not None:
        _checks.check_same_tree(
            where, tx._params_like_updates(params), updates, "params", "updates"
        )
    try:
        return tx._update(updates, state, params, **extra)
    except (ValueError, TypeError) as err:
        if params is not None and not isinstance(err, _checks.TreeMismatchError):
            _explain_state_mismatch(where, tx, state, params, err)
        raise


def _update_with_extra(
    tx: Transform,
    updates: Updates,
    state: OptState,
    params: Params,
    dynamic: dict[str, Any],
    static: _Static,
) -> tuple[Updates, OptState]:
    return _traced_update(tx, updates, state, params, {**dynamic, **static.items})


#: An eager ``update``: one compiled program per configuration, tree structure and shapes.
_compiled_update = jax.jit(_update_with_extra, static_argnums=(5,))
#: An ``update`` inside the caller's trace: the same function, inlined into the caller's
#: program. jax.jit's cache keeps its trace, so a new transform of the same configuration (another
#: learning rate) or a new step function over the same tree reuses it instead of tracing again.
_inlined_update = jax.jit(_update_with_extra, static_argnums=(5,), inline=True)


def _check_layout(tx: Transform, tree: Any, where: str) -> None:
    """A tree packed by ``gradtx.pack`` must be laid out for a transform like ``tx`` (its
    ``_gradtx_check_layout`` hook raises ``TypeError`` otherwise)."""
    check = getattr(type(tree), "_gradtx_check_layout", None)
    if check is not None:
        check(tree, tx, where)


def _under_trace(*trees: Any) -> bool:
    """Whether any leaf is a tracer: the call is inside the user's ``jit``, ``vmap`` or ``grad``."""
    return any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(trees))


def _explain_state_mismatch(where: str, tx: Transform, state: Any, params: Any, err: Exception):
    """After ``_update`` failed while tracing: if ``state`` is not shaped like
    ``tx.init(params)``, says so (naming the path) instead of the low-level error."""
    try:
        expected = tx._init(params)  # traced alongside; never run, since we raise
    except Exception:
        return
    diff = _checks.first_difference(expected, state)
    if diff is None:
        return
    path, exp, got = diff
    raise _checks.TreeMismatchError(
        f"{where}: the state does not match this optimizer's init(params) at {path}: expected "
        f"{exp}, got {got}. Pass the state that init returned for these params (a state from "
        f"another model or another optimizer configuration does not fit)."
    ) from err


def _shardings_of(params: Params) -> tuple[Any, ...] | None:
    """Each leaf's sharding when any leaf lives on more than one device, else ``None``."""
    leaves = jax.tree.leaves(params)
    out = []
    spread = False
    for leaf in leaves:
        sharding = getattr(leaf, "sharding", None)
        if isinstance(leaf, jax.core.Tracer) or sharding is None:
            out.append(None)
            continue
        if len(sharding.device_set) > 1:
            spread = True
        out.append(sharding)
    return tuple(out) if spread else None


class Transform(_ReprMixin):
    """Base class of every gradtx transform.

    Subclasses are ``pytree_dataclass``es and implement ``_init(params)`` and
    ``_update(updates, state, params, **extra)``. The public ``init`` and ``update`` run them
    compiled with ``jax.jit``, passing ``self`` as an ordinary pytree argument, so changing a
    hyperparameter's value never recompiles. The protocol is Optax's:

        state = tx.init(params)
        updates, state = tx.update(grads, state, params, **extra)
    """

    def init(self, params: Params) -> OptState:
        """Creates the optimizer state for ``params`` (compiled; buffers keep the params' sharding)."""
        _checks.check_float_leaves(f"gradtx.{type(self).__name__}.init", params, "params")
        _check_layout(self, params, f"gradtx.{type(self).__name__}.init")
        if _under_trace(self, params):  # inside the caller's jit: trace inline
            return self._init(params)
        return _compiled_init(self, params, _shardings_of(params))

    def update(
        self, updates: Updates, state: OptState, params: Params = None, **extra: Any
    ) -> tuple[Updates, OptState]:
        """Transforms ``updates`` (gradients) and returns ``(updates, new_state)``.

        Called eagerly, it runs one compiled program (cached per tree structure and shapes).
        Inside the caller's ``jax.jit`` (or ``vmap``, ``grad``) it goes inline into the
        caller's program, so XLA compiles one flat program instead of a nested call; its trace
        is kept per configuration, tree structure and shapes, so a new transform with other
        hyperparameter values or a new step function reuses it.
        """
        dynamic, static = split_extra(extra)
        if not _under_trace(self, updates, state, params):
            return _compiled_update(self, updates, state, params, dynamic, static)
        if static.items:  # a function argument may close over the caller's tracers: trace it here
            return _traced_update(self, updates, state, params, extra)
        return _inlined_update(self, updates, state, params, dynamic, static)

    #: Capabilities each class declares; the layout layer and the registry read them, and
    #: combinators (chain, masked, partition, wrappers) hold them when all their parts do.
    #: ``elementwise``: every output element depends only on the same element of the gradient,
    #: state and params (or on sums over all elements), so any packing of the leaves into
    #: buffers gives the tree's numbers.
    elementwise = False
    #: ``stackable``: per-leaf statistics (norms, factored moments, matrix functions) computed
    #: per slice when equal-shape leaves are stacked along a new leading axis.
    stackable = False

    def parts(self) -> tuple[Transform, ...]:
        """The transforms this one holds among its hyperparameter fields (for combinators)."""
        out: list[Transform] = []

        def visit(v: Any) -> None:
            if isinstance(v, Transform):
                out.append(v)
            elif isinstance(v, (tuple, list)):
                for x in v:
                    visit(x)
            elif isinstance(v, dict):
                for x in v.values():
                    visit(x)

        for name in getattr(self, "_data_fields", ()):
            visit(getattr(self, name))
        return tuple(out)

    def is_elementwise(self) -> bool:
        """True when this transform and every part of it are ``elementwise``."""
        return type(self).elementwise and all(t.is_elementwise() for t in self.parts())

    def is_stackable(self) -> bool:
        """True when every part is elementwise or runs leaf by leaf on stacked buffers."""
        own = type(self).elementwise or type(self).stackable
        return own and all(t.is_stackable() for t in self.parts())

    def _params_like_updates(self, params: Params) -> Params:
        """The part of ``params`` shaped like the updates: all of it, except in wrappers whose
        params hold more than the trained weights (lookahead's ``fast``/``slow`` pair)."""
        return params

    # Subclasses override these two.
    def _init(self, params: Params) -> OptState:
        return EmptyState()

    def _update(
        self, updates: Updates, state: OptState, params: Params, **extra: Any
    ) -> tuple[Updates, OptState]:  # pragma: no cover - abstract
        raise NotImplementedError

    # Logging hooks, read by ``gradtx.current_hyperparams``.
    def _hyperparams(self, state: OptState) -> dict[str, Any]:
        """The hyperparameter values this transform used at its last step.

        The default reports ``learning_rate`` (always) and every scheduled field, evaluated at
        ``state.count - 1`` (the count the last step used; 0 before the first step). A transform
        whose effective value lives in its state (a plateau scale, say) overrides this.
        """
        count = getattr(state, "count", None)
        if callable(count):  # tuple.count on a state without a count field
            count = None
        last = None if count is None else jnp.maximum(jnp.asarray(count) - 1, 0)
        out: dict[str, Any] = {}
        for name in getattr(self, "_data_fields", ()):
            v = getattr(self, name)
            if isinstance(v, Schedule):
                if last is not None:
                    out[name] = v(last)
            elif name == "learning_rate" and v is not None:
                out[name] = jnp.asarray(v)
        return out

    def _children(self, state: OptState) -> tuple[tuple[str, Transform, OptState], ...]:
        """``(label, inner transform, its state)`` for each inner transform (combinators)."""
        return ()

    @property
    def name(self) -> str:
        return type(self).__name__

    def where(self, method: str = "update") -> str:
        return f"gradtx.{type(self).__name__}.{method}"


@pytree_dataclass
class Wrapped(Transform):
    """Holds any object with ``init``/``update`` (an Optax transform, say) as a static field."""

    inner: Any = static_field()

    # A foreign transform may hold masks or labels written against the params tree (an
    # ``optax.masked``, say), so on packed buffers (``gradtx.pack`` keeps every leaf as it is for
    # it) it runs on their tree view, and its state is the tree's.
    def _init(self, params: Params) -> OptState:
        return self.inner.init(_tree_view(params))

    def _update(self, updates, state, params, **extra):
        extra = _forwarded(self.inner, extra)
        if getattr(type(updates), "_gradtx_tree", None) is None:
            return self.inner.update(updates, state, params, **extra)
        out, state = self.inner.update(updates._gradtx_tree(), state, _tree_view(params), **extra)
        return updates._gradtx_like(out), state

    def _hyperparams(self, state: OptState) -> dict[str, Any]:
        """The values in the ``hyperparams`` dicts of the foreign state (the states of Optax's
        ``inject_hyperparams``, in an ``optax.chain`` too); a name found twice keeps the first."""
        out: dict[str, Any] = {}
        for found in _tree.find_fields(state, "hyperparams"):
            if isinstance(found, dict):
                for k, v in found.items():
                    out.setdefault(k, v)
        return out

    def __repr__(self) -> str:
        return f"Wrapped({type(self.inner).__name__})"


def _tree_view(tree: Any) -> Any:
    """The params tree of packed buffers (``gradtx.pack``); any other tree as it is."""
    view = getattr(type(tree), "_gradtx_tree", None)
    return tree if view is None else view(tree)


def _takes_no_extra_args(tx: Any) -> bool:
    """Whether ``tx`` is a ``GradientTransformation`` pair without extra-argument support
    (gradtx's or Optax's; Optax is looked up only if it is already imported)."""
    kinds = [(_base.GradientTransformation, _base.GradientTransformationExtraArgs)]
    optax = sys.modules.get("optax")
    plain = getattr(optax, "GradientTransformation", None)
    extra = getattr(optax, "GradientTransformationExtraArgs", None)
    if isinstance(plain, type) and isinstance(extra, type):
        kinds.append((plain, extra))
    return any(isinstance(tx, p) and not isinstance(tx, e) for p, e in kinds)


def _forwarded(tx: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """The extra ``update`` arguments a foreign transform ``tx`` receives.

    A ``GradientTransformation`` pair receives none, as ``optax.with_extra_args_support`` has
    it; a ``GradientTransformationExtraArgs`` and any other object receive those its ``update``
    takes (see ``_accepted``).
    """
    if not extra or _takes_no_extra_args(tx):
        return {}
    return _accepted(tx.update, extra)


def _accepted(fn: Callable[..., Any], extra: dict[str, Any]) -> dict[str, Any]:
    """The extra arguments ``fn`` takes: all of them if it has ``**kwargs``, else those it names."""
    if not extra:
        return extra
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return extra
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return extra
    names = {p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL}
    return {k: v for k, v in extra.items() if k in names}


def as_transform(tx: Any, fn: str = "chain", name: str = "transforms") -> Transform:
    """Returns ``tx`` if it is a gradtx transform, else wraps an ``init``/``update`` object.

    ``fn`` and ``name`` are the function and argument that the error for anything else names.
    """
    if isinstance(tx, Transform):
        return tx
    if hasattr(tx, "init") and hasattr(tx, "update"):
        return Wrapped(tx)
    raise TypeError(
        f"gradtx.{fn}: {name} must be a transform (an object with init and update), got "
        f"{type(tx).__name__}: {tx!r}"
    )


def as_child(fn: str, name: str, value: Any) -> Transform:
    """The converter of a field that holds an inner transform (see ``field``)."""
    return as_transform(value, fn, name)


def as_optional_child(fn: str, name: str, value: Any) -> Transform | None:
    """``as_child`` for a field whose default ``None`` means no inner transform."""
    return None if value is None else as_transform(value, fn, name)


@pytree_dataclass
class Chain(Transform):
    """Applies transforms in order; the state is a tuple with one entry per transform."""

    elementwise = True

    transforms: tuple[Transform, ...] = ()

    def _init(self, params):
        return tuple(t._init(params) for t in self.transforms)

    def _update(self, updates, state, params, **extra):
        if not isinstance(state, tuple) or len(state) != len(self.transforms):
            got = len(state) if isinstance(state, tuple) else type(state).__name__
            raise _checks.TreeMismatchError(
                f"gradtx.Chain.update: the state has {got} entries but the chain has "
                f"{len(self.transforms)} transforms; pass the state returned by this chain's init."
            )
        new_state = []
        for t, s in zip(self.transforms, state):
            updates, s = t._update(updates, s, params, **extra)
            new_state.append(s)
        return updates, tuple(new_state)

    def _children(self, state):
        return tuple((str(i), t, s) for i, (t, s) in enumerate(zip(self.transforms, state)))

    def __repr__(self) -> str:
        return "Chain(" + ", ".join(repr(t) for t in self.transforms) + ")"


def chain(*args: Any) -> Chain:
    """Composes transforms left to right: ``chain(a, b).update(g) == b.update(a.update(g))``.

    Update rule::

        (u, s_1) <- a_1.update(g, s_1, params);  (u, s_2) <- a_2.update(u, s_2, params);  ...

    Args:
      *args: the transforms, applied in order. Any object with ``init`` and ``update`` (an Optax
        ``GradientTransformation``, say) may be one; it is held as a static field.

    The state is a tuple with one entry per transform. Extra arguments of ``update``
    (``value=``, ``loss=``) reach every transform that takes them. Nested chains are kept as
    given (chain is associative: ``chain(a, chain(b, c))`` and ``chain(chain(a, b), c)`` give
    the same updates).

    Conventions:
      ``optax.chain``'s signature, state layout and numbers. torch.optim has no counterpart
      (its optimizers are single classes).
    """
    return Chain(tuple(as_transform(t, "chain", f"args[{i}]") for i, t in enumerate(args)))


@pytree_dataclass
class NamedChain(Transform):
    """Applies transforms in order; the state is a dict ``{name: state}``."""

    elementwise = True

    transforms: tuple[Transform, ...] = ()
    names: tuple[str, ...] = static_field(())

    def _init(self, params):
        return {n: t._init(params) for n, t in zip(self.names, self.transforms)}

    def _update(self, updates, state, params, **extra):
        if not isinstance(state, dict) or set(state) != set(self.names):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise _checks.TreeMismatchError(
                f"gradtx.named_chain: the state has entries {got} but the chain's names are "
                f"{list(self.names)}; pass the state returned by this chain's init."
            )
        new_state = {}
        for n, t in zip(self.names, self.transforms):
            updates, new_state[n] = t._update(updates, state[n], params, **extra)
        return updates, new_state

    def _children(self, state):
        return tuple((n, t, state[n]) for n, t in zip(self.names, self.transforms))

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {t!r}" for n, t in zip(self.names, self.transforms))
        return f"NamedChain({inner})"


def named_chain(*args: tuple[str, Any]) -> NamedChain:
    """A chain whose state is a dict keyed by a name per transform.

    Update rule: as ``chain``; ``state[name]`` is the state of the transform named ``name``.

    Args:
      *args: ``(name, transform)`` pairs, applied in order; names are unique strings. A
        transform may be any object with ``init`` and ``update``.

    Conventions:
      ``optax.named_chain``: same signature and state (a dict, read as ``state["adam"]``).
    """
    names, txs = [], []
    for item in args:
        if not (isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise TypeError(
                f"gradtx.named_chain: each argument must be a (name, transform) pair with a "
                f"string name, got {item!r}"
            )
        names.append(item[0])
        txs.append(as_transform(item[1], "named_chain", f"transform {item[0]!r}"))
    if len(set(names)) != len(names):
        raise ValueError(f"gradtx.named_chain: names must be unique, got {names}")
    return NamedChain(tuple(txs), tuple(names))


@pytree_dataclass
class Identity(Transform):
    """Leaves updates unchanged."""

    elementwise = True

    def _update(self, updates, state, params, **extra):
        return updates, state


def identity() -> Identity:
    """A stateless transform that returns the updates unchanged: ``u <- u``.

    Conventions:
      ``optax.identity``. Not to be confused with ``set_to_zero``, which leaves the *params*
      unchanged.
    """
    return Identity()


def _scaled(u: Any, f: Any) -> Any:
    return (u.astype(f.dtype) * f).astype(u.dtype)


#: One trace per leaf signature in the process, inlined (see ``_kernel._INLINED``).
_scaled_inlined = jax.jit(_scaled, inline=True)


def scale_tree(updates: Updates, factor: Any) -> Updates:
    """``factor * updates``, computed in at least float32 and cast back to each leaf's dtype."""
    # The factor is converted once per dtype rather than once per leaf (fewer traced ops).
    factors = functools.cache(lambda cd: _tree.hp(factor, cd))
    return jax.tree.map(
        lambda u: _scaled_inlined(u, factors(_tree.compute_dtype(u.dtype))), updates
    )


@pytree_dataclass
class Scale(Transform):
    """``u <- step_size * u``."""

    elementwise = True

    step_size: Any = 1.0

    def _update(self, updates, state, params, **extra):
        return scale_tree(updates, self.step_size), state


def scale(step_size: Any) -> Scale:
    """Multiplies the updates by a fixed factor: ``u <- step_size * u``.

    Args:
      step_size: any real number or array broadcastable to every leaf (traced values are
        fine: it is a leaf of the transform).

    The product is computed in at least float32 and cast back to each leaf's dtype.

    Conventions:
      ``optax.scale``; no sign flip (``scale(-lr)`` is plain gradient descent).
    """
    return Scale(step_size)


@pytree_dataclass
class ScaleByLearningRate(Transform):
    """``u <- -learning_rate(count) * u`` (``+`` with ``flip_sign=False``): the step that flips
    the sign.

    ``learning_rate`` is a float, an array (for example a batch of rates under ``vmap``) or a
    schedule evaluated at the number of updates applied before this one.
    """

    elementwise = True

    fn_name = "scale_by_learning_rate"

    learning_rate: Any = field(1e-3, check=_checks.NONNEGATIVE)
    flip_sign: bool = static_field(True)

    def _init(self, params):
        return schedule_count(self)

    def _update(self, updates, state, params, **extra):
        lr = value_at(self.learning_rate, count_of(state))
        if jnp.ndim(lr) != 0:
            raise _checks.HyperparameterError(
                f"gradtx.scale_by_learning_rate: learning_rate has shape {jnp.shape(lr)}, but a "
                f"step uses one rate; to train one model per rate, jax.vmap over the transform "
                f"(in_axes=gradtx.batch_axes(tx)) so each call sees a scalar."
            )
        factor = -lr if self.flip_sign else lr
        return scale_tree(updates, factor), next_count(state)


def scale_by_learning_rate(
    learning_rate: ScalarOrSchedule = None, *, flip_sign: bool = True
) -> ScaleByLearningRate | Identity:
    """Scales the updates by the learning rate, with the sign flipped for descent::

        u_t <- -learning_rate(t) * u_t        (flip_sign=True)
        u_t <- learning_rate(t) * u_t         (flip_sign=False)

    Args:
      learning_rate: >= 0; a float, an array or a schedule (called with the number of updates
        applied before this one). ``None`` means no scaling: the transform is ``identity()``.
      flip_sign: multiply by ``-learning_rate`` (default) or by ``learning_rate``.

    Conventions:
      ``optax.scale_by_learning_rate``: same signature, defaults, numbers and state: a step
      count for a schedule (Optax's ``scale_by_schedule`` state), none for a value.
    """
    if learning_rate is None:
        return Identity()
    return ScaleByLearningRate(learning_rate, flip_sign)


def apply_updates(params: Params, updates: Updates) -> Params:
    """``params + updates``, each result cast back to its parameter's dtype.

    Update rule::

        p <- (p + u).astype(p.dtype)

    ``None`` leaves pass through. The sum is computed in the wider of the two dtypes.

    Conventions:
      ``optax.apply_updates`` (which also casts back to the parameter's dtype); in torch the
      optimizer adds in place.
    """
    _checks.check_same_tree("gradtx.apply_updates", params, updates, "params", "updates")

    def add(p, u):
        p = jnp.asarray(p)
        cd = _tree.promote(p.dtype, jnp.result_type(u))
        return (p.astype(cd) + jnp.asarray(u).astype(cd)).astype(p.dtype)

    return jax.tree.map(add, params, updates)


def incremental_update(new_tensors: Params, old_tensors: Params, step_size: Any) -> Params:
    """A moving average of two trees (a Polyak target-network update)::

        out = step_size * new + (1 - step_size) * old

    Args:
      new_tensors: the latest values.
      old_tensors: the running values, same tree as ``new_tensors``.
      step_size: the weight of the new values, usually in [0, 1].

    ``None`` leaves of ``new_tensors`` stay ``None``. Results keep ``old_tensors``' dtypes,
    computed in at least float32.

    Conventions:
      ``optax.incremental_update``.
    """
    _checks.check_same_tree(
        "gradtx.incremental_update", old_tensors, new_tensors, "old_tensors", "new_tensors"
    )

    def mix(new, old):
        if new is None:
            return None
        new, old = jnp.asarray(new), jnp.asarray(old)
        cd = _tree.compute_dtype(new.dtype, old.dtype)
        a = _tree.hp(step_size, cd)
        return (a * new.astype(cd) + (1 - a) * old.astype(cd)).astype(old.dtype)

    return jax.tree.map(mix, new_tensors, old_tensors, is_leaf=lambda x: x is None)


def periodic_update(
    new_tensors: Params, old_tensors: Params, steps: Any, update_period: Any
) -> Params:
    """``new_tensors`` on every ``update_period``-th step, ``old_tensors`` otherwise::

        out = new if steps % update_period == 0 else old

    Args:
      new_tensors: the latest values.
      old_tensors: the values kept between updates, same tree as ``new_tensors``.
      steps: the current step (an integer, traced values are fine).
      update_period: the period, an integer >= 1.

    Conventions:
      ``optax.periodic_update`` (a target network copied every ``update_period`` steps).
    """
    _checks.COUNT("periodic_update", "update_period", update_period)
    take = jnp.mod(steps, update_period) == 0
    return jax.lax.cond(take, lambda: new_tensors, lambda: old_tensors)


def batch_axes(tx: Any, axis: int = 0) -> Any:
    """``in_axes`` for ``jax.vmap`` over a batched transform or schedule.

    Hyperparameters are scalars, so a leaf with at least one dimension is batched along ``axis``
    and a scalar leaf is shared::

        txs = gradtx.adam(jnp.array([1e-3, 1e-2, 1e-1]))
        losses = jax.vmap(train, in_axes=(gradtx.batch_axes(txs),))(txs)
    """
    return jax.tree.map(lambda x: axis if jnp.ndim(x) >= 1 else None, tx)
