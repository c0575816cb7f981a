"""Lion: the sign of an interpolated momentum, with decoupled weight decay (Optax's lion)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class LionState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # momentum


@pytree_dataclass
class ScaleByLion(Elementwise):
    """Lion's direction (no learning rate)::

    c_t = b1 * m_{t-1} + (1 - b1) * g_t
    u_t = sign(c_t)          (mode="hard"; "smooth": tanh(smooth_beta * c_t);
                              "refined": c_t where |c_t| < 1, else sign(c_t))
    m_t = b2 * m_{t-1} + (1 - b2) * g_t
    """

    state_type = LionState
    fn_name = "lion"

    b1: Any = field(0.9, check=_checks.CLOSED_UNIT)
    b2: Any = field(0.99, check=_checks.CLOSED_UNIT)
    smooth_beta: Any = 1.0
    mode: str = static_field("hard", choices=("hard", "smooth", "refined"))
    mu_dtype: Any = static_field(None)

    def _buffer_dtype(self, name, p):
        return self.mu_dtype or p.dtype

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        return dict(b1=b1, b2=b2, smooth_beta=self.smooth_beta)

    def _leaf(self, s, g, mu):
        c = s.b1 * mu + (1 - s.b1) * g
        if self.mode == "hard":
            u = _tree.sign(c)
        elif self.mode == "smooth":
            u = jnp.tanh(s.smooth_beta * c)
        else:
            u = jnp.where(jnp.abs(c) < 1, c, _tree.sign(c))
        return u, s.b2 * mu + (1 - s.b2) * g


def scale_by_lion(
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: Any = 1.0,
) -> ScaleByLion:
    """Lion's direction without the learning rate (see ``ScaleByLion``)."""
    return ScaleByLion(b1, b2, smooth_beta, mode, mu_dtype)


def lion(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.99,
    mu_dtype: Any = None,
    weight_decay: Any = 1e-3,
    mask: Any = None,
    *,
    mode: str = "hard",
    smooth_beta: Any = 1.0,
    maximize: bool = False,
):
    """Lion (EvoLved Sign Momentum), ``optax.lion``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...)::

        c_t = b1 * m_{t-1} + (1 - b1) * g_t
        m_t = b2 * m_{t-1} + (1 - b2) * g_t
        p_t = p_{t-1} - lr * (sign(c_t) + weight_decay * p_{t-1})

    Args:
      {learning_rate} Lion wants a rate 3 to 10 times smaller than AdamW's.
      b1: interpolation weight of the update direction, in [0, 1] (float, array or schedule).
      b2: decay of the momentum, in [0, 1] (float, array or schedule).
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), multiplied by
        the learning rate as in ``optax.lion`` and the paper (default 1e-3, Optax's).
      mask: a pytree of bools (True = decay that leaf) or a function from params to one. None
        decays every leaf.
      mode: ``"hard"`` (sign, the paper), ``"smooth"`` (``tanh(smooth_beta * c)``) or
        ``"refined"`` (linear below 1, sign above), Optax's ``scale_by_lion`` modes.
      smooth_beta: sharpness of the ``"smooth"`` mode.
      {maximize}

    Conventions: Optax's (``weight_decay`` is decoupled, the paper's meaning). torch.optim has
    no Lion.

    References:
      Chen, Liang, Huang, Real, Wang, Pham, Dong, Luong, Hsieh, Lu, Le, "Symbolic Discovery of
      Optimization Algorithms", NeurIPS 2023. arXiv:2302.06675
    """
    pre = ScaleByLion(b1, b2, smooth_beta, mode, mu_dtype)
    return optimizer_chain(
        "lion",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(lion, **COMMON_DOCS)
