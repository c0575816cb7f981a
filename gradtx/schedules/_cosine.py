"""Cosine schedules: warmup then cosine decay, SGDR, cosine annealing with warm restarts, and
torch's periodic cosine annealing."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._transform import Schedule, _repr_value, field, pytree_dataclass
from ._join import shift
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

    fn_name = "warmup_cosine_decay_schedule"

    init_value: Any
    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)
    decay_steps: Any = field(check=_checks.POSITIVE)
    end_value: Any = 0.0
    exponent: Any = 1.0

    def __check_init__(self):
        check_decay_after_warmup(self.fn_name, self.warmup_steps, self.decay_steps)

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


def warmup_cosine_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: Any,
    decay_steps: Any,
    end_value: Any = 0.0,
    exponent: Any = 1.0,
) -> WarmupCosineDecay:
    """Linear warmup from ``init_value`` to ``peak_value``, then cosine decay to ``end_value``.

    Args:
      init_value: the value at count 0.
      peak_value: the value reached at ``warmup_steps``.
      warmup_steps: the length of the warmup, >= 0.
      decay_steps: the total length including the warmup, > ``warmup_steps``.
      end_value: the value from ``decay_steps`` on. Default 0.0.
      exponent: the power of the cosine factor. Default 1.0.

    Conventions: Optax's ``warmup_cosine_decay_schedule`` (Optax fails on a traced
    ``peak_value``; this does not). torch: ``SequentialLR([LinearLR(opt, init/peak, 1.0,
    warmup), CosineAnnealingLR(opt, decay - warmup, end)], [warmup])`` with base rate ``peak``.
    """
    return WarmupCosineDecay(init_value, peak_value, warmup_steps, decay_steps, end_value, exponent)


@pytree_dataclass
class SGDR(Schedule):
    """Cycles of warmup and cosine decay, each started afresh::

    D_i = cycles[i].decay_steps,  B_i = D_0 + ... + D_{i-1}
    eta = cycles[i](count - B_i)   for B_i <= count < B_{i+1}   (the last cycle holds its end)
    """

    fn_name = "sgdr_schedule"

    cycles: tuple[Any, ...]

    def __call__(self, count):
        c = jnp.asarray(count)
        out = f(self.cycles[0](c))
        marks: list[Any] = []
        for prev, cycle in zip(self.cycles[:-1], self.cycles[1:]):
            marks.append(prev.decay_steps)
            out = jnp.where(since(c, *marks) < 0, out, f(cycle(shift(c, *marks))))
        return out

    def __repr__(self) -> str:
        return "SGDR(" + ", ".join(_repr_value(s) for s in self.cycles) + ")"


def sgdr_schedule(cosine_kwargs: Any) -> SGDR:
    """Stochastic gradient descent with warm restarts: warmup-cosine cycles one after another.

    Cycle ``i`` is ``warmup_cosine_decay_schedule(**cosine_kwargs[i])``; it lasts its
    ``decay_steps`` and sees the count since it began (formula: see ``SGDR``).

    Args:
      cosine_kwargs: one dict per cycle with the arguments of ``warmup_cosine_decay_schedule``
        (``init_value``, ``peak_value``, ``warmup_steps``, ``decay_steps``, and optionally
        ``end_value`` and ``exponent``); at least one.

    Conventions: Optax's ``sgdr_schedule`` (the cycles' parameters are leaves here, so a peak
    can be traced). Restarts without warmup on periods that grow geometrically, torch's
    ``CosineAnnealingWarmRestarts``, are ``cosine_restarts_schedule``.

    References:
      Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
      arXiv:1608.03983
    """
    cycles = tuple(warmup_cosine_decay_schedule(**kwargs) for kwargs in cosine_kwargs)
    if not cycles:
        raise _checks.HyperparameterError(
            "gradtx.sgdr_schedule: cosine_kwargs must hold at least one cycle, got none"
        )
    return SGDR(cycles)


@pytree_dataclass
class CosineRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR)::

    T_0 = first_period,  m = period_mult
    m == 1:  n = floor(count / T_0)
    m > 1:   n = floor(log_m(count * (m - 1) / T_0 + 1))
    T_i = T_0 * m^n,  T_cur = count - T_0 * (m^n - 1) / (m - 1)   (count - n * T_0 when m == 1)
    eta = min_value + (init_value - min_value) * (1 + cos(pi * T_cur / T_i)) / 2
    """

    fn_name = "cosine_restarts_schedule"

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


def cosine_restarts_schedule(
    init_value: Any, first_period: Any, period_mult: Any = 1, min_value: Any = 0.0
) -> CosineRestarts:
    """Cosine annealing from ``init_value`` to ``min_value`` that restarts after each period.

    The first period lasts ``first_period`` counts and each next one ``period_mult`` times
    longer (formula: see ``CosineRestarts``).

    Args:
      init_value: the value at the start of every period.
      first_period: the length of the first period, > 0.
      period_mult: the growth of each next period, >= 1. Default 1.
      min_value: the value the cosine approaches at the end of each period. Default 0.0.

    Conventions: gradtx's own closed form of SGDR with geometric periods (unbounded in time;
    the periods can be traced). torch ``CosineAnnealingWarmRestarts(T_0, T_mult, eta_min)`` is
    ``gradtx.torch.cosine_annealing_warm_restarts``, this schedule under torch's names. Optax
    ``sgdr_schedule`` with cycles ``dict(init_value=v, peak_value=v, warmup_steps=0,
    decay_steps=T_0 * m^i, end_value=lo)`` equals ``cosine_restarts_schedule(v, T_0, m, lo)``
    over those cycles.

    References:
      Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
      arXiv:1608.03983
    """
    return CosineRestarts(init_value, first_period, period_mult, min_value)


@pytree_dataclass
class CosineAnnealing(Schedule):
    """torch's ``CosineAnnealingLR``: half a cosine over ``period``, continued past it::

    eta = min_value + (init_value - min_value) * (1 + cos(pi * count / period)) / 2
    (periodic in count with period 2 * period: it rises back to init_value after period)
    """

    fn_name = "torch.cosine_annealing_lr"

    init_value: Any
    period: Any = field(check=_checks.POSITIVE)
    min_value: Any = 0.0

    def __call__(self, count):
        c = jnp.asarray(count)
        # The phase from an integer count modulo 2 * period, exact at any count.
        _, r = div_mod(jnp.maximum(c, jnp.zeros((), c.dtype)), 2 * jnp.asarray(self.period))
        lo, hi = f(self.min_value), f(self.init_value)
        return lo + (hi - lo) * (1.0 + jnp.cos(jnp.pi * r / f(self.period))) / 2.0


add_formula(sgdr_schedule, SGDR)
add_formula(cosine_restarts_schedule, CosineRestarts)
