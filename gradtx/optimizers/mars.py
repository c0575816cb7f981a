"""MARS: AdamW on a variance-reduced (gradient-difference corrected) gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf, leaf_norm
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class MARSState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment of the corrected gradient
    v: Any  # second moment of the corrected gradient
    g_prev: Any  # the previous gradient


@pytree_dataclass
class ScaleByMARS(PerLeaf):
    """MARS-AdamW's direction (approximate MARS; no learning rate), t = 1, 2, ...::

    c_t = g_t + gamma * b1 / (1 - b1) * (g_t - g_{t-1})    (g_0 = g_1: no correction at t = 1)
    c_t <- c_t / ||c_t||  where ||c_t|| > 1                 (per leaf; clip_norm=False skips)
    m_t = b1 * m_{t-1} + (1 - b1) * c_t
    v_t = b2 * v_{t-1} + (1 - b2) * c_t^2
    u_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)
    """

    fn_name = "mars"
    state_type = MARSState
    leaf_statistic = "per-leaf norm clipping (clip_norm=True)"

    b1: Any = field(0.95, check=_checks.UNIT)
    b2: Any = field(0.99, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    gamma: Any = field(0.025, check=_checks.NONNEGATIVE)
    clip_norm: bool = static_field(True)
    mu_dtype: Any = static_field(None)

    def _per_leaf(self):
        return self.clip_norm  # without the clipping every element is on its own

    def _init_leaf(self, p):
        z = _tree.zeros_like
        return z(p, self.mu_dtype), z(p, _tree.real_dtype(p.dtype)), z(p)

    def _scalars(self, count, t):
        b1, b2, gamma = (value_at(h, count) for h in (self.b1, self.b2, self.gamma))
        return {"first": count == 0, "t": t, "b1": b1, "b2": b2, "gamma": gamma}

    def _leaf(self, s, g, m, v, gp):
        cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype)
        rd = _tree.real_dtype(cd)
        t = s.t.astype(rd)
        c1, c2, ga = (_tree.hp(h, rd) for h in (s.b1, s.b2, s.gamma))
        gc = g.astype(cd)
        diff = jnp.where(s.first, jnp.zeros_like(gc), gc - gp.astype(cd))
        c = gc + ga * c1 / (1 - c1) * diff
        if self.clip_norm:
            n = leaf_norm(c)
            c = jnp.where(n > 1, c / jnp.where(n > 1, n, 1), c)
        m_new = c1 * m.astype(cd) + (1 - c1) * c
        v_new = c2 * v.astype(rd) + (1 - c2) * _tree.abs_sq(c)
        m_hat = m_new / _tree.bias_correction(s.b1, t, rd)
        v_hat = v_new / _tree.bias_correction(s.b2, t, rd)
        u = m_hat / (jnp.sqrt(v_hat) + _tree.hp(self.eps, rd))
        return u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype), g.astype(gp.dtype)


def scale_by_mars(
    b1: Any = 0.95,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    gamma: Any = 0.025,
    *,
    clip_norm: bool = True,
    mu_dtype: Any = None,
) -> ScaleByMARS:
    """MARS-AdamW's direction without the learning rate (see ``ScaleByMARS``)."""
    return ScaleByMARS(b1, b2, eps, gamma, clip_norm, mu_dtype)


def mars(
    learning_rate: Any = 3e-3,
    b1: Any = 0.95,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = None,
    gamma: Any = 0.025,
    *,
    clip_norm: bool = True,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
):
    """MARS (MARS-AdamW, the approximate form that reuses the previous step's gradient).

    Update rule (t = 1, 2, ...)::

        c_t = g_t + gamma * b1 / (1 - b1) * (g_t - g_{t-1})     (g_0 = g_1)
        c_t <- c_t / ||c_t||_2   if ||c_t||_2 > 1              (per leaf)
        m_t = b1 * m_{t-1} + (1 - b1) * c_t
        v_t = b2 * v_{t-1} + (1 - b2) * c_t^2
        p_t = p_{t-1} - lr * ((m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)
                              + weight_decay * p_{t-1})

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (0.95, the paper's; float, array or schedule).
      b2: decay of the second moment, in [0, 1) (0.99, the paper's).
      eps: added outside the root, >= 0.
      weight_decay: decoupled decay coefficient >= 0 scaled by the learning rate (AdamW's, as in
        the paper's MARS-AdamW).
      gamma: scale of the gradient-correction term, >= 0 (0.025, the paper's; float, array or
        schedule).
      clip_norm: rescale ``c_t`` to unit norm when its norm exceeds 1 (the paper's Algorithm;
        the norm is per leaf, as in the authors' code).
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      mu_dtype: dtype of ``m`` (default: each parameter's dtype).

    Conventions: the paper's Algorithm 2 (MARS-AdamW) in its approximate form (the previous
    gradient comes from the previous batch, so one gradient per step); the first step has no
    correction (the paper sets x_0 = x_1).

    References:
      Yuan, Liu, Wu, Gu, "MARS: Unleashing the Power of Variance Reduction for Training Large
      Models", ICML 2025. arXiv:2411.10438
    """
    pre = scale_by_mars(b1, b2, eps, gamma, clip_norm=clip_norm, mu_dtype=mu_dtype)
    return optimizer_chain(
        "mars",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(mars, **COMMON_DOCS)
