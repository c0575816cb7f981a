"""Adamax (Adam with the infinity norm), torch.optim.Adamax's semantics and defaults."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdamaxState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    u: Any  # exponentially weighted infinity norm


@pytree_dataclass
class ScaleByAdamax(Elementwise):
    """Adamax's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    u_t = max(b2 * u_{t-1}, |g_t| + eps)
    out = m_t / ((1 - b1^t) * u_t)
    """

    state_type = AdamaxState
    fn_name = "adamax"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "m" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        return dict(b1=b1, b2=b2, eps=self.eps, bc1=_tree.bias_correction(b1, t, dtype))

    def _leaf(self, s, g, m, u):
        m = s.b1 * m + (1 - s.b1) * g
        u = jnp.maximum(s.b2.real * u, jnp.abs(g) + s.eps.real)
        return m / (s.bc1.real * u).astype(m.dtype), m, u


def scale_by_adamax(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> ScaleByAdamax:
    """Adamax's preconditioner without the learning rate (see ``ScaleByAdamax``)."""
    return ScaleByAdamax(b1, b2, eps)


def adamax(
    learning_rate: Any = 2e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    *,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adamax, torch.optim.Adamax's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = max(b2 * u_{t-1}, |g_t| + eps)          (eps inside the max)
        p_t = p_{t-1} - lr / (1 - b1^t) * m_t / u_t

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the infinity norm, in [0, 1) (float, array or schedule).
      eps: added to |g| inside the max, >= 0.
      {weight_decay}
      {decoupled} Optax's ``adamaxw``.
      {maximize}

    Conventions: the same algorithm as ``optax.adamax(lr, b1, b2, eps)``; Optax's
    ``adamaxw(lr, ..., weight_decay=wd)`` is ``adamax(lr, ..., weight_decay=wd,
    decoupled_weight_decay=True)``.

    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
      arXiv:1412.6980
    """
    return optimizer_chain(
        "adamax",
        scale_by_adamax(b1, b2, eps),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(adamax, **COMMON_DOCS)
