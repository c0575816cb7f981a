"""Yogi: Adam with an additive, sign-controlled second-moment update."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class YogiState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    v: Any  # second moment


@pytree_dataclass
class ScaleByYogi(Transform):
    """Yogi's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t                       (m_0 = v_0 = init)
    v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g_t^2) * g_t^2
    u_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
    """

    elementwise = True
    fn_name = "yogi"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-3, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    initial_accumulator_value: Any = field(1e-6, check=_checks.NONNEGATIVE)

    def _init(self, params):
        a = self.initial_accumulator_value
        m = jax.tree.map(lambda p: _tree.full_like(p, a), params)
        v = jax.tree.map(lambda p: _tree.full_like(p, a, _tree.real_dtype(p.dtype)), params)
        return YogiState(jnp.zeros((), jnp.int32), m, v)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        b1 = value_at(self.b1, state.count)
        b2 = value_at(self.b2, state.count)

        def leaf(g, m, v):
            cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype)
            rd = _tree.real_dtype(cd)
            t = count.astype(rd)
            gc = g.astype(cd)
            c1, c2 = _tree.hp(b1, rd), _tree.hp(b2, rd)
            m_new = c1 * m.astype(cd) + (1 - c1) * gc
            g2 = _tree.abs_sq(gc)
            vc = v.astype(rd)
            v_new = vc - (1 - c2) * _tree.sign(vc - g2) * g2
            m_hat = m_new / _tree.bias_correction(b1, t, rd)
            v_hat = v_new / _tree.bias_correction(b2, t, rd)
            denom = jnp.sqrt(v_hat + _tree.hp(self.eps_root, rd)) + _tree.hp(self.eps, rd)
            return (m_hat / denom).astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)

        out = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.m, state.v, names=("m", "v")
        )
        u, m, v = _tree.tree_unzip(updates, out, 3)
        return u, YogiState(count, m, v)


def scale_by_yogi(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
) -> ScaleByYogi:
    """Yogi's preconditioner without the learning rate (see ``ScaleByYogi``)."""
    return ScaleByYogi(b1, b2, eps, eps_root, initial_accumulator_value)


def yogi(
    learning_rate: Any = 1e-2,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    weight_decay: Any = 0.0,
    *,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Yogi, Optax's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t                (m_0 = v_0 = 1e-6)
        v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g_t^2) * g_t^2
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: rate of the second moment, in [0, 1) (float, array or schedule).
      eps: added outside the root, >= 0 (1e-3, Optax's and the paper's).
      {weight_decay}
      eps_root: added inside the root, >= 0.
      initial_accumulator_value: starting value of ``m`` and ``v`` (Optax's 1e-6).
      {decoupled}
      {maximize}

    Conventions: with weight_decay 0 this is ``optax.yogi(lr, b1, b2, eps)``. Optax's alias has
    no decay; the default here is torch's coupled L2.

    References:
      Zaheer, Reddi, Sachan, Kale, Kumar, "Adaptive Methods for Nonconvex Optimization",
      NeurIPS 2018. https://papers.nips.cc/paper/8186-adaptive-methods-for-nonconvex-optimization
    """
    return optimizer_chain(
        "yogi",
        scale_by_yogi(b1, b2, eps, eps_root, initial_accumulator_value),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(yogi, **COMMON_DOCS)
