"""Combining schedules: in time (``join``) and by product (``multiply``)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import HyperparameterError
from .._transform import Schedule, _repr_value, as_schedule, pytree_dataclass, value_at
from ._util import add_formula, since
from ._util import f as _f


def _is_int(x: Any) -> bool:
    if isinstance(x, bool):
        return False
    if isinstance(x, (int, np.integer)):
        return True
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jnp.integer)


def _shift(count: Any, boundary: Any) -> jax.Array:
    """``count - boundary``: integer when both are integers (Optax's), float otherwise."""
    c = jnp.asarray(count)
    if jnp.issubdtype(c.dtype, jnp.integer) and _is_int(boundary):
        return c - jnp.asarray(boundary).astype(c.dtype)
    return since(c, boundary)


@pytree_dataclass
class Join(Schedule):
    """``schedules[i](count - boundaries[i-1])`` for ``boundaries[i-1] <= count < boundaries[i]``."""

    schedules: tuple[Any, ...]
    boundaries: tuple[Any, ...]

    def __call__(self, count):
        t = jnp.asarray(count)
        out = _f(value_at(self.schedules[0], t))
        for b, s in zip(self.boundaries, self.schedules[1:]):
            out = jnp.where(since(t, b) < 0, out, _f(value_at(s, _shift(t, b))))
        return out

    def __repr__(self) -> str:
        scheds = ", ".join(_repr_value(s) for s in self.schedules)
        bounds = ", ".join(_repr_value(b) for b in self.boundaries)
        return f"Join([{scheds}], boundaries=[{bounds}])"


def join(schedules: Any, boundaries: Any) -> Join:
    """Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` restarted at 0, ...

    torch ``SequentialLR(schedulers, milestones)`` and Optax ``join_schedules`` (each schedule
    after the first sees ``count - boundary``). Boundaries may be traced.
    """
    schedules = tuple(as_schedule(s) for s in schedules)
    boundaries = tuple(boundaries)
    if len(boundaries) != len(schedules) - 1:
        raise HyperparameterError(
            f"gradtx.join: needs len(boundaries) == len(schedules) - 1, got "
            f"{len(boundaries)} boundaries for {len(schedules)} schedules"
        )
    return Join(schedules, boundaries)


@pytree_dataclass
class Multiply(Schedule):
    """``prod_i schedules[i](count)``; numbers count as constant schedules."""

    schedules: tuple[Any, ...]

    def __call__(self, count):
        out = _f(value_at(self.schedules[0], count))
        for s in self.schedules[1:]:
            out = out * _f(value_at(s, count))
        return out

    def __repr__(self) -> str:
        return "Multiply(" + ", ".join(_repr_value(s) for s in self.schedules) + ")"


def multiply(*schedules: Any) -> Multiply:
    """The product of schedules (and numbers) at every count.

    torch ``ChainedScheduler([s1, s2, ...])`` multiplies the factors of chainable schedulers:
    ``ChainedScheduler([ConstantLR(opt, 0.5, total_iters=5), ExponentialLR(opt, 0.95)])`` with base
    rate ``lr`` is ``multiply(piecewise_constant(0.5, {5: 2.0}), exponential_decay(lr, 0.95))``.
    Also handy for a warmup factor on top of any schedule.
    """
    if not schedules:
        raise HyperparameterError("gradtx.multiply: needs at least one schedule")
    return Multiply(tuple(as_schedule(s) for s in schedules))


add_formula(join, Join)
add_formula(multiply, Multiply)
