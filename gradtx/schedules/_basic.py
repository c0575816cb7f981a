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
from .._transform import Schedule, _repr_value, field, pytree_dataclass, static_field
from ._util import div_mod as _div_mod
from ._util import f as _f
from ._util import nonzero as _nonzero
from ._util import since as _since
from ._util import sorted_items
from ._util import t as _t


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

    fn_name = "linear"

    init_value: Any
    end_value: Any
    transition_steps: Any = field(check=_checks.POSITIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        steps = _f(self.transition_steps)
        k = jnp.clip(_since(count, self.transition_begin), 0.0, steps)
        init, end = _f(self.init_value), _f(self.end_value)
        ramp = init + (end - init) * (k / _nonzero(steps))
        return jnp.where(steps > 0, ramp, init)


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

    fn_name = "exponential_decay"

    init_value: Any
    decay_rate: Any = field(check=_checks.NONNEGATIVE)
    transition_steps: Any = field(1, check=_checks.POSITIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)
    staircase: bool = static_field(False)
    end_value: Any = None

    def __call__(self, count):
        return exponential_decay_value(
            count,
            self.init_value,
            self.decay_rate,
            self.transition_steps,
            self.transition_begin,
            self.staircase,
            self.end_value,
        )


def exponential_decay_value(
    count: Any,
    init_value: Any,
    decay_rate: Any,
    transition_steps: Any,
    transition_begin: Any,
    staircase: bool,
    end_value: Any,
    after: Any = None,
) -> jax.Array:
    """The exponential decay formula at ``count``, started ``after`` steps late (the warmup
    variant's offset; None: 0). Integer counts are offset and divided in integers."""
    init, rate = _f(init_value), _f(decay_rate)
    marks = (transition_begin,) if after is None else (after, transition_begin)
    k = _since(count, *marks)
    if staircase:
        p = _div_mod(count, transition_steps, *marks)[0]
    else:
        p = k / _nonzero(_f(transition_steps))
    p = jnp.maximum(p, 0.0)
    value = jnp.where(k <= 0, init, init * jnp.power(rate, p))
    if end_value is not None:
        end = _f(end_value)
        value = jnp.where(rate < 1, jnp.maximum(value, end), jnp.minimum(value, end))
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

    fn_name = "inverse_time_decay"

    init_value: Any
    decay_rate: Any = field(check=_checks.NONNEGATIVE)
    power: Any = 1.0

    def __call__(self, count):
        base = _f(self.decay_rate) * _t(count) + 1.0
        return _f(self.init_value) * jnp.power(base, -_f(self.power))


def inverse_time_decay(init_value: Any, decay_rate: Any, power: Any = 1.0) -> InverseTimeDecay:
    """``init_value * (decay_rate * count + 1)^(-power)``.

    d2l's "polynomial decay" ``eta0 * (beta * t + 1)^(-alpha)`` is
    ``inverse_time_decay(eta0, decay_rate=beta, power=alpha)`` (``alpha=0.5, beta=1``:
    ``eta0 * (t + 1)^(-1/2)``). torch: ``LambdaLR(opt, lambda k: (beta * k + 1) ** -alpha)`` with
    base rate ``eta0``; Optax has no such schedule (``polynomial_schedule`` is a different one).
    """
    return InverseTimeDecay(init_value, decay_rate, power)


@pytree_dataclass
class PiecewiseConstant(Schedule):
    """``eta = init_value * prod(scale_i for boundary_i <= count)``."""

    init_value: Any
    boundaries: tuple[Any, ...] = ()
    scales: tuple[Any, ...] = ()

    def __call__(self, count):
        t = _t(count)
        value = _f(self.init_value) * jnp.ones_like(t)
        for b, s in zip(self.boundaries, self.scales):
            value = jnp.where(_since(count, b) >= 0, value * _f(s), value)
        return value

    def __repr__(self) -> str:
        pairs = ", ".join(
            f"{_repr_value(b)}: {_repr_value(s)}" for b, s in zip(self.boundaries, self.scales)
        )
        return f"PiecewiseConstant(init_value={_repr_value(self.init_value)}, {{{pairs}}})"


def piecewise_constant(
    init_value: Any, boundaries_and_scales: dict[Any, Any] | None = None
) -> PiecewiseConstant:
    """Multiplies ``init_value`` by ``scale`` at each boundary (counts at or past it).

    torch ``MultiStepLR(milestones, gamma)`` is
    ``piecewise_constant(lr, {m: gamma for m in milestones})``; d2l's multi-factor schedule is the
    same; Optax ``piecewise_constant_schedule`` takes the same arguments.
    """
    items = sorted_items("piecewise_constant", boundaries_and_scales)
    return PiecewiseConstant(init_value, tuple(b for b, _ in items), tuple(s for _, s in items))


@pytree_dataclass
class CosineDecay(Schedule):
    """Cosine decay clamped at ``decay_steps``::

    c = (1 + cos(pi * min(count, decay_steps) / decay_steps)) / 2
    eta = (init_value - end_value) * c^exponent + end_value
    """

    fn_name = "cosine_decay"

    init_value: Any
    decay_steps: Any = field(check=_checks.POSITIVE)
    end_value: Any = 0.0
    exponent: Any = 1.0

    def __call__(self, count):
        steps = _f(self.decay_steps)
        t = jnp.clip(_t(count), 0.0, steps)
        c = 0.5 * (1.0 + jnp.cos(jnp.pi * t / _nonzero(steps)))
        c = jnp.where(steps > 0, c, 0.0)
        init, end = _f(self.init_value), _f(self.end_value)
        return (init - end) * jnp.power(c, _f(self.exponent)) + end


def cosine_decay(
    init_value: Any, decay_steps: Any, end_value: Any = 0.0, exponent: Any = 1.0
) -> CosineDecay:
    """Cosine decay from ``init_value`` to ``end_value`` over ``decay_steps``, then constant.

    Optax ``cosine_decay_schedule(init, decay_steps, alpha)`` is
    ``cosine_decay(init, decay_steps, end_value=alpha * init)``; torch ``CosineAnnealingLR``
    agrees up to ``T_max`` (torch is periodic past it; see ``cosine_restarts``).
    """
    return CosineDecay(init_value, decay_steps, end_value, exponent)
