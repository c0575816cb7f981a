"""Populations trained in segments: an init program and a segment program (train ``length`` steps
from a traced ``start``, then evaluate), both compiled once per population size and length.

Successive halving, a checkpointed sweep and PBT's inner loop are built from these. A member's
transform is made inside the program from its row of hyperparameters by a ``make_tx`` object:
``Joiner`` (the batched leaves of a population's transform) or ``Builder`` (the factory called on
the member's values by name, so exploit and explore can change them).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._engine import Layout, Problem, map_members, member_eval, member_init, member_train


@dataclasses.dataclass(frozen=True, eq=True)
class Joiner:
    """Rebuilds a member's transform from its batched leaves and the shared ones."""

    treedef: Any
    batched: tuple[bool, ...]

    def __call__(self, rows: list[Any], shared: list[Any]) -> Any:
        ib, ish = iter(rows), iter(shared)
        leaves = [next(ib) if b else next(ish) for b in self.batched]
        return jax.tree.unflatten(self.treedef, leaves)


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


@dataclasses.dataclass(frozen=True, eq=True)
class Builder:
    """Calls ``factory(**fixed, **values)`` for one member; ``values`` maps each swept name (a
    keyword, or a dotted path into a schedule given in ``fixed``) to the member's scalar.

    Array leaves of ``fixed`` travel as program arguments (``shared``); everything else in it is
    static, so equal settings hit the compile cache.
    """

    factory: Callable[..., Any]
    kw_treedef: Any
    static_leaves: tuple[Any, ...]
    names: tuple[str, ...]

    @staticmethod
    def of(
        factory: Callable[..., Any], fixed: dict[str, Any], names: Sequence[str]
    ) -> tuple[Builder, list[Any]]:
        leaves, treedef = jax.tree.flatten(fixed)
        static = tuple(None if _is_array(x) else x for x in leaves)
        shared = [x for x in leaves if _is_array(x)]
        return Builder(factory, treedef, static, tuple(names)), shared

    def __call__(self, values: dict[str, Any], shared: list[Any]) -> Any:
        it = iter(shared)
        leaves = [next(it) if s is None else s for s in self.static_leaves]
        kwargs = jax.tree.unflatten(self.kw_treedef, leaves)
        for name in self.names:
            parts = name.split(".")
            if len(parts) == 1:
                kwargs[name] = values[name]
            else:
                kwargs[parts[0]] = _replace(kwargs[parts[0]], parts[1:], values[name])
        return self.factory(**kwargs)


def _replace(obj: Any, parts: Sequence[str], value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    cur = obj[head] if isinstance(obj, dict) else getattr(obj, head)
    new = _replace(cur, rest, value) if rest else value
    if isinstance(obj, dict):
        return {**obj, head: new}
    return dataclasses.replace(obj, **{head: new})


@dataclasses.dataclass(frozen=True, eq=True)
class Runner:
    """The static part of a population's programs."""

    prob: Problem
    make_tx: Any
    layout: Layout
    chunk_size: int | None = None

    # -- per shard ---------------------------------------------------------------------------

    def _init_local(self, rows: Any, rep: Any) -> Any:
        hp, keys = rows
        shared, params = rep

        def one(xs):
            h, key = xs
            return member_init(self.prob, self.make_tx(h, shared), key, params)

        return map_members(one, (hp, keys), self.chunk_size)

    def _segment_local(self, length: int, rows: Any, rep: Any) -> Any:
        hp, keys, carry = rows
        shared, data, start = rep

        def one(xs):
            h, key, c = xs
            c, losses = member_train(
                self.prob, self.make_tx(h, shared), key, c, data, start, length
            )
            final = member_eval(self.prob, key, c[0], c[2], data, start + length)
            return c, losses, final

        return map_members(one, (hp, keys, carry), self.chunk_size)

    # -- whole population (inside any jit) ---------------------------------------------------

    def init(self, hp: Any, shared: Any, keys: Any, params: Any) -> Any:
        return self.layout.shard(self._init_local)((hp, keys), (shared, params))

    def segment(
        self, length: int, hp: Any, shared: Any, keys: Any, carry: Any, data: Any, start: Any
    ) -> Any:
        fn = functools.partial(self._segment_local, length)
        return self.layout.shard(fn)((hp, keys, carry), (shared, data, start))

    # -- compiled, for the host loop ----------------------------------------------------------

    def compiled_init(self) -> Callable[..., Any]:
        return _jit(self, "init", None)

    def compiled_segment(self, length: int) -> Callable[..., Any]:
        return _jit(self, "segment", length)


_JITTED: dict[Any, Any] = {}


def _jit(runner: Runner, what: str, length: int | None) -> Callable[..., Any]:
    key = (runner, what, length)
    fn = _JITTED.get(key)
    if fn is not None:
        return fn
    rows, rep = runner.layout.rows(), runner.layout.replicated()
    if what == "init":
        fn = jax.jit(runner.init, out_shardings=rows)
    else:
        out = None if rows is None else (rows, rep, rep)
        fn = jax.jit(functools.partial(runner.segment, length), out_shardings=out)
    if len(_JITTED) >= 64:
        _JITTED.pop(next(iter(_JITTED)))
    _JITTED[key] = fn
    return fn


def take_rows(layout: Layout, tree: Any, index: np.ndarray) -> Any:
    """Rows ``index`` of a member-axis tree, laid out like the population (split over the mesh)."""
    fn = _TAKE.get(layout)
    if fn is None:
        fn = jax.jit(lambda t, i: jax.tree.map(lambda x: x[i], t), out_shardings=layout.rows())
        _TAKE[layout] = fn
    return fn(tree, layout.place_replicated(jnp.asarray(index, jnp.int32)))


_TAKE: dict[Any, Any] = {}


def padded_index(index: Sequence[int], layout: Layout) -> np.ndarray:
    """``index`` padded (repeating its last entry) to a whole number of members per shard."""
    index = np.asarray(index, np.int64)
    pad = layout.padded(index.size) - index.size
    return np.concatenate([index, np.repeat(index[-1:], pad)]) if pad else index
