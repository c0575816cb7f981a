"""Cosine schedules: warmup then cosine decay, and cosine annealing with warm restarts."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass
from ._util import add_formula, div_mod, f, nonzero, since, t


def linear_warmup(x: Any, init_value: Any, peak_value: Any, warmup_steps: Any) -> Any:
    """``init + (peak - init) * x / warmup_steps`` (valid for ``x < warmup_steps``)."""
    init = f(init_value)
    return init + (f(peak_value) - init) * (x / nonzero(f(warmup_steps)))


def check_decay_after_warmup(fn: str, warmup_steps: Any, decay_steps: Any) -> None:
    """Raises ``HyperparameterError`` unless ``decay_steps > warmup_steps`` (both concrete).

    ``decay_steps`` counts the warmup, so with ``decay_steps <= warmup_steps`` the schedule would
    jump from the warmup straight to ``end_value`` and never reach its peak (Optax raises too).
    """
    warm = _checks.concrete_values(warmup_steps)
    decay = _checks.concrete_values(decay_steps)
    if warm is None or decay is None:
        return
    if np.all(decay > warm):
        return
    low = _checks._fmt(warmup_steps)
    raise _checks.HyperparameterError(
        f"gradtx.{fn}: decay_steps must be in (warmup_steps, inf) = ({low}, inf), got "
        f"{_checks._fmt(decay_steps)}; decay_steps is the total length including the warmup"
    )


@pytree_dataclass
class WarmupCosineDecay(Schedule):
    """Linear warmup, then cosine decay; ``decay_steps`` includes the warmup (as in Optax)::

    count < warmup_steps:  eta = init_value + (peak_value - init_value) * count / warmup_steps
    otherwise:             k = min(count - warmup_steps, decay_steps - warmup_steps)
                           c = (1 + cos(pi * k / (decay_steps - warmup_steps))) / 2
                           eta = (peak_value - end_value) * c^exponent + end_value
    """

    fn_name = "warmup_cosine_decay"

    init_value: Any
    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)
    decay_steps: Any = field(check=_checks.POSITIVE)
    end_value: Any = 0.0
    exponent: Any = 1.0

    def __check_init__(self):
        check_decay_after_warmup("warmup_cosine_decay", self.warmup_steps, self.decay_steps)

    def __call__(self, count):
        x = t(count)
        w = f(self.warmup_steps)
        span = f(self.decay_steps) - w
        k = jnp.clip(since(count, self.warmup_steps), 0.0, jnp.maximum(span, 0.0))
        c = jnp.where(span > 0, 0.5 * (1.0 + jnp.cos(jnp.pi * k / nonzero(span))), 0.0)
        peak, end = f(self.peak_value), f(self.end_value)
        decay = (peak - end) * jnp.power(c, f(self.exponent)) + end
        warm = linear_warmup(x, self.init_value, self.peak_value, w)
        return jnp.where(since(count, self.warmup_steps) < 0, warm, decay)


def warmup_cosine_decay(
    init_value: Any,
    peak_value: Any,
    warmup_steps: Any,
    decay_steps: Any,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> WarmupCosineDecay:
    """Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    ``decay_steps`` is the total length including the warmup. Formula: see
    ``WarmupCosineDecay``. Optax ``warmup_cosine_decay_schedule`` takes the same arguments (and
    fails on a traced ``peak_value``; this does not). torch: ``SequentialLR([LinearLR(opt,
    init/peak, 1.0, warmup), CosineAnnealingLR(opt, decay - warmup, end)], [warmup])`` with base
    rate ``peak``.
    """
    return WarmupCosineDecay(init_value, peak_value, warmup_steps, decay_steps, end_value, exponent)


@pytree_dataclass
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR)::

    T_0 = first_period,  m = period_mult
    m == 1:  n = floor(count / T_0)
    m > 1:   n = floor(log_m(count * (m - 1) / T_0 + 1))
    T_i = T_0 * m^n,  T_cur = count - T_0 * (m^n - 1) / (m - 1)   (count - n * T_0 when m == 1)
    eta = min_value + (init_value - min_value) * (1 + cos(pi * T_cur / T_i)) / 2
    """

    fn_name = "cosine_restarts"

    init_value: Any
    first_period: Any = field(check=_checks.POSITIVE)
    period_mult: Any = field(1, check=_checks.Interval(1.0))
    min_value: Any = 0.0

    def __call__(self, count):
        x = jnp.maximum(t(count), 0.0)
        t0 = f(self.first_period)
        m = f(self.period_mult)
        grows = m > 1
        ms = jnp.where(grows, m, 2.0)  # a base the logarithm accepts in either branch

        def start(n):  # the count at which cycle n begins
            return jnp.where(grows, t0 * (jnp.power(ms, n) - 1.0) / (ms - 1.0), n * t0)

        n = jnp.where(
            grows,
            jnp.floor(jnp.log(x * (ms - 1.0) / t0 + 1.0) / jnp.log(ms)),
            jnp.floor(x / t0),
        )
        # The logarithm can land a hair off an exact restart: fix n so start(n) <= x < start(n+1).
        n = jnp.where(x < start(n), n - 1.0, n)
        n = jnp.where(x >= start(n + 1.0), n + 1.0, n)
        n = jnp.maximum(n, 0.0)
        t_i = jnp.where(grows, t0 * jnp.power(ms, n), t0)
        # Equal periods: the position in the cycle from an integer count modulo the period,
        # exact at any count (a float32 count near 1e9 is off by up to 64 steps).
        c = jnp.asarray(count)
        _, r = div_mod(jnp.maximum(c, jnp.zeros((), c.dtype)), self.first_period)
        t_cur = jnp.where(grows, jnp.clip(x - start(n), 0.0, t_i), jnp.clip(r, 0.0, t0))
        lo, hi = f(self.min_value), f(self.init_value)
        return lo + (hi - lo) * (1.0 + jnp.cos(jnp.pi * t_cur / t_i)) / 2.0


def cosine_restarts(
    init_value: Any, first_period: Any, period_mult: Any = 1, min_value: Any = 0.0
) -> CosineRestarts:
    """Cosine annealing from ``init_value`` to ``min_value`` that restarts after each period.

    The first period lasts ``first_period`` steps and each next one ``period_mult`` times longer.
    torch ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)``
    with base rate ``lr`` is ``cosine_restarts(lr, T_0, T_mult, eta_min)``; torch
    ``CosineAnnealingLR(T_max, eta_min)`` equals it with ``first_period=T_max`` for counts up to
    ``T_max`` (past it torch rises again along the same cosine; ``cosine_decay`` stays at the
    minimum). Optax ``sgdr_schedule`` with cycles of ``dict(init_value=v, peak_value=v,
    warmup_steps=0, decay_steps=T_i, end_value=lo)`` is ``cosine_restarts(v, T_0, m, lo)`` for
    periods ``T_i = T_0 * m^i``; an sgdr with warmups per cycle is ``join`` of
    ``warmup_cosine_decay`` schedules.

    References:
      Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
      arXiv:1608.03983
    """
    return CosineRestarts(init_value, first_period, period_mult, min_value)


add_formula(warmup_cosine_decay, WarmupCosineDecay)
add_formula(cosine_restarts, CosineRestarts)
