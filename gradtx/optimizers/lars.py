"""LARS: coupled decay, a per-layer trust ratio, the learning rate, then heavy-ball momentum."""

from __future__ import annotations

from typing import Any

from .._transform import Chain
from ..transforms._momentum import scale_by_momentum
from ..transforms._shaping import ScaleByTrustRatio
from ._common import COMMON_DOCS, fill_doc, off_at_literal_zero, optimizer_chain


def lars(
    learning_rate: Any,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = True,
    trust_coefficient: Any = 1e-3,
    eps: Any = 0.0,
    trust_ratio_mask: Any = True,
    momentum: Any = 0.9,
    nesterov: bool = False,
    *,
    maximize: bool = False,
):
    """LARS (layer-wise adaptive rate scaling), ``optax.lars``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), per leaf::

        d_t = g_t + weight_decay * p_{t-1}
        r_t = trust_coefficient * ||p_{t-1}|| / (||d_t|| + eps)   (1 when either norm is 0;
                                                                  1 where trust_ratio_mask is False)
        b_t = momentum * b_{t-1} - lr_t * r_t * d_t               (b_0 = 0)
        s_t = -lr_t * r_t * d_t + momentum * b_t   if nesterov else   b_t
        p_t = p_{t-1} + s_t

    Args:
      {learning_rate}
      weight_decay: coefficient >= 0 (float, array or schedule) of ``weight_decay * p`` added to
        the gradient before the trust ratio. A literal 0 (the default) leaves the term out, as
        Optax's program does; ``jnp.array(0.0)`` keeps it, so a sweep that includes 0 compiles
        once.
      weight_decay_mask: True (decay every leaf), a pytree of bools (True = decay that leaf) or
        a function from params to one.
      trust_coefficient: the trust coefficient, >= 0 (1e-3, Optax's).
      eps: added to the update norm in the trust ratio, >= 0.
      trust_ratio_mask: True (rescale every leaf), a pytree of bools (True = rescale that leaf)
        or a function from params to one.
      momentum: heavy-ball momentum in [0, 1] applied *after* the learning rate, as in Optax
        (float, array or schedule).
      nesterov: Nesterov momentum.
      {maximize}

    Conventions: Optax's. The momentum sits after the learning rate, so a learning-rate schedule
    acts on each step before it enters the buffer. torch.optim has no LARS.

    References:
      You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks", 2017.
      arXiv:1708.03888
    """
    every = lambda mask: None if mask is True else mask  # Optax's True: every leaf
    pre = ScaleByTrustRatio(0.0, trust_coefficient, eps, every(trust_ratio_mask), fn="lars")
    base = optimizer_chain(
        "lars",
        pre,
        learning_rate,
        weight_decay=off_at_literal_zero(weight_decay),
        weight_decay_mask=every(weight_decay_mask),
        maximize=maximize,
    )
    return Chain((*base.transforms, scale_by_momentum(momentum, None, nesterov)))


fill_doc(lars, **COMMON_DOCS)
