"""Monitoring: measurements of the updates kept in the state, the updates left unchanged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._transform import (
    EmptyState,
    Transform,
    as_transform,
    pytree_dataclass,
    static_field,
)
from ._momentum import ScaleByMomentum, ema


class SnapshotState(NamedTuple):
    """``measurement``: ``{measure_name: measure(updates)}`` of the last step (of the params
    before the first)."""

    measurement: dict[str, Any]


class MonitorState(NamedTuple):
    """``measurements``: ``{name: value}`` from the last step (zeros before the first).
    ``measure_states``: the state of each measure, in the order of the names."""

    measurements: dict[str, Any]
    measure_states: tuple[Any, ...]


@pytree_dataclass
class Snapshot(Transform):
    """Keeps ``measure(updates)`` in the state; the updates pass through."""

    elementwise = True

    measure_name: str = static_field()
    measure: Callable[[Any], Any] = static_field()

    def _init(self, params):
        return SnapshotState({self.measure_name: self.measure(params)})

    def _update(self, updates, state, params, **extra):
        return updates, SnapshotState({self.measure_name: self.measure(updates)})


def snapshot(measure_name: str, measure: Callable[[Any], Any]) -> Snapshot:
    """Records a function of the updates in the state, leaving the updates unchanged::

        state.measurement[measure_name] = measure(u)        (measure(params) after init)

    Args:
      measure_name: the key of the measurement.
      measure: ``f(tree) -> pytree of arrays``, jit-able (a global norm, say); held static.

    Place it in a chain where the value is wanted (after clipping, after the learning rate).

    Conventions:
      ``optax.snapshot``: same signature and state (``SnapshotState(measurement)``).
    """
    return Snapshot(measure_name, measure)


@pytree_dataclass
class _Measure(Transform):
    """``u -> measure(u)`` with no state: a measurement as a transform (inside ``monitor``)."""

    measure: Callable[[Any], Any] = static_field()

    def _update(self, updates, state, params, **extra):
        return self.measure(updates), EmptyState()


@pytree_dataclass
class Monitor(Transform):
    """Runs each measure on the updates and keeps their outputs; the updates pass through."""

    elementwise = True

    measures: tuple[Transform, ...] = ()
    names: tuple[str, ...] = static_field(())

    def _init(self, params):
        states = tuple(m._init(params) for m in self.measures)
        shapes = jax.eval_shape(
            lambda p: {
                n: m._update(p, s, p)[0] for n, m, s in zip(self.names, self.measures, states)
            },
            params,
        )
        zeros = jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes)
        return MonitorState(zeros, states)

    def _update(self, updates, state, params, **extra):
        values, states = {}, []
        for n, m, s in zip(self.names, self.measures, state.measure_states):
            values[n], s = m._update(updates, s, params, **extra)
            states.append(s)
        return updates, MonitorState(values, tuple(states))

    def _children(self, state):
        return tuple((n, m, s) for n, m, s in zip(self.names, self.measures, state.measure_states))


def monitor(measures: dict[str, Any]) -> Monitor:
    """Records measurements of the updates in the state, leaving the updates unchanged::

        state.measurements[name], s_name <- measure.update(u, s_name, params)   for each name

    Args:
      measures: ``{name: measure}``, where a measure is a function ``f(updates) -> pytree`` or
        a transform whose output updates are the measurement (for example
        ``gradtx.measure_with_ema(norm_fn, 0.9)``, or an Optax transform). Functions are held
        static.

    Before the first step ``state.measurements`` holds zeros shaped like each measurement, so
    the state's structure stays the same across steps (Optax starts from an empty dict).

    Conventions:
      ``optax.monitor``: same signature and state (``MonitorState(measurements,
      measure_states)``), the same measurements after each step.
    """
    names, txs = [], []
    for name, m in measures.items():
        names.append(name)
        is_tx = isinstance(m, Transform) or (hasattr(m, "init") and hasattr(m, "update"))
        txs.append(as_transform(m) if is_tx else _Measure(m))
    return Monitor(tuple(txs), tuple(names))


@pytree_dataclass
class MeasureWithEma(Transform):
    """``u -> ema(measure(u))``: the moving average of a measurement, as the output updates."""

    measure: Callable[[Any], Any] = static_field()
    average: ScaleByMomentum = None

    def _init(self, params):
        return (EmptyState(), self.average._init(self.measure(params)))

    def _update(self, updates, state, params, **extra):
        value = self.measure(updates)
        out, s = self.average._update(value, state[1], None)
        return out, (EmptyState(), s)

    def _children(self, state):
        return (("", self.average, state[1]),)


def measure_with_ema(
    measure: Callable[[Any], Any], decay: Any, debias: bool = True, accumulator_dtype: Any = None
) -> MeasureWithEma:
    """The exponential moving average of a measurement of the updates, as the output::

        m_t = measure(u_t)
        a_t = decay * a_{t-1} + (1 - decay) * m_t        (a_0 = 0)
        output = a_t / (1 - decay^t)   (debias)   or   a_t

    Its output replaces the updates: use it inside ``gradtx.monitor``, which keeps the updates
    and records this output.

    Args:
      measure: ``f(tree) -> pytree of float arrays``, jit-able, held static.
      decay: in [0, 1) (a float, an array or a schedule).
      debias: divide by ``1 - decay^t``.
      accumulator_dtype: dtype of the average (default: the measurement's).

    Conventions:
      ``optax.measure_with_ema``: same signature, state (``(EmptyState(), ema state)``) and
      numbers.
    """
    return MeasureWithEma(measure, ema(decay, debias, accumulator_dtype))
