"""LARS: coupled decay, a per-layer trust ratio, the learning rate, then heavy-ball momentum."""

from __future__ import annotations

from typing import Any

from .._transform import Chain
from ..transforms._momentum import scale_by_momentum
from ..transforms._shaping import ScaleByTrustRatio
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


def lars(
    learning_rate: Any = 0.1,
    weight_decay: Any = 0.0,
    trust_coefficient: Any = 1e-3,
    eps: Any = 0.0,
    momentum: Any = 0.9,
    nesterov: bool = False,
    *,
    trust_ratio_mask: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """LARS (layer-wise adaptive rate scaling), Optax's semantics and defaults.

    Update rule (t = 1, 2, ...), per leaf::

        d_t = g_t + weight_decay * p_{t-1}
        r_t = trust_coefficient * ||p_{t-1}|| / (||d_t|| + eps)   (1 when either norm is 0;
                                                                  1 where trust_ratio_mask is False)
        b_t = momentum * b_{t-1} - lr_t * r_t * d_t               (b_0 = 0)
        s_t = -lr_t * r_t * d_t + momentum * b_t   if nesterov else   b_t
        p_t = p_{t-1} + s_t

    Args:
      {learning_rate}
      {weight_decay}
      trust_coefficient: the trust coefficient, >= 0 (1e-3, Optax's).
      eps: added to the update norm in the trust ratio, >= 0.
      momentum: heavy-ball momentum in [0, 1] applied *after* the learning rate, as in Optax
        (float, array or schedule).
      nesterov: Nesterov momentum.
      trust_ratio_mask: a pytree of bools (True = rescale that leaf) or a function from params to
        one. None rescales every leaf (Optax's ``True``).
      {maximize}

    Conventions: ``lars(lr, wd, tc, eps, momentum, nesterov)`` equals ``optax.lars`` with the
    same arguments (``weight_decay_mask`` and ``trust_ratio_mask`` None for Optax's True). The
    momentum sits after the learning rate, so a learning-rate schedule acts on each step before
    it enters the buffer.

    References:
      You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks", 2017.
      arXiv:1708.03888
    """
    pre = ScaleByTrustRatio(0.0, trust_coefficient, eps, trust_ratio_mask, fn="lars")
    base = optimizer_chain(
        "lars",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )
    return Chain((*base.transforms, scale_by_momentum(momentum, 0.0, nesterov)))


fill_doc(lars, **COMMON_DOCS)
