"""Yogi: Adam with an additive, sign-controlled second-moment update."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class YogiState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # first moment
    nu: Any  # second moment


@pytree_dataclass
class ScaleByYogi(Elementwise):
    """Yogi's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t                       (m_0 = v_0 = init)
    v_t = v_{t-1} - (1 - b2) * sign(v_{t-1} - g_t^2) * g_t^2
    u_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
    """

    state_type = YogiState
    fn_name = "yogi"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-3, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    initial_accumulator_value: Any = field(1e-6, check=_checks.NONNEGATIVE)

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _initial(self, name):
        return self.initial_accumulator_value

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        bc1, bc2 = _tree.bias_correction(b1, t, dtype), _tree.bias_correction(b2, t, dtype)
        return dict(b1=b1, b2=b2, bc1=bc1, bc2=bc2, eps=self.eps, eps_root=self.eps_root)

    def _leaf(self, s, g, mu, nu):
        mu = s.b1 * mu + (1 - s.b1) * g
        g2 = _tree.abs_sq(g)
        nu = nu - (1 - s.b2.real) * _tree.sign(nu - g2) * g2
        denom = jnp.sqrt(nu / s.bc2.real + s.eps_root.real) + s.eps.real
        return (mu / s.bc1) / denom.astype(mu.dtype), mu, nu


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
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-3,
    *,
    eps_root: Any = 0.0,
    initial_accumulator_value: Any = 1e-6,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
):
    """Yogi, ``optax.yogi``'s arguments, defaults and steps.

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
      eps_root: added inside the root, >= 0.
      initial_accumulator_value: starting value of ``mu`` and ``nu`` (Optax's 1e-6).
      {weight_decay}
      {decoupled}
      {maximize}

    Conventions: Optax's alias has no weight decay; ``weight_decay`` adds torch's coupled L2
    (as ``adam``). torch.optim has no Yogi.

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
