"""Joining schedules in time."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _tree
from .._transform import Schedule, as_schedule, pytree_dataclass, value_at


@pytree_dataclass
class Join(Schedule):
    """``schedules[i](count - boundaries[i-1])`` for ``boundaries[i-1] <= count < boundaries[i]``."""

    schedules: tuple[Any, ...]
    boundaries: tuple[Any, ...]

    def __call__(self, count):
        t = jnp.asarray(count)
        out = value_at(self.schedules[0], t)
        for b, s in zip(self.boundaries, self.schedules[1:]):
            out = jnp.where(_tree.count_as_float(t) < b, out, value_at(s, t - b))
        return out


def join(schedules: Any, boundaries: Any) -> Join:
    """Runs ``schedules[0]`` until ``boundaries[0]``, then ``schedules[1]`` restarted at 0, ...

    torch ``SequentialLR(schedulers, milestones)`` and Optax ``join_schedules``.
    """
    schedules = tuple(as_schedule(s) for s in schedules)
    boundaries = tuple(boundaries)
    if len(boundaries) != len(schedules) - 1:
        from .._checks import HyperparameterError

        raise HyperparameterError(
            f"gradtx.join: needs len(boundaries) == len(schedules) - 1, got "
            f"{len(boundaries)} boundaries for {len(schedules)} schedules"
        )
    return Join(schedules, boundaries)
