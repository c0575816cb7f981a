"""Plotting schedules (matplotlib is imported only when a plot is asked for)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._transform import as_schedule, value_at


def schedule_values(schedule: Any, counts: Any) -> np.ndarray:
    """``schedule(count)`` for every count, as a NumPy array (vectorised when possible)."""
    counts = jnp.asarray(counts, jnp.int32)
    schedule = as_schedule(schedule)
    try:
        out = jax.vmap(lambda c: jnp.asarray(value_at(schedule, c)))(counts)
        return np.broadcast_to(np.asarray(out), counts.shape)
    except (TypeError, jax.errors.ConcretizationTypeError):  # a Python callable with an `if`
        return np.asarray([np.asarray(value_at(schedule, int(c))) for c in np.asarray(counts)])


def plot_schedules(
    schedules: Any,
    steps: Any,
    *,
    ax: Any = None,
    title: str | None = None,
    log_scale: bool = False,
) -> Any:
    """Draws schedules against the step count and returns the matplotlib ``Axes``.

    Args:
      schedules: one schedule, a sequence of them, or a mapping ``label -> schedule``. Numbers
        and plain callables ``count -> value`` are accepted too.
      steps: how many steps to draw (counts ``0 .. steps - 1``) or the counts themselves.
      ax: an ``Axes`` to draw on (default: a new figure).
      title: the plot's title.
      log_scale: a logarithmic value axis.

    Needs matplotlib (``pip install matplotlib``), imported only here.
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("gradtx.plot_schedules needs matplotlib: pip install matplotlib") from e
    if isinstance(schedules, Mapping):
        items = list(schedules.items())
    elif isinstance(schedules, (list, tuple)):
        items = [(repr(as_schedule(s)), s) for s in schedules]
    else:
        items = [(repr(as_schedule(schedules)), schedules)]
    counts = np.arange(steps) if np.ndim(steps) == 0 else np.asarray(steps)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, s in items:
        ax.plot(counts, schedule_values(s, counts), label=str(label))
    ax.set_xlabel("step (count)")
    ax.set_ylabel("value")
    if log_scale:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if items:
        ax.legend(fontsize="small")
    return ax
