"""Reducing the learning rate when the loss stops improving (torch ``ReduceLROnPlateau``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, scale_tree, static_field
from ._util import add_formula


class ReduceOnPlateauState(NamedTuple):
    scale: jax.Array  # the factor the updates are multiplied by (starts at 1)
    best: jax.Array  # the best loss seen (inf in "min" mode, -inf in "max" mode at first)
    num_bad: jax.Array  # consecutive checks without improvement (int32)
    cooldown: jax.Array  # checks left before bad checks count again (int32)
    count: jax.Array  # losses averaged since the last check (int32)
    avg_loss: jax.Array  # their running mean


def _as_int(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(jnp.int32)


@pytree_dataclass
class ReduceOnPlateau(Transform):
    """Scales updates by ``scale``, which drops by ``factor`` when the loss plateaus.

    At each check (every ``accumulation_size`` updates, on the mean of their losses ``a``)::

        better = a < best - threshold * |best|     (mode "min", threshold_mode "rel")
                 a < best - threshold              (mode "min", "abs")
                 a > best + threshold * |best|     (mode "max", "rel")
                 a > best + threshold              (mode "max", "abs")
        if better: best = a, num_bad = 0  else: num_bad += 1
        if cooldown > 0: cooldown -= 1, num_bad = 0
        if num_bad > patience:
            scale = max(scale * factor, min_scale)   (only if that lowers it by more than eps)
            cooldown = cooldown_steps, num_bad = 0
        u <- scale * u   (convention "optax": the scale after this check; "torch": before it)
    """

    elementwise = True
    fn_name = "reduce_on_plateau"

    factor: Any = field(0.1, check=_checks.UNIT)
    patience: Any = field(10, check=_checks.NONNEGATIVE)
    threshold: Any = field(1e-4, check=_checks.NONNEGATIVE)
    threshold_mode: str = static_field("rel", choices=("rel", "abs"))
    cooldown: Any = field(0, check=_checks.NONNEGATIVE)
    min_scale: Any = field(0.0, check=_checks.NONNEGATIVE)
    mode: str = static_field("min", choices=("min", "max"))
    accumulation_size: Any = field(1, check=_checks.Interval(1.0))
    eps: Any = field(0.0, check=_checks.NONNEGATIVE)
    convention: str = static_field("optax", choices=("optax", "torch"))

    def _init(self, params):
        dt = _tree.float_dtype()
        worst = jnp.inf if self.mode == "min" else -jnp.inf
        zero = jnp.zeros((), jnp.int32)
        return ReduceOnPlateauState(
            jnp.ones((), dt), jnp.asarray(worst, dt), zero, zero, zero, jnp.zeros((), dt)
        )

    def _is_better(self, a: jax.Array, best: jax.Array) -> jax.Array:
        thr = jnp.asarray(self.threshold).astype(best.dtype)
        sign = 1.0 if self.mode == "min" else -1.0  # "max" mirrors "min"
        if self.threshold_mode == "rel":
            # best * (1 - thr) for best >= 0 (torch's expression), best * (1 + thr) below 0, so
            # the bar is always thr * |best| better than best (torch gets negatives wrong).
            up = jnp.where(sign * best >= 0, 1.0 - thr, 1.0 + thr)
            bar = jnp.where(jnp.isfinite(best), best * up, best)
        else:
            bar = best - sign * thr
        return sign * a < sign * bar

    def _update(self, updates, state, params, **extra):
        loss = extra.get("loss", extra.get("value"))
        if loss is None:
            raise TypeError(
                f"{self.where()}: reduce_on_plateau needs the loss; call "
                "update(grads, state, params, loss=loss_value)."
            )
        dt = state.best.dtype
        loss = jnp.asarray(loss).astype(dt)
        n = _tree.safe_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_loss + loss) / n.astype(dt)
        check = n >= _as_int(self.accumulation_size)

        better = self._is_better(avg, state.best)
        best = jnp.where(better, avg, state.best)
        num_bad = jnp.where(better, 0, _tree.safe_increment(state.num_bad))
        in_cooldown = state.cooldown > 0
        cooldown = jnp.where(in_cooldown, state.cooldown - 1, state.cooldown)
        num_bad = jnp.where(in_cooldown, 0, num_bad)
        reduce = num_bad > _as_int(self.patience)
        lowered = jnp.maximum(
            state.scale * jnp.asarray(self.factor).astype(dt),
            jnp.asarray(self.min_scale).astype(dt),
        )
        apply = reduce & (state.scale - lowered > jnp.asarray(self.eps).astype(dt))
        scale = jnp.where(apply, lowered, state.scale)
        cooldown = jnp.where(reduce, _as_int(self.cooldown), cooldown)
        num_bad = jnp.where(reduce, 0, num_bad)

        zero = jnp.zeros((), jnp.int32)
        new = ReduceOnPlateauState(
            scale=jnp.where(check, scale, state.scale),
            best=jnp.where(check, best, state.best),
            num_bad=jnp.where(check, num_bad, state.num_bad).astype(jnp.int32),
            cooldown=jnp.where(check, cooldown, state.cooldown).astype(jnp.int32),
            count=jnp.where(check, zero, n),
            avg_loss=jnp.where(check, jnp.zeros((), dt), avg),
        )
        # torch steps the scheduler after the optimizer: this update still uses the old scale.
        applied = state.scale if self.convention == "torch" else new.scale
        return scale_tree(updates, applied), new


def reduce_on_plateau(
    factor: Any = 0.1,
    patience: Any = 10,
    threshold: Any = 1e-4,
    threshold_mode: str = "rel",
    cooldown: Any = 0,
    min_scale: Any = 0.0,
    mode: str = "min",
    *,
    accumulation_size: Any = 1,
    eps: Any = 0.0,
    convention: str = "optax",
) -> ReduceOnPlateau:
    """Multiplies the updates by a scale that drops by ``factor`` when the loss plateaus.

    Pass the loss to every update: ``tx.update(grads, state, params, loss=loss)`` (``value=``,
    Optax's name, works too); ``chain`` hands it to every element. Put it after the optimizer:
    ``chain(gradtx.adam(1e-3), gradtx.reduce_on_plateau(patience=5))``. The rule is torch
    ``ReduceLROnPlateau``'s: the scale drops after more than
    ``patience`` checks without improvement, then ``cooldown`` checks are ignored. Unlike torch
    (and Optax), the relative threshold is measured from ``|best|``, so a loss that plateaus
    below zero is handled the same as one that plateaus above it.

    Args:
      factor: multiplies the scale at each reduction, in [0, 1).
      patience: checks without improvement tolerated before a reduction (torch's count).
      threshold: how much better than the best a loss must be to count as an improvement.
      threshold_mode: ``"rel"`` (``threshold * |best|``) or ``"abs"`` (``threshold``).
      cooldown: checks to wait after a reduction before counting bad checks again.
      min_scale: the scale never drops below this (torch's ``min_lr`` divided by the rate).
      mode: ``"min"`` (a loss) or ``"max"`` (an accuracy).
      accumulation_size: average this many losses per check (Optax's option; 1 = every update).
      eps: skip reductions smaller than this in scale units (torch's ``eps`` divided by the
        rate; torch's default 1e-8 with rate 1e-3 is ``eps=1e-5``).
      convention: ``"optax"``: the scale computed from this update's loss already applies to
        this update (Optax's order); ``"torch"``: it applies from the next update on (torch
        steps the scheduler after the optimizer). Default ``"optax"``.

    Conventions: torch ``ReduceLROnPlateau`` under torch's names is
    ``gradtx.torch.reduce_lr_on_plateau``. Optax ``contrib.reduce_on_plateau(factor,
    patience=P, rtol=r, cooldown=c, accumulation_size=n, min_scale=s)`` with ``atol=0`` is
    ``reduce_on_plateau(factor, P - 1, r, "rel", c, s, accumulation_size=n)`` for positive losses
    (Optax reduces after ``P`` bad checks, torch after ``P + 1``); with ``rtol=0`` use
    ``threshold=atol, threshold_mode="abs"``.
    """
    return ReduceOnPlateau(
        factor,
        patience,
        threshold,
        threshold_mode,
        cooldown,
        min_scale,
        mode,
        accumulation_size,
        eps,
        convention,
    )


add_formula(reduce_on_plateau, ReduceOnPlateau)
