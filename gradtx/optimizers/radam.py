"""RAdam (rectified Adam), torch.optim.RAdam's semantics, Optax's threshold and eps as options."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class RAdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    v: Any  # second moment


@pytree_dataclass
class ScaleByRAdam(Elementwise):
    """RAdam's preconditioner (no learning rate)::

    m_t, v_t   as in Adam;  bc1 = 1 - b1^t;  bc2 = 1 - b2^t
    rho_inf    = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / bc2
    r_t        = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    rectified  = rho_t > threshold   (rho_t >= threshold with threshold_inclusive=True)
    out = r_t * (m_t / bc1) * sqrt(bc2) / (sqrt(v_t) + eps)    (rectified, eps_placement="raw")
        = r_t * (m_t / bc1) / (sqrt(v_t / bc2) + eps)           (rectified, "corrected")
        = m_t / bc1                                             (otherwise)
    """

    state_type = RAdamState
    fn_name = "radam"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    threshold: Any = 5.0
    threshold_inclusive: bool = static_field(False)
    eps_placement: str = static_field("raw", choices=("raw", "corrected"))
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "m" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), _tree.hp(self.b2, dtype)
        bc1, bc2 = _tree.bias_correction(b1, t, dtype), _tree.bias_correction(self.b2, t, dtype)
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        rho = rho_inf - 2.0 * t * b2**t / bc2
        thr = _tree.hp(self.threshold, dtype)
        on = rho >= thr if self.threshold_inclusive else rho > thr
        rho = jnp.where(on, rho, rho_inf)  # r only where it is defined: finite gradients
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        return dict(b1=b1, b2=b2, bc1=bc1, bc2=bc2, sqrt_bc2=jnp.sqrt(bc2), r=r, on=on,
                    eps=self.eps)  # fmt: skip

    def _leaf(self, s, g, m, v):
        m = s.b1 * m + (1 - s.b1) * g
        v = s.b2.real * v + (1 - s.b2.real) * _tree.abs_sq(g)
        m_hat = m / s.bc1
        if self.eps_placement == "raw":
            adaptive = s.r * m_hat * s.sqrt_bc2 / (jnp.sqrt(v) + s.eps.real).astype(m.dtype)
        else:
            adaptive = s.r * m_hat / (jnp.sqrt(v / s.bc2.real) + s.eps.real).astype(m.dtype)
        return jnp.where(s.on, adaptive, m_hat), m, v


def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    threshold: Any = 5.0,
    threshold_inclusive: bool = False,
    eps_placement: str = "raw",
) -> ScaleByRAdam:
    """RAdam's preconditioner without the learning rate (see ``ScaleByRAdam``)."""
    return ScaleByRAdam(b1, b2, eps, threshold, threshold_inclusive, eps_placement)


def radam(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    decoupled_weight_decay: bool = False,
    *,
    threshold: Any = 5.0,
    threshold_inclusive: bool = False,
    eps_placement: str = "raw",
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """RAdam, torch.optim.RAdam's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t     = grad + weight_decay * p_{t-1}
        m_t     = b1 * m_{t-1} + (1 - b1) * g_t;   v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p_t = p_{t-1} - lr * r_t * m_t / (1 - b1^t) * sqrt(1 - b2^t) / (sqrt(v_t) + eps)
        else:
            p_t = p_{t-1} - lr * m_t / (1 - b1^t)

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (a float or array; not a schedule, since
        rho_inf depends on it).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      {decoupled}
      threshold: the rectification threshold on rho_t (torch and Optax: 5).
      threshold_inclusive: False rectifies when ``rho_t > threshold`` (torch); True when
        ``rho_t >= threshold`` (Optax).
      eps_placement: ``"raw"`` adds eps to ``sqrt(v_t)`` before the bias correction (torch, an
        effective eps of ``eps / sqrt(1 - b2^t)``); ``"corrected"`` adds it to
        ``sqrt(v_t / (1 - b2^t))`` (Optax).
      {maximize}

    Conventions: ``optax.radam(lr, b1, b2, eps, threshold=th)`` is ``radam(lr, b1, b2, eps,
    threshold=th, threshold_inclusive=True, eps_placement="corrected")``.

    References:
      Liu, Jiang, He, Chen, Liu, Gao, Han, "On the Variance of the Adaptive Learning Rate and
      Beyond", ICLR 2020. arXiv:1908.03265
    """
    pre = scale_by_radam(b1, b2, eps, threshold, threshold_inclusive, eps_placement)
    return optimizer_chain(
        "radam",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(radam, **COMMON_DOCS)
