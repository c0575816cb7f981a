"""Arithmetic shared by the schedules: float conversion, safe division, annealing, knots.

Every numeric parameter may be a Python number, an array or a tracer (an int32 step count under
``vmap``, say), so each one is converted to the default float dtype before any arithmetic, and no
Python ``if`` ever looks at a value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree


def f(x: Any) -> jax.Array:
    """A parameter or count as an array of the default float dtype (float64 under x64)."""
    return jnp.asarray(x).astype(_tree.float_dtype())


def t(count: Any) -> jax.Array:
    """The step count as a float."""
    return _tree.count_as_float(count)


def nonzero(x: jax.Array) -> jax.Array:
    """``x`` where it is positive, else 1: a denominator that never divides by zero.

    Used together with a ``jnp.where`` that discards the branch where ``x <= 0``, so neither the
    value nor its gradient sees a division by zero.
    """
    return jnp.where(x > 0, x, jnp.ones_like(x))


def safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` with a finite gradient at 0 (taken as 0)."""
    pos = x > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, x, jnp.ones_like(x))), jnp.zeros_like(x))


def anneal_linear(start: Any, end: Any, pct: Any) -> jax.Array:
    """``start -> end`` linearly as ``pct`` goes 0 -> 1 (torch's and Optax's arithmetic)."""
    return (end - start) * pct + start


def anneal_cos(start: Any, end: Any, pct: Any) -> jax.Array:
    """``start -> end`` along half a cosine as ``pct`` goes 0 -> 1 (torch's and Optax's)."""
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)


ANNEAL: dict[str, Callable[[Any, Any, Any], jax.Array]] = {
    "linear": anneal_linear,
    "cos": anneal_cos,
    "cosine": anneal_cos,
}


def knots(
    x: jax.Array,
    xs: Sequence[Any],
    ys: Sequence[Any],
    anneal: Callable[[Any, Any, Any], jax.Array],
    *,
    closed: bool,
    min_width: float | None,
) -> jax.Array:
    """Piecewise annealing through the points ``(xs[i], ys[i])``; ``ys[-1]`` past the last.

    Segment ``i`` covers ``xs[i] <= x <= xs[i+1]`` (``closed``, torch's OneCycleLR) or
    ``xs[i] <= x < xs[i+1]`` (Optax's piecewise interpolation). Its width is at least
    ``min_width`` (Optax uses 1) or, with ``None``, any positive number (a zero width is a jump).
    """
    out = ys[-1] * jnp.ones_like(x)
    for i in reversed(range(len(xs) - 1)):
        width = xs[i + 1] - xs[i]
        width = jnp.maximum(width, min_width) if min_width is not None else nonzero(width)
        pct = (x - xs[i]) / width
        seg = anneal(ys[i], ys[i + 1], pct)
        inside = x <= xs[i + 1] if closed else x < xs[i + 1]
        out = jnp.where(inside, seg, out)
    return out


def sorted_items(fn: str, boundaries_and_scales: dict[Any, Any] | None) -> list[tuple[Any, Any]]:
    """The dict's items sorted by boundary (when the boundaries are concrete), validated."""
    items = list((boundaries_and_scales or {}).items())
    if all(_checks.concrete_values(b) is not None for b, _ in items):
        items.sort(key=lambda kv: float(kv[0]))
    for b, s in items:
        _checks.check_nonnegative(fn, "boundary", b)
        _checks.check_nonnegative(fn, "scale", s)
    return items


def add_formula(fn: Callable[..., Any], cls: type) -> Callable[..., Any]:
    """Appends ``cls``'s docstring (the formula) to the factory ``fn``'s, so ``help(fn)`` shows it."""
    import inspect
    import textwrap

    formula = textwrap.indent(inspect.cleandoc(cls.__doc__ or ""), "    ")
    fn.__doc__ = f"{inspect.cleandoc(fn.__doc__ or '')}\n\nFormula ({cls.__name__}):\n\n{formula}\n"
    return fn
