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
import numpy as np

from .. import _checks, _tree


def f(x: Any) -> jax.Array:
    """A parameter or count as an array of the default float dtype (float64 under x64)."""
    return jnp.asarray(x).astype(_tree.float_dtype())


def t(count: Any) -> jax.Array:
    """The step count as a float."""
    return _tree.count_as_float(count)


# The largest float32 below 2**31: floats are clipped to it before they become int32.
_INT32_SAFE = 2147483520.0


def is_int(x: Any) -> bool:
    """Whether ``x`` is an integer (a Python or NumPy int, or an array of an integer dtype)."""
    if isinstance(x, (bool, np.bool_)):
        return False
    if isinstance(x, (int, np.integer)):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.integer)


def _int_dtype(c: jax.Array) -> Any:
    return c.dtype if c.dtype.itemsize >= 4 else jnp.dtype(jnp.int32)


def _split(x: Any, dtype: Any) -> tuple[jax.Array, jax.Array | None]:
    """``x`` as the nearest integer of ``dtype`` and the float remainder ``x - round(x)``
    (``None`` for an integer ``x``, whose remainder is 0)."""
    if is_int(x):
        return jnp.asarray(x).astype(dtype), None
    xf = f(x)
    xi = jnp.round(jnp.clip(xf, -_INT32_SAFE, _INT32_SAFE)).astype(dtype)
    return xi, xf - f(xi)


def _offset(c: jax.Array, marks: tuple[Any, ...]) -> tuple[jax.Array, jax.Array | None]:
    """``c - sum(marks)`` for an integer ``c``: the integer part, and the float part that the
    marks' fractions add (``None`` when every mark is an integer)."""
    dtype = _int_dtype(c)
    acc = c.astype(dtype)
    frac = None
    for m in marks:
        mi, rem = _split(m, dtype)
        acc = acc - mi
        if rem is not None:
            frac = rem if frac is None else frac + rem
    return acc, frac


def since(count: Any, *marks: Any) -> jax.Array:
    """``count - sum(marks)`` as a float, computed in integers for an integer ``count``.

    A float32 count is exact only up to 2**24: ``20_000_001`` reads as ``20_000_000``, so a
    boundary there would fire a step early. Here the integer parts are subtracted as integers
    and converted once, so the sign (which side of a boundary a count is on) is always exact,
    and so is the difference while it is below 2**24. A float mark contributes its fractional
    part as a float (and its gradient, -1, as before).
    """
    c = jnp.asarray(count)
    if not is_int(c):
        out = f(c)
        for m in marks:
            out = out - f(m)
        return out
    acc, frac = _offset(c, marks)
    return f(acc) if frac is None else f(acc) - frac


def div_mod(count: Any, period: Any, *marks: Any) -> tuple[jax.Array, jax.Array]:
    """``(n, r)`` with ``x = count - sum(marks)``, ``n = floor(x / period)``, ``r = x - n * period``.

    For an integer ``count`` and integral marks and ``period``, both are computed in integers,
    so they are exact at any count (a float32 count near 1e9 is off by up to 64, a whole period
    of a short cycle). Non-integral floats are reduced by their nearest integers first and
    corrected in floats; ``r`` keeps its gradients (``-n`` with respect to ``period``).
    """
    c = jnp.asarray(count)
    if not is_int(c):
        x, p = since(c, *marks), f(period)
        n = jnp.floor(x / p)
        return n, x - n * p
    acc, frac = _offset(c, marks)
    dtype = acc.dtype
    pi, rem = _split(period, dtype)
    pi = jnp.maximum(pi, jnp.ones((), dtype))
    n = jnp.floor_divide(acc, pi)
    r = f(acc - n * pi)
    if frac is None and rem is None:
        return f(n), r
    # x = acc - frac and period = pi + rem: r - frac - n * rem = x - n * period; then n is
    # corrected by whole periods.
    if frac is not None:
        r = r - frac
    if rem is not None:
        r = r - f(n) * rem
    p = f(period)
    k = jnp.floor(r / p)
    return f(n) + k, r - k * p


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
    sub: Callable[[Any, Any], jax.Array] | None = None,
    extend_last: bool = False,
) -> jax.Array:
    """Piecewise annealing through the points ``(xs[i], ys[i])``; ``ys[-1]`` past the last.

    Segment ``i`` covers ``xs[i] <= x <= xs[i+1]`` (``closed``, torch's OneCycleLR) or
    ``xs[i] <= x < xs[i+1]`` (Optax's piecewise interpolation). Its width is at least
    ``min_width`` (Optax uses 1) or, with ``None``, any positive number (a zero width is a jump).
    ``sub(a, b)`` computes ``a - b`` for the count and the knots (``since`` keeps an integer
    count exact); by default a float subtraction. With ``extend_last`` the last segment's
    annealing continues past its end (torch's OneCycleLR at its last step) instead of holding
    ``ys[-1]``.
    """
    sub = sub if sub is not None else (lambda a, b: a - b)
    out = ys[-1] * jnp.ones(jnp.shape(x), _tree.float_dtype())
    last = len(xs) - 2
    for i in reversed(range(len(xs) - 1)):
        width = sub(xs[i + 1], xs[i])
        width = jnp.maximum(width, min_width) if min_width is not None else nonzero(width)
        pct = sub(x, xs[i]) / width
        seg = anneal(ys[i], ys[i + 1], pct)
        if extend_last and i == last:
            out = seg * jnp.ones_like(out)
            continue
        ahead = sub(x, xs[i + 1])
        inside = ahead <= 0 if closed else ahead < 0
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
