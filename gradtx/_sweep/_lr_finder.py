"""The learning-rate range test (Smith's LR finder), built on ``gradtx.sweep``.

One training run raises the learning rate exponentially from ``lr_min`` to ``lr_max`` over
``steps`` updates and records the loss. Where the loss falls fastest is a good learning rate;
where it blows up is too large. Each of ``repeats`` runs gets its own PRNG key (its own
minibatches); they are one population of a sweep, so they run in one compiled program, and their
curves are averaged.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..schedules._basic import exponential_decay
from ._sweep import SweepResult, sweep

__all__ = ["LRFinderResult", "lr_finder"]


@dataclasses.dataclass
class LRFinderResult:
    """What ``gradtx.lr_finder`` returns.

    Attributes:
      learning_rates: (steps,) the learning rate used at each step.
      losses: (steps,) the loss at each step, averaged over the repeats (NaN once all diverged).
      smoothed: (steps,) the bias-corrected exponential moving average of ``losses``.
      stop_index: the first step whose smoothed loss exceeded ``diverge_factor`` times the best
        so far (or became NaN); ``steps`` if none did. Only steps before it are used.
      suggestion: the learning rate where the smoothed loss falls fastest (the most negative
        ``d log(loss) / d log(lr)``, ignoring the first tenth of the steps): Smith's choice.
      min_loss_lr: the learning rate at the lowest smoothed loss; ``min_loss_lr / 10`` is the
        other common rule of thumb.
      sweep: the underlying ``SweepResult`` (one row per repeat).
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    stop_index: int
    suggestion: float
    min_loss_lr: float
    sweep: SweepResult

    def __repr__(self) -> str:
        return (
            f"LRFinderResult(suggestion={self.suggestion:.3g}, min_loss_lr={self.min_loss_lr:.3g}, "
            f"stopped at step {self.stop_index} of {self.learning_rates.size})"
        )


def _smooth(losses: np.ndarray, beta: float) -> np.ndarray:
    out = np.full_like(losses, np.nan, dtype=np.float64)
    avg = 0.0
    for t, x in enumerate(losses):
        if not np.isfinite(x):
            break
        avg = beta * avg + (1 - beta) * float(x)
        out[t] = avg / (1 - beta ** (t + 1))
    return out


def lr_finder(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    data: Any = None,
    optimizer: Any = "adam",
    *,
    lr_min: float = 1e-7,
    lr_max: float = 10.0,
    steps: int = 100,
    repeats: int = 1,
    hparams: Mapping[str, Any] | None = None,
    key: Any = 0,
    batch_size: int | None = None,
    smoothing: float = 0.9,
    diverge_factor: float = 4.0,
) -> LRFinderResult:
    """Runs the LR range test: ``lr_t = lr_min * (lr_max / lr_min)^(t / (steps - 1))``.

    Args:
      loss_fn, params, data, optimizer, hparams, key, batch_size: as in ``gradtx.sweep``
        (``optimizer`` is a factory or registry name taking ``learning_rate``).
      lr_min, lr_max: the range of learning rates, 0 < lr_min < lr_max.
      steps: number of updates (and of learning rates tried).
      repeats: independent runs (own keys, so own minibatches) averaged, in one program.
      smoothing: EMA factor of the loss curve (bias-corrected), in [0, 1).
      diverge_factor: stop reading the curve once the smoothed loss exceeds this multiple of the
        best smoothed loss so far.

    References:
      Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
      arXiv:1506.01186
    """
    if not 0 < lr_min < lr_max:
        raise ValueError(f"gradtx.lr_finder: need 0 < lr_min < lr_max, got {lr_min}, {lr_max}")
    if steps < 2:
        raise ValueError(f"gradtx.lr_finder: steps must be >= 2, got {steps}")
    if not 0 <= smoothing < 1:
        raise ValueError(f"gradtx.lr_finder: smoothing must be in [0, 1), got {smoothing}")
    growth = (lr_max / lr_min) ** (1.0 / (steps - 1))
    ramp = exponential_decay(float(lr_min), 1, float(growth))
    res = sweep(
        loss_fn,
        params,
        data,
        optimizer,
        {"learning_rate.init_value": [float(lr_min)] * repeats},
        steps,
        hparams={**dict(hparams or {}), "learning_rate": ramp},
        key=key,
        batch_size=batch_size,
    )
    lrs = lr_min * growth ** np.arange(steps, dtype=np.float64)
    curves = res.losses.astype(np.float64)
    with np.errstate(invalid="ignore"):
        alive = np.isfinite(curves).all(axis=0)
        losses = np.where(
            alive, np.nanmean(np.where(np.isfinite(curves), curves, 0), axis=0), np.nan
        )
    smoothed = _smooth(losses, smoothing)
    stop = steps
    best = math.inf
    for t, s in enumerate(smoothed):
        if not np.isfinite(s) or (t > 0 and s > diverge_factor * best):
            stop = t
            break
        best = min(best, s)
    stop = max(stop, 2)
    window = smoothed[:stop]
    # Steepest relative descent, d log(loss) / d log(lr), skipping the EMA's first steps.
    skip = min(steps // 10, stop - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.gradient(np.log(np.maximum(window, 1e-30)), np.log(lrs[:stop]))
    suggestion = float(lrs[skip + int(np.nanargmin(slope[skip:]))])
    min_loss_lr = float(lrs[int(np.nanargmin(window))])
    return LRFinderResult(lrs, losses, smoothed, stop, suggestion, min_loss_lr, res)
