"""Optax's contrib reduce_on_plateau: the updates' scale drops when the loss stops improving."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, scale_tree
from ._common import scalar_dtype


class ReduceLROnPlateauState(NamedTuple):
    scale: jax.Array  # the factor the updates are multiplied by (starts at 1)
    best_value: jax.Array  # the best averaged loss so far (starts at inf)
    plateau_count: jax.Array  # checks since the last improvement (int32)
    cooldown_count: jax.Array  # checks left in the cooldown (int32)
    count: jax.Array  # losses averaged since the last check (int32)
    avg_value: jax.Array  # their running mean


def _int(x: Any) -> jax.Array:
    return jnp.asarray(x).astype(jnp.int32)


@pytree_dataclass
class ReduceLROnPlateau(Transform):
    """Optax's plateau rule (see ``reduce_on_plateau``)."""

    fn_name = "contrib.reduce_on_plateau"
    elementwise = True

    factor: Any = field(0.1, check=_checks.Interval(0.0, 1.0, low_open=True, high_open=True))
    patience: Any = field(10, check=_checks.Interval(0, integer=True))
    rtol: Any = field(1e-4, check=_checks.Interval(0.0, 1.0))
    atol: Any = field(0.0, check=_checks.NONNEGATIVE)
    cooldown: Any = field(0, check=_checks.Interval(0, integer=True))
    accumulation_size: Any = field(1, check=_checks.COUNT)
    min_scale: Any = field(0.0, check=_checks.NONNEGATIVE)

    def __check_init__(self):
        rtol, atol = _checks.concrete_values(self.rtol), _checks.concrete_values(self.atol)
        if rtol is not None and atol is not None and not (rtol.any() or atol.any()):
            raise _checks.HyperparameterError(
                f"gradtx.{self.fn_name}: rtol and atol must not both be 0, got rtol={self.rtol} "
                f"and atol={self.atol}; an improvement needs one of them > 0"
            )

    def _init(self, params):
        dt = scalar_dtype(params)
        zero = jnp.zeros((), jnp.int32)
        return ReduceLROnPlateauState(
            jnp.ones((), dt), jnp.asarray(jnp.inf, dt), zero, zero, zero, jnp.zeros((), dt)
        )

    def _update(self, updates, state, params, **extra):
        value = extra.get("value", extra.get("loss"))
        if value is None:
            raise TypeError(
                f"{self.where()}: reduce_on_plateau needs the loss; call "
                "update(grads, state, params, value=loss_value)."
            )
        dt = state.best_value.dtype
        n = _tree.safe_increment(state.count)
        avg = (state.count.astype(dt) * state.avg_value + jnp.asarray(value).astype(dt)) / n.astype(
            dt
        )
        check = n == _int(self.accumulation_size)

        def hp(x):
            return jnp.asarray(x).astype(dt)

        better = avg < (1 - hp(self.rtol)) * state.best_value - hp(self.atol)
        best = jnp.where(better, avg, state.best_value)
        plateau = jnp.where(better, 0, _tree.safe_increment(state.plateau_count))
        cooling = state.cooldown_count > 0
        hit = ~cooling & (plateau == _int(self.patience))
        lowered = jnp.where(hit, state.scale * hp(self.factor), state.scale)
        scale = jnp.where(cooling, state.scale, jnp.maximum(lowered, hp(self.min_scale)))
        cooldown = jnp.where(
            cooling, state.cooldown_count - 1, jnp.where(hit, _int(self.cooldown), 0)
        )
        plateau = jnp.where(cooling | hit, 0, plateau)

        zero = jnp.zeros((), jnp.int32)
        new = ReduceLROnPlateauState(
            scale=jnp.where(check, scale, state.scale),
            best_value=jnp.where(check, best, state.best_value),
            plateau_count=jnp.where(check, plateau, state.plateau_count).astype(jnp.int32),
            cooldown_count=jnp.where(check, cooldown, state.cooldown_count).astype(jnp.int32),
            count=jnp.where(check, zero, n),
            avg_value=jnp.where(check, jnp.zeros((), dt), avg),
        )
        return scale_tree(updates, new.scale), new

    def _hyperparams(self, state):
        return {"scale": state.scale}


def reduce_on_plateau(
    factor: float = 0.1,
    patience: Any = 10,
    rtol: float = 1e-4,
    atol: float = 0.0,
    cooldown: Any = 0,
    accumulation_size: Any = 1,
    min_scale: Any = 0.0,
) -> ReduceLROnPlateau:
    """Multiplies the updates by a scale that drops by ``factor`` when the loss plateaus.

    Pass the loss to every update, ``tx.update(grads, state, params, value=loss)``, and put
    the transform after the optimizer. Every ``accumulation_size`` updates, on the mean ``a``
    of their losses (a check)::

        if a < (1 - rtol) * best - atol:  best = a, plateau = 0   else: plateau += 1
        if cooldown > 0:      cooldown -= 1, plateau = 0
        elif plateau == patience:
            scale = max(scale * factor, min_scale), plateau = 0, cooldown = cooldown_steps
        u <- scale * u   (this update already uses the scale of this check)

    Args:
      factor: the scale's multiplier at each reduction, in (0, 1); default 0.1.
      patience: checks without improvement that trigger a reduction, an integer >= 0;
        default 10.
      rtol: relative improvement needed, in [0, 1]; default 1e-4.
      atol: absolute improvement needed, >= 0 (not both 0 with rtol); default 0.
      cooldown: checks after a reduction during which the plateau count stays 0, an integer
        >= 0; default 0.
      accumulation_size: losses averaged per check, an integer >= 1; default 1.
      min_scale: the scale never drops below this, >= 0; default 0.

    Conventions: Optax's ``contrib.reduce_on_plateau`` (state ``ReduceLROnPlateauState``).
    ``gradtx.reduce_on_plateau`` is torch's ``ReduceLROnPlateau`` rule (a reduction after more
    than ``patience`` bad checks, a threshold measured from ``|best|``, a ``"max"`` mode).
    """
    return ReduceLROnPlateau(factor, patience, rtol, atol, cooldown, accumulation_size,
                             min_scale)  # fmt: skip
