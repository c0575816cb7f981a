"""Adamax (Adam with the infinity norm), torch.optim.Adamax's semantics and defaults."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdamaxState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    u: Any  # exponentially weighted infinity norm


@pytree_dataclass
class ScaleByAdamax(Transform):
    """Adamax's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    u_t = max(b2 * u_{t-1}, |g_t| + eps)
    out = m_t / ((1 - b1^t) * u_t)
    """

    elementwise = True
    fn_name = "adamax"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)

    def _init(self, params):
        m = _tree.tree_zeros_like(params)
        u = jax.tree.map(lambda p: _tree.zeros_like(p, _tree.real_dtype(p.dtype)), params)
        return AdamaxState(jnp.zeros((), jnp.int32), m, u)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        b1 = value_at(self.b1, state.count)
        b2 = value_at(self.b2, state.count)

        def leaf(g, m, u):
            cd = _tree.compute_dtype(g.dtype, m.dtype, u.dtype)
            rd = _tree.real_dtype(cd)
            gc = g.astype(cd)
            b1_, b2_ = _tree.hp(b1, rd), _tree.hp(b2, rd)
            m_new = b1_ * m.astype(cd) + (1 - b1_) * gc
            u_new = jnp.maximum(b2_ * u.astype(rd), jnp.abs(gc) + _tree.hp(self.eps, rd))
            bc1 = _tree.bias_correction(b1, count.astype(rd), rd)
            out = m_new / (bc1 * u_new)
            return out.astype(g.dtype), m_new.astype(m.dtype), u_new.astype(u.dtype)

        res = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.m, state.u, names=("m", "u")
        )
        out, m, u = _tree.tree_unzip(updates, res, 3)
        return out, AdamaxState(count, m, u)


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
