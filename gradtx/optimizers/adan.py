"""Adan: adaptive Nesterov momentum with a gradient-difference moment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdanState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # EMA of gradients
    v: Any  # EMA of gradient differences
    n: Any  # EMA of squared corrected gradients
    g_prev: Any  # the previous gradient


@pytree_dataclass
class ScaleByAdan(Transform):
    """Adan's preconditioner (no learning rate)::

        dg_t = g_t - g_{t-1}      (0 on the first step)
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * dg_t
        n_t = b3 * n_{t-1} + (1 - b3) * |g_t + (1 - b2) * dg_t|^2
        u_t = (m_t / (1 - b1^t) + (1 - b2) * v_t / (1 - b2^t))
              / (sqrt(n_t / (1 - b3^t) + eps_root) + eps)

    b1, b2 and b3 weigh the old averages, as in Optax (the paper's beta_k is 1 - b_k).
    """

    elementwise = True
    fn_name = "adan"

    b1: Any = field(0.98, check=_checks.UNIT)
    b2: Any = field(0.92, check=_checks.UNIT)
    b3: Any = field(0.99, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(1e-8, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = _tree.tree_zeros_like
        n = jax.tree.map(lambda p: _tree.zeros_like(p, _tree.real_dtype(p.dtype)), params)
        return AdanState(jnp.zeros((), jnp.int32), z(params), z(params), n, z(params))

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        first = state.count == 0
        bs = [value_at(b, state.count) for b in (self.b1, self.b2, self.b3)]

        def leaf(g, m, v, n, gp):
            cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype, n.dtype)
            rd = _tree.real_dtype(cd)
            t = count.astype(rd)
            c1, c2, c3 = (_tree.hp(b, rd) for b in bs)
            gc = g.astype(cd)
            dg = jnp.where(first, jnp.zeros_like(gc), gc - gp.astype(cd))
            m_new = c1 * m.astype(cd) + (1 - c1) * gc
            v_new = c2 * v.astype(cd) + (1 - c2) * dg
            n_new = c3 * n.astype(rd) + (1 - c3) * _tree.abs_sq(gc + (1 - c2) * dg)
            num = m_new / _tree.bias_correction(bs[0], t, rd) + (1 - c2) * v_new / (
                _tree.bias_correction(bs[1], t, rd)
            )
            n_hat = n_new / _tree.bias_correction(bs[2], t, rd)
            u = num / (jnp.sqrt(n_hat + _tree.hp(self.eps_root, rd)) + _tree.hp(self.eps, rd))
            return (
                u.astype(g.dtype),
                m_new.astype(m.dtype),
                v_new.astype(v.dtype),
                n_new.astype(n.dtype),
                gc.astype(gp.dtype),
            )

        out = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.m, state.v, state.n, state.g_prev,
            names=("m", "v", "n", "g_prev"),
        )  # fmt: skip
        u, m, v, n, gp = _tree.tree_unzip(updates, out, 5)
        return u, AdanState(count, m, v, n, gp)


def scale_by_adan(
    b1: Any = 0.98, b2: Any = 0.92, b3: Any = 0.99, eps: Any = 1e-8, eps_root: Any = 1e-8
) -> ScaleByAdan:
    """Adan's preconditioner without the learning rate (see ``ScaleByAdan``)."""
    return ScaleByAdan(b1, b2, b3, eps, eps_root)


def adan(
    learning_rate: Any = 1e-3,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    *,
    eps_root: Any = 1e-8,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adan, Optax's semantics and defaults.

    Update rule (t = 1, 2, ...), with the moments of ``ScaleByAdan``::

        u_t = (mhat_t + (1 - b2) * vhat_t) / (sqrt(nhat_t + eps_root) + eps)
        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    Args:
      {learning_rate}
      b1: decay of the gradient average, in [0, 1) (float, array or schedule).
      b2: decay of the gradient-difference average, in [0, 1).
      b3: decay of the second moment, in [0, 1).
      eps: added outside the root, >= 0.
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), multiplied by
        the learning rate, as in ``optax.adan`` (the paper divides by ``1 + lr * wd`` instead).
      eps_root: added inside the root, >= 0 (1e-8, Optax's alias).
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one (Optax's ``mask``). None decays every leaf.

    Conventions: ``adan(lr, b1, b2, b3, eps, wd)`` equals ``optax.adan`` with the same
    arguments.

    References:
      Xie, Zhou, Li, Lin, Yan, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
      Deep Models", IEEE TPAMI 2024. arXiv:2208.06677
    """
    return optimizer_chain(
        "adan",
        scale_by_adan(b1, b2, b3, eps, eps_root),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(adan, **COMMON_DOCS)
