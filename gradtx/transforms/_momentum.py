"""Momentum: one transform for heavy-ball, Nesterov and moving-average buffers.

``sgd``'s buffer, ``trace`` (Optax's name for heavy ball) and ``ema`` (a debiased moving
average) are the same recurrence with different coefficients, so they are one class.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at


class MomentumState(NamedTuple):
    count: jax.Array | None  # updates so far (int32, saturating); None when nothing reads it
    trace: Any  # the momentum buffer, shaped like the params


@pytree_dataclass
class ScaleByMomentum(Elementwise):
    """A momentum buffer ``trace`` (``b`` below; no learning rate)::

        form="heavy_ball", dampening=None (optax.trace):
          b_t = momentum * b_{t-1} + g_t                       (b_0 = 0)
        form="heavy_ball" with a dampening (torch.optim.SGD):
          b_t = momentum * b_{t-1} + (1 - dampening) * g_t     (b_1 = g_1: a copy at first)
        and for both:
          u_t = g_t + momentum * b_t   if nesterov else   b_t
        form="ema" (a moving average from zero; optax.ema):
          b_t = momentum * b_{t-1} + (1 - momentum) * g_t      (b_0 = 0)
          u_t = (1 - momentum) * g_t + momentum * b_t   if nesterov else   b_t
          u_t <- u_t / (1 - momentum^t)                        (debias)

    With a dampening and momentum == 0 the buffer is the gradient (torch keeps no buffer then, so
    dampening does nothing). Without a dampening the two agree while the buffer is finite, and
    no leaf pays for the first-step select.
    """

    state_type = MomentumState
    fn_name = "sgd"

    momentum: Any = field(0.9, check=_checks.CLOSED_UNIT)
    dampening: Any = field(None, check=_checks.CLOSED_UNIT)
    nesterov: bool = static_field(False)
    form: str = static_field("heavy_ball", choices=("heavy_ball", "ema"))
    accumulator_dtype: Any = static_field(None)
    debias: bool = static_field(False)

    def _buffer_dtype(self, name, p):
        return self.accumulator_dtype or p.dtype

    def _reads_count(self):
        return self.debias or self.dampening is not None  # t for debias, count == 0 for torch's

    def _scalars(self, count, t, dtype):
        m = value_at(self.momentum, count)
        debias = _tree.bias_correction(m, t, dtype) if self.debias else None
        if self.dampening is None:
            return dict(m=m, debias=debias)
        restart = (count == 0) | (jnp.asarray(m) == 0)
        return dict(m=m, dampening=value_at(self.dampening, count), debias=debias, restart=restart)

    def _leaf(self, s, g, trace):
        if self.form == "ema":
            trace = s.m * trace + (1 - s.m) * g
            u = (1 - s.m) * g + s.m * trace if self.nesterov else trace
            return (u / s.debias if self.debias else u), trace
        if self.dampening is None:
            trace = s.m * trace + g
        else:
            trace = jnp.where(s.restart, g, s.m * trace + (1 - s.dampening) * g)
        return (g + s.m * trace if self.nesterov else trace), trace


def scale_by_momentum(
    momentum: Any = 0.9,
    dampening: Any = None,
    nesterov: bool = False,
    form: str = "heavy_ball",
    accumulator_dtype: Any = None,
) -> ScaleByMomentum:
    """The momentum buffer of ``sgd`` without the learning rate (see ``ScaleByMomentum``)."""
    return ScaleByMomentum(momentum, dampening, nesterov, form, accumulator_dtype)


def trace(decay: Any, nesterov: bool = False, accumulator_dtype: Any = None) -> ScaleByMomentum:
    """Heavy-ball or Nesterov momentum without a learning rate::

        t_t = decay * t_{t-1} + g_t          (t_0 = 0)
        u_t = t_t                            (nesterov=False)
        u_t = g_t + decay * t_t              (nesterov=True)

    Args:
      decay: the momentum coefficient, in [0, 1] (a float, an array or a schedule).
      nesterov: return ``g + decay * t`` instead of ``t``.
      accumulator_dtype: dtype of the trace (default: each parameter's dtype).

    Conventions:
      ``optax.trace``: same signature, no default ``decay``, same numbers. torch.optim.SGD's
      buffer with ``dampening=0`` (torch starts from ``b_1 = g_1``, the same value);
      ``scale_by_momentum(decay, dampening, nesterov)`` adds torch's dampening.

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
      Computational Mathematics and Mathematical Physics, 1964. doi:10.1016/0041-5553(64)90137-5
      Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and momentum in
      deep learning", ICML 2013.
    """
    _checks.check_unit_interval("trace", "decay", decay, high_open=False)
    return ScaleByMomentum(decay, None, nesterov, "heavy_ball", accumulator_dtype)


def ema(decay: Any, debias: bool = True, accumulator_dtype: Any = None) -> ScaleByMomentum:
    """Exponential moving average of the updates, bias-corrected by default::

        mu_t = decay * mu_{t-1} + (1 - decay) * g_t      (mu_0 = 0)
        u_t = mu_t / (1 - decay^t)                       (debias=True)
        u_t = mu_t                                       (debias=False)

    Args:
      decay: in [0, 1) (a float, an array or a schedule).
      debias: divide by ``1 - decay^t`` (computed in at least float32).
      accumulator_dtype: dtype of ``mu`` (default: each parameter's dtype).

    Conventions:
      ``optax.ema``: same signature, no default ``decay``, same numbers. torch.optim has no
      stand-alone EMA of gradients (Adam's first moment is this with ``debias``).
    """
    _checks.check_unit_interval("ema", "decay", decay)
    return ScaleByMomentum(decay, None, False, "ema", accumulator_dtype, debias)
