"""Cyclical schedules: one cycle (Smith's super-convergence) and triangular cycles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass, static_field
from ._util import ANNEAL, add_formula, div_mod, f, is_int, knots, nonzero, t


def _phase_ends(
    transition_steps: Any, pct_start: Any, pct_final: Any, three_phase: bool, convention: str
) -> list[Any]:
    """Where each phase of a one-cycle schedule ends (the knots after 0)."""
    n = f(transition_steps)
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


def _cycle(schedule: Any, ys: list[Any], count: Any) -> Any:
    """The one-cycle knots through ``ys``, placed by ``schedule``'s convention."""
    ends = _phase_ends(
        schedule.transition_steps,
        schedule.pct_start,
        schedule.pct_final,
        schedule.three_phase,
        schedule.convention,
    )
    xs = [f(0.0), *ends]
    x = t(count)
    if schedule.convention == "torch":
        # torch steps once more, to N, extrapolating the last phase (and raises past it).
        x = jnp.minimum(x, f(schedule.transition_steps))
        return knots(
            x, xs, ys, ANNEAL[schedule.anneal], closed=True, min_width=None, extend_last=True
        )
    return knots(x, xs, ys, ANNEAL[schedule.anneal], closed=False, min_width=1.0)


@pytree_dataclass
class OneCycle(Schedule):
    """The one-cycle schedule (N = transition_steps)::

    init = peak_value / div_factor,  low = init / final_div_factor
    two phases:   init -> peak over [0, e1],  peak -> low over [e1, e2]
    three phases: init -> peak over [0, e1],  peak -> init over [e1, e2],  init -> low over [e2, e3]
    Optax knots:  e1 = floor(pct_start*N), e2 = floor(pct_final*N) (0.85), last N; then low
    torch knots:  e1 = pct_start*N - 1, e2 = pct_final*N - 2 (pct_final = 2 pct_start), last N - 1;
                  the last phase continues to count N, then holds
    each phase anneals with anneal(a, b, p):
        cos: b + (a - b)/2 (cos(pi p) + 1);  linear: a + (b - a) p
    """

    transition_steps: Any = field(check=_checks.POSITIVE)
    peak_value: Any
    pct_start: Any = field(0.3, check=_checks.CLOSED_UNIT)
    div_factor: Any = field(25.0, check=_checks.POSITIVE)
    final_div_factor: Any = field(1e4, check=_checks.POSITIVE)
    pct_final: Any = field(None, check=_checks.CLOSED_UNIT)
    anneal: str = static_field("cos", choices=("cos", "linear"))
    three_phase: bool = static_field(False)
    convention: str = static_field("optax", choices=("optax", "torch"))
    fn: str = static_field("cosine_onecycle_schedule", repr=False)

    def __call__(self, count):
        peak = f(self.peak_value)
        init = peak / f(self.div_factor)
        low = init / f(self.final_div_factor)
        return _cycle(
            self, [init, peak, init, low] if self.three_phase else [init, peak, low], count
        )

    def momentum(self, base_momentum: Any = 0.85, max_momentum: Any = 0.95) -> OneCycleMomentum:
        """The momentum (or Adam ``b1``) schedule that cycles the other way round, on the same
        knots: ``max_momentum -> base_momentum`` while the rate rises, and back."""
        return OneCycleMomentum(
            self.transition_steps,
            self.pct_start,
            base_momentum,
            max_momentum,
            self.pct_final,
            self.anneal,
            self.three_phase,
            self.convention,
        )


def cosine_onecycle_schedule(
    transition_steps: Any,
    peak_value: Any,
    pct_start: Any = 0.3,
    div_factor: Any = 25.0,
    final_div_factor: Any = 1e4,
    *,
    three_phase: bool = False,
    pct_final: Any = None,
    convention: str = "optax",
) -> OneCycle:
    """The one-cycle rate with cosine annealing: up to ``peak_value``, then far below the start.

    Rises from ``peak_value / div_factor`` to ``peak_value`` over the first ``pct_start`` of
    ``transition_steps``, then falls to ``peak_value / (div_factor * final_div_factor)``
    (formula: see ``OneCycle``).

    Args:
      transition_steps: the length of the cycle N, > 0.
      peak_value: the highest value.
      pct_start: the fraction of N spent rising, in [0, 1]. Default 0.3.
      div_factor: ``peak_value / initial value``, > 0. Default 25.0.
      final_div_factor: ``initial value / final value``, > 0. Default 1e4.
      three_phase: fall back to the initial value first, then to the final one (gradtx's
        extra). Keyword-only. Default False.
      pct_final: with ``three_phase``, where the second phase ends as a fraction of N (None:
        0.85 for Optax's knots, ``2 * pct_start`` for torch's). Keyword-only. Default None.
      convention: ``"optax"`` (knots at ``floor(pct * N)``, Optax's) or ``"torch"`` (knots at
        ``pct * N - 1``, torch's ``OneCycleLR``). Keyword-only. Default ``"optax"``.

    Conventions: Optax's ``cosine_onecycle_schedule``. torch ``OneCycleLR`` is
    ``gradtx.torch.one_cycle_lr``. For the momentum (or ``b1``) that cycles against the rate,
    use ``.momentum(base, max)`` on the result or ``onecycle_momentum_schedule``.

    References:
      Smith, Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", 2017. arXiv:1708.07120
    """
    return OneCycle(
        transition_steps,
        peak_value,
        pct_start,
        div_factor,
        final_div_factor,
        pct_final,
        "cos",
        three_phase,
        convention,
        "cosine_onecycle_schedule",
    )


def linear_onecycle_schedule(
    transition_steps: Any,
    peak_value: Any,
    pct_start: Any = 0.3,
    pct_final: Any = 0.85,
    div_factor: Any = 25.0,
    final_div_factor: Any = 1e4,
    *,
    three_phase: bool = True,
    convention: str = "optax",
) -> OneCycle:
    """The one-cycle rate with linear annealing, in three phases.

    Rises from ``peak_value / div_factor`` to ``peak_value`` until ``pct_start * N``, falls
    back to ``peak_value / div_factor`` until ``pct_final * N``, then to
    ``peak_value / (div_factor * final_div_factor)`` at N (formula: see ``OneCycle``).

    Args:
      transition_steps: the length of the cycle N, > 0.
      peak_value: the highest value.
      pct_start: the fraction of N spent rising, in [0, 1]. Default 0.3.
      pct_final: where the second phase ends as a fraction of N, in [0, 1]. Default 0.85.
      div_factor: ``peak_value / initial value``, > 0. Default 25.0.
      final_div_factor: ``initial value / final value``, > 0. Default 1e4.
      three_phase: False: two phases, straight from the peak to the final value (``pct_final``
        unused). Keyword-only. Default True.
      convention: ``"optax"`` (knots at ``floor(pct * N)``) or ``"torch"`` (knots at
        ``pct * N - 1`` and ``pct_final * N - 2``, torch's ``OneCycleLR``). Keyword-only.
        Default ``"optax"``.

    Conventions: Optax's ``linear_onecycle_schedule``. torch
    ``OneCycleLR(anneal_strategy="linear")`` is ``gradtx.torch.one_cycle_lr``.

    References:
      Smith, Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", 2017. arXiv:1708.07120
    """
    return OneCycle(
        transition_steps,
        peak_value,
        pct_start,
        div_factor,
        final_div_factor,
        pct_final,
        "linear",
        three_phase,
        convention,
        "linear_onecycle_schedule",
    )


@pytree_dataclass
class OneCycleMomentum(Schedule):
    """Momentum for the one-cycle schedule, on the same knots as ``OneCycle``::

    two phases:   max -> base over [0, e1],  base -> max over [e1, e2]
    three phases: max -> base, base -> max, then max held over [e2, e3]
    """

    fn_name = "onecycle_momentum_schedule"

    transition_steps: Any = field(check=_checks.POSITIVE)
    pct_start: Any = field(0.3, check=_checks.CLOSED_UNIT)
    base_momentum: Any = 0.85
    max_momentum: Any = 0.95
    pct_final: Any = field(None, check=_checks.CLOSED_UNIT)
    anneal: str = static_field("cos", choices=("cos", "linear"))
    three_phase: bool = static_field(False)
    convention: str = static_field("optax", choices=("optax", "torch"))

    def __call__(self, count):
        lo, hi = f(self.base_momentum), f(self.max_momentum)
        return _cycle(self, [hi, lo, hi, hi] if self.three_phase else [hi, lo, hi], count)


def onecycle_momentum_schedule(
    transition_steps: Any,
    pct_start: Any = 0.3,
    base_momentum: Any = 0.85,
    max_momentum: Any = 0.95,
    anneal: str = "cos",
    three_phase: bool = False,
    *,
    pct_final: Any = None,
    convention: str = "optax",
) -> OneCycleMomentum:
    """The momentum (or ``b1``) schedule that cycles against a one-cycle rate.

    ``max_momentum -> base_momentum`` while the rate rises, back to ``max_momentum`` while it
    falls (formula: see ``OneCycleMomentum``); pass it as ``sgd(momentum=...)``,
    ``rmsprop(momentum=...)`` or ``adam(b1=...)``.

    Args:
      transition_steps: the length of the cycle N, > 0 (the rate schedule's).
      pct_start: the fraction of N the rate spends rising, in [0, 1]. Default 0.3.
      base_momentum: the lowest momentum, reached at the rate's peak. Default 0.85.
      max_momentum: the momentum at the start and the end. Default 0.95.
      anneal: ``"cos"`` or ``"linear"``. Default ``"cos"``.
      three_phase: the rate's three-phase cycle (momentum held at the max in the last phase).
        Default False.
      pct_final: with ``three_phase``, where the second phase ends (as in the rate schedule).
        Keyword-only. Default None.
      convention: ``"optax"`` or ``"torch"`` knots (as in the rate schedule). Keyword-only.
        Default ``"optax"``.

    Conventions: gradtx's own (Optax has none); it matches ``cosine_onecycle_schedule`` (and,
    with ``"linear"``, ``three_phase=True``, ``linear_onecycle_schedule``) with the same
    arguments. ``rate.momentum(base, max)`` builds it from a rate schedule. torch
    ``OneCycleLR(cycle_momentum=True)``'s momentum is ``gradtx.torch.one_cycle_lr(...).momentum()``.
    """
    return OneCycleMomentum(
        transition_steps,
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
    scale = 1 (triangular), 1 / 2^(c - 1) (triangular2), gamma^count (exp_range),
            scale_fn(c) or scale_fn(count) (a custom scale_fn, by scale_mode)
    """

    fn_name = "cyclic_schedule"

    base_value: Any
    max_value: Any
    step_size_up: Any = field(check=_checks.POSITIVE)
    step_size_down: Any = field(None, check=_checks.NONNEGATIVE)
    mode: str = static_field("triangular", choices=("triangular", "triangular2", "exp_range"))
    gamma: Any = field(1.0, check=_checks.NONNEGATIVE)
    scale_fn: Callable[[Any], Any] | None = static_field(None)
    scale_mode: str = static_field("cycle", choices=("cycle", "iterations"))

    def _scale(self, cycle: Any, k: Any) -> Any:
        if self.scale_fn is not None:
            return f(self.scale_fn(cycle if self.scale_mode == "cycle" else k))
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1.0 / jnp.power(2.0, cycle - 1.0)
        return jnp.power(f(self.gamma), k)

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
        return base + height * self._scale(cycle, k)


def cyclic_schedule(
    base_value: Any,
    max_value: Any,
    step_size_up: Any,
    step_size_down: Any = None,
    mode: str = "triangular",
    gamma: Any = 1.0,
    *,
    scale_fn: Callable[[Any], Any] | None = None,
    scale_mode: str = "cycle",
) -> Cyclic:
    """Triangular cycles between ``base_value`` and ``max_value`` (formula: see ``Cyclic``).

    Args:
      base_value: the value at the start of every cycle.
      max_value: the peak of the first cycle.
      step_size_up: counts spent rising, > 0.
      step_size_down: counts spent falling, >= 0; None: ``step_size_up``. Default None.
      mode: ``"triangular"`` (constant height), ``"triangular2"`` (halved every cycle) or
        ``"exp_range"`` (height times ``gamma^count``). Default ``"triangular"``.
      gamma: the per-count factor of ``"exp_range"``, >= 0. Default 1.0.
      scale_fn: a custom height factor in place of ``mode``'s, a function of the cycle number
        (1, 2, ...) or of the count (``scale_mode``); it receives a traced float, so write it
        with ``jnp`` or plain arithmetic. Keyword-only. Default None.
      scale_mode: what ``scale_fn`` receives: ``"cycle"`` or ``"iterations"``. Keyword-only.
        Default ``"cycle"``.

    Conventions: gradtx's own (Optax has none); torch ``CyclicLR`` is ``gradtx.torch.cyclic_lr``.
    Its ``cycle_momentum`` (momentum falls as the rate rises) is this schedule with the ends
    swapped: ``cyclic_schedule(max_momentum, base_momentum, ...)``.

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017. arXiv:1506.01186
    """
    return Cyclic(
        base_value, max_value, step_size_up, step_size_down, mode, gamma, scale_fn, scale_mode
    )


add_formula(cosine_onecycle_schedule, OneCycle)
add_formula(linear_onecycle_schedule, OneCycle)
add_formula(onecycle_momentum_schedule, OneCycleMomentum)
add_formula(cyclic_schedule, Cyclic)
