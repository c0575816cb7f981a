"""Warmup schedules: warmup then constant, exponential decay, or stable then decay (WSD)."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass, static_field
from ._basic import exponential_decay_value
from ._cosine import linear_warmup
from ._util import add_formula, f, nonzero, safe_sqrt, since, t


@pytree_dataclass
class WarmupConstant(Schedule):
    """``init_value + (peak_value - init_value) * count / warmup_steps`` while
    ``count < warmup_steps``, then ``peak_value``."""

    fn_name = "warmup_constant_schedule"

    init_value: Any
    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)

    def __call__(self, count):
        x = t(count)
        w = f(self.warmup_steps)
        warm = linear_warmup(x, self.init_value, self.peak_value, w)
        return jnp.where(since(count, self.warmup_steps) < 0, warm, f(self.peak_value))


def warmup_constant_schedule(init_value: Any, peak_value: Any, warmup_steps: Any) -> WarmupConstant:
    """Linear warmup from ``init_value`` to ``peak_value``, then constant.

    Formula: see ``WarmupConstant``.

    Args:
      init_value: the value at count 0.
      peak_value: the value from ``warmup_steps`` on.
      warmup_steps: the length of the warmup, >= 0 (0: ``peak_value`` throughout).

    Conventions: Optax's ``warmup_constant_schedule``, except that with ``warmup_steps=0``
    Optax stays at ``init_value`` forever; gradtx starts at ``peak_value``, as a warmup of
    length 0 should. torch: ``LinearLR(opt, init / peak, 1.0, warmup)`` with base rate
    ``peak``.
    """
    return WarmupConstant(init_value, peak_value, warmup_steps)


@pytree_dataclass
class WarmupExponentialDecay(Schedule):
    """Linear warmup to ``peak_value``, then ``exponential_decay`` started afresh::

    count < warmup_steps:  eta = init_value + (peak_value - init_value) * count / warmup_steps
    otherwise:             eta = exponential_decay(peak_value, transition_steps, decay_rate,
                                 transition_begin, staircase, end_value)(count - warmup_steps)
    """

    fn_name = "warmup_exponential_decay_schedule"

    init_value: Any
    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)
    transition_steps: Any = field(check=_checks.NONNEGATIVE)
    decay_rate: Any = field(check=_checks.NONNEGATIVE)
    transition_begin: Any = field(0, check=_checks.NONNEGATIVE)
    staircase: bool = static_field(False)
    end_value: Any = None

    def __call__(self, count):
        x = t(count)
        w = f(self.warmup_steps)
        decay = exponential_decay_value(
            count,
            self.peak_value,
            self.transition_steps,
            self.decay_rate,
            self.transition_begin,
            self.staircase,
            self.end_value,
            after=self.warmup_steps,
        )
        warm = linear_warmup(x, self.init_value, self.peak_value, w)
        return jnp.where(since(count, self.warmup_steps) < 0, warm, decay)


def warmup_exponential_decay_schedule(
    init_value: Any,
    peak_value: Any,
    warmup_steps: Any,
    transition_steps: Any,
    decay_rate: Any,
    transition_begin: Any = 0,
    staircase: bool = False,
    end_value: Any = None,
) -> WarmupExponentialDecay:
    """Linear warmup, then exponential decay from ``peak_value`` (formula: see
    ``WarmupExponentialDecay``).

    Args:
      init_value: the value at count 0.
      peak_value: the value reached at ``warmup_steps``, where the decay starts.
      warmup_steps: the length of the warmup, >= 0.
      transition_steps: counts per factor of ``decay_rate``, >= 0 (0: ``peak_value`` after the
        warmup).
      decay_rate: the factor per ``transition_steps``, >= 0.
      transition_begin: counts after the warmup before the decay starts, >= 0. Default 0.
      staircase: decay in whole steps of ``transition_steps``. Default False.
      end_value: a floor (decay) or ceiling (growth); None: none. Default None.

    Conventions: Optax's ``warmup_exponential_decay_schedule``; the decay is
    ``exponential_decay`` started at the end of the warmup.
    """
    return WarmupExponentialDecay(
        init_value,
        peak_value,
        warmup_steps,
        transition_steps,
        decay_rate,
        transition_begin,
        staircase,
        end_value,
    )


@pytree_dataclass
class WarmupStableDecay(Schedule):
    """Warmup, a long stable phase at the peak, then a short decay (WSD)::

    W = warmup_steps, S = stable_steps, D = decay_steps
    count < W:           eta = init_value + (peak_value - init_value) * count / W
    W <= count < W + S:  eta = peak_value
    otherwise:           p = min((count - W - S) / D, 1)
        linear:  eta = peak_value + (end_value - peak_value) * p
        cosine:  eta = end_value + (peak_value - end_value) * (1 + cos(pi p)) / 2
        sqrt:    eta = end_value + (peak_value - end_value) * (1 - sqrt(p))
    """

    fn_name = "warmup_stable_decay_schedule"

    peak_value: Any
    warmup_steps: Any = field(check=_checks.NONNEGATIVE)
    stable_steps: Any = field(check=_checks.NONNEGATIVE)
    decay_steps: Any = field(check=_checks.NONNEGATIVE)
    init_value: Any = 0.0
    end_value: Any = 0.0
    decay_shape: str = static_field("linear", choices=("linear", "cosine", "sqrt"))

    def __call__(self, count):
        x = t(count)
        w, d = f(self.warmup_steps), f(self.decay_steps)
        peak, end = f(self.peak_value), f(self.end_value)
        past = since(count, self.warmup_steps, self.stable_steps)
        p = jnp.where(d > 0, jnp.clip(past / nonzero(d), 0.0, 1.0), 1.0)
        if self.decay_shape == "linear":
            decay = peak + (end - peak) * p
        elif self.decay_shape == "cosine":
            decay = end + (peak - end) * (1.0 + jnp.cos(jnp.pi * p)) / 2.0
        else:
            decay = end + (peak - end) * (1.0 - safe_sqrt(p))
        warm = linear_warmup(x, self.init_value, self.peak_value, w)
        warming = since(count, self.warmup_steps) < 0
        return jnp.where(warming, warm, jnp.where(past < 0, peak, decay))


def warmup_stable_decay_schedule(
    peak_value: Any,
    warmup_steps: Any,
    stable_steps: Any,
    decay_steps: Any,
    init_value: Any = 0.0,
    end_value: Any = 0.0,
    decay_shape: str = "linear",
) -> WarmupStableDecay:
    """Warmup-stable-decay (WSD, "trapezoidal"): the schedule of current LLM pre-training.

    Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, ``peak_value`` for
    ``stable_steps``, then a decay to ``end_value`` over ``decay_steps`` shaped ``"linear"``,
    ``"cosine"`` or ``"sqrt"`` (the "1 - sqrt" cooldown), then ``end_value``. Formula: see
    ``WarmupStableDecay``.

    Args:
      peak_value: the value of the stable phase.
      warmup_steps: the length of the warmup, >= 0.
      stable_steps: the length of the stable phase, >= 0.
      decay_steps: the length of the decay, >= 0.
      init_value: the value at count 0. Default 0.0.
      end_value: the value after the decay. Default 0.0.
      decay_shape: ``"linear"``, ``"cosine"`` or ``"sqrt"``. Default ``"linear"``.

    Conventions: gradtx's own (neither torch nor Optax has it; torch: a ``SequentialLR`` of
    ``LinearLR``, ``ConstantLR(factor=1)`` and ``LinearLR``/``LambdaLR``).

    References:
      Hu et al., "MiniCPM: Unveiling the Potential of Small Language Models with Scalable
      Training Strategies", 2024. arXiv:2404.06395
      Hägele et al., "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
      Durations", NeurIPS 2024. arXiv:2405.18392
    """
    return WarmupStableDecay(
        peak_value, warmup_steps, stable_steps, decay_steps, init_value, end_value, decay_shape
    )


add_formula(warmup_constant_schedule, WarmupConstant)
add_formula(warmup_exponential_decay_schedule, WarmupExponentialDecay)
add_formula(warmup_stable_decay_schedule, WarmupStableDecay)
