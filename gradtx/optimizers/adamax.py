"""Adamax and AdamaxW (Adam with the infinity norm): Optax's signatures, torch's L2 as keywords."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdamaxState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # first moment
    nu: Any  # exponentially weighted infinity norm


@pytree_dataclass
class ScaleByAdamax(Elementwise):
    """Adamax's preconditioner (no learning rate)::

    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    u_t = max(b2 * u_{t-1}, |g_t| + eps)
    out = m_t / ((1 - b1^t) * u_t)
    """

    state_type = AdamaxState
    fn_name = "adamax"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))
    fn: str = static_field("adamax", repr=False)  # the public name that errors report

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        return dict(b1=b1, b2=b2, eps=self.eps, bc1=_tree.bias_correction(b1, t, dtype))

    def _leaf(self, s, g, mu, nu):
        mu = s.b1 * mu + (1 - s.b1) * g
        nu = jnp.maximum(s.b2.real * nu, jnp.abs(g) + s.eps.real)
        return mu / (s.bc1.real * nu).astype(mu.dtype), mu, nu


def scale_by_adamax(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8) -> ScaleByAdamax:
    """Adamax's preconditioner without the learning rate (see ``ScaleByAdamax``)."""
    return ScaleByAdamax(b1, b2, eps, fn="scale_by_adamax")


def adamax(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    complex_convention: str = "abs",
):
    """Adamax (Adam with the infinity norm), ``optax.adamax``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...; ``weight_decay`` first adds ``wd * p_{t-1}`` to g_t, torch's L2)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = max(b2 * u_{t-1}, |g_t| + eps)          (eps inside the max)
        p_t = p_{t-1} - lr / (1 - b1^t) * m_t / u_t

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the infinity norm, in [0, 1) (float, array or schedule).
      eps: added to |g| inside the max, >= 0.
      {weight_decay}
      {decoupled} (``adamaxw`` is Optax's name for it)
      {maximize}
      complex_convention: ``"abs"`` (one ``nu`` per complex weight) or ``"real_view"`` (torch:
        ``(re, im)`` as two real numbers).

    Conventions: torch.optim.Adamax(lr, (b1, b2), eps, wd) is ``adamax(lr, b1, b2, eps,
    weight_decay=wd)`` (the same algorithm; torch's default rate is 2e-3);
    ``gradtx.torch.adamax`` takes torch's names and defaults.

    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
      arXiv:1412.6980
    """
    return optimizer_chain(
        "adamax",
        ScaleByAdamax(b1, b2, eps, complex_convention),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


def adamaxw(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    mask: Any = None,
    *,
    maximize: bool = False,
    complex_convention: str = "abs",
):
    """AdamaxW: Adamax with decoupled weight decay, ``optax.adamaxw``'s arguments and steps.

    Update rule (t = 1, 2, ...), with ``m_t`` and ``u_t`` as in ``adamax`` (no L2 term)::

        p_t = p_{t-1} - lr * (m_t / ((1 - b1^t) * u_t) + weight_decay * p_{t-1})

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the infinity norm, in [0, 1) (float, array or schedule).
      eps: added to |g| inside the max, >= 0.
      weight_decay: decoupled decay >= 0 (float, array or schedule), times the current rate.
      mask: a pytree of bools (True = decay that leaf) or a function from params to one; None
        decays every leaf.
      {maximize}
      complex_convention: as in ``adamax``.

    Conventions: torch.optim.Adamax has no decoupled decay; this is ``adamax(...,
    weight_decay=wd, decoupled_weight_decay=True)`` with Optax's names and default decay.

    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
      arXiv:1412.6980
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    return optimizer_chain(
        "adamaxw",
        ScaleByAdamax(b1, b2, eps, complex_convention, fn="adamaxw"),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(adamax, **COMMON_DOCS)
fill_doc(adamaxw, **COMMON_DOCS)
