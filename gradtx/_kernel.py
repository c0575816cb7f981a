"""The elementwise kernel base: an optimizer writes one leaf's arithmetic, the base does the rest.

An elementwise optimizer (Adam, SGD momentum, RMSprop, ...) is a formula over one element of
the gradient and of each state buffer. Subclasses of ``Elementwise`` declare their buffers and
write two methods:

- ``_scalars(count, t, dtype)``: the hyperparameters this step uses (schedules evaluated, bias
  corrections), as a dict of scalars in ``dtype``; computed once per compute dtype, not per leaf;
- ``_leaf(s, g, **buffers) -> (u, *new_buffers)``: the update of one leaf, where ``s`` holds the
  scalars (attribute access) cast to the leaf's compute dtype; buffers come by name and go back
  in the order of ``_buffers()``.

Two optional hooks, named as in ``PerLeaf``: ``carry_fields`` names scalar state fields besides
the count (a running product, a step size), with ``_carry_init()`` their initial values and
``_next_carry(updates, state)`` their values after the step; ``_scalars`` reads their values
before it. ``reads_params = True`` passes each parameter to ``_leaf`` as ``p``.

The base owns everything else: the state (one tree per buffer, and a count unless
``_reads_count()`` says no and no hyperparameter is a schedule), the tree mapping
with errors that name the buffer and the path, the compute dtype (at least float32, so bf16
parameters are updated in float32 and cast back), complex parameters under torch's real-view
convention (``complex_convention="real_view"``), the one-loop form of the step under XLA:CPU
multi-output fusion (``gradtx/_fusion.py``), and the tracing cost: the leaf arithmetic is
traced once per configuration and leaf signature in a process (an inlined ``jax.jit``, whose
cache keeps it for every leaf of that signature and for every later transform and program:
the program and the numbers are those of tracing every leaf), so a tree of thousands of small
leaves traces about as fast as a handful.

``PerLeaf`` is the base of transforms whose arithmetic reads whole leaves (norms, factored
moments, matrix functions, per-leaf PRNG draws): the subclass writes one leaf's update, and the
base maps it over the tree and ``jax.vmap``s it over the stacking axis of packed buffers
(``gradtx.pack`` stacks equal-shaped leaves for such transforms).
"""

from __future__ import annotations

import functools
import types
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _fusion, _tree
from ._transform import EmptyState, Transform, is_scheduled


class Elementwise(Transform):
    """Base of elementwise optimizers: see the module docstring.

    Class attributes:
      state_type: the state NamedTuple, ``(count, *carry_fields, *buffers)`` (optional buffers
        default None).
      reads_params: whether ``_leaf`` also receives the parameter, as the keyword ``p``.
      carry_fields: the state's scalar fields besides the count.
    """

    elementwise = True
    state_type: ClassVar[type]
    reads_params: ClassVar[bool] = False
    carry_fields: ClassVar[tuple[str, ...]] = ()

    # -- what a subclass declares
    def _buffers(self) -> tuple[str, ...]:
        """Names of the per-parameter state buffers in use (fields of ``state_type``)."""
        return tuple(f for f in self.state_type._fields[1:] if f not in self.carry_fields)

    def _buffer_dtype(self, name: str, p: Any) -> Any:
        """The dtype of buffer ``name`` for parameter ``p`` (default: the parameter's)."""
        return p.dtype

    def _initial(self, name: str) -> Any:
        """The value buffer ``name`` starts from (default 0)."""
        return 0.0

    def _carry_init(self) -> dict[str, Any]:
        """Initial values of ``carry_fields``; leaves are computed in at least their dtypes."""
        return {}

    def _next_carry(self, updates: Any, state: Any) -> dict[str, Any]:
        """Values of ``carry_fields`` after the step (default: unchanged)."""
        return {n: getattr(state, n) for n in self.carry_fields}

    def _scalars(self, count: Any, t: Any, dtype: Any, **carry: Any) -> dict[str, Any]:
        """This step's scalars in ``dtype``: ``count`` updates came before, ``t = count + 1``
        (both None where the state keeps no count); ``carry`` holds the values of
        ``carry_fields`` before the step."""
        return {}

    def _leaf(self, s: Any, g: Any, *buffers: Any) -> tuple[Any, ...]:  # pragma: no cover
        raise NotImplementedError

    def _reads_count(self) -> bool:
        """Whether ``_scalars`` reads the count itself (a bias correction, a first-step rule).
        Where it does not, the state holds a count (else None) only while a hyperparameter is a
        schedule, as Optax's states hold one only where something reads it."""
        return True

    # -- what the base does
    def _counts(self) -> bool:
        fields = getattr(self, "_data_fields", ())
        return self._reads_count() or any(is_scheduled(getattr(self, n)) for n in fields)

    def _real_view(self, p: Any) -> bool:
        return getattr(self, "complex_convention", "abs") == "real_view" and jnp.iscomplexobj(p)

    def _init(self, params):
        def buffer(name):
            def one(p):
                dt = self._buffer_dtype(name, p)
                value = self._initial(name)
                if self._real_view(p):  # torch: a real buffer per part, stored as re + i * im
                    dt = _tree.promote(dt, jnp.complex64)
                    part = jnp.asarray(value, _tree.real_dtype(dt))
                    value = jax.lax.complex(part, part)  # each part starts from the value
                return _tree.full_like(p, value, dt)

            return jax.tree.map(one, params)

        present = self._buffers()
        fields = {n: buffer(n) for n in present}
        count = jnp.zeros((), jnp.int32) if self._counts() else None
        return self.state_type(count, **self._carry_init(), **fields)

    def _update(self, updates, state, params, **extra):
        before = state.count  # None where init kept no count (see _reads_count)
        count = None if before is None else _tree.safe_increment(before)
        names = self._buffers()
        carry = {n: getattr(state, n) for n in self.carry_fields}
        carry_dtypes = tuple(c.dtype for c in carry.values())

        @functools.cache
        def scalars(cd):
            rd = _tree.real_dtype(cd)
            t = None if count is None else jax.lax.convert_element_type(count, rd)
            raw = self._scalars(before, t, rd, **carry)
            return {k: None if v is None else _tree.hp(v, cd) for k, v in raw.items()}

        inputs = ("p",) * self.reads_params + names
        arith = _arithmetic_for(self, inputs, len(names), carry_dtypes)
        # On XLA:CPU with multi-output fusion, large leaves take their update from a second copy
        # of the arithmetic, so that the whole step is one loop (see gradtx/_fusion.py).
        siblings = _fusion.Siblings()

        def leaf(g, *ins):
            if self._real_view(g):
                outs = (g, *ins[len(ins) - len(names) :])
                views = (_real_view(x) for x in (g, *ins))
                out = leaf(*views)
                return tuple(_complex_view(o, x.dtype) for o, x in zip(out, outs))
            cd = _tree.compute_dtype(g.dtype, *(b.dtype for b in ins), *carry_dtypes)
            out = arith(scalars(cd), g, *ins)
            again = siblings(g, *ins)
            return out if again is None else (arith(scalars(cd), *again)[0], *out[1:])

        ins = ((params,) if self.reads_params else ()) + tuple(getattr(state, n) for n in names)
        labels = ("params",) * self.reads_params + names
        res = _tree.tree_map_with_check(self.where(), leaf, updates, *ins, names=labels)
        u, *new = _tree.tree_unzip(updates, res, 1 + len(names))
        carry = self._next_carry(updates, state)
        return u, self.state_type(count, **carry, **dict(zip(names, new)))


def _arithmetic(tx, inputs, n_buffers, carry_dtypes, s, g, *ins):
    """One leaf's update in its compute dtype, cast back to each output's dtype."""
    cd = _tree.compute_dtype(g.dtype, *(b.dtype for b in ins), *carry_dtypes)
    named = {n: _in(b, cd) for n, b in zip(inputs, ins)}
    out = tx._leaf(types.SimpleNamespace(**s), jax.lax.convert_element_type(g, cd), **named)
    outs = (g, *ins[len(ins) - n_buffers :])
    return tuple(_out(o, x.dtype) for o, x in zip(out, outs))


def _arithmetic_of_leaves(static, leaves, s, g, *ins):
    treedef, *rest = static
    return _arithmetic(jax.tree.unflatten(treedef, leaves), *rest, s, g, *ins)


# One trace per transform configuration, leaf signature and scalar dtype in the whole process,
# kept by jax.jit's cache: every leaf of that signature, and a new transform of the same
# configuration (another learning rate, a fresh step function), reuses it. Inlined into the
# caller's trace, so the program has no nested calls (XLA compiles those more slowly).
_INLINED = jax.jit(_arithmetic_of_leaves, static_argnums=0, inline=True)


def _arithmetic_for(tx, inputs, n_buffers, carry_dtypes):
    """The leaf arithmetic of one ``update``, as ``fn(s, g, *buffers)``."""
    leaves, treedef = jax.tree.flatten(tx)
    static = (treedef, inputs, n_buffers, carry_dtypes)
    try:
        hash(static)
        cacheable = all(isinstance(x, (jax.Array, np.ndarray, np.generic)) for x in leaves)
    except TypeError:
        cacheable = False
    if cacheable:
        return functools.partial(_INLINED, static, leaves)
    # A configuration jax.jit cannot key on is traced once per update and leaf signature.
    return jax.jit(functools.partial(_arithmetic, tx, inputs, n_buffers, carry_dtypes), inline=True)


def _in(b: Any, cd: Any) -> Any:
    """A buffer in the compute dtype: complex buffers in ``cd``, real ones in its real dtype."""
    return jax.lax.convert_element_type(b, cd if jnp.iscomplexobj(b) else _tree.real_dtype(cd))


def _out(o: Any, dtype: Any) -> Any:
    if jnp.iscomplexobj(o) and not jnp.issubdtype(dtype, jnp.complexfloating):
        o = jnp.real(o)
    return jax.lax.convert_element_type(o, dtype)


def _real_view(x: Any) -> Any:
    """A complex array as a real one with a trailing (re, im) axis; real arrays unchanged."""
    if not jnp.iscomplexobj(x):
        return x
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


def _complex_view(x: Any, dtype: Any) -> Any:
    """Inverse of ``_real_view`` for a complex ``dtype``."""
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        return x.astype(dtype)
    return jax.lax.complex(x[..., 0], x[..., 1]).astype(dtype)


class PerLeaf(Transform):
    """Base of transforms with per-leaf statistics: one leaf's arithmetic, mapped by the base.

    Norms, factored moments, matrix functions and per-leaf PRNG draws depend on a whole leaf, so
    they cannot run on raveled buffers; on stacked buffers (``gradtx.pack`` stacks equal-shaped
    leaves along a leading axis for these transforms) the base ``jax.vmap``s the one-leaf
    arithmetic over that axis, so each stacked leaf gets the tree's numbers. A subclass writes:

    - ``_init_leaf(p) -> tuple``: the buffers of one (unstacked) parameter, in the order of
      ``_buffers()`` (each may be a pytree, say one accumulator per axis);
    - ``_scalars(count, t) -> dict``: this step's hyperparameters (schedules evaluated), once per
      step; ``count`` updates came before, ``t = count + 1`` (int32); passed to ``_leaf`` as
      ``s`` (attribute access), uncast;
    - ``_leaf(s, g, *buffers, **kw) -> (u, *buffers)``: the update of one leaf. ``kw`` holds
      ``p`` (the parameter) when ``_needs_params()``, ``key`` (a PRNG key of its own) when
      ``keyed``, and the per-leaf static values of ``_statics`` (a mask's bool, say).

    Optional hooks: ``carry_fields`` names scalar state fields besides the count (not per leaf),
    with ``_carry_init()`` their initial values and ``_next_carry(updates, state)`` their values
    after the step; ``keyed = True`` keeps a typed PRNG key in the state field ``key`` (its
    initial value from ``_carry_init``), which the base splits each step into the next key and
    one key per leaf of the params tree, in leaf order (stacked leaves draw with their own
    leaf's key). ``_per_leaf()`` False (a static option that makes the arithmetic elementwise)
    lets the transform run on any layout. ``state_type = EmptyState`` makes it stateless.

    The base owns the state layout, the checks of the buffers and params against the updates,
    and the stacking axes (it is the only place that asks a tree for them, see ``stack_axes``).

    Class attributes:
      state_type: the state NamedTuple, ``(count, *carry_fields, *buffers)``, or ``EmptyState``.
      reads_params: whether ``_leaf`` receives the parameter as ``p`` (see ``_needs_params``).
      keyed: whether ``_leaf`` receives a PRNG key of its own as ``key``.
      carry_fields: the state's scalar fields besides the count.
      leaf_statistic: what is per leaf, for the error on raveled buffers.
    """

    elementwise = False
    stackable = True  # the leading axis of a stack indexes leaves: vmapped over
    state_type: ClassVar[type]
    reads_params: ClassVar[bool] = False
    keyed: ClassVar[bool] = False
    carry_fields: ClassVar[tuple[str, ...]] = ()
    leaf_statistic: ClassVar[str] = "per-leaf statistics"

    # -- what a subclass declares
    def _name(self) -> str:
        """The public name that errors report (``gradtx.<fn_name>``)."""
        return f"gradtx.{self.fn_name}"

    def _per_leaf(self) -> bool:
        """Whether the arithmetic reads whole leaves (False: it runs on any layout)."""
        return True

    def _needs_params(self) -> bool:
        """Whether ``update`` needs params (default: ``reads_params``)."""
        return self.reads_params

    def _buffers(self) -> tuple[str, ...]:
        """Names of the per-leaf state buffers (fields of ``state_type``)."""
        if self.state_type is EmptyState:
            return ()
        skip = {"count", *self.carry_fields, *(("key",) if self.keyed else ())}
        return tuple(f for f in self.state_type._fields if f not in skip)

    def _checked(self) -> tuple[str, ...]:
        """The buffers shaped like the updates, checked against them (default: all)."""
        return self._buffers()

    def _carry_init(self) -> dict[str, Any]:
        """Initial values of ``carry_fields`` (and of ``key`` when ``keyed``)."""
        return {}

    def _next_carry(self, updates: Any, state: Any) -> dict[str, Any]:
        """Values of ``carry_fields`` after the step (default: unchanged)."""
        return {n: getattr(state, n) for n in self.carry_fields}

    def _init_leaf(self, p: Any) -> tuple[Any, ...]:
        """The buffers of one parameter (default: none)."""
        return ()

    def _scalars(self, count: Any, t: Any) -> dict[str, Any]:
        """This step's hyperparameters (default: none)."""
        return {}

    def _statics(self, updates: Any, params: Any) -> dict[str, Any]:
        """Per-leaf static values passed to ``_leaf`` by keyword: name -> tree (default: none)."""
        return {}

    def _leaf(self, s: Any, g: Any, *buffers: Any, **kw: Any) -> tuple[Any, ...]:
        raise NotImplementedError  # pragma: no cover

    # -- what the base does
    def _stack_axes(self, tree: Any) -> list[int]:
        """Per leaf of ``tree``, its leading axes that index stacked leaves."""
        if not self._per_leaf():
            return [0] * len(jax.tree.leaves(tree))
        return stack_axes(self._name(), tree, self.leaf_statistic)

    def _init(self, params):
        stack = self._stack_axes(params)
        if self.state_type is EmptyState:
            return EmptyState()
        leaves, treedef = jax.tree.flatten(params)
        names = self._buffers()
        per = []
        for p, nb in zip(leaves, stack):
            out = _batched(lambda x: tuple(self._init_leaf(x)), nb, (p,), {})
            if nb:  # buffers shaped like the stack keep its sharding
                out = jax.tree.map(lambda b, p=p: _tree._constrain_like(b, p), out)
            per.append(out)
        fields = {n: treedef.unflatten([b[i] for b in per]) for i, n in enumerate(names)}
        carry = self._carry_init()
        return self.state_type(jnp.zeros((), jnp.int32), **carry, **fields)

    def _update(self, updates, state, params, **extra):
        stack = self._stack_axes(updates)
        where = self.where()
        if self._needs_params():
            if params is None:
                raise ValueError(
                    f"{where}: {self._name()} needs params; call update(updates, state, params)."
                )
            _checks.check_same_tree(where, params, updates, "params", "updates")
        names = self._buffers()
        stateful = self.state_type is not EmptyState
        for n in self._checked():
            _checks.check_same_tree(where, getattr(state, n), updates, n, "updates")
        count = _tree.safe_increment(state.count) if stateful else None
        s = types.SimpleNamespace(**self._scalars(state.count if stateful else None, count))
        leaves, treedef = jax.tree.flatten(updates)
        bufs = [treedef.flatten_up_to(getattr(state, n)) for n in names]
        mapped_kw = {}
        if self._needs_params():
            mapped_kw["p"] = treedef.flatten_up_to(params)
        carry = self._next_carry(updates, state) if stateful else {}
        if self.keyed:
            members_of = getattr(type(updates), "_gradtx_leaf_members", None)
            if members_of is None:
                n_keys, members = len(leaves), [(i,) for i in range(len(leaves))]
            else:
                n_keys, members = members_of(updates)
            carry["key"], sample = jax.random.split(state.key)
            keys = jax.random.split(sample, n_keys)
            mapped_kw["key"] = [
                keys[np.asarray(m)] if nb else keys[m[0]] for m, nb in zip(members, stack)
            ]
        statics = {k: treedef.flatten_up_to(v) for k, v in self._statics(updates, params).items()}
        out = []
        for i, (g, nb) in enumerate(zip(leaves, stack)):
            kw_names = tuple(mapped_kw)
            mapped = (g, *(b[i] for b in bufs), *(mapped_kw[k][i] for k in kw_names))
            shared = {k: v[i] for k, v in statics.items()}

            def one(g, *rest, kw_names=kw_names, shared=shared):
                k = len(rest) - len(kw_names)
                kw = dict(zip(kw_names, rest[k:]))
                return tuple(self._leaf(s, g, *rest[:k], **kw, **shared))

            out.append(_batched(one, nb, mapped, {}))
        u = treedef.unflatten([o[0] for o in out])
        if not stateful:
            return u, state
        new = {n: treedef.unflatten([o[1 + j] for o in out]) for j, n in enumerate(names)}
        return u, self.state_type(count, **carry, **new)


def _batched(fn: Any, nb: int, mapped: tuple[Any, ...], shared: dict[str, Any]) -> Any:
    """``fn(*mapped, **shared)`` vmapped over the ``nb`` leading axes of every ``mapped`` pytree.

    A stack of one leaf runs as that leaf (its program is the tree's), its axis put back after.
    """
    if nb == 0:
        return fn(*mapped, **shared)
    lead = jax.tree.leaves(mapped)[0].shape[0]
    if lead == 1:
        inner = jax.tree.map(lambda x: x[0], mapped)
        out = _batched(fn, nb - 1, inner, shared)
        return jax.tree.map(lambda x: jnp.expand_dims(x, 0), out)
    return jax.vmap(lambda *xs: _batched(fn, nb - 1, xs, shared))(*mapped)


def leaf_norm(x: Any) -> jax.Array:
    """The L2 norm of one leaf (``sqrt(sum |x|^2)``, real for complex ``x``), a scalar."""
    return jnp.sqrt(jnp.sum(_tree.abs_sq(x)))


def stack_axes(where: str, tree: Any, what: str) -> list[int]:
    """Per leaf of ``tree``, how many leading axes index stacked leaves (0 on a plain tree).

    A packed tree (``gradtx.pack``) says so through its ``_gradtx_stack_axes`` hook: 1 for a
    stack of equal-shaped leaves, 0 for a leaf kept as it is, None for raveled leaves, which
    raise ``TypeError`` naming ``where`` and ``what``: a statistic over a raveled buffer would
    mix its leaves.
    """
    hook = getattr(type(tree), "_gradtx_stack_axes", None)
    if hook is None:
        return [0] * len(jax.tree.leaves(tree))
    axes = hook(tree)
    if any(a is None for a in axes):
        raise TypeError(
            f"{where}: {what} cannot run on packed buffers of raveled leaves: each buffer holds "
            f"many leaves raveled together, so the result would mix them. Pack the params for "
            f"this transform (gradtx.pack(params, tx) stacks equal-shaped leaves for it), or use "
            f"the params tree itself."
        )
    return axes


def leaf_ranks(where: str, tree: Any, what: str) -> list[int]:
    """Per leaf of ``tree``, the rank of one leaf: a stack of leaves counts as one of them.

    For transforms that route leaves by their rank (Muon's matrices and vectors); raveled
    buffers raise ``TypeError`` naming ``where`` and ``what``.
    """
    axes = stack_axes(where, tree, what)
    return [jnp.ndim(x) - nb for x, nb in zip(jax.tree.leaves(tree), axes)]
