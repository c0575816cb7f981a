"""Momentum building blocks: ``trace`` (heavy ball / Nesterov) and ``ema`` (moving average)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _fusion, _tree
from .._transform import Transform, as_schedule, pytree_dataclass, static_field, value_at


class TraceState(NamedTuple):
    count: jax.Array  # steps taken (for a scheduled decay)
    trace: Any  # the accumulated trace, shaped like the params


@pytree_dataclass
class Trace(Transform):
    """Heavy-ball momentum without dampening::

    t_t = decay * t_{t-1} + g_t            (t_0 = 0)
    u_t = t_t                              (heavy ball)
        = g_t + decay * t_t                (nesterov)
    """

    elementwise = True

    decay: Any = 0.9
    nesterov: bool = static_field(False)
    accumulator_dtype: Any = static_field(None)

    def __post_init__(self):
        object.__setattr__(self, "decay", as_schedule(self.decay))
        _checks.check_unit_interval("trace", "decay", self.decay, high_open=False)

    def _init(self, params):
        return TraceState(
            jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params, self.accumulator_dtype)
        )

    def _update(self, updates, state, params, **extra):
        d = value_at(self.decay, state.count)

        def leaf(g, t):
            cd = _tree.compute_dtype(g.dtype, t.dtype)
            gc, dd = g.astype(cd), _tree.hp(d, cd)
            t_new = dd * t.astype(cd) + gc
            u = gc + dd * t_new if self.nesterov else t_new
            return u.astype(g.dtype), t_new.astype(t.dtype)

        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion
        res = _tree.tree_map_with_check(
            self.where(), twin.wrap(leaf), updates, state.trace, names=("trace",)
        )
        u, t = _tree.tree_unzip(updates, res, 2)
        return u, TraceState(_tree.safe_increment(state.count), t)


def trace(decay: Any = 0.9, nesterov: bool = False, *, accumulator_dtype: Any = None) -> Trace:
    """Heavy-ball or Nesterov momentum (``optax.trace``; torch SGD's buffer with dampening 0).

    Args:
      decay: momentum coefficient in [0, 1] (float, array or schedule).
      nesterov: return ``g + decay * t`` instead of ``t``.
      accumulator_dtype: dtype of the trace (default: each parameter's dtype).
    """
    return Trace(decay, nesterov, accumulator_dtype)


class EmaState(NamedTuple):
    count: jax.Array  # steps taken
    mu: Any  # the moving average (not debiased)


@pytree_dataclass
class Ema(Transform):
    """Exponential moving average of the updates::

    mu_t = decay * mu_{t-1} + (1 - decay) * g_t        (mu_0 = 0)
    u_t = mu_t / (1 - decay^t)   (debias)   or   mu_t
    """

    elementwise = True

    decay: Any = 0.9
    debias: bool = static_field(True)
    accumulator_dtype: Any = static_field(None)

    def __post_init__(self):
        object.__setattr__(self, "decay", as_schedule(self.decay))
        _checks.check_unit_interval("ema", "decay", self.decay)

    def _init(self, params):
        return EmaState(
            jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params, self.accumulator_dtype)
        )

    def _update(self, updates, state, params, **extra):
        d = value_at(self.decay, state.count)
        count = _tree.safe_increment(state.count)

        def leaf(g, mu):
            cd = _tree.compute_dtype(g.dtype, mu.dtype)
            rd = _tree.real_dtype(cd)
            dd = _tree.hp(d, rd)
            mu_new = dd * mu.astype(cd) + (1 - dd) * g.astype(cd)
            u = mu_new / _tree.bias_correction(d, count.astype(rd), rd) if self.debias else mu_new
            return u.astype(g.dtype), mu_new.astype(mu.dtype)

        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion
        res = _tree.tree_map_with_check(
            self.where(), twin.wrap(leaf), updates, state.mu, names=("mu",)
        )
        u, mu = _tree.tree_unzip(updates, res, 2)
        return u, EmaState(count, mu)


def ema(decay: Any = 0.9, debias: bool = True, *, accumulator_dtype: Any = None) -> Ema:
    """Exponential moving average of the updates, bias-corrected by default (``optax.ema``).

    Args:
      decay: in [0, 1) (float, array or schedule).
      debias: divide by ``1 - decay^t`` (computed in at least float32).
      accumulator_dtype: dtype of ``mu`` (default: each parameter's dtype).
    """
    return Ema(decay, debias, accumulator_dtype)
