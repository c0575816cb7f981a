"""The pieces every population program is made of: one member's init, training segment and
evaluation, the map over members (``vmap``, or ``lax.map`` in chunks), and the layout of the
member axis over the devices of a mesh (``shard_map``, one block of members per device).

A member's state between segments is its *carry*: ``(params, opt_state, diverged, diverged_at)``.
A segment trains steps ``start .. start + length - 1`` (``start`` is traced, ``length`` static), so
``sweep``, successive halving, PBT and a resumed sweep all run the same per-step code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .. import _tree
from .._transform import apply_updates

# ---------------------------------------------------------------------------------------------
# Progress: one module-level host callback, so a progress bar never forces a recompile.

PROGRESS: list[Any] = [None]  # XLA runs host callbacks on its own threads


def _progress_callback(step: Any) -> None:
    fn = PROGRESS[0]
    if fn is not None:
        fn(int(step))


@dataclasses.dataclass(frozen=True, eq=True)
class Problem:
    """The static description of what a member trains (hashable: functions compare by identity).

    ``data_fn`` and ``init_fn`` are set when data and params were given as functions.
    """

    loss_fn: Callable[..., Any]
    data_fn: Callable[..., Any] | None
    init_fn: Callable[..., Any] | None
    batch_size: int | None
    max_loss: float | None
    report_every: int = 0


def _where_tree(keep: Any, old: Any, new: Any) -> Any:
    return jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)


def member_init(prob: Problem, tx: Any, key: jax.Array, params: Any) -> tuple[Any, ...]:
    """A member's carry before its first step."""
    init_key, _ = jax.random.split(key)
    p0 = prob.init_fn(init_key) if prob.init_fn is not None else params
    return (p0, tx.init(p0), jnp.asarray(False), jnp.asarray(-1, jnp.int32))


def member_train(
    prob: Problem, tx: Any, key: jax.Array, carry: Any, data: Any, start: Any, length: int
) -> tuple[Any, jax.Array]:
    """Steps ``start .. start + length - 1`` of one member, with divergence freezing.

    Returns the new carry and the loss before each step (NaN once diverged).
    """
    _, data_key = jax.random.split(key)
    value_and_grad = jax.value_and_grad(prob.loss_fn)

    def batch_at(step: Any) -> Any:
        k = jax.random.fold_in(data_key, step)
        if prob.data_fn is not None:
            return prob.data_fn(step, k)
        if data is None or prob.batch_size is None:
            return data
        n = jax.tree.leaves(data)[0].shape[0]
        idx = jax.random.randint(k, (prob.batch_size,), 0, n)
        return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)

    def body(c, step):
        p, s, diverged, diverged_at = c
        loss, g = value_and_grad(p, batch_at(step))
        u, s_new = tx.update(g, s, p, loss=loss)
        p_new = apply_updates(p, u)
        ok = jnp.isfinite(loss) & _tree.all_finite(g) & _tree.all_finite(p_new)
        if prob.max_loss is not None:
            ok = ok & (loss <= prob.max_loss)
        freeze = diverged | ~ok
        p = _where_tree(freeze, p, p_new)
        s = _where_tree(freeze, s, s_new)
        diverged_at = jnp.where(~diverged & ~ok, step, diverged_at)
        record = jnp.where(diverged, jnp.nan, loss.astype(jnp.float32))
        if prob.report_every:
            jax.lax.cond(
                (step + 1) % prob.report_every == 0,
                lambda: jax.debug.callback(_progress_callback, step),
                lambda: None,
            )
        return (p, s, freeze, diverged_at), record

    steps = start + jnp.arange(length, dtype=jnp.int32)
    return jax.lax.scan(body, carry, steps)


def member_eval(
    prob: Problem, key: jax.Array, params: Any, diverged: Any, data: Any, at_step: Any
) -> jax.Array:
    """The loss of ``params`` on the full data (arrays), on the batch of step ``at_step`` (a data
    function) or with ``None`` (no data); NaN if diverged."""
    _, data_key = jax.random.split(key)
    if prob.data_fn is not None:
        batch = prob.data_fn(at_step, jax.random.fold_in(data_key, at_step))
    else:
        batch = data
    final = prob.loss_fn(params, batch).astype(jnp.float32)
    return jnp.where(diverged, jnp.nan, final)


def score(final_loss: Any, diverged: Any) -> Any:
    """Lower is better; diverged and non-finite losses score +inf."""
    xp = jnp if isinstance(final_loss, jax.Array) else np
    bad = diverged | ~xp.isfinite(final_loss)
    return xp.where(bad, xp.inf, final_loss)


def pad_rows(x: Any, pad: int) -> Any:
    """Repeats the last row ``pad`` times (padding members whose results are dropped)."""
    if not pad:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)])


def map_members(fn: Callable[[Any], Any], xs: Any, chunk: int | None) -> Any:
    """``fn`` over the leading axis of ``xs``: ``vmap``, or ``lax.map`` in chunks of ``chunk``.

    Chunks are padded to whole ones: ``lax.map`` would run a remainder unbatched, whose code (and
    last bits) can differ from the vmapped chunks'.
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    if not chunk or chunk >= n:
        return jax.vmap(fn)(xs)
    pad = -n % chunk
    out = jax.lax.map(fn, jax.tree.map(lambda x: pad_rows(x, pad), xs), batch_size=chunk)
    return jax.tree.map(lambda x: x[:n], out)


# ---------------------------------------------------------------------------------------------
# The member axis over a mesh.


def _axes(mesh: Mesh, axis: str | Sequence[str] | None) -> tuple[str, ...]:
    if axis is None:
        return tuple(mesh.axis_names)
    names = (axis,) if isinstance(axis, str) else tuple(axis)
    for name in names:
        if name not in mesh.axis_names:
            raise ValueError(
                f"gradtx.sweep: mesh_axis {name!r} is not an axis of the mesh; its axes are "
                f"{tuple(mesh.axis_names)}"
            )
    return names


@dataclasses.dataclass(frozen=True, eq=True)
class Layout:
    """Where the member axis lives: one device (``mesh=None``) or split over mesh axes."""

    mesh: Mesh | None = None
    axes: tuple[str, ...] = ()

    @staticmethod
    def of(mesh: Mesh | None, axis: str | Sequence[str] | None = None) -> Layout:
        if mesh is None:
            if axis is not None:
                raise ValueError("gradtx.sweep: mesh_axis needs a mesh")
            return Layout()
        if not isinstance(mesh, Mesh):
            raise TypeError(
                f"gradtx.sweep: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}"
            )
        return Layout(mesh, _axes(mesh, axis))

    @property
    def shards(self) -> int:
        """How many blocks the member axis is split into."""
        if self.mesh is None:
            return 1
        return int(np.prod([self.mesh.shape[a] for a in self.axes]))

    def padded(self, n: int) -> int:
        """``n`` rounded up to a whole number of members per shard."""
        return -(-n // self.shards) * self.shards

    def rows(self) -> NamedSharding | None:
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec(self.axes))

    def replicated(self) -> NamedSharding | None:
        return None if self.mesh is None else NamedSharding(self.mesh, PartitionSpec())

    def place_rows(self, tree: Any) -> Any:
        """Puts arrays with a leading member axis on the mesh, split over the member axes."""
        if self.mesh is None:
            return tree
        return jax.device_put(tree, self.rows())

    def place_replicated(self, tree: Any) -> Any:
        if self.mesh is None:
            return tree
        return jax.device_put(tree, self.replicated())

    def shard(self, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``fn(rows, shared) -> rows`` run on each device's block of members (``shard_map``).

        ``rows`` and the outputs have a leading member axis; ``shared`` is replicated.
        """
        if self.mesh is None:
            return fn
        spec = PartitionSpec(self.axes)
        return jax.shard_map(
            fn,
            mesh=self.mesh,
            in_specs=(spec, PartitionSpec()),
            out_specs=spec,
            check_vma=False,
        )

    def gather(self, tree: Any, index: Any) -> Any:
        """Rows ``index`` (an int or an int array) of a member-axis tree, replicated on every
        device of the mesh (readable by every process)."""
        if self.mesh is None:
            return jax.tree.map(lambda x: x[index], tree)
        index = jax.device_put(np.asarray(index, np.int32), self.replicated())
        return _replicating(self)(tree, index)

    def fetch(self, tree: Any) -> Any:
        """A member-axis tree as NumPy arrays on every process."""
        if self.mesh is not None:
            tree = _replicating(self)(tree, None)
        return jax.tree.map(host, tree)


_REPLICATING: dict[Any, Any] = {}


def _replicating(layout: Layout) -> Callable[[Any, Any], Any]:
    fn = _REPLICATING.get(layout)
    if fn is None:

        def take(tree: Any, index: Any) -> Any:
            return tree if index is None else jax.tree.map(lambda x: x[index], tree)

        fn = jax.jit(take, out_shardings=layout.replicated())
        _REPLICATING[layout] = fn
    return fn


def host(x: Any) -> np.ndarray:
    """A replicated or single-device array as NumPy."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        x = x.addressable_data(0)
    return np.asarray(x)
