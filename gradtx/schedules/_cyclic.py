"""Cyclical schedules: one cycle (Smith's super-convergence) and triangular cycles."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass, static_field
from ._util import ANNEAL, add_formula, div_mod, f, is_int, knots, nonzero, t


def _phase_ends(
    total_steps: Any, pct_start: Any, pct_final: Any, three_phase: bool, convention: str
) -> list[Any]:
    """Where each phase of a one-cycle schedule ends (the knots after 0)."""
    n = f(total_steps)
    if convention == "torch":  # OneCycleLR: pct * N - 1, 2 pct * N - 2, N - 1
        ends = [f(pct_start) * n - 1.0]
        if three_phase:
            final = 2.0 * f(pct_start) if pct_final is None else f(pct_final)
            ends.append(final * n - 2.0)
        ends.append(n - 1.0)
    else:  # Optax: int(pct * N), int(pct_final * N), N
        ends = [jnp.floor(f(pct_start) * n)]
        if three_phase:
            final = 0.85 if pct_final is None else pct_final
            ends.append(jnp.floor(f(final) * n))
        ends.append(n)
    return ends


@pytree_dataclass
class OneCycle(Schedule):
    """The one-cycle schedule (torch ``OneCycleLR``)::

    init = peak_value / div_factor,  low = init / final_div_factor
    two phases:   init -> peak over [0, e1],  peak -> low over [e1, e2]
    three phases: init -> peak over [0, e1],  peak -> init over [e1, e2],  init -> low over [e2, e3]
    torch knots:  e1 = pct_start*N - 1, e2 = pct_final*N - 2 (pct_final = 2 pct_start), last N - 1
    Optax knots:  e1 = floor(pct_start*N), e2 = floor(pct_final*N) (0.85), last N
    each phase anneals with anneal(a, b, p): cos: b + (a - b)/2 (cos(pi p) + 1); linear: a + (b - a) p
    eta = low past the last knot
    """

    fn_name = "onecycle"

    total_steps: Any = field(check=_checks.POSITIVE)
    peak_value: Any
    pct_start: Any = field(0.3, check=_checks.CLOSED_UNIT)
    div_factor: Any = field(25.0, check=_checks.POSITIVE)
    final_div_factor: Any = field(1e4, check=_checks.POSITIVE)
    pct_final: Any = field(None, check=_checks.CLOSED_UNIT)
    anneal: str = static_field("cos", choices=("cos", "linear"))
    three_phase: bool = static_field(False)
    convention: str = static_field("torch", choices=("torch", "optax"))

    def __call__(self, count):
        peak = f(self.peak_value)
        init = peak / f(self.div_factor)
        low = init / f(self.final_div_factor)
        ys = [init, peak, init, low] if self.three_phase else [init, peak, low]
        ends = _phase_ends(
            self.total_steps, self.pct_start, self.pct_final, self.three_phase, self.convention
        )
        xs = [f(0.0), *ends]
        torch = self.convention == "torch"
        return knots(
            t(count), xs, ys, ANNEAL[self.anneal], closed=torch, min_width=None if torch else 1.0
        )

    def momentum(self, base_momentum: Any = 0.85, max_momentum: Any = 0.95) -> OneCycleMomentum:
        """The momentum (or Adam ``b1``) schedule that cycles the other way round."""
        return OneCycleMomentum(
            self.total_steps,
            self.pct_start,
            base_momentum,
            max_momentum,
            self.pct_final,
            self.anneal,
            self.three_phase,
            self.convention,
        )


def onecycle(
    total_steps: Any,
    peak_value: Any,
    pct_start: Any = 0.3,
    div_factor: Any = 25.0,
    final_div_factor: Any = 1e4,
    anneal: str = "cos",
    three_phase: bool = False,
    *,
    pct_final: Any = None,
    convention: str = "torch",
) -> OneCycle:
    """The one-cycle learning rate: warm up to ``peak_value``, then anneal far below the start.

    torch ``OneCycleLR(max_lr, total_steps, pct_start,
    anneal_strategy, div_factor=, final_div_factor=, three_phase=)`` is
    ``onecycle(total_steps, max_lr, pct_start, div_factor, final_div_factor, anneal,
    three_phase)``. Pair it with ``.momentum(base, max)`` (or ``onecycle_momentum``) for torch's
    ``cycle_momentum=True``: momentum or ``b1`` goes max -> base -> max while the rate goes up and
    down.

    Optax places the knots differently (``convention="optax"``):
    ``optax.cosine_onecycle_schedule(N, peak, pct, div, final_div)`` is
    ``onecycle(N, peak, pct, div, final_div, convention="optax")`` and
    ``optax.linear_onecycle_schedule(N, peak, pct_start, pct_final, div, final_div)`` is
    ``onecycle(N, peak, pct_start, div, final_div, "linear", three_phase=True,
    pct_final=pct_final, convention="optax")``.

    References:
      Smith, Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", 2017. arXiv:1708.07120
    """
    return OneCycle(
        total_steps,
        peak_value,
        pct_start,
        div_factor,
        final_div_factor,
        pct_final,
        anneal,
        three_phase,
        convention,
    )


@pytree_dataclass
class OneCycleMomentum(Schedule):
    """Momentum for the one-cycle schedule, on the same knots as ``OneCycle``::

    two phases:   max -> base over [0, e1],  base -> max over [e1, e2]
    three phases: max -> base, base -> max, then max held over [e2, e3]
    """

    fn_name = "onecycle_momentum"

    total_steps: Any = field(check=_checks.POSITIVE)
    pct_start: Any = field(0.3, check=_checks.CLOSED_UNIT)
    base_momentum: Any = 0.85
    max_momentum: Any = 0.95
    pct_final: Any = field(None, check=_checks.CLOSED_UNIT)
    anneal: str = static_field("cos", choices=("cos", "linear"))
    three_phase: bool = static_field(False)
    convention: str = static_field("torch", choices=("torch", "optax"))

    def __call__(self, count):
        lo, hi = f(self.base_momentum), f(self.max_momentum)
        ys = [hi, lo, hi, hi] if self.three_phase else [hi, lo, hi]
        ends = _phase_ends(
            self.total_steps, self.pct_start, self.pct_final, self.three_phase, self.convention
        )
        xs = [f(0.0), *ends]
        torch = self.convention == "torch"
        return knots(
            t(count), xs, ys, ANNEAL[self.anneal], closed=torch, min_width=None if torch else 1.0
        )


def onecycle_momentum(
    total_steps: Any,
    pct_start: Any = 0.3,
    base_momentum: Any = 0.85,
    max_momentum: Any = 0.95,
    anneal: str = "cos",
    three_phase: bool = False,
    *,
    pct_final: Any = None,
    convention: str = "torch",
) -> OneCycleMomentum:
    """The momentum (or ``b1``) schedule of torch ``OneCycleLR(cycle_momentum=True)``.

    It cycles opposite to ``onecycle`` with the same ``total_steps``, ``pct_start``, ``anneal``
    and ``three_phase``; pass it as ``sgd(momentum=...)``, ``rmsprop(momentum=...)`` or
    ``adam(b1=...)``. ``onecycle(...).momentum(base, max)`` builds it from a learning-rate
    schedule.
    """
    return OneCycleMomentum(
        total_steps,
        pct_start,
        base_momentum,
        max_momentum,
        pct_final,
        anneal,
        three_phase,
        convention,
    )


@pytree_dataclass
class Cyclic(Schedule):
    """Cyclical learning rate (torch ``CyclicLR``)::

    L = step_size_up + step_size_down,  r = step_size_up / L
    c = floor(1 + count / L),  x = 1 + count / L - c
    s = x / r if x <= r else (x - 1) / (r - 1)
    eta = base_value + (max_value - base_value) * s * scale
    scale = 1 (triangular), 1 / 2^(c - 1) (triangular2), gamma^count (exp_range)
    """

    fn_name = "cyclic"

    base_value: Any
    max_value: Any
    step_size_up: Any = field(check=_checks.POSITIVE)
    step_size_down: Any = field(None, check=_checks.NONNEGATIVE)
    mode: str = static_field("triangular", choices=("triangular", "triangular2", "exp_range"))
    gamma: Any = field(1.0, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        k = t(count)
        up = f(self.step_size_up)
        down = up if self.step_size_down is None else f(self.step_size_down)
        total = up + down
        ratio = up / nonzero(total)
        # The cycle and the position in it from an integer count modulo the cycle length,
        # exact at any count (through float32, a count near 1e8 is off by up to 4 steps).
        su, sd = self.step_size_up, self.step_size_down
        if is_int(su) and (sd is None or is_int(sd)):
            length = jnp.asarray(su) + jnp.asarray(su if sd is None else sd)
        else:
            length = total
        n, r = div_mod(count, length)
        cycle = n + 1.0
        x = r / nonzero(total)
        rising = x <= ratio
        s = jnp.where(rising, x / nonzero(ratio), (x - 1.0) / jnp.where(rising, -1.0, ratio - 1.0))
        base = f(self.base_value)
        height = (f(self.max_value) - base) * s
        if self.mode == "triangular":
            return base + height * 1.0
        if self.mode == "triangular2":
            return base + height * (1.0 / jnp.power(2.0, cycle - 1.0))
        return base + height * jnp.power(f(self.gamma), k)


def cyclic(
    base_value: Any,
    max_value: Any,
    step_size_up: Any,
    step_size_down: Any = None,
    mode: str = "triangular",
    gamma: Any = 1.0,
) -> Cyclic:
    """Triangular cycles between ``base_value`` and ``max_value`` (torch ``CyclicLR``).

    torch ``CyclicLR(base_lr, max_lr, step_size_up, step_size_down,
    mode, gamma)`` is ``cyclic(base_lr, max_lr, step_size_up, step_size_down, mode, gamma)``.
    Its ``cycle_momentum`` (momentum falls as the rate rises) is the same schedule with the ends
    swapped: ``cyclic(max_momentum, base_momentum, step_size_up, step_size_down, mode, gamma)``.
    Optax has none.

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017. arXiv:1506.01186
    """
    return Cyclic(base_value, max_value, step_size_up, step_size_down, mode, gamma)


add_formula(onecycle, OneCycle)
add_formula(onecycle_momentum, OneCycleMomentum)
add_formula(cyclic, Cyclic)
