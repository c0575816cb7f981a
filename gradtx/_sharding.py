"""Sharding helpers: ZeRO-1 optimizer-state sharding, state shardings for ``jit``, memory figures.

gradtx's own ``init`` gives every state buffer its parameter's sharding. These helpers cover the
cases where the state should be laid out differently from the parameters (ZeRO-1), and where a
user's own ``jit`` needs the state's shardings up front (``out_shardings``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from . import _transform
from ._transform import Transform, as_transform, pytree_dataclass, static_field


def _axis_size(mesh: Any, axis: str) -> int:
    if axis not in mesh.shape:
        raise ValueError(
            f"gradtx.zero1: axis {axis!r} is not an axis of the mesh; the mesh has axes "
            f"{tuple(mesh.shape)}."
        )
    return int(mesh.shape[axis])


def zero1_spec(shape: tuple[int, ...], mesh: Any, axis: str) -> PartitionSpec:
    """The ZeRO-1 layout of one state buffer: its largest dimension divisible by the axis size
    is split along ``axis``; buffers with no such dimension (counts, scalars, odd shapes) are
    replicated."""
    n = _axis_size(mesh, axis)
    best = None
    for d, size in enumerate(shape):
        if size % n == 0 and size >= n and (best is None or size > shape[best]):
            best = d
    if best is None:
        return PartitionSpec()
    return PartitionSpec(*(axis if d == best else None for d in range(len(shape))))


def _place(x: Any, sharding: NamedSharding) -> Any:
    """Puts ``x`` on ``sharding``: a constraint under tracing, a transfer outside it."""
    if x is None:
        return None
    if isinstance(x, jax.core.Tracer):
        if sharding.mesh.explicit_axes:
            return jax.sharding.reshard(x, sharding)
        return jax.lax.with_sharding_constraint(x, sharding)
    return jax.device_put(x, sharding)


def shard_state(state: Any, mesh: Any, axis: str = "data") -> Any:
    """Lays out every buffer of ``state`` along ``axis`` of ``mesh`` (see ``zero1_spec``).

    Works on concrete arrays (a transfer) and inside ``jit`` (a sharding constraint).
    """
    return jax.tree.map(
        lambda x: _place(x, NamedSharding(mesh, zero1_spec(jnp.shape(x), mesh, axis))), state
    )


@pytree_dataclass
class Zero1(Transform):
    """ZeRO-1: the inner transform's state is sharded along ``axis`` while params stay as they are.

    ``init`` and every ``update`` constrain each state buffer to its ``zero1_spec`` layout; the
    updates are constrained back to the parameters' sharding (replicated for data parallelism),
    so XLA computes each shard's moments on its own device and all-gathers only the updates.
    The numbers are those of the inner transform.
    """

    inner: Transform
    mesh: Any = static_field()
    axis: str = static_field("data")

    def _init(self, params):
        return shard_state(self.inner._init(params), self.mesh, self.axis)

    def _update(self, updates, state, params, **extra):
        u, new_state = self.inner._update(updates, state, params, **extra)
        replicated = NamedSharding(self.mesh, PartitionSpec())
        u = jax.tree.map(lambda x: _place(x, replicated), u)
        return u, shard_state(new_state, self.mesh, self.axis)

    def __repr__(self) -> str:
        return f"Zero1({self.inner!r}, axis={self.axis!r})"


def zero1(tx: Any, mesh: Any, axis: str = "data") -> Zero1:
    """Wraps ``tx`` so its optimizer state is sharded along ``axis`` of ``mesh`` (ZeRO stage 1).

    Use it for data parallelism with replicated parameters: each device keeps ``1/n`` of every
    moment buffer (``n = mesh.shape[axis]``), so Adam's state costs ``2 * bytes(params) / n`` per
    device instead of ``2 * bytes(params)``. Buffers with no dimension divisible by ``n`` stay
    replicated. The updates are identical to ``tx``'s.

    Example::

        mesh = jax.make_mesh((8,), ("data",))
        tx = gradtx.zero1(gradtx.adam(1e-3), mesh, "data")
        state = tx.init(replicated_params)     # moments split 8 ways
    """
    _axis_size(mesh, axis)
    return Zero1(as_transform(tx, "zero1", "tx"), mesh, axis)


def state_shardings(tx: Transform, params: Any) -> Any:
    """The shardings ``tx.init(params)`` gives its state, without allocating it.

    ``params`` may be arrays or ``jax.ShapeDtypeStruct``s with a ``sharding``. Use the result as
    ``out_shardings`` when you call ``init`` inside your own ``jit`` (where the parameters are
    tracers with no sharding to copy), e.g. ``jax.jit(tx.init, out_shardings=...)``.
    """
    shardings = _transform._shardings_of(params)
    compiled = _transform._compiled_init.lower(tx, params, shardings).compile()
    return compiled.output_shardings


def bytes_per_device(tree: Any) -> dict[Any, int]:
    """Bytes of ``tree``'s arrays held by each device (from their addressable shards)."""
    out: dict[Any, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            out[shard.device] = out.get(shard.device, 0) + shard.data.nbytes
    return out
