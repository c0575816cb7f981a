"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its mean."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdaBeliefState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    s: Any  # EMA of (g - m)^2, plus eps_root each step


@pytree_dataclass
class ScaleByBelief(Transform):
    """AdaBelief's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    s_t = b2 * s_{t-1} + (1 - b2) * |g_t - m_t|^2 + eps_root
    mhat_t = m_t / (1 - b1^t)
           = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g_t / (1 - b1^t)   (nesterov)
    u_t = mhat_t / (sqrt(s_t / (1 - b2^t)) + eps)
    """

    elementwise = True
    fn_name = "adabelief"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-16, check=_checks.NONNEGATIVE)
    eps_root: Any = field(1e-16, check=_checks.NONNEGATIVE)
    nesterov: bool = static_field(False)

    def _init(self, params):
        s = jax.tree.map(lambda p: _tree.zeros_like(p, _tree.real_dtype(p.dtype)), params)
        return AdaBeliefState(jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params), s)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        b1 = value_at(self.b1, state.count)
        b2 = value_at(self.b2, state.count)

        def leaf(g, m, s):
            cd = _tree.compute_dtype(g.dtype, m.dtype, s.dtype)
            rd = _tree.real_dtype(cd)
            t = count.astype(rd)
            gc = g.astype(cd)
            c1, c2 = _tree.hp(b1, rd), _tree.hp(b2, rd)
            m_new = c1 * m.astype(cd) + (1 - c1) * gc
            s_new = (
                c2 * s.astype(rd)
                + (1 - c2) * _tree.abs_sq(gc - m_new)
                + _tree.hp(self.eps_root, rd)
            )
            if self.nesterov:
                m_hat = c1 * m_new / _tree.bias_correction(b1, t + 1, rd) + (
                    1 - c1
                ) * gc / _tree.bias_correction(b1, t, rd)
            else:
                m_hat = m_new / _tree.bias_correction(b1, t, rd)
            s_hat = s_new / _tree.bias_correction(b2, t, rd)
            u = m_hat / (jnp.sqrt(s_hat) + _tree.hp(self.eps, rd))
            return u.astype(g.dtype), m_new.astype(m.dtype), s_new.astype(s.dtype)

        out = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.m, state.s, names=("m", "s")
        )
        u, m, s = _tree.tree_unzip(updates, out, 3)
        return u, AdaBeliefState(count, m, s)


def scale_by_belief(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
) -> ScaleByBelief:
    """AdaBelief's preconditioner without the learning rate (see ``ScaleByBelief``)."""
    return ScaleByBelief(b1, b2, eps, eps_root, nesterov)


def adabelief(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    weight_decay: Any = 0.0,
    *,
    eps_root: Any = 1e-16,
    nesterov: bool = False,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """AdaBelief, Optax's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        s_t = b2 * s_{t-1} + (1 - b2) * (g_t - m_t)^2 + eps_root
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(s_t / (1 - b2^t)) + eps)

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the belief (second central moment), in [0, 1) (float, array or schedule).
      eps: added outside the root, >= 0 (Optax's 1e-16; the paper's code uses 1e-16 too).
      {weight_decay}
      eps_root: added to ``s`` every step (stored in the state, Optax's convention), >= 0.
      nesterov: Nesterov's correction of the first moment (Optax's ``nesterov``).
      {decoupled}
      {maximize}

    Conventions: with weight_decay 0 this is ``optax.adabelief(lr, b1, b2, eps, eps_root,
    nesterov=...)``. Optax's alias has no decay; gradtx's default is torch's coupled L2 like
    ``adam``; ``decoupled_weight_decay=True`` gives the paper's ``weight_decouple``.

    References:
      Zhuang, Tang, Ding, Tatikonda, Dvornek, Papademetris, Duncan, "AdaBelief Optimizer:
      Adapting Stepsizes by the Belief in Observed Gradients", NeurIPS 2020. arXiv:2010.07468
    """
    return optimizer_chain(
        "adabelief",
        scale_by_belief(b1, b2, eps, eps_root, nesterov=nesterov),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(adabelief, **COMMON_DOCS)
