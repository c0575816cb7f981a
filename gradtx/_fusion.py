"""XLA:CPU multi-output fusion: detection, opt-in, and the "twin" formulation that uses it.

Why this exists. An elementwise optimizer step writes several arrays (the new parameters and
each state buffer). XLA:CPU emits one loop per output by default, so Adam's step is three passes
over memory that move 10 floats per parameter, where one pass moving 7 (read p, g, m, v; write
p, m, v) would do. XLA:CPU has a sibling multi-output fusion pass that merges loops reading the
same inputs into one loop with several outputs, but it is off unless the process starts with::

    XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion

(it cannot be set per compilation: JAX's ``compiler_options`` only reach scalar DebugOptions).
Even with the pass on, the natural formulation ends in two loops: the new moments are one fused
pair, and the parameter write *reads* them, so it is a consumer, not a sibling, and the pass only
merges siblings.

The twin formulation. When the pass is on, the per-leaf state arithmetic is written twice: once
for the new state, and once, from its inputs multiplied by a 1 that went through an
``optimization_barrier``, for the update. ``x * 1`` is exact, but XLA can no longer prove the two
copies equal, so common-subexpression elimination leaves them apart; the update then reads the
old state, the gradient and the parameters directly, like the state write, the two loops are
siblings, and the pass merges the whole step into one loop. Both copies apply the same operations
to the same values; as between gradtx's tree and flat paths, XLA may round a multiply-add
differently in a differently shaped loop, so results agree with the default build to a few
float32 ulps (tests/test_cpu_fusion.py runs every elementwise registry entry both ways). Without the pass the
twin would cost an extra loop, so it is only used where a probe compile shows the pass is on.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

#: The XLA_FLAGS entry that turns on XLA:CPU's multi-output fusion.
CPU_FUSION_FLAG = "--xla_backend_extra_options=xla_cpu_use_multi_output_fusion"


def _siblings(a, b):
    return a + b, a * b


@functools.cache
def _cpu_probe() -> bool:
    """Whether XLA:CPU fuses two sibling loops into one multi-output loop in this process."""
    x = jax.ShapeDtypeStruct((4096,), jnp.float32)
    try:
        text = jax.jit(_siblings, backend="cpu").lower(x, x).compile().as_text()
    except Exception:  # no CPU backend, or a runtime that cannot print HLO: stay conservative
        return False
    for line in text.splitlines():
        head, sep, _ = line.partition(" fusion(")
        if sep and "= (" in head:  # a fusion whose result is a tuple
            return True
    return False


def cpu_multi_output_fusion() -> bool:
    """Whether gradtx's fused (one-loop) CPU updates are active in this process.

    True when JAX's default backend is the CPU and XLA:CPU's multi-output fusion is on (see
    ``enable_cpu_multi_output_fusion``). Checked once, by compiling a two-op probe.
    """
    if "xla_cpu_use_multi_output_fusion" not in os.environ.get("XLA_FLAGS", ""):
        return False  # off by default: no probe compile
    return jax.default_backend() == "cpu" and _cpu_probe()


def enable_cpu_multi_output_fusion() -> None:
    """Turn on XLA:CPU's multi-output fusion for this process (call before any JAX work).

    Adds ``--xla_backend_extra_options=xla_cpu_use_multi_output_fusion`` to ``XLA_FLAGS``. XLA
    reads that variable once, when the CPU backend starts, so this must run before the first JAX
    computation; setting the variable in the shell before starting Python is equivalent. With
    the pass on, gradtx's elementwise optimizers (Adam, AdamW, SGD with momentum, RMSprop, Lion,
    ...) compile an update-and-apply step to one loop over memory instead of two or three; see
    the README's performance section for the measured effect. The flag is process-wide: it also
    lets XLA fuse sibling loops in the rest of your program (numerics are unchanged: fusion
    does not reorder floating-point operations).

    Raises:
      RuntimeError: if the CPU backend had already started without the flag, so it cannot take
        effect any more in this process.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_cpu_use_multi_output_fusion" not in flags:
        if "--xla_backend_extra_options=" in flags:
            raise RuntimeError(
                "gradtx.enable_cpu_multi_output_fusion: XLA_FLAGS already sets "
                f"--xla_backend_extra_options ({flags!r}); add xla_cpu_use_multi_output_fusion "
                "to that comma-separated list yourself"
            )
        os.environ["XLA_FLAGS"] = f"{flags} {CPU_FUSION_FLAG}".strip()
    _cpu_probe.cache_clear()
    if not _cpu_probe():
        raise RuntimeError(
            "gradtx.enable_cpu_multi_output_fusion: XLA's CPU backend was already running "
            "without multi-output fusion, so the flag cannot take effect in this process. Call "
            "it before any JAX computation, or start Python with "
            f"XLA_FLAGS={CPU_FUSION_FLAG}"
        )


# Recipes: how to recompute an elementwise producer's output from its input. A twin copy that
# reads ``out * 1`` still reads ``out``, so ``out`` must exist in memory; XLA:CPU does not
# duplicate a producer (``g * clip_factor``, say) into the two sibling loops that read it, so it
# writes ``out`` to a fresh temporary and reads it back (on this kind of machine a fresh
# 100 MB buffer costs more than the whole fused step: page faults). With a recipe, the twin
# recomputes ``out`` from ``input * 1`` instead, ``out`` has a single reader, and XLA fuses it.
_RECIPES: contextvars.ContextVar[dict[int, tuple[Any, Any, Any]] | None] = contextvars.ContextVar(
    "gradtx_fusion_recipes", default=None
)


@contextlib.contextmanager
def recipes():
    """The scope of one traced update (a chain's): recipes recorded inside it are visible to
    the twins made inside it, and dropped at its end (nested scopes share the outermost)."""
    if _RECIPES.get() is not None:
        yield
        return
    token = _RECIPES.set({})
    try:
        yield
    finally:
        _RECIPES.reset(token)


def record(out: Any, source: Any, fn: Any) -> None:
    """Notes that ``out`` is exactly ``fn(source)`` (elementwise), for the twins of later transforms.

    Only kept while a ``recipes()`` scope is open and the twin is on (CPU multi-output fusion),
    for leaves the twin handles; otherwise a no-op.
    """
    scope = _RECIPES.get()
    if scope is None or not isinstance(out, jax.core.Tracer) or out.size < Twin.min_size:
        return
    if not (Twin.enabled and cpu_multi_output_fusion()):
        return
    scope[id(out)] = (out, source, fn)


def _again(x: Any, one: Any) -> Any:
    """``x`` as a second copy: recomputed from its recipe's source where one is recorded."""
    scope = _RECIPES.get()
    entry = None if scope is None else scope.get(id(x))
    if entry is not None and entry[0] is x and entry[1].dtype == x.dtype:
        return entry[2](_again(entry[1], one))
    return x * one


def _has_recipe(arrays: tuple[Any, ...]) -> bool:
    scope = _RECIPES.get()
    return bool(scope) and any(x is not None and scope.get(id(x), (None,))[0] is x for x in arrays)


class Twin:
    """The update's second copy of a per-leaf state computation, made once per ``_update``.

    Usage, inside a transform's ``_update``::

        twin = _fusion.Twin()
        def leaf(g, m, v):                      # -> (update, *new_state)
            ...
        res = _tree.tree_map_with_check(where, twin.wrap(leaf), updates, m, v)

    ``twin.run(leaf, g, m, v)`` computes ``leaf(g, m, v)``; when CPU multi-output fusion is on it
    takes the update from ``leaf(*twin(g, m, v))``, a second copy (``twin(...)`` is None when off).

    ``twin(*arrays)`` multiplies each array by a 1 that went through an
    ``optimization_barrier`` (one per dtype). ``x * 1`` is exact for every real float (NaN, +-inf
    and -0 included; XLA:CPU already reads subnormals as zero in arithmetic), but XLA can no
    longer see that the second copy is the same expression: the update and the state write
    become sibling loops over the same inputs, which the multi-output fusion pass merges into
    one. Complex arrays are left to the one-copy path (``z * (1 + 0j)`` is not exact for infinite
    parts).
    """

    #: Off switch for tests that compare against the one-copy formulation under the same flags.
    enabled = True
    #: Leaves smaller than this (elements) keep one copy: their step is dominated by per-loop
    #: overhead rather than memory traffic, and a second copy of every small leaf's arithmetic
    #: would only add compile time on trees of many small leaves (the packed buffers of
    #: ``gradtx.flatten`` and ``gradtx.grouped`` are far above it).
    min_size = 1 << 16

    def __init__(self) -> None:
        self.active = Twin.enabled and cpu_multi_output_fusion()
        self._ones: dict[Any, jax.Array] = {}

    def run(self, body: Any, *arrays: Any) -> tuple[Any, ...]:
        """``body(*arrays) -> (update, *new_state)``, the update from a second copy when active.

        When an input has a recipe (a gradient clipped just before, say), every output is taken
        from its own copy instead: otherwise the recomputed input would feed both the moment
        and the variance writes and XLA would materialize it for the two of them.
        """
        out = body(*arrays)
        if self._eligible(arrays) and _has_recipe(arrays):
            ones = self._fresh_ones(arrays, len(out))
            return tuple(
                o if o is None else body(*self._copy(arrays, ones[k]))[k] for k, o in enumerate(out)
            )
        again = self(*arrays)
        return out if again is None else (body(*again)[0], *out[1:])

    def wrap(self, body: Any) -> Any:
        """``body`` with its update taken from a second copy when active (see ``run``)."""
        return lambda *arrays: self.run(body, *arrays)

    def _eligible(self, arrays: tuple[Any, ...]) -> bool:
        if not self.active:
            return False
        present = [x for x in arrays if x is not None]
        if not present or present[0].size < Twin.min_size:
            return False
        return all(jnp.issubdtype(x.dtype, jnp.floating) for x in present)

    @staticmethod
    def _fresh_ones(arrays: tuple[Any, ...], copies: int) -> list[dict[Any, jax.Array]]:
        """``copies`` sets of a 1 per dtype, all through one barrier: XLA merges separate
        barriers of equal constants (and with them the copies), not elements of one barrier."""
        dtypes = list(dict.fromkeys(x.dtype for x in arrays if x is not None))
        flat = lax.optimization_barrier(
            tuple(jnp.ones((), d) for _ in range(copies) for d in dtypes)
        )
        n = len(dtypes)
        return [dict(zip(dtypes, flat[k * n : (k + 1) * n])) for k in range(copies)]

    @staticmethod
    def _copy(arrays: tuple[Any, ...], ones: dict[Any, jax.Array]) -> tuple[Any, ...]:
        return tuple(None if x is None else _again(x, ones[x.dtype]) for x in arrays)

    def __call__(self, *arrays: Any) -> tuple[Any, ...] | None:
        if not self._eligible(arrays):
            return None
        for x in arrays:
            if x is not None and x.dtype not in self._ones:
                self._ones[x.dtype] = lax.optimization_barrier(jnp.ones((), x.dtype))
        return self._copy(arrays, self._ones)
