"""Polynomial decay and the Transformer's inverse square root."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass
from ._util import add_formula, f, nonzero, since, t


@pytree_dataclass
class Polynomial(Schedule):
    """Polynomial decay from ``init_value`` to ``end_value``::

    k = clip(count - transition_begin, 0, transition_steps)
    eta = (init_value - end_value) * (1 - k / transition_steps)^power + end_value
    (init_value throughout when transition_steps <= 0, as in Optax)
    """

    fn_name = "polynomial_schedule"

    init_value: Any
    end_value: Any
    power: Any
    transition_steps: Any = field(check=_checks.NONNEGATIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        steps = f(self.transition_steps)
        k = jnp.clip(since(count, self.transition_begin), 0.0, jnp.maximum(steps, 0.0))
        frac = 1.0 - k / nonzero(steps)
        init, end = f(self.init_value), f(self.end_value)
        value = (init - end) * jnp.power(frac, f(self.power)) + end
        return jnp.where(steps > 0, value, init)


def polynomial_schedule(
    init_value: Any,
    end_value: Any,
    power: Any,
    transition_steps: Any,
    transition_begin: Any = 0,
) -> Polynomial:
    """Polynomial decay over ``transition_steps`` after ``transition_begin``, then constant.

    Formula: see ``Polynomial``.

    Args:
      init_value: the value up to ``transition_begin``.
      end_value: the value from ``transition_begin + transition_steps`` on.
      power: the exponent of the remaining fraction (1: linear).
      transition_steps: the length of the decay, >= 0 (0: ``init_value`` throughout).
      transition_begin: counts before the decay starts, >= 0. Default 0.

    Conventions: Optax's ``polynomial_schedule`` (Optax turns a negative ``transition_begin``
    into 0; gradtx rejects it). torch ``PolynomialLR`` is ``gradtx.torch.polynomial_lr``. d2l's
    "polynomial decay" ``eta0 * (beta * t + 1)^(-alpha)`` is a different schedule:
    ``inverse_time_decay_schedule(eta0, beta, alpha)``.
    """
    return Polynomial(init_value, end_value, power, transition_steps, transition_begin)


@pytree_dataclass
class InverseSqrt(Schedule):
    """Linear warmup to ``peak_value``, then decay as the inverse square root of the step::

    s = count + 1,  w = max(warmup_steps, 1)
    eta = peak_value * min(s / w, sqrt(w / s))
    """

    fn_name = "inverse_sqrt_schedule"

    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)

    def __call__(self, count):
        s = t(count) + 1.0
        w = jnp.maximum(f(self.warmup_steps), 1.0)
        return f(self.peak_value) * jnp.minimum(s / w, jnp.sqrt(w / s))


def inverse_sqrt_schedule(peak_value: Any, warmup_steps: Any) -> InverseSqrt:
    """The Transformer schedule ("Noam"): linear warmup, then ``1/sqrt(step)`` decay.

    Formula: see ``InverseSqrt``.

    Args:
      peak_value: the value at count ``warmup_steps - 1`` (the peak).
      warmup_steps: the length of the warmup, >= 0 (0 and 1 both mean none).

    Conventions: gradtx's own (neither torch nor Optax has it). With ``step = count + 1`` (the
    paper's 1-based step), Vaswani et al.'s ``d_model^-0.5 * min(step^-0.5, step *
    warmup^-1.5)`` is ``inverse_sqrt_schedule(d_model**-0.5 * warmup**-0.5, warmup)``. With
    ``warmup_steps <= 1`` it is ``peak_value * (count + 1)^(-1/2)``, d2l's ``eta0 * (t +
    1)^(-0.5)``.

    References:
      Vaswani et al., "Attention Is All You Need", NeurIPS 2017. arXiv:1706.03762
    """
    return InverseSqrt(peak_value, warmup_steps)


add_formula(polynomial_schedule, Polynomial)
add_formula(inverse_sqrt_schedule, InverseSqrt)
