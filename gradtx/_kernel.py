"""The elementwise kernel base: an optimizer writes one leaf's arithmetic, the base does the rest.

An elementwise optimizer (Adam, SGD momentum, RMSprop, ...) is a formula over one element of
the gradient and of each state buffer. Subclasses of ``Elementwise`` declare their buffers and
write two methods:

- ``_scalars(count, t, dtype)``: the hyperparameters this step uses (schedules evaluated, bias
  corrections), as a dict of scalars in ``dtype``; computed once per compute dtype, not per leaf;
- ``_leaf(s, g, **buffers) -> (u, *new_buffers)``: the update of one leaf, where ``s`` holds the
  scalars (attribute access) cast to the leaf's compute dtype; buffers come by name and go back
  in the order of ``_buffers()``.

The base owns everything else: the state (a count and one tree per buffer), the tree mapping
with errors that name the buffer and the path, the compute dtype (at least float32, so bf16
parameters are updated in float32 and cast back), complex parameters under torch's real-view
convention (``complex_convention="real_view"``), and the backend fusion (``_fusion.Twin``).
"""

from __future__ import annotations

import functools
import types
from typing import Any, ClassVar

import jax
import jax.numpy as jnp

from . import _fusion, _tree
from ._transform import Transform


class Elementwise(Transform):
    """Base of elementwise optimizers: see the module docstring.

    Class attributes:
      state_type: the state NamedTuple, ``(count, *buffers)`` (optional buffers default None).
    """

    elementwise = True
    state_type: ClassVar[type]

    # -- what a subclass declares
    def _buffers(self) -> tuple[str, ...]:
        """Names of the per-parameter state buffers in use (fields of ``state_type``)."""
        return tuple(self.state_type._fields[1:])

    def _buffer_dtype(self, name: str, p: Any) -> Any:
        """The dtype of buffer ``name`` for parameter ``p`` (default: the parameter's)."""
        return p.dtype

    def _initial(self, name: str) -> Any:
        """The value buffer ``name`` starts from (default 0)."""
        return 0.0

    def _scalars(self, count: Any, t: Any, dtype: Any) -> dict[str, Any]:
        """This step's scalars in ``dtype``: ``count`` updates came before, ``t = count + 1``."""
        return {}

    def _leaf(self, s: Any, g: Any, *buffers: Any) -> tuple[Any, ...]:  # pragma: no cover
        raise NotImplementedError

    # -- what the base does
    def _real_view(self, p: Any) -> bool:
        return getattr(self, "complex_convention", "abs") == "real_view" and jnp.iscomplexobj(p)

    def _init(self, params):
        def buffer(name):
            def one(p):
                dt = self._buffer_dtype(name, p)
                if self._real_view(p):  # torch: a real buffer per part, stored as re + i * im
                    dt = _tree.promote(dt, jnp.complex64)
                return _tree.full_like(p, self._initial(name), dt)

            return jax.tree.map(one, params)

        present = self._buffers()
        fields = {n: buffer(n) for n in present}
        return self.state_type(jnp.zeros((), jnp.int32), **fields)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        names = self._buffers()

        @functools.cache
        def scalars(cd):
            rd = _tree.real_dtype(cd)
            raw = self._scalars(state.count, count.astype(rd), rd)
            cast = {k: None if v is None else _tree.hp(v, cd) for k, v in raw.items()}
            return types.SimpleNamespace(**cast)

        def leaf(g, *bufs):
            if self._real_view(g):
                out = leaf(*(_real_view(x) for x in (g, *bufs)))
                return tuple(_complex_view(o, x.dtype) for o, x in zip(out, (g, *bufs)))
            cd = _tree.compute_dtype(g.dtype, *(b.dtype for b in bufs))
            named = {n: _in(b, cd) for n, b in zip(names, bufs)}
            out = self._leaf(scalars(cd), g.astype(cd), **named)
            return tuple(_out(o, x.dtype) for o, x in zip(out, (g, *bufs)))

        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion
        bufs = tuple(getattr(state, n) for n in names)
        res = _tree.tree_map_with_check(self.where(), twin.wrap(leaf), updates, *bufs, names=names)
        u, *new = _tree.tree_unzip(updates, res, 1 + len(names))
        return u, self.state_type(count, **dict(zip(names, new)))


def _in(b: Any, cd: Any) -> Any:
    """A buffer in the compute dtype: complex buffers in ``cd``, real ones in its real dtype."""
    return b.astype(cd if jnp.iscomplexobj(b) else _tree.real_dtype(cd))


def _out(o: Any, dtype: Any) -> Any:
    if jnp.iscomplexobj(o) and not jnp.issubdtype(dtype, jnp.complexfloating):
        o = jnp.real(o)
    return o.astype(dtype)


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
