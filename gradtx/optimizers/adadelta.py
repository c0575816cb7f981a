"""Adadelta, torch.optim.Adadelta's semantics and defaults (Optax's ``adadelta`` is the same)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdadeltaState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    e_g2: Any  # E[g^2], running average of squared gradients
    e_dx2: Any  # E[dx^2], running average of squared updates


@pytree_dataclass
class ScaleByAdadelta(Elementwise):
    """Adadelta's preconditioner (no learning rate)::

    E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * |g_t|^2
    dx_t      = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
    E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * |dx_t|^2
    u_t       = dx_t
    """

    state_type = AdadeltaState
    fn_name = "adadelta"

    rho: Any = field(0.9, check=_checks.CLOSED_UNIT)
    eps: Any = field(1e-6, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        return dict(rho=value_at(self.rho, count), eps=self.eps)

    def _leaf(self, s, g, e_g2, e_dx2):
        rho, eps = s.rho.real, s.eps.real
        e_g2 = rho * e_g2 + (1 - rho) * _tree.abs_sq(g)
        dx = (jnp.sqrt(e_dx2 + eps) / jnp.sqrt(e_g2 + eps)).astype(g.dtype) * g
        e_dx2 = rho * e_dx2 + (1 - rho) * _tree.abs_sq(dx)
        return dx, e_g2, e_dx2


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> ScaleByAdadelta:
    """Adadelta's preconditioner without the learning rate (see ``ScaleByAdadelta``)."""
    return ScaleByAdadelta(rho, eps)


def adadelta(
    learning_rate: Any = 1.0,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adadelta, torch.optim.Adadelta's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t       = grad + weight_decay * p_{t-1}
        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g_t^2
        dx_t      = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * dx_t^2
        p_t       = p_{t-1} - lr * dx_t

    Args:
      {learning_rate} torch's default is 1.0.
      rho: decay of both running averages, in [0, 1] (float, array or schedule).
      eps: added inside both square roots, >= 0.
      {weight_decay}
      {maximize}

    Conventions: the same algorithm as ``optax.adadelta(lr, rho, eps, weight_decay)`` (Optax's
    weight decay is also the coupled L2 term); only Optax's default learning rate differs.

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012. arXiv:1212.5701
    """
    return optimizer_chain(
        "adadelta",
        scale_by_adadelta(rho, eps),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(adadelta, **COMMON_DOCS)
