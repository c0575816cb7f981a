"""Adan: adaptive Nesterov momentum with a gradient-difference moment."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, off_at_literal_zero, optimizer_chain


class AdanState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # EMA of gradients
    v: Any  # EMA of gradient differences
    n: Any  # EMA of squared corrected gradients
    g: Any  # the previous gradient


@pytree_dataclass
class ScaleByAdan(Elementwise):
    """Adan's preconditioner (no learning rate)::

        dg_t = g_t - g_{t-1}      (0 on the first step)
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * dg_t
        n_t = b3 * n_{t-1} + (1 - b3) * |g_t + (1 - b2) * dg_t|^2
        u_t = (m_t / (1 - b1^t) + (1 - b2) * v_t / (1 - b2^t))
              / (sqrt(n_t / (1 - b3^t) + eps_root) + eps)

    b1, b2 and b3 weigh the old averages, as in Optax (the paper's beta_k is 1 - b_k).
    """

    state_type = AdanState
    fn_name = "adan"

    b1: Any = field(0.98, check=_checks.UNIT)
    b2: Any = field(0.92, check=_checks.UNIT)
    b3: Any = field(0.99, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(1e-8, check=_checks.NONNEGATIVE)

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype) if name == "n" else p.dtype

    def _scalars(self, count, t, dtype):
        b1, b2, b3 = (value_at(b, count) for b in (self.b1, self.b2, self.b3))
        bc1, bc2, bc3 = (_tree.bias_correction(b, t, dtype) for b in (b1, b2, b3))
        return dict(b1=b1, b2=b2, b3=b3, bc1=bc1, bc2=bc2, bc3=bc3, eps=self.eps,
                    eps_root=self.eps_root, first=count == 0)  # fmt: skip

    def _leaf(self, s, g_t, m, v, n, g):  # g_t: this step's gradient; g: the previous one
        dg = jnp.where(s.first, jnp.zeros_like(g_t), g_t - g)
        m = s.b1 * m + (1 - s.b1) * g_t
        v = s.b2 * v + (1 - s.b2) * dg
        n = s.b3.real * n + (1 - s.b3.real) * _tree.abs_sq(g_t + (1 - s.b2) * dg)
        num = m / s.bc1 + (1 - s.b2) * v / s.bc2
        den = jnp.sqrt(n / s.bc3.real + s.eps_root.real) + s.eps.real
        return num / den.astype(num.dtype), m, v, n, g_t


def scale_by_adan(
    b1: Any = 0.98, b2: Any = 0.92, b3: Any = 0.99, eps: Any = 1e-8, eps_root: Any = 0.0
) -> ScaleByAdan:
    """Adan's preconditioner without the learning rate (``ScaleByAdan``; Optax's defaults)."""
    return ScaleByAdan(b1, b2, b3, eps, eps_root)


def adan(
    learning_rate: Any,
    b1: Any = 0.98,
    b2: Any = 0.92,
    b3: Any = 0.99,
    eps: Any = 1e-8,
    eps_root: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
    *,
    maximize: bool = False,
):
    """Adan, ``optax.adan``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), with the moments of ``ScaleByAdan``::

        u_t = (mhat_t + (1 - b2) * vhat_t) / (sqrt(nhat_t + eps_root) + eps)
        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    Args:
      {learning_rate}
      b1: decay of the gradient average, in [0, 1) (float, array or schedule).
      b2: decay of the gradient-difference average, in [0, 1).
      b3: decay of the second moment, in [0, 1).
      eps: added outside the root, >= 0.
      eps_root: added inside the root, >= 0 (1e-8, Optax's alias; ``scale_by_adan``'s is 0).
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), multiplied by
        the learning rate, as in ``optax.adan`` (the paper divides by ``1 + lr * wd`` instead).
        A literal 0 (the default) leaves the term out, as Optax's
        program does; ``jnp.array(0.0)`` keeps it, so a sweep that includes 0 compiles once.
      mask: a pytree of bools (True = decay that leaf) or a function from params to one. None
        decays every leaf.
      {maximize}

    Conventions: Optax's. torch.optim has no Adan.

    References:
      Xie, Zhou, Li, Lin, Yan, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing
      Deep Models", IEEE TPAMI 2024. arXiv:2208.06677
    """
    return optimizer_chain(
        "adan",
        ScaleByAdan(b1, b2, b3, eps, eps_root),
        learning_rate,
        weight_decay=off_at_literal_zero(weight_decay),
        weight_decay_mask=mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(adan, **COMMON_DOCS)
