"""torch.optim.lr_scheduler's names, arguments and defaults over gradtx's schedules.

Porting from torch: each function takes the arguments of the ``torch.optim.lr_scheduler`` class
of the same name, with torch's names and defaults, less ``optimizer``; where torch starts from
the optimizer's learning rate, that rate is the first argument, ``lr`` (``StepLR(opt, 30)`` on
an optimizer with ``lr=0.1`` is ``step_lr(0.1, 30)``). ``cyclic_lr`` and ``one_cycle_lr`` have
no ``lr``: torch overwrites the optimizer's rate with ``base_lr`` and ``max_lr / div_factor``.
The result is a gradtx schedule (``reduce_lr_on_plateau``: a transform): pass it as the
optimizer's rate, ``gradtx.torch.sgd(lr=gradtx.torch.step_lr(0.1, 30), momentum=0.9)``.

The schedule's count is the number of updates applied before this one, and it stands for
torch's ``last_epoch``, the number of ``scheduler.step()`` calls so far: the values are torch's
``get_last_lr()`` sequence when the scheduler steps once per optimizer step. A torch loop that
steps the scheduler once per epoch counts epochs: multiply its step arguments (``step_size``,
``milestones``, ``T_max``, ``total_iters``...) by the updates per epoch.

``last_epoch`` starts the schedule part way, as torch's closed form does: count 0 is torch's
epoch ``last_epoch + 1`` (the default -1 is a fresh start). A restored gradtx state already
holds its count, so resuming from a checkpoint needs no ``last_epoch``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import _checks
from .._transform import Schedule, pytree_dataclass, static_field
from ..schedules._basic import ExponentialDecay, Linear, PiecewiseConstant
from ..schedules._cosine import CosineAnnealing, CosineRestarts
from ..schedules._cyclic import Cyclic, OneCycle, OneCycleMomentum
from ..schedules._join import Join, Multiply, Shift
from ..schedules._plateau import ReduceOnPlateau
from ..schedules._polynomial import Polynomial

_COUNT = _checks.Interval(1, integer=True)  # 1, 2, ...
_STEPS = _checks.Interval(0, integer=True)  # 0, 1, 2, ...
_LAST_EPOCH = _checks.Interval(-1, integer=True)  # -1, 0, 1, ...
_FACTOR = _checks.CLOSED_UNIT  # [0, 1]
_START_FACTOR = _checks.Interval(0.0, 1.0, low_open=True)  # (0, 1]


def _resume(fn: str, schedule: Any, last_epoch: Any) -> Any:
    """``schedule`` entered at torch's epoch ``last_epoch + 1`` (itself for -1)."""
    _LAST_EPOCH(fn, "last_epoch", last_epoch)
    given = _checks.concrete_values(last_epoch)
    if given is not None and np.all(given == -1):
        return schedule
    return Shift(schedule, last_epoch + 1)


def step_lr(lr: Any, step_size: Any, gamma: Any = 0.1, last_epoch: int = -1) -> Schedule:
    """torch ``StepLR``: the rate times ``gamma`` every ``step_size`` counts::

        eta = lr * gamma^floor(count / step_size)

    Args:
      lr: the optimizer's learning rate (torch's base rate), >= 0.
      step_size: counts per decay, an integer >= 1.
      gamma: the factor per decay, >= 0. Default 0.1.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``exponential_decay(lr, step_size, gamma,
    staircase=True)``.
    """
    fn = "torch.step_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _COUNT(fn, "step_size", step_size)
    _checks.check_nonnegative(fn, "gamma", gamma)
    return _resume(fn, ExponentialDecay(lr, step_size, gamma, 0, True), last_epoch)


def multi_step_lr(
    lr: Any, milestones: Iterable[Any], gamma: Any = 0.1, last_epoch: int = -1
) -> Schedule:
    """torch ``MultiStepLR``: the rate times ``gamma`` at each milestone::

        eta = lr * gamma^(number of milestones <= count)

    Args:
      lr: the optimizer's learning rate, >= 0.
      milestones: the counts at which the rate drops, integers >= 0 (a repeated milestone drops
        it once per repeat, as in torch).
      gamma: the factor per milestone, >= 0. Default 0.1.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``piecewise_constant_schedule(lr, {m: gamma})``
    for distinct milestones.
    """
    fn = "torch.multi_step_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    marks = list(milestones)
    for m in marks:
        _STEPS(fn, "milestones", m)
    _checks.check_nonnegative(fn, "gamma", gamma)
    if all(_checks.concrete_values(m) is not None for m in marks):
        marks.sort(key=float)
    schedule = PiecewiseConstant(lr, tuple(marks), (gamma,) * len(marks))
    return _resume(fn, schedule, last_epoch)


def constant_lr(
    lr: Any, factor: Any = 1.0 / 3, total_iters: Any = 5, last_epoch: int = -1
) -> Schedule:
    """torch ``ConstantLR``: the rate times ``factor`` for ``total_iters`` counts::

        eta = lr * factor   (count < total_iters),   lr   (afterwards)

    Args:
      lr: the optimizer's learning rate, >= 0.
      factor: the multiplier at first, in [0, 1]. Default 1/3.
      total_iters: counts at the lowered rate, an integer >= 0 (0 keeps ``lr * factor`` for
        good, as torch does: it restores the rate only on reaching a positive ``total_iters``).
        Default 5.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. The leaves are ``lr``, ``factor`` and ``total_iters``:
    ``multiply_schedules(lr, join_schedules([factor, 1.0], [total_iters]))``.
    """
    fn = "torch.constant_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _FACTOR(fn, "factor", factor)
    _STEPS(fn, "total_iters", total_iters)
    iters = _checks.concrete_values(total_iters)
    if iters is not None and np.all(iters == 0):
        schedule = Multiply((lr, factor))
    else:
        schedule = Multiply((lr, Join((factor, 1.0), (total_iters,))))
    return _resume(fn, schedule, last_epoch)


def linear_lr(
    lr: Any,
    start_factor: Any = 1.0 / 3,
    end_factor: Any = 1.0,
    total_iters: Any = 5,
    last_epoch: int = -1,
) -> Schedule:
    """torch ``LinearLR``: the multiplier moves linearly from ``start_factor`` to ``end_factor``::

        k = min(count, total_iters)
        eta = lr * (start_factor + (end_factor - start_factor) * k / total_iters)

    Args:
      lr: the optimizer's learning rate, >= 0.
      start_factor: the multiplier at count 0, in (0, 1]. Default 1/3.
      end_factor: the multiplier from ``total_iters`` on, in [0, 1]. Default 1.0.
      total_iters: the length of the ramp, an integer >= 0 (0: ``lr * start_factor``
        throughout, as in torch). Default 5.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``multiply_schedules(lr,
    linear_schedule(start_factor, end_factor, total_iters))``.
    """
    fn = "torch.linear_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _START_FACTOR(fn, "start_factor", start_factor)
    _FACTOR(fn, "end_factor", end_factor)
    _STEPS(fn, "total_iters", total_iters)
    schedule = Multiply((lr, Linear(start_factor, end_factor, total_iters)))
    return _resume(fn, schedule, last_epoch)


def exponential_lr(lr: Any, gamma: Any, last_epoch: int = -1) -> Schedule:
    """torch ``ExponentialLR``: the rate times ``gamma`` at every count::

        eta = lr * gamma^count

    Args:
      lr: the optimizer's learning rate, >= 0.
      gamma: the factor per count, >= 0.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``exponential_decay(lr, 1, gamma)``.
    """
    fn = "torch.exponential_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _checks.check_nonnegative(fn, "gamma", gamma)
    return _resume(fn, ExponentialDecay(lr, 1, gamma), last_epoch)


def polynomial_lr(
    lr: Any, total_iters: Any = 5, power: Any = 1.0, last_epoch: int = -1
) -> Schedule:
    """torch ``PolynomialLR``: polynomial decay to 0 over ``total_iters`` counts::

        eta = lr * (1 - min(count, total_iters) / total_iters)^power

    Args:
      lr: the optimizer's learning rate, >= 0.
      total_iters: the length of the decay, an integer >= 0 (0: ``lr`` throughout, as in
        torch). Default 5.
      power: the exponent, >= 0. Default 1.0.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``polynomial_schedule(lr, 0.0, power,
    total_iters)``.
    """
    fn = "torch.polynomial_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _STEPS(fn, "total_iters", total_iters)
    _checks.check_nonnegative(fn, "power", power)
    return _resume(fn, Polynomial(lr, 0.0, power, total_iters), last_epoch)


def cosine_annealing_lr(lr: Any, T_max: Any, eta_min: Any = 0.0, last_epoch: int = -1) -> Schedule:
    """torch ``CosineAnnealingLR``: half a cosine from ``lr`` down to ``eta_min``::

        eta = eta_min + (lr - eta_min) * (1 + cos(pi * count / T_max)) / 2

    Past ``T_max`` the cosine goes on, back up to ``lr`` at ``2 T_max`` and so on, as torch's
    does (``cosine_decay_schedule`` stays at its end instead).

    Args:
      lr: the optimizer's learning rate, >= 0.
      T_max: the counts from ``lr`` down to ``eta_min``, > 0.
      eta_min: the lowest rate. Default 0.0.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64 (torch computes the same values recursively).

    References:
      Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
      arXiv:1608.03983
    """
    fn = "torch.cosine_annealing_lr"
    _checks.check_nonnegative(fn, "lr", lr)
    _checks.check_positive(fn, "T_max", T_max)
    return _resume(fn, CosineAnnealing(lr, T_max, eta_min), last_epoch)


def cosine_annealing_warm_restarts(
    lr: Any, T_0: Any, T_mult: Any = 1, eta_min: Any = 0.0, last_epoch: int = -1
) -> Schedule:
    """torch ``CosineAnnealingWarmRestarts``: cosine annealing restarted after each period::

        T_i = T_0 * T_mult^i  (period i),  T_cur = count - (T_0 + ... + T_{i-1})
        eta = eta_min + (lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2

    Args:
      lr: the optimizer's learning rate (the rate at each restart), >= 0.
      T_0: the length of the first period, an integer >= 1.
      T_mult: the growth of each next period, an integer >= 1. Default 1.
      eta_min: the rate the cosine approaches at the end of each period. Default 0.0.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64. It is ``cosine_restarts_schedule(lr, T_0, T_mult,
    eta_min)``.

    References:
      Loshchilov, Hutter, "SGDR: Stochastic Gradient Descent with Warm Restarts", ICLR 2017.
      arXiv:1608.03983
    """
    fn = "torch.cosine_annealing_warm_restarts"
    _checks.check_nonnegative(fn, "lr", lr)
    _COUNT(fn, "T_0", T_0)
    _COUNT(fn, "T_mult", T_mult)
    return _resume(fn, CosineRestarts(lr, T_0, T_mult, eta_min), last_epoch)


def _no_cycled_momentum(fn: str) -> _checks.HyperparameterError:
    return _checks.HyperparameterError(
        f"gradtx.{fn}: cycle_momentum=False, so there is no momentum schedule: torch leaves the "
        "optimizer's momentum as it is; pass your own"
    )


@pytree_dataclass
class CyclicLR(Cyclic):
    """``Cyclic`` with the momentum that torch's ``CyclicLR`` cycles against the rate::

    momentum = max_momentum + (base_momentum - max_momentum) * s * scale   (s, scale: Cyclic's)
    """

    fn_name = "torch.cyclic_lr"

    base_momentum: Any = 0.8
    max_momentum: Any = 0.9
    cycle_momentum: bool = static_field(True)

    def momentum(self) -> Cyclic:
        """The momentum (or Adam ``b1``) schedule torch applies with ``cycle_momentum=True``."""
        if not self.cycle_momentum:
            raise _no_cycled_momentum(self.fn_name)
        return Cyclic(
            self.max_momentum,
            self.base_momentum,
            self.step_size_up,
            self.step_size_down,
            self.mode,
            self.gamma,
            self.scale_fn,
            self.scale_mode,
        )


def cyclic_lr(
    base_lr: Any,
    max_lr: Any,
    step_size_up: Any = 2000,
    step_size_down: Any = None,
    mode: str = "triangular",
    gamma: Any = 1.0,
    scale_fn: Callable[[Any], Any] | None = None,
    scale_mode: str = "cycle",
    cycle_momentum: bool = True,
    base_momentum: Any = 0.8,
    max_momentum: Any = 0.9,
    last_epoch: int = -1,
) -> Schedule:
    """torch ``CyclicLR``: triangular cycles between ``base_lr`` and ``max_lr``::

        L = step_size_up + step_size_down,  c = floor(1 + count / L),  x = 1 + count / L - c
        s = x / r if x <= r else (x - 1) / (r - 1)      with r = step_size_up / L
        eta = base_lr + (max_lr - base_lr) * s * scale
        scale = 1 (triangular), 1 / 2^(c - 1) (triangular2), gamma^count (exp_range),
                scale_fn(c) or scale_fn(count) (scale_mode "cycle" or "iterations")

    Args:
      base_lr: the rate at the start of every cycle (it replaces the optimizer's rate, as in
        torch, so there is no ``lr`` argument).
      max_lr: the peak of the first cycle.
      step_size_up: counts spent rising, > 0. Default 2000.
      step_size_down: counts spent falling, >= 0; None: ``step_size_up``. Default None.
      mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``. Default ``"triangular"``.
      gamma: the per-count factor of ``"exp_range"``, >= 0. Default 1.0.
      scale_fn: a custom height factor in place of ``mode``'s; it receives a traced float (the
        cycle number or the count), so write it with ``jnp`` or plain arithmetic. Default None.
      scale_mode: what ``scale_fn`` receives: ``"cycle"`` or ``"iterations"``. Default
        ``"cycle"``.
      cycle_momentum: whether torch cycles the optimizer's momentum (or ``betas[0]``) against
        the rate; here ``.momentum()`` of the result is that schedule. Default True.
      base_momentum: the momentum at the rate's peak. Default 0.8.
      max_momentum: the momentum at the start of every cycle. Default 0.9.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64, rate and momentum. torch sets the optimizer's momentum
    itself; here pass it: ``sched = cyclic_lr(0.01, 0.1, 20)``, then
    ``gradtx.torch.sgd(lr=sched, momentum=sched.momentum())``. It is ``cyclic_schedule`` with
    torch's names.

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017. arXiv:1506.01186
    """
    fn = "torch.cyclic_lr"
    _checks.check_positive(fn, "step_size_up", step_size_up)
    if step_size_down is not None:
        _checks.check_nonnegative(fn, "step_size_down", step_size_down)
    _checks.check_choice(fn, "mode", mode, ("triangular", "triangular2", "exp_range"))
    _checks.check_nonnegative(fn, "gamma", gamma)
    _checks.check_choice(fn, "scale_mode", scale_mode, ("cycle", "iterations"))
    schedule = CyclicLR(
        base_lr,
        max_lr,
        step_size_up,
        step_size_down,
        mode,
        gamma,
        scale_fn,
        scale_mode,
        base_momentum,
        max_momentum,
        bool(cycle_momentum),
    )
    return _resume(fn, schedule, last_epoch)


@pytree_dataclass
class OneCycleLR(OneCycle):
    """``OneCycle`` on torch's knots, with the momentum torch's ``OneCycleLR`` cycles."""

    base_momentum: Any = 0.85
    max_momentum: Any = 0.95
    cycle_momentum: bool = static_field(True)

    def momentum(self, base_momentum: Any = None, max_momentum: Any = None) -> OneCycleMomentum:
        """The momentum (or Adam ``b1``) schedule torch applies with ``cycle_momentum=True``
        (``base_momentum`` and ``max_momentum``: the ones given to ``one_cycle_lr`` unless
        given here)."""
        if not self.cycle_momentum:
            raise _no_cycled_momentum(self.fn)
        return super().momentum(
            self.base_momentum if base_momentum is None else base_momentum,
            self.max_momentum if max_momentum is None else max_momentum,
        )


def one_cycle_lr(
    max_lr: Any,
    total_steps: Any = None,
    epochs: Any = None,
    steps_per_epoch: Any = None,
    pct_start: Any = 0.3,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = True,
    base_momentum: Any = 0.85,
    max_momentum: Any = 0.95,
    div_factor: Any = 25.0,
    final_div_factor: Any = 1e4,
    three_phase: bool = False,
    last_epoch: int = -1,
) -> Schedule:
    """torch ``OneCycleLR``: up to ``max_lr``, then far below the start (N = total_steps)::

        init = max_lr / div_factor,  low = init / final_div_factor
        two phases:   init -> max_lr until pct_start * N - 1, then max_lr -> low until N - 1
        three phases: init -> max_lr until pct_start * N - 1, max_lr -> init until
                      2 pct_start * N - 2, then init -> low until N - 1
        anneal(a, b, p): cos: b + (a - b) / 2 * (cos(pi p) + 1);  linear: a + (b - a) p
        (torch steps once more, to count N, along the last phase; the rate then stays there)

    Args:
      max_lr: the peak rate (the start is ``max_lr / div_factor``; the optimizer's rate plays
        no part, as in torch, so there is no ``lr`` argument).
      total_steps: the length N of the cycle, an integer >= 1; None: ``epochs *
        steps_per_epoch``. Default None.
      epochs: with ``steps_per_epoch``, the length when ``total_steps`` is None, an integer
        >= 1. Default None.
      steps_per_epoch: see ``epochs``, an integer >= 1. Default None.
      pct_start: the fraction of N spent rising, in [0, 1]. Default 0.3.
      anneal_strategy: ``"cos"`` or ``"linear"``. Default ``"cos"``.
      cycle_momentum: whether torch cycles the optimizer's momentum (or ``betas[0]``) against
        the rate; here ``.momentum()`` of the result is that schedule. Default True.
      base_momentum: the momentum at the rate's peak. Default 0.85.
      max_momentum: the momentum at the start and the end. Default 0.95.
      div_factor: ``max_lr / initial rate``, > 0. Default 25.0.
      final_div_factor: ``initial rate / final rate``, > 0. Default 1e4.
      three_phase: fall back to the initial rate before the final decay. Default False.
      last_epoch: the epoch before count 0, an integer >= -1 (see the module). Default -1.

    Conventions: torch-exact in float64, rate and momentum. torch sets the optimizer's momentum
    itself; here pass it: ``sched = one_cycle_lr(0.1, total_steps=1000)``, then
    ``gradtx.torch.sgd(lr=sched, momentum=sched.momentum())`` or
    ``gradtx.torch.adam(lr=sched, betas=(sched.momentum(), 0.999))``. Optax's knots are
    ``cosine_onecycle_schedule`` and ``linear_onecycle_schedule``.

    References:
      Smith, Topin, "Super-Convergence: Very Fast Training of Neural Networks Using Large
      Learning Rates", 2017. arXiv:1708.07120
    """
    fn = "torch.one_cycle_lr"
    if total_steps is not None:
        _COUNT(fn, "total_steps", total_steps)
        n = total_steps
    elif epochs is not None and steps_per_epoch is not None:
        _COUNT(fn, "epochs", epochs)
        _COUNT(fn, "steps_per_epoch", steps_per_epoch)
        n = epochs * steps_per_epoch
    else:
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: needs total_steps, or epochs and steps_per_epoch; got total_steps="
            f"{total_steps!r}, epochs={epochs!r}, steps_per_epoch={steps_per_epoch!r}"
        )
    _checks.check_range(fn, "pct_start", pct_start, 0.0, 1.0)
    _checks.check_choice(fn, "anneal_strategy", anneal_strategy, ("cos", "linear"))
    _checks.check_positive(fn, "div_factor", div_factor)
    _checks.check_positive(fn, "final_div_factor", final_div_factor)
    schedule = OneCycleLR(
        n,
        max_lr,
        pct_start,
        div_factor,
        final_div_factor,
        None,
        anneal_strategy,
        bool(three_phase),
        "torch",
        fn,
        base_momentum,
        max_momentum,
        bool(cycle_momentum),
    )
    return _resume(fn, schedule, last_epoch)


def reduce_lr_on_plateau(
    lr: Any,
    mode: str = "min",
    factor: Any = 0.1,
    patience: Any = 10,
    threshold: Any = 1e-4,
    threshold_mode: str = "rel",
    cooldown: Any = 0,
    min_lr: Any = 0,
    eps: Any = 1e-8,
) -> ReduceOnPlateau:
    """torch ``ReduceLROnPlateau`` as a transform placed after the optimizer.

    At each update, with the loss ``a`` passed as ``update(..., loss=a)``::

        better = a < best * (1 - threshold)    (mode "min", "rel"; "abs": a < best - threshold;
                                                mode "max" mirrors it)
        if better: best = a, num_bad = 0  else: num_bad += 1   (reset during a cooldown)
        if num_bad > patience:
            rate = max(rate * factor, min_lr)   (unless that lowers it by eps or less)
            cooldown checks ignored, num_bad = 0
        u <- (rate / lr) * u    with the rate from before this update's loss

    Args:
      lr: the optimizer's learning rate, > 0 (it converts ``min_lr`` and ``eps`` to the
        transform's scale units).
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy). Default ``"min"``.
      factor: multiplies the rate at each reduction, in [0, 1). Default 0.1.
      patience: checks without improvement tolerated before a reduction. Default 10.
      threshold: how much better than the best a loss must be to count as one. Default 1e-4.
      threshold_mode: ``"rel"`` or ``"abs"``. Default ``"rel"``.
      cooldown: checks to wait after a reduction before counting bad checks again. Default 0.
      min_lr: the rate never drops below this, >= 0 (one number for all parameters).
        Default 0.
      eps: reductions of the rate by ``eps`` or less are skipped, >= 0. Default 1e-8.

    Use: ``gradtx.chain(gradtx.torch.sgd(lr=0.1), gradtx.torch.reduce_lr_on_plateau(0.1))``,
    with ``tx.update(grads, state, params, loss=loss)`` where ``loss`` is what torch's loop
    passes to ``scheduler.step(loss)`` after this optimizer step.

    Conventions: torch's rule and order (the rate lowered by this update's loss applies from
    the next update, as torch steps the scheduler after the optimizer), torch-exact in float64
    for losses of one sign. For a loss that plateaus below zero, torch's relative threshold
    ``best * (1 - threshold)`` asks for no improvement at all, so torch never reduces there;
    gradtx measures the threshold from ``|best|`` (see ``reduce_on_plateau``, its
    Optax-ordered form).
    """
    fn = "torch.reduce_lr_on_plateau"
    _checks.check_positive(fn, "lr", lr)
    _checks.check_choice(fn, "mode", mode, ("min", "max"))
    _checks.check_range(fn, "factor", factor, 0.0, 1.0, high_open=True)
    _STEPS(fn, "patience", patience)
    _checks.check_nonnegative(fn, "threshold", threshold)
    _checks.check_choice(fn, "threshold_mode", threshold_mode, ("rel", "abs"))
    _STEPS(fn, "cooldown", cooldown)
    _checks.check_nonnegative(fn, "min_lr", min_lr)
    _checks.check_nonnegative(fn, "eps", eps)
    return ReduceOnPlateau(
        factor,
        patience,
        threshold,
        threshold_mode,
        cooldown,
        min_lr / lr,
        mode,
        1,
        eps / lr,
        "torch",
    )
