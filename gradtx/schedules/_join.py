"""Combining schedules: in time (``join_schedules``), by product (``multiply_schedules``), and
moved along the count (``Shift``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks
from .._checks import HyperparameterError
from .._transform import (
    Schedule,
    _repr_value,
    as_schedule,
    field,
    pytree_dataclass,
    value_at,
)
from ._util import add_formula, is_int, since
from ._util import f as _f


def shift(count: Any, *marks: Any) -> jax.Array:
    """``count - sum(marks)``: an integer when all of them are integers (as Optax passes it to
    the next schedule), a float otherwise."""
    c = jnp.asarray(count)
    if is_int(c) and all(is_int(m) for m in marks):
        out = c
        for m in marks:
            out = out - jnp.asarray(m).astype(c.dtype)
        return out
    return since(c, *marks)


@pytree_dataclass
class Join(Schedule):
    """``schedules[i](count - boundaries[i-1])`` for ``boundaries[i-1] <= count < boundaries[i]``."""

    fn_name = "join_schedules"

    schedules: tuple[Any, ...]
    boundaries: tuple[Any, ...]

    def __call__(self, count):
        t = jnp.asarray(count)
        out = _f(value_at(self.schedules[0], t))
        for b, s in zip(self.boundaries, self.schedules[1:]):
            out = jnp.where(since(t, b) < 0, out, _f(value_at(s, shift(t, b))))
        return out

    def __repr__(self) -> str:
        scheds = ", ".join(_repr_value(s) for s in self.schedules)
        bounds = ", ".join(_repr_value(b) for b in self.boundaries)
        return f"Join([{scheds}], boundaries=[{bounds}])"


def join_schedules(schedules: Any, boundaries: Any) -> Join:
    """Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` restarted at 0, ...

    Formula: see ``Join``.

    Args:
      schedules: the schedules in order (numbers and plain callables are accepted).
      boundaries: the counts at which each next schedule starts, one fewer than ``schedules``;
        they may be traced.

    Conventions: Optax's ``join_schedules`` (each schedule after the first sees ``count -
    boundary``); torch ``SequentialLR(schedulers, milestones)``.
    """
    schedules = tuple(as_schedule(s) for s in schedules)
    boundaries = tuple(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise HyperparameterError(
            f"gradtx.join_schedules: needs len(boundaries) == len(schedules) - 1, got "
            f"{len(boundaries)} boundaries for {len(schedules)} schedules"
        )
    return Join(schedules, boundaries)


@pytree_dataclass
class Multiply(Schedule):
    """``prod_i schedules[i](count)``; numbers count as constant schedules."""

    fn_name = "multiply_schedules"

    schedules: tuple[Any, ...]

    def __call__(self, count):
        out = _f(value_at(self.schedules[0], count))
        for s in self.schedules[1:]:
            out = out * _f(value_at(s, count))
        return out

    def __repr__(self) -> str:
        return "Multiply(" + ", ".join(_repr_value(s) for s in self.schedules) + ")"


def multiply_schedules(*schedules: Any) -> Multiply:
    """The product of schedules (and numbers) at every count (formula: see ``Multiply``).

    Args:
      *schedules: schedules, numbers or plain callables; at least one.

    Conventions: gradtx's own (Optax has none). torch ``ChainedScheduler([s1, s2, ...])``
    multiplies the factors of chainable schedulers:
    ``ChainedScheduler([ConstantLR(opt, 0.5, total_iters=5), ExponentialLR(opt, 0.95)])`` with
    base rate ``lr`` is ``multiply_schedules(piecewise_constant_schedule(0.5, {5: 2.0}),
    exponential_decay(lr, 1, 0.95))``. Also handy for a warmup factor on top of any schedule.
    """
    if not schedules:
        raise HyperparameterError("gradtx.multiply_schedules: needs at least one schedule")
    return Multiply(tuple(as_schedule(s) for s in schedules))


_INT32_MAX = 2**31 - 1


@pytree_dataclass
class Shift(Schedule):
    """``schedule(count + offset)``: the schedule entered ``offset`` counts in.

    An integer count plus an integer offset is computed in integers and saturates at the
    largest int32 (as counts do).
    """

    fn_name = "Shift"

    schedule: Any
    offset: Any = field(0, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        c = jnp.asarray(count)
        if is_int(c) and is_int(self.offset):
            c = c.astype(jnp.int32) if c.dtype.itemsize < 4 else c
            off = jnp.asarray(self.offset).astype(c.dtype)
            top = jnp.asarray(min(jnp.iinfo(c.dtype).max, _INT32_MAX), c.dtype)
            moved = jnp.where(c > top - off, top, c + off)
        else:
            moved = _f(c) + _f(self.offset)
        return _f(value_at(self.schedule, moved))

    def momentum(self, *args: Any, **kwargs: Any) -> Shift:
        """The momentum schedule of a cyclical rate (``schedule.momentum(...)``), shifted alike."""
        return Shift(self.schedule.momentum(*args, **kwargs), self.offset)


add_formula(join_schedules, Join)
add_formula(multiply_schedules, Multiply)
