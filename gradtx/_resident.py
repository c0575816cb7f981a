"""Hyperparameters kept on the device: one host-to-device copy per setting, not one per call.

A transform's hyperparameters are pytree leaves, usually Python numbers (``adam(1e-3)`` holds
five floats). ``jax.jit`` accepts Python numbers as arguments, but it turns each one into a device
buffer on every call: on a GPU, one small host-to-device copy per number per step. (On an H200,
``benchmarks/run.py`` measured gradtx's single-array steps a constant 0.13-0.30 ms per call
slower than Optax's when it passed the numbers; this is one candidate cause, not yet measured
there. On the CPU, passing device scalars cut a small Adam step's dispatch from 62 to 30 us.)
``resident(tx)`` swaps those numbers for device scalars made once per distinct setting and
cached, so the compiled call receives buffers that are already on the device.

Numbers are unchanged: each scalar is made by ``jnp.asarray`` (same dtype and weak type as the
number jit would make), and the cache key holds each number's exact ``repr`` and type (so ``-0.0``
and ``0.0``, ``1`` and ``1.0``, ``True`` and ``1`` stay apart) and the x64 mode.
Leaves that are already arrays, tracers (``vmap`` or ``grad`` over a hyperparameter, an outer
``jit``) and schedules' own array leaves are left as they are.
"""

from __future__ import annotations

import collections
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

try:  # True when no trace (jit, vmap, grad) is active: a one-call check
    from jax._src.core import trace_state_clean as _untraced
except ImportError:  # pragma: no cover - older or newer JAX without it: never substitute
    _untraced = None

_SCALARS = (bool, int, float, np.bool_, np.number)
#: Device scalars by (type, exact repr, x64 mode) of the number they hold.
_VALUES: collections.OrderedDict[Any, jax.Array] = collections.OrderedDict()
#: Converted transforms by the identity of the transform they came from (the entry keeps the
#: original alive, so its id cannot be reused while the entry exists). A loop that passes the
#: same ``tx`` to every step pays one dictionary lookup per call.
_BY_ID: collections.OrderedDict[int, tuple[Any, bool, Any]] = collections.OrderedDict()
#: Entries kept in each cache; the oldest go first (a sweep over many settings pays the copy
#: again for settings it has not used recently, never a wrong value).
VALUES_SIZE = 4096
BY_ID_SIZE = 64


def _remember(cache: collections.OrderedDict, key: Any, value: Any, size: int) -> None:
    cache[key] = value
    if len(cache) > size:
        cache.popitem(last=False)


def _scalar(value: Any, x64: bool) -> jax.Array:
    key = (type(value), repr(value), x64)
    out = _VALUES.get(key)
    if out is None:
        out = jnp.asarray(value)
        _remember(_VALUES, key, out, VALUES_SIZE)
    return out


def resident(tx: Any) -> Any:
    """``tx`` with its Python-number leaves replaced by cached device scalars.

    The scalars live on JAX's default device, uncommitted: a step whose parameters are there
    (the usual single-accelerator loop) reads them where they are; for parameters committed to
    another device or sharded over several, ``jit`` moves them on each call, as it moved the
    numbers before. The values are the same either way.
    """
    if _untraced is None or not _untraced():
        # Under a trace the numbers are constants of the outer program already; concrete device
        # arrays would be captured as extra constants instead (and cached transforms could leak
        # across traces), so tx is passed as it is.
        return tx
    x64 = bool(jax.config.jax_enable_x64)
    hit = _BY_ID.get(id(tx))
    if hit is not None and hit[0] is tx and hit[1] == x64:
        return hit[2]
    leaves, treedef = jax.tree.flatten(tx)
    # Several processes (jax.distributed): a jit's array arguments must be global arrays there,
    # and a process-local scalar is not one; numbers stay numbers.
    if jax.process_count() == 1 and any(isinstance(x, _SCALARS) for x in leaves):
        out = jax.tree.unflatten(
            treedef, [_scalar(x, x64) if isinstance(x, _SCALARS) else x for x in leaves]
        )
    else:
        out = tx
    _remember(_BY_ID, id(tx), (tx, x64, out), BY_ID_SIZE)
    return out
