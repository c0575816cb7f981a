"""RMSprop, torch.optim's semantics (eps outside the root), Optax's as an option."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import (
    COMMON_DOCS,
    fill_doc,
    optimizer_chain,
)


class RMSpropState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    v: Any  # EMA of squared gradients
    g_avg: Any = None  # EMA of gradients (centered only)
    b: Any = None  # momentum buffer (momentum only)


@pytree_dataclass
class ScaleByRMSprop(Elementwise):
    """RMSprop's preconditioner (no learning rate)::

    v_t = decay * v_{t-1} + (1 - decay) * |g_t|^2        (v_0 = initial_scale)
    gbar_t = decay * gbar_{t-1} + (1 - decay) * g_t       (centered only)
    a_t = sqrt(v_t - gbar_t^2) + eps   (outside)   or   sqrt(v_t - gbar_t^2 + eps)  (inside)
    b_t = momentum * b_{t-1} + g_t / a_t;  u_t = b_t      (with momentum)
    u_t = g_t / a_t                                       (without)
    """

    state_type = RMSpropState
    fn_name = "rmsprop"

    decay: Any = field(0.99, check=_checks.CLOSED_UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    momentum: Any = field(None, check=_checks.CLOSED_UNIT)
    centered: bool = static_field(False)
    eps_placement: str = static_field("outside", choices=("outside", "inside"))
    initial_scale: Any = 0.0
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffers(self):
        return ("v", *(("g_avg",) if self.centered else ()), *(("b",) if self.has_b else ()))

    @property
    def has_b(self):
        return self.momentum is not None

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype) if name == "v" else p.dtype

    def _initial(self, name):
        return self.initial_scale if name == "v" else 0.0

    def _scalars(self, count, t, dtype):
        mom = value_at(self.momentum, count) if self.has_b else None
        return dict(decay=value_at(self.decay, count), momentum=mom, eps=self.eps)

    def _leaf(self, s, g, v, g_avg=None, b=None):
        v = s.decay.real * v + (1 - s.decay.real) * _tree.abs_sq(g)
        var = v
        if self.centered:
            g_avg = s.decay * g_avg + (1 - s.decay) * g
            # Clamped: rounding (or a v that underflowed in fp16) must not give sqrt(<0).
            var = jnp.maximum(v - _tree.abs_sq(g_avg), 0.0)
        if self.eps_placement == "outside":
            u = g / (jnp.sqrt(var) + s.eps.real).astype(g.dtype)
        else:
            u = g / jnp.sqrt(var + s.eps.real).astype(g.dtype)
        if self.has_b:
            u = b = s.momentum * b + u
        new = {"v": v, "g_avg": g_avg, "b": b}
        return (u, *(new[n] for n in self._buffers()))


def scale_by_rmsprop(
    decay: Any = 0.99,
    eps: Any = 1e-8,
    momentum: Any = None,
    centered: bool = False,
    eps_placement: str = "outside",
    initial_scale: Any = 0.0,
) -> ScaleByRMSprop:
    """RMSprop's preconditioner without the learning rate (see ``ScaleByRMSprop``)."""
    return ScaleByRMSprop(decay, eps, momentum, centered, eps_placement, initial_scale)


def rmsprop(
    learning_rate: Any = 1e-2,
    decay: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum: Any = None,
    centered: bool = False,
    *,
    eps_placement: str = "outside",
    initial_scale: Any = 0.0,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """RMSprop, torch.optim.RMSprop's semantics and defaults (torch's ``alpha`` is ``decay``).

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        v_t = decay * v_{t-1} + (1 - decay) * g_t^2
        a_t = sqrt(v_t) + eps         (centered: sqrt(v_t - gbar_t^2) + eps)
        b_t = momentum * b_{t-1} + g_t / a_t;  p_t = p_{t-1} - lr * b_t     (with momentum)
        p_t = p_{t-1} - lr * g_t / a_t                                      (without)

    Args:
      {learning_rate}
      decay: smoothing constant of the squared-gradient average, in [0, 1] (torch ``alpha``).
      eps: added to the denominator, outside the root by default (torch, 1e-8).
      {weight_decay}
      momentum: None (no buffer) or a coefficient in [0, 1]; the learning rate multiplies the
        buffer (torch) rather than entering it.
      centered: divide by the estimated standard deviation instead of the root mean square.
      eps_placement: ``"outside"`` (torch, the seed tutorial) or ``"inside"`` (Optax's default
        ``eps_in_sqrt=True``).
      initial_scale: starting value of ``v`` (Optax's ``initial_scale``; torch 0).
      {maximize}

    Conventions: ``optax.rmsprop(lr)`` (decay 0.9, eps inside) is
    ``rmsprop(lr, decay=0.9, eps_placement="inside")``. Optax applies momentum after the learning
    rate; the two agree for a constant learning rate.

    References:
      Tieleman, Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
      2012. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (centered).
      arXiv:1308.0850
    """
    pre = scale_by_rmsprop(decay, eps, momentum, centered, eps_placement, initial_scale)
    return optimizer_chain(
        "rmsprop",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(rmsprop, **COMMON_DOCS)
