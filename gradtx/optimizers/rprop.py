"""Rprop (iRprop-): Optax's signature and defaults, the published algorithm (torch.optim.Rprop's)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc
from ._lr_inside import lr_inside_chain


class RpropState(NamedTuple):
    count: jax.Array | None  # updates so far (int32, saturating); None when nothing reads it
    prev: Any  # the previous (possibly zeroed) gradient (Optax's prev_updates holds the step)
    step_sizes: Any  # per-element step sizes Delta


@pytree_dataclass
class ScaleByRprop(Elementwise):
    """iRprop-'s whole step (the learning rate is the initial step size)::

    s_t     = sign(g_t * prev_{t-1})                       (prev_0 = 0)
    eta_t   = eta_plus if s_t > 0, eta_minus if s_t < 0, 1 if s_t == 0
    Delta_t = clip(Delta_{t-1} * eta_t, min_step_size, max_step_size)   (Delta_0 = lr(0))
    g'_t    = 0 where s_t < 0, else g_t
    out     = sign(g'_t) * Delta_t;   prev_t = g'_t
    """

    state_type = RpropState
    fn_name = "rprop"

    learning_rate: Any = field(1e-2, check=_checks.NONNEGATIVE)
    eta_minus: Any = field(0.5, check=_checks.Interval(0.0, 1.0, low_open=True, high_open=True))
    eta_plus: Any = field(1.2, check=_checks.Interval(1.0, low_open=True))
    min_step_size: Any = field(1e-6, check=_checks.NONNEGATIVE)
    max_step_size: Any = field(50.0, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "prev" else _tree.real_dtype(p.dtype)

    def _initial(self, name):
        return (
            value_at(self.learning_rate, jnp.zeros((), jnp.int32)) if name == "step_sizes" else 0.0
        )

    def _reads_count(self):
        return False

    def _scalars(self, count, t, dtype):
        return dict(eta_plus=self.eta_plus, eta_minus=self.eta_minus, lo=self.min_step_size,
                    hi=self.max_step_size)  # fmt: skip

    def _leaf(self, c, g, prev, step_sizes):
        s = _tree.sign(g * prev)
        eta = jnp.where(s > 0, c.eta_plus, jnp.where(s < 0, c.eta_minus, jnp.ones_like(c.lo)))
        step_sizes = jnp.clip(step_sizes * eta, c.lo, c.hi)
        g = jnp.where(s < 0, jnp.zeros_like(g), g)
        return _tree.sign(g) * step_sizes, g, step_sizes


def scale_by_rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
) -> ScaleByRprop:
    """Rprop's step, sign included but not flipped (see ``ScaleByRprop``; ``optax.scale_by_rprop``'s
    signature and defaults, the published iRprop- as ``rprop`` describes)."""
    return ScaleByRprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)


def rprop(
    learning_rate: Any,
    eta_minus: Any = 0.5,
    eta_plus: Any = 1.2,
    min_step_size: Any = 1e-6,
    max_step_size: Any = 50.0,
    *,
    weight_decay: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Rprop (resilient backpropagation, the iRprop- variant), Optax's signature and defaults.

    Update rule (t = 1, 2, ...)::

        s_t     = sign(g_t * g'_{t-1})                       (g'_0 = 0)
        eta_t   = eta_plus if s_t > 0;  eta_minus if s_t < 0;  1 otherwise
        Delta_t = clip(Delta_{t-1} * eta_t, min_step_size, max_step_size)   (Delta_0 = lr)
        g'_t    = 0 where s_t < 0 (a sign change: no step, no adaptation next time), else g_t
        p_t     = p_{t-1} - sign(g'_t) * Delta_t

    Args:
      learning_rate: the initial step size Delta_0 >= 0. As in torch it is read once: a schedule
        is evaluated at count 0 when the state is created and never again.
      eta_minus: multiplicative decrease factor, in (0, 1).
      eta_plus: multiplicative increase factor, > 1.
      min_step_size: lower bound on the step sizes, >= 0.
      max_step_size: upper bound on the step sizes, >= 0.
      {weight_decay} torch's Rprop has none (default 0).
      {maximize}

    Conventions: ``optax.rprop``'s signature and defaults; ``weight_decay`` (torch's coupled L2
    term) and ``maximize`` are gradtx's additions. The steps differ from Optax's on purpose:
    ``optax.rprop`` emits the previous step's update (its first update is zero and every later
    one lags a step behind the gradient that chose it), a known defect; gradtx takes the
    published iRprop- step, as torch.optim.Rprop does (torch's ``etas=(eta_minus, eta_plus)``
    and ``step_sizes=(min_step_size, max_step_size)``; ``gradtx.torch.rprop`` takes torch's
    names and ``lr=1e-2`` default).

    References:
      Riedmiller, Braun, "A direct adaptive method for faster backpropagation learning: the
      RPROP algorithm", IEEE ICNN 1993. doi:10.1109/ICNN.1993.298623
      Igel, Huesken, "Improving the Rprop Learning Algorithm", NC 2000 (iRprop-).
    """
    pre = scale_by_rprop(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)
    return lr_inside_chain(
        "rprop",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(rprop, **COMMON_DOCS)
