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

    fn_name = "constant_schedule"

    value: Any

    def __call__(self, count):
        return jnp.broadcast_to(jnp.asarray(self.value, _tree.float_dtype()), jnp.shape(count))


def constant_schedule(value: Any) -> Constant:
    """The constant schedule::

        eta_t = value

    Args:
      value: the value at every count (any number; a traced value is a leaf like any other).

    Conventions: Optax's ``constant_schedule``; torch: no scheduler. A constant schedule passed
    as a hyperparameter gives the same updates as the plain number.
    """
    return Constant(value)


@pytree_dataclass
class Linear(Schedule):
    """Linear interpolation from ``init_value`` to ``end_value``::

    k = clip(count - transition_begin, 0, transition_steps)
    eta = init_value + (end_value - init_value) * k / transition_steps
    (init_value throughout when transition_steps == 0)
    """

    fn_name = "linear_schedule"

    init_value: Any
    end_value: Any
    transition_steps: Any = field(check=_checks.NONNEGATIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        steps = _f(self.transition_steps)
        k = jnp.clip(_since(count, self.transition_begin), 0.0, jnp.maximum(steps, 0.0))
        init, end = _f(self.init_value), _f(self.end_value)
        ramp = init + (end - init) * (k / _nonzero(steps))
        return jnp.where(steps > 0, ramp, init)


def linear_schedule(
    init_value: Any, end_value: Any, transition_steps: Any, transition_begin: Any = 0
) -> Linear:
    """A linear ramp from ``init_value`` to ``end_value``, then constant::

        k = clip(count - transition_begin, 0, transition_steps)
        eta = init_value + (end_value - init_value) * k / transition_steps

    Args:
      init_value: the value up to ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      transition_steps: the length of the ramp, >= 0 (0: ``init_value`` throughout).
      transition_begin: counts before the ramp starts, >= 0. Default 0.

    Conventions: Optax's ``linear_schedule`` (same arguments and values; Optax turns a negative
    ``transition_begin`` into 0, gradtx rejects it). torch ``LinearLR`` is
    ``gradtx.torch.linear_lr``.
    """
    return Linear(init_value, end_value, transition_steps, transition_begin)


@pytree_dataclass
class ExponentialDecay(Schedule):
    """Exponential decay::

    k = count - transition_begin
    p = k / transition_steps            (floor(p) when staircase)
    eta = init_value * decay_rate^p     (init_value while k <= 0)
    eta = max(eta, end_value) if decay_rate < 1 else min(eta, end_value)   (with end_value)
    (init_value throughout when transition_steps == 0)
    """

    fn_name = "exponential_decay"

    init_value: Any
    transition_steps: Any = field(check=_checks.NONNEGATIVE)
    decay_rate: Any = field(check=_checks.NONNEGATIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)
    staircase: bool = static_field(False)
    end_value: Any = None

    def __call__(self, count):
        return exponential_decay_value(
            count,
            self.init_value,
            self.transition_steps,
            self.decay_rate,
            self.transition_begin,
            self.staircase,
            self.end_value,
        )


def exponential_decay_value(
    count: Any,
    init_value: Any,
    transition_steps: Any,
    decay_rate: Any,
    transition_begin: Any,
    staircase: bool,
    end_value: Any,
    after: Any = None,
) -> jax.Array:
    """The exponential decay formula at ``count``, started ``after`` steps late (the warmup
    variant's offset; None: 0). Integer counts are offset and divided in integers."""
    init, rate, steps = _f(init_value), _f(decay_rate), _f(transition_steps)
    marks = (transition_begin,) if after is None else (after, transition_begin)
    k = _since(count, *marks)
    if staircase:
        p = _div_mod(count, transition_steps, *marks)[0]
    else:
        p = k / _nonzero(steps)
    p = jnp.maximum(p, 0.0)
    value = jnp.where(k <= 0, init, init * jnp.power(rate, p))
    if end_value is not None:
        end = _f(end_value)
        value = jnp.where(rate < 1, jnp.maximum(value, end), jnp.minimum(value, end))
    return jnp.where(steps > 0, value, init)


def exponential_decay(
    init_value: Any,
    transition_steps: Any,
    decay_rate: Any,
    transition_begin: Any = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> ExponentialDecay:
    """Exponential decay by ``decay_rate`` every ``transition_steps`` counts::

        k = count - transition_begin
        eta = init_value * decay_rate^(k / transition_steps)     (init_value while k <= 0)
        staircase: the exponent is floor(k / transition_steps)
        end_value: eta = max(eta, end_value) when decay_rate < 1, min(eta, end_value) above 1

    Args:
      init_value: the value up to ``transition_begin``.
      transition_steps: counts per factor of ``decay_rate``, >= 0 (0: ``init_value``
        throughout).
      decay_rate: the factor per ``transition_steps``, >= 0 (above 1: growth).
      transition_begin: counts before the decay starts, >= 0. Default 0.
      staircase: decay in whole steps of ``transition_steps``. Default False.
      end_value: a floor (decay) or ceiling (growth); None: none. Default None.

    Conventions: Optax's ``exponential_decay`` (same positional order and values, except that
    Optax returns ``init_value`` throughout for ``decay_rate=0``, where gradtx decays to 0, and
    Optax turns a negative ``transition_begin`` into 0, where gradtx rejects it). d2l's
    ``eta0 * exp(-lam * t)`` is ``exponential_decay(eta0, 1, math.exp(-lam))``. torch
    ``ExponentialLR`` and ``StepLR`` are ``gradtx.torch.exponential_lr`` and
    ``gradtx.torch.step_lr``.
    """
    return ExponentialDecay(
        init_value, transition_steps, decay_rate, transition_begin, staircase, end_value
    )


@pytree_dataclass
class InverseTimeDecay(Schedule):
    """``eta = init_value * (decay_rate * count + 1)^(-power)``."""

    fn_name = "inverse_time_decay_schedule"

    init_value: Any
    decay_rate: Any = field(check=_checks.NONNEGATIVE)
    power: Any = 1.0

    def __call__(self, count):
        base = _f(self.decay_rate) * _t(count) + 1.0
        return _f(self.init_value) * jnp.power(base, -_f(self.power))


def inverse_time_decay_schedule(
    init_value: Any, decay_rate: Any, power: Any = 1.0
) -> InverseTimeDecay:
    """Inverse time decay::

        eta = init_value * (decay_rate * count + 1)^(-power)

    Args:
      init_value: the value at count 0.
      decay_rate: how fast the denominator grows per count, >= 0.
      power: the exponent. Default 1.0.

    Conventions: gradtx's own (Optax has none; its ``polynomial_schedule`` is a different
    schedule). d2l's "polynomial decay" ``eta0 * (beta * t + 1)^(-alpha)`` is
    ``inverse_time_decay_schedule(eta0, decay_rate=beta, power=alpha)``. torch:
    ``LambdaLR(opt, lambda k: (beta * k + 1) ** -alpha)`` with base rate ``eta0``.
    """
    return InverseTimeDecay(init_value, decay_rate, power)


@pytree_dataclass
class PiecewiseConstant(Schedule):
    """``eta = init_value * prod(scale_i for boundary_i <= count)``."""

    fn_name = "piecewise_constant_schedule"

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


def piecewise_constant_schedule(
    init_value: Any, boundaries_and_scales: dict[Any, Any] | None = None
) -> PiecewiseConstant:
    """Multiplies the value by ``scale`` at each boundary::

        eta = init_value * prod(scale_i for boundary_i <= count)

    Args:
      init_value: the value before the first boundary.
      boundaries_and_scales: ``{boundary: scale}``, boundaries >= 0 and scales >= 0; None: a
        constant schedule. Default None.

    Conventions: Optax's ``piecewise_constant_schedule``. torch ``MultiStepLR`` is
    ``gradtx.torch.multi_step_lr``; d2l's multi-factor schedule is this one.
    """
    items = sorted_items("piecewise_constant_schedule", boundaries_and_scales)
    return PiecewiseConstant(init_value, tuple(b for b, _ in items), tuple(s for _, s in items))


@pytree_dataclass
class CosineDecay(Schedule):
    """Cosine decay clamped at ``decay_steps``::

    c = (1 + cos(pi * min(count, decay_steps) / decay_steps)) / 2
    end = alpha * init_value     (or end_value when given)
    eta = (init_value - end) * c^exponent + end
    """

    fn_name = "cosine_decay_schedule"

    init_value: Any
    decay_steps: Any = field(check=_checks.POSITIVE)
    alpha: Any = 0.0
    exponent: Any = 1.0
    end_value: Any = None

    def __call__(self, count):
        steps = _f(self.decay_steps)
        t = jnp.clip(_t(count), 0.0, steps)
        c = 0.5 * (1.0 + jnp.cos(jnp.pi * t / _nonzero(steps)))
        c = jnp.where(steps > 0, c, 0.0)
        init = _f(self.init_value)
        end = _f(self.alpha) * init if self.end_value is None else _f(self.end_value)
        return (init - end) * jnp.power(c, _f(self.exponent)) + end


def cosine_decay_schedule(
    init_value: Any,
    decay_steps: Any,
    alpha: Any = 0.0,
    exponent: Any = 1.0,
    *,
    end_value: Any = None,
) -> CosineDecay:
    """Cosine decay from ``init_value`` over ``decay_steps``, then constant::

        c = (1 + cos(pi * min(count, decay_steps) / decay_steps)) / 2
        eta = init_value * ((1 - alpha) * c^exponent + alpha)

    Args:
      init_value: the value at count 0.
      decay_steps: the length of the decay, > 0.
      alpha: the final value as a fraction of ``init_value``. Default 0.0.
      exponent: the power of the cosine factor. Default 1.0.
      end_value: the final value itself, in place of ``alpha * init_value`` (it can differ from
        0 when ``init_value`` is 0: a cosine ramp up); None: ``alpha * init_value``.
        Keyword-only. Default None.

    Conventions: Optax's ``cosine_decay_schedule``. torch ``CosineAnnealingLR`` agrees up to
    ``T_max`` and rises again after it: that is ``gradtx.torch.cosine_annealing_lr``.
    """
    return CosineDecay(init_value, decay_steps, alpha, exponent, end_value)
