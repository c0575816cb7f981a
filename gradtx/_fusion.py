"""XLA:CPU multi-output fusion: the process-wide switch, its probe, and the sibling update.

An elementwise optimizer step writes several arrays (the new parameters and each state buffer).
XLA:CPU emits one loop per output by default; its sibling multi-output fusion pass merges loops
that read the same inputs (Adam's two moment writes, say) into one loop with several outputs, but
it is off unless the process starts with::

    XLA_FLAGS=--xla_backend_extra_options=xla_cpu_use_multi_output_fusion

(it cannot be set per compilation: JAX's ``compiler_options`` only reach scalar DebugOptions).
The pass applies to any JAX program, gradtx's and Optax's alike. GPU and TPU backends fuse
multi-output loops by default.

Even with the pass on, an elementwise step ends in two loops: the parameter write reads the new
state, so it is a consumer of the state loop, not a sibling. ``Siblings`` (used by the
elementwise kernel base, never by an optimizer) makes it one: the update is computed a second
time from its inputs multiplied by a 1 that went through an ``optimization_barrier``. ``x * 1``
is exact, but XLA cannot prove the two copies equal, so they stay apart; the update then reads
the gradient and the old state like the state write does, and the pass merges the step into one
loop that reads each input once (Adam: read p, g, m, v, write p, m, v). Both copies apply the
same operations to the same values; XLA may round a multiply-add differently in a differently
shaped loop, so results agree with the default build to a few float32 ulps.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp

#: The XLA:CPU backend option that turns on multi-output fusion, and its XLA_FLAGS entry.
CPU_FUSION_OPTION = "xla_cpu_use_multi_output_fusion"
CPU_FUSION_FLAG = f"--xla_backend_extra_options={CPU_FUSION_OPTION}"
_EXTRA = "--xla_backend_extra_options="


def with_backend_option(flags: str, option: str) -> str:
    """``flags`` (an XLA_FLAGS string) with ``option`` in its ``--xla_backend_extra_options``
    list: added to the list already there (XLA reads only one such entry), or as a new entry.
    Unchanged when the option is listed already."""
    words = flags.split()
    for i, word in enumerate(words):
        if word.startswith(_EXTRA):
            listed = [o for o in word[len(_EXTRA) :].split(",") if o]
            if option not in listed:
                words[i] = _EXTRA + ",".join([*listed, option])
            return " ".join(words)
    return " ".join([*words, _EXTRA + option])


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
    """Whether XLA:CPU's multi-output fusion is on in this process.

    True when JAX's default backend is the CPU and the pass is on (see
    ``enable_cpu_multi_output_fusion``). Checked once, by compiling a two-op probe.
    """
    if CPU_FUSION_OPTION not in os.environ.get("XLA_FLAGS", ""):
        return False  # off by default: no probe compile
    return jax.default_backend() == "cpu" and _cpu_probe()


def enable_cpu_multi_output_fusion() -> None:
    """Turn on XLA:CPU's multi-output fusion for this process (call before any JAX work).

    Adds ``xla_cpu_use_multi_output_fusion`` to the ``--xla_backend_extra_options`` list of
    ``XLA_FLAGS`` (to the list already there, or as a new entry). XLA reads that variable once,
    when the CPU backend starts, so this must run before the first JAX computation; setting the variable in the shell before starting Python is equivalent. With
    the pass on, XLA merges the loops of an optimizer step that read the same inputs (the state
    writes of Adam, say), for gradtx and Optax alike, and gradtx's elementwise optimizers
    compile to one loop over each leaf of 65,536 elements or more (Adam: read p, g, m, v; write
    p, m, v). The flag is process-wide: it also lets XLA fuse sibling loops in the rest of your
    program (formulas are unchanged; a multiply-add may round differently in a differently
    shaped loop, a few float32 ulps).

    Raises:
      RuntimeError: if the CPU backend had already started without the flag, so it cannot take
        effect any more in this process.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = with_backend_option(flags, CPU_FUSION_OPTION)
    _cpu_probe.cache_clear()
    if not _cpu_probe():
        raise RuntimeError(
            "gradtx.enable_cpu_multi_output_fusion: XLA's CPU backend was already running "
            "without multi-output fusion, so the flag cannot take effect in this process. Call "
            "it before any JAX computation, or start Python with "
            f"XLA_FLAGS={CPU_FUSION_FLAG} (the pass needs XLA:CPU's default fusion emitters: "
            "not with xla_cpu_disable_new_fusion_emitters)"
        )


class Siblings:
    """The inputs of a second copy of a leaf's update, made once per ``update`` call.

    ``Siblings()(g, *buffers)`` returns the arrays multiplied by an opaque 1 (one
    ``optimization_barrier`` per dtype) when XLA:CPU's multi-output fusion is on and the leaf
    has at least ``min_size`` floating-point elements, and None otherwise (no second copy).
    Complex arrays keep one copy (``z * (1 + 0j)`` is not exact for infinite parts).
    """

    #: Smaller leaves keep one copy: their step costs per-loop overhead, not memory traffic,
    #: and a second copy of every small leaf's arithmetic would only add compile time.
    min_size = 1 << 16

    def __init__(self) -> None:
        self.active = cpu_multi_output_fusion()
        self._ones: dict[Any, Any] = {}

    def __call__(self, *arrays: Any) -> tuple[Any, ...] | None:
        if not self.active or arrays[0].size < Siblings.min_size:
            return None
        if not all(jnp.issubdtype(x.dtype, jnp.floating) for x in arrays):
            return None
        for x in arrays:
            if x.dtype not in self._ones:
                self._ones[x.dtype] = jax.lax.optimization_barrier(jnp.ones((), x.dtype))
        return tuple(x * self._ones[x.dtype] for x in arrays)
