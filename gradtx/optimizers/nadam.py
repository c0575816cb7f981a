"""NAdam (Adam with Nesterov momentum), torch's momentum schedule or Optax's constant momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class NAdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu_product: jax.Array  # prod_{i<=t} mu_i (scalar)
    m: Any  # first moment
    v: Any  # second moment


@pytree_dataclass
class ScaleByNAdam(Transform):
    """NAdam's preconditioner (no learning rate)::

    mu_t      = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))    (convention="torch")
              = b1                                             (convention="optax")
    Pi_t      = Pi_{t-1} * mu_t                                (Pi_0 = 1)
    m_t       = b1 * m_{t-1} + (1 - b1) * g_t
    v_t       = b2 * v_{t-1} + (1 - b2) * |g_t|^2
    d_t       = sqrt(v_t / (1 - b2^t)) + eps
    out       = (1 - mu_t) / (1 - Pi_t) * g_t / d_t
                + mu_{t+1} / (1 - Pi_t * mu_{t+1}) * m_t / d_t
    """

    elementwise = True
    fn_name = "nadam"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    momentum_decay: Any = field(4e-3, check=_checks.NONNEGATIVE)
    convention: str = static_field("torch", choices=("torch", "optax"))

    def _init(self, params):
        m = _tree.tree_zeros_like(params)
        v = jax.tree.map(lambda p: _tree.zeros_like(p, _tree.real_dtype(p.dtype)), params)
        return NAdamState(jnp.zeros((), jnp.int32), jnp.ones((), _tree.float_dtype()), m, v)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        b1 = value_at(self.b1, state.count)
        b2 = value_at(self.b2, state.count)
        sd = state.mu_product.dtype
        t = count.astype(sd)
        b1s = jnp.asarray(b1, sd)
        if self.convention == "torch":
            psi = jnp.asarray(self.momentum_decay, sd)
            mu_t = b1s * (1.0 - 0.5 * jnp.asarray(0.96, sd) ** (t * psi))
            mu_next = b1s * (1.0 - 0.5 * jnp.asarray(0.96, sd) ** ((t + 1.0) * psi))
            prod = state.mu_product * mu_t
            prod_next = prod * mu_next
        else:
            # Constant momentum: the products are powers of b1 (Optax's bias corrections).
            mu_t = mu_next = b1s
            prod = b1s**t
            prod_next = b1s ** (t + 1.0)

        def leaf(g, m, v):
            cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype, sd)
            rd = _tree.real_dtype(cd)
            gc = g.astype(cd)
            b1_, b2_ = _tree.hp(b1, rd), _tree.hp(b2, rd)
            m_new = b1_ * m.astype(cd) + (1 - b1_) * gc
            v_new = b2_ * v.astype(rd) + (1 - b2_) * _tree.abs_sq(gc)
            bc2 = _tree.bias_correction(b2, count.astype(rd), rd)
            d = jnp.sqrt(v_new / bc2) + _tree.hp(self.eps, rd)
            mt, mn = mu_t.astype(rd), mu_next.astype(rd)
            pr, prn = prod.astype(rd), prod_next.astype(rd)
            out = (1 - mt) / (1 - pr) * gc / d + mn / (1 - prn) * m_new / d
            return out.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype)

        res = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.m, state.v, names=("m", "v")
        )
        out, m, v = _tree.tree_unzip(updates, res, 3)
        return out, NAdamState(count, prod.astype(sd), m, v)


def scale_by_nadam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    momentum_decay: Any = 4e-3,
    convention: str = "torch",
) -> ScaleByNAdam:
    """NAdam's preconditioner without the learning rate (see ``ScaleByNAdam``)."""
    return ScaleByNAdam(b1, b2, eps, momentum_decay, convention)


def nadam(
    learning_rate: Any = 2e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum_decay: Any = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    convention: str = "torch",
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """NAdam, torch.optim.NAdam's semantics and defaults.

    Update rule (t = 1, 2, ...; psi = momentum_decay)::

        g_t  = grad + weight_decay * p_{t-1}
        mu_t = b1 * (1 - 0.5 * 0.96^(t * psi));   Pi_t = mu_1 * ... * mu_t
        m_t  = b1 * m_{t-1} + (1 - b1) * g_t
        v_t  = b2 * v_{t-1} + (1 - b2) * g_t^2
        d_t  = sqrt(v_t / (1 - b2^t)) + eps
        p_t  = p_{t-1} - lr * (1 - mu_t) / (1 - Pi_t) * g_t / d_t
                       - lr * mu_{t+1} / (1 - Pi_t * mu_{t+1}) * m_t / d_t

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      momentum_decay: psi >= 0, the speed of the momentum warm-up (torch 4e-3).
      {decoupled} torch's ``NAdam(decoupled_weight_decay=True)`` (NAdamW).
      convention: ``"torch"`` (Dozat's momentum schedule ``mu_t`` above) or ``"optax"``: a
        constant ``mu_t = b1`` (``optax.nadam``, i.e. ``optax.adam(nesterov=True)``), which is
        also the limit ``momentum_decay -> inf``. ``momentum_decay`` is ignored then.
      {maximize}

    Conventions: ``optax.nadam(lr, b1, b2, eps)`` is ``nadam(lr, b1, b2, eps,
    convention="optax")``; ``optax.nadamw(..., weight_decay=wd)`` adds
    ``weight_decay=wd, decoupled_weight_decay=True``.

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """
    return optimizer_chain(
        "nadam",
        scale_by_nadam(b1, b2, eps, momentum_decay, convention),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(nadam, **COMMON_DOCS)
