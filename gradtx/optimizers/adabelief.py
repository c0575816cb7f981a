"""AdaBelief: Adam whose second moment tracks the gradient's deviation from its mean."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdaBeliefState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # first moment
    nu: Any  # EMA of (g - mu)^2, plus eps_root each step


@pytree_dataclass
class ScaleByBelief(Elementwise):
    """AdaBelief's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    s_t = b2 * s_{t-1} + (1 - b2) * |g_t - m_t|^2 + eps_root
    mhat_t = m_t / (1 - b1^t)
           = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g_t / (1 - b1^t)   (nesterov)
    u_t = mhat_t / (sqrt(s_t / (1 - b2^t)) + eps)
    """

    state_type = AdaBeliefState
    fn_name = "adabelief"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-16, check=_checks.NONNEGATIVE)
    eps_root: Any = field(1e-16, check=_checks.NONNEGATIVE)
    nesterov: bool = static_field(False)

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        bc1, bc2 = _tree.bias_correction(b1, t, dtype), _tree.bias_correction(b2, t, dtype)
        bc1_next = _tree.bias_correction(b1, t + 1, dtype) if self.nesterov else None
        return dict(b1=b1, b2=b2, bc1=bc1, bc2=bc2, bc1_next=bc1_next, eps=self.eps,
                    eps_root=self.eps_root)  # fmt: skip

    def _leaf(self, s, g, mu, nu):
        mu = s.b1 * mu + (1 - s.b1) * g
        nu = s.b2.real * nu + (1 - s.b2.real) * _tree.abs_sq(g - mu) + s.eps_root.real
        if self.nesterov:
            m_hat = s.b1 * mu / s.bc1_next + (1 - s.b1) * g / s.bc1
        else:
            m_hat = mu / s.bc1
        return m_hat / (jnp.sqrt(nu / s.bc2.real) + s.eps.real).astype(mu.dtype), mu, nu


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
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    *,
    nesterov: bool = False,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
):
    """AdaBelief, ``optax.adabelief``'s arguments, defaults and steps.

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
      eps_root: added to ``nu`` every step (stored in the state, Optax's convention), >= 0.
      nesterov: Nesterov's correction of the first moment (Optax's ``nesterov``).
      {weight_decay}
      {decoupled}
      {maximize}

    Conventions: Optax's alias has no weight decay; ``weight_decay`` adds torch's coupled L2
    (as ``adam``) and ``decoupled_weight_decay=True`` gives the paper's ``weight_decouple``.
    torch.optim has no AdaBelief.

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
