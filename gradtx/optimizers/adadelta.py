"""Adadelta: Optax's ``adadelta`` and ``scale_by_adadelta`` (torch.optim.Adadelta's arithmetic
too: the two agree but for the default learning rate)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, off_at_literal_zero, optimizer_chain


class AdadeltaState(NamedTuple):
    count: jax.Array | None  # updates so far (int32, saturating); None when nothing reads it
    e_g: Any  # E[g^2], running average of squared gradients
    e_x: Any  # E[dx^2], running average of squared updates


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

    def _reads_count(self):
        return False

    def _scalars(self, count, t, dtype):
        return dict(rho=value_at(self.rho, count), eps=self.eps)

    def _leaf(self, s, g, e_g, e_x):
        rho, eps = s.rho.real, s.eps.real
        e_g = rho * e_g + (1 - rho) * _tree.abs_sq(g)
        dx = (jnp.sqrt(e_x + eps) / jnp.sqrt(e_g + eps)).astype(g.dtype) * g
        e_x = rho * e_x + (1 - rho) * _tree.abs_sq(dx)
        return dx, e_g, e_x


def scale_by_adadelta(rho: Any = 0.9, eps: Any = 1e-6) -> ScaleByAdadelta:
    """Adadelta's preconditioner without the learning rate (see ``ScaleByAdadelta``)."""
    return ScaleByAdadelta(rho, eps)


def adadelta(
    learning_rate: Any = None,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    *,
    maximize: bool = False,
):
    """Adadelta, Optax's signature, defaults and arithmetic.

    Update rule (t = 1, 2, ...)::

        g_t       = grad + weight_decay * p_{t-1}
        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g_t^2
        dx_t      = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * dx_t^2
        p_t       = p_{t-1} - lr_t * dx_t                  (lr_t = 1 when learning_rate is None)

    Args:
      {learning_rate}
      rho: decay of both running averages, in [0, 1] (float, array or schedule).
      eps: added inside both square roots, >= 0.
      weight_decay: L2 coefficient >= 0 (float, array or schedule), added to the gradient
        before the preconditioner (``g <- g + weight_decay * p``). A literal 0 (the default)
        leaves the term out, as Optax's program does; ``jnp.array(0.0)`` keeps it, so a sweep
        that includes 0 compiles once.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      {maximize}

    Conventions: ``optax.adadelta``: same signature, defaults and numbers for every learning
    rate given, with the same coupled weight decay; ``maximize`` is gradtx's addition. With the
    default ``learning_rate=None`` gradtx takes the paper's step (a unit rate, descending),
    whereas Optax's returns the direction unscaled and without the sign flip, so its steps
    ascend the loss (``optax.adadelta()`` is ``gradtx.adadelta(1.0, maximize=True)`` when
    ``weight_decay`` is 0).
    torch.optim.Adadelta is the same algorithm with ``lr=1.0`` by default
    (``gradtx.torch.adadelta`` takes torch's names).

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012. arXiv:1212.5701
    """
    return optimizer_chain(
        "adadelta",
        scale_by_adadelta(rho, eps),
        learning_rate,
        weight_decay=off_at_literal_zero(weight_decay),
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(adadelta, **COMMON_DOCS)
