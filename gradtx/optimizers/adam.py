"""Adam and AdamW (with AMSGrad), torch.optim's semantics, Optax's conventions as options."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    v: Any  # second moment
    v_max: Any = None  # running max for AMSGrad (None without it)


@pytree_dataclass
class ScaleByAdam(Elementwise):
    """Adam's preconditioner (no learning rate)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * |g_t|^2
        vbar_t = v_t                                  (Adam)
               = max(vbar_{t-1}, v_t)                 (AMSGrad, amsgrad_max="raw": torch)
               = max(vbar_{t-1}, v_t / (1 - b2^t))    (amsgrad_max="corrected": Optax)
        u_t = (m_t / (1 - b1^t)) / (sqrt(vbar_t / (1 - b2^t) + eps_root) + eps)

    (With ``"corrected"`` the max is already bias-corrected.) Complex parameters: with
    ``complex_convention="abs"`` (Optax) ``v`` is real and accumulates ``|g|^2``; with
    ``"real_view"`` (torch) Adam runs on ``(re, im)`` as two real numbers.
    """

    state_type = AdamState
    fn_name = "adam"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    amsgrad: bool = static_field(False)
    amsgrad_max: str = static_field("raw", choices=("raw", "corrected"))
    mu_dtype: Any = static_field(None)
    nu_dtype: Any = static_field(None)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffers(self):
        return ("m", "v", "v_max") if self.amsgrad else ("m", "v")

    def _buffer_dtype(self, name, p):
        if name == "m":
            return self.mu_dtype or p.dtype
        return self.nu_dtype or _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        bc1, bc2 = _tree.bias_correction(b1, t, dtype), _tree.bias_correction(b2, t, dtype)
        return dict(b1=b1, b2=b2, bc1=bc1, bc2=bc2, eps=self.eps, eps_root=self.eps_root)

    def _leaf(self, s, g, m, v, v_max=None):
        m = s.b1 * m + (1 - s.b1) * g
        v = s.b2.real * v + (1 - s.b2.real) * _tree.abs_sq(g)  # real, also for complex g
        if v_max is None:
            v_hat = v / s.bc2.real
        elif self.amsgrad_max == "corrected":
            v_max = v_hat = jnp.maximum(v_max, v / s.bc2.real)
        else:
            v_max = jnp.maximum(v_max, v)
            v_hat = v_max / s.bc2.real
        u = (m / s.bc1) / (jnp.sqrt(v_hat + s.eps_root.real) + s.eps.real).astype(m.dtype)
        return (u, m, v) if v_max is None else (u, m, v, v_max)


def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    amsgrad: bool = False,
    *,
    amsgrad_max: str = "raw",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
) -> ScaleByAdam:
    """Adam's preconditioner without the learning rate (see ``ScaleByAdam``)."""
    return ScaleByAdam(
        b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype, complex_convention
    )


def adam(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    amsgrad: bool = False,
    *,
    eps_root: Any = 0.0,
    amsgrad_max: str = "raw",
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
):
    """Adam, torch.optim.Adam's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)

    Args:
      {adam_args}
      {decoupled}

    Conventions: with weight_decay 0 this is ``optax.adam(lr, b1, b2, eps)``; Optax's
    ``amsgrad`` is ``adam(..., amsgrad=True, amsgrad_max="corrected")``. AdamW is ``adamw``.

    References:
      {refs}
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype,
                      complex_convention)  # fmt: skip
    return optimizer_chain("adam", pre, learning_rate, weight_decay=weight_decay,
                           weight_decay_mask=weight_decay_mask, maximize=maximize,
                           decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip


def adamw(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-2,
    amsgrad: bool = False,
    *,
    eps_root: Any = 0.0,
    amsgrad_max: str = "raw",
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
):
    """AdamW: Adam with decoupled weight decay, torch.optim.AdamW's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        m_t, v_t and u_t as in adam (no L2 term in the gradient)
        p_t = p_{t-1} * (1 - lr * weight_decay) - lr * u_t

    Args:
      {adam_args}

    Conventions: the decay is multiplied by the current (scheduled) learning rate, as in torch
    and ``optax.adamw``; Optax's default decay is 1e-4 and its ``mask`` is
    ``weight_decay_mask``.

    References:
      {refs}
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    return adam(learning_rate, b1, b2, eps, weight_decay, amsgrad, eps_root=eps_root,
                amsgrad_max=amsgrad_max, decoupled_weight_decay=True, maximize=maximize,
                weight_decay_mask=weight_decay_mask, mu_dtype=mu_dtype, nu_dtype=nu_dtype,
                complex_convention=complex_convention)  # fmt: skip


# Argument text and references adam and adamw share (indented for their Args sections).
_ARGS = """{learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      amsgrad: keep the running maximum of the second moment (AMSGrad).
      eps_root: added inside the square root (Optax's ``eps_root``), >= 0; default 0.
      amsgrad_max: ``"raw"`` (torch: max over ``v``) or ``"corrected"`` (Optax's ``amsgrad``).
      {maximize}
      mu_dtype: dtype of ``m`` (default: each parameter's dtype). Use float32 with bf16 params.
      nu_dtype: dtype of ``v`` (default: each parameter's real dtype).
      complex_convention: ``"abs"`` (Optax: one step size per complex weight) or
        ``"real_view"`` (torch: each of ``(re, im)`` with its own ``v``)."""
_REFS = """Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. arXiv:1412.6980
      Reddi, Kale, Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
      https://openreview.net/forum?id=ryQu7f-RZ"""
for _f in (adam, adamw):
    fill_doc(_f, adam_args=_ARGS, refs=_REFS)
    fill_doc(_f, **COMMON_DOCS)
