"""The schedules of the seed tutorials and their closest relatives.

Every schedule is a pytree whose numeric parameters are leaves, so they can be traced, vmapped
and differentiated. ``count`` is the number of updates applied before this one (the first update
uses ``schedule(0)``, as in torch and Optax).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Schedule, pytree_dataclass, static_field


def _t(count: Any) -> jax.Array:
    return _tree.count_as_float(count)


@pytree_dataclass
class Constant(Schedule):
    """``value`` at every count."""

    value: Any

    def __call__(self, count):
        return jnp.broadcast_to(jnp.asarray(self.value, _tree.float_dtype()), jnp.shape(count))


def constant(value: Any) -> Constant:
    """The constant schedule ``eta_t = value`` (torch: no scheduler; Optax ``constant_schedule``)."""
    return Constant(value)


@pytree_dataclass
class Linear(Schedule):
    """Linear interpolation from ``init_value`` to ``end_value``::

    k = clip(count - transition_begin, 0, transition_steps)
    eta = init_value + (end_value - init_value) * k / transition_steps
    """

    init_value: Any
    end_value: Any
    transition_steps: Any
    transition_begin: Any = 0

    def __post_init__(self):
        _checks.check_positive("linear", "transition_steps", self.transition_steps)
        _checks.check_nonnegative("linear", "transition_begin", self.transition_begin)

    def __call__(self, count):
        t = _t(count)
        k = jnp.clip(t - self.transition_begin, 0, self.transition_steps)
        return self.init_value + (self.end_value - self.init_value) * (k / self.transition_steps)


def linear(
    init_value: Any, end_value: Any, transition_steps: Any, transition_begin: Any = 0
) -> Linear:
    """Linear ramp (Optax ``linear_schedule``; torch ``LinearLR`` is
    ``linear(lr * start_factor, lr * end_factor, total_iters)`` and ``ConstantLR`` is
    ``join([constant(lr * factor), constant(lr)], [total_iters])``)."""
    return Linear(init_value, end_value, transition_steps, transition_begin)


@pytree_dataclass
class ExponentialDecay(Schedule):
    """Exponential decay::

    k = count - transition_begin
    p = k / transition_steps            (floor(p) when staircase)
    eta = init_value * decay_rate^p     (init_value while k <= 0)
    eta = max(eta, end_value) if decay_rate < 1 else min(eta, end_value)   (with end_value)
    """

    init_value: Any
    decay_rate: Any
    transition_steps: Any = 1
    transition_begin: Any = 0
    staircase: bool = static_field(False)
    end_value: Any = None

    def __post_init__(self):
        _checks.check_positive("exponential_decay", "transition_steps", self.transition_steps)
        _checks.check_nonnegative("exponential_decay", "transition_begin", self.transition_begin)
        _checks.check_nonnegative("exponential_decay", "decay_rate", self.decay_rate)

    def __call__(self, count):
        k = _t(count) - self.transition_begin
        p = k / self.transition_steps
        if self.staircase:
            p = jnp.floor(p)
        p = jnp.maximum(p, 0.0)
        value = jnp.where(k <= 0, self.init_value, self.init_value * jnp.power(self.decay_rate, p))
        if self.end_value is not None:
            value = jnp.where(
                jnp.asarray(self.decay_rate) < 1,
                jnp.maximum(value, self.end_value),
                jnp.minimum(value, self.end_value),
            )
        return value


def exponential_decay(
    init_value: Any,
    decay_rate: Any,
    transition_steps: Any = 1,
    transition_begin: Any = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> ExponentialDecay:
    """``init_value * decay_rate^((count - transition_begin) / transition_steps)``.

    d2l's ``eta0 * exp(-lam * t)`` is ``exponential_decay(eta0, math.exp(-lam))``; torch
    ``ExponentialLR(gamma)`` is ``exponential_decay(lr, gamma)`` and ``StepLR(step_size, gamma)`` is
    ``exponential_decay(lr, gamma, step_size, staircase=True)``; Optax ``exponential_decay`` takes
    the same arguments by keyword.
    """
    return ExponentialDecay(
        init_value, decay_rate, transition_steps, transition_begin, staircase, end_value
    )


@pytree_dataclass
class InverseTimeDecay(Schedule):
    """``eta = init_value * (decay_rate * count + 1)^(-power)``."""

    init_value: Any
    decay_rate: Any
    power: Any = 1.0

    def __post_init__(self):
        _checks.check_nonnegative("inverse_time_decay", "decay_rate", self.decay_rate)

    def __call__(self, count):
        return self.init_value * jnp.power(self.decay_rate * _t(count) + 1.0, -self.power)


def inverse_time_decay(init_value: Any, decay_rate: Any, power: Any = 1.0) -> InverseTimeDecay:
    """d2l's polynomial decay ``eta0 * (beta * t + 1)^(-alpha)`` is
    ``inverse_time_decay(eta0, decay_rate=beta, power=alpha)``."""
    return InverseTimeDecay(init_value, decay_rate, power)


@pytree_dataclass
class PiecewiseConstant(Schedule):
    """``eta = init_value * prod(scale_i for boundary_i <= count)``."""

    init_value: Any
    boundaries: tuple[Any, ...] = ()
    scales: tuple[Any, ...] = ()

    def __call__(self, count):
        t = _t(count)
        value = jnp.asarray(self.init_value, _tree.float_dtype()) * jnp.ones_like(t)
        for b, s in zip(self.boundaries, self.scales):
            value = jnp.where(t >= b, value * s, value)
        return value


def piecewise_constant(init_value: Any, boundaries_and_scales: dict[Any, Any] | None = None):
    """Multiplies ``init_value`` by ``scale`` at each boundary (counts at or past it).

    torch ``MultiStepLR(milestones, gamma)`` is
    ``piecewise_constant(lr, {m: gamma for m in milestones})``; d2l's multi-factor schedule is the
    same; Optax ``piecewise_constant_schedule`` takes the same arguments.
    """
    items = sorted((boundaries_and_scales or {}).items(), key=lambda kv: float(kv[0]))
    for b, s in items:
        _checks.check_nonnegative("piecewise_constant", "boundary", b)
        _checks.check_nonnegative("piecewise_constant", "scale", s)
    return PiecewiseConstant(init_value, tuple(b for b, _ in items), tuple(s for _, s in items))


@pytree_dataclass
class CosineDecay(Schedule):
    """Cosine decay clamped at ``decay_steps``::

    c = (1 + cos(pi * min(count, decay_steps) / decay_steps)) / 2
    eta = (init_value - end_value) * c^exponent + end_value
    """

    init_value: Any
    decay_steps: Any
    end_value: Any = 0.0
    exponent: Any = 1.0

    def __post_init__(self):
        _checks.check_positive("cosine_decay", "decay_steps", self.decay_steps)

    def __call__(self, count):
        t = jnp.minimum(_t(count), self.decay_steps)
        c = 0.5 * (1.0 + jnp.cos(jnp.pi * t / self.decay_steps))
        return (self.init_value - self.end_value) * jnp.power(c, self.exponent) + self.end_value


def cosine_decay(
    init_value: Any, decay_steps: Any, end_value: Any = 0.0, exponent: Any = 1.0
) -> CosineDecay:
    """Cosine decay from ``init_value`` to ``end_value`` over ``decay_steps``, then constant.

    Optax ``cosine_decay_schedule(init, decay_steps, alpha)`` is
    ``cosine_decay(init, decay_steps, end_value=alpha * init)``; torch ``CosineAnnealingLR``
    agrees up to ``T_max`` (torch is periodic past it; see ``cosine_restarts``).
    """
    return CosineDecay(init_value, decay_steps, end_value, exponent)
