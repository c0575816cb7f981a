"""LAMB: Adam's direction plus decoupled decay, rescaled per leaf by a trust ratio."""

from __future__ import annotations

from typing import Any

from .. import _checks
from .._transform import Chain, Transform
from ..transforms._shaping import ScaleByTrustRatio
from ..transforms._weight_decay import add_decayed_weights
from ._common import COMMON_DOCS, fill_doc, off_at_literal_zero, optimizer_chain
from .adam import ScaleByAdam


def lamb(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    maximize: bool = False,
):
    """LAMB (layer-wise adaptive moments), ``optax.lamb``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), per leaf::

        m_t, v_t as in adam; a_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
        d_t = a_t + weight_decay * p_{t-1}
        r_t = ||p_{t-1}|| / ||d_t||      (1 when either norm is 0)
        p_t = p_{t-1} - lr * r_t * d_t

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the root, >= 0 (1e-6, Optax's and the paper's).
      eps_root: added inside the root, >= 0.
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), added to the
        Adam direction *before* the trust ratio, as in ``optax.lamb`` and the paper.
        A literal 0 (the default) leaves the term out, as Optax's
        program does; ``jnp.array(0.0)`` keeps it, so a sweep that includes 0 compiles once.
      mask: a pytree of bools (True = decay that leaf) or a function from params to one. None
        decays every leaf.
      {maximize}

    Conventions: Optax's. torch.optim has no LAMB.

    References:
      You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer, Hsieh, "Large Batch
      Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020. arXiv:1904.00962
    """
    _checks.check_nonnegative("lamb", "weight_decay", weight_decay)
    parts: list[Transform] = [ScaleByAdam(b1, b2, eps, eps_root, fn="lamb")]
    if off_at_literal_zero(weight_decay) is not None:
        parts.append(add_decayed_weights(weight_decay, mask))
    parts.append(ScaleByTrustRatio(fn="lamb"))
    return optimizer_chain("lamb", Chain(tuple(parts)), learning_rate, maximize=maximize)


fill_doc(lamb, **COMMON_DOCS)
