"""Adam and AdamW (AMSGrad as an option): Optax's signatures and defaults, torch's conventions
as keywords."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import ADAM_DOCS, COMMON_DOCS, fill_doc, optimizer_chain


class AdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # first moment
    nu: Any  # second moment
    nu_max: Any = None  # AMSGrad's running maximum (None without it)


@pytree_dataclass
class ScaleByAdam(Elementwise):
    """Adam's preconditioner (no learning rate), with ``c1_t = 1 - b1^t`` and ``c2_t = 1 - b2^t``::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t;     v_t = b2 * v_{t-1} + (1 - b2) * |g_t|^2
        mhat_t = m_t / c1_t       (nesterov: b1 * m_t / c1_{t+1} + (1 - b1) * g_t / c1_t)
        vhat_t = v_t / c2_t       (amsgrad: max(vhat_{t-1}, v_t / c2_t) with amsgrad_max
                                   "corrected", Optax; max(v_1, ..., v_t) / c2_t with "raw", torch)
        u_t = mhat_t / (sqrt(vhat_t + eps_root) + eps)

    ``bias_correction_mu``/``_nu`` False make ``c1``/``c2`` 1. Complex ``g``: ``nu`` is real
    (``|g|^2``, Optax's ``complex_convention="abs"``) or Adam runs on ``(re, im)`` as two real
    numbers (``"real_view"``, torch). ``fn`` is the name that errors report.
    """

    state_type = AdamState
    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    amsgrad: bool = static_field(False)
    amsgrad_max: str = static_field("raw", choices=("raw", "corrected"))
    mu_dtype: Any = static_field(None)
    nu_dtype: Any = static_field(None)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))
    nesterov: bool = static_field(False)
    bias_correction_mu: bool = static_field(True)
    bias_correction_nu: bool = static_field(True)
    fn: str = static_field("adam", repr=False)

    def _buffers(self):
        return ("mu", "nu", "nu_max") if self.amsgrad else ("mu", "nu")

    def _buffer_dtype(self, name, p):
        real = _tree.real_dtype(p.dtype)
        return (self.mu_dtype or p.dtype) if name == "mu" else (self.nu_dtype or real)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        c = lambda b, k, on: _tree.bias_correction(b, k, dtype) if on else 1.0
        mu, nu = self.bias_correction_mu, self.bias_correction_nu
        c1_next = c(b1, t + 1, mu) if self.nesterov else None  # read by Nesterov's m_hat only
        return dict(b1=b1, b2=b2, c1=c(b1, t, mu), c1_next=c1_next, c2=c(b2, t, nu),
                    eps=self.eps, eps_root=self.eps_root)  # fmt: skip

    def _leaf(self, s, g, mu, nu, nu_max=None):
        mu = s.b1 * mu + (1 - s.b1) * g
        nu = s.b2.real * nu + (1 - s.b2.real) * _tree.abs_sq(g)  # real, also for complex g
        mu_hat = s.b1 * mu / s.c1_next + (1 - s.b1) * g / s.c1 if self.nesterov else mu / s.c1
        nu_hat, corrected = nu / s.c2.real, self.amsgrad_max == "corrected"
        if nu_max is not None:  # AMSGrad: the max of the corrected or of the raw nu
            nu_max = jnp.maximum(nu_max, nu_hat if corrected else nu)
            nu_hat = nu_max if corrected else nu_max / s.c2.real
        u = mu_hat / (jnp.sqrt(nu_hat + s.eps_root.real) + s.eps.real).astype(mu.dtype)
        return (u, mu, nu) if nu_max is None else (u, mu, nu, nu_max)


def scale_by_adam(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
                  mu_dtype: Any = None, *, nesterov: bool = False, amsgrad: bool = False,
                  amsgrad_max: str = "raw", nu_dtype: Any = None,
                  complex_convention: str = "abs") -> ScaleByAdam:  # fmt: skip
    """Adam's preconditioner without the learning rate (``ScaleByAdam``, as Optax's)."""
    return ScaleByAdam(b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype,
                       complex_convention, nesterov, fn="scale_by_adam")  # fmt: skip


def adam(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
         mu_dtype: Any = None, *, nesterov: bool = False, weight_decay: Any = None,
         weight_decay_mask: Any = None, decoupled_weight_decay: bool = False,
         amsgrad: bool = False, amsgrad_max: str = "raw", maximize: bool = False,
         nu_dtype: Any = None, complex_convention: str = "abs"):  # fmt: skip
    """Adam, ``optax.adam``'s arguments, defaults and steps; torch's options as keywords.

    Update rule (t = 1, 2, ...; ``weight_decay`` first adds ``wd * p_{t-1}`` to g_t, torch's L2)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t;     v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)

    Args:
      {adam_args}
      {adam_options}
      {weight_decay}
      {decoupled}
      {maximize}

    Conventions: torch.optim.Adam(lr, (b1, b2), eps, wd, amsgrad) is ``adam(lr, b1, b2, eps,
    weight_decay=wd, amsgrad=amsgrad)``; ``gradtx.torch.adam`` takes torch's names and defaults.{refs}
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype,
                      complex_convention, nesterov)  # fmt: skip
    return optimizer_chain("adam", pre, learning_rate, weight_decay=weight_decay, maximize=maximize,
                           weight_decay_mask=weight_decay_mask,
                           decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip


def adamw(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
          eps_root: Any = 0.0, mu_dtype: Any = None, weight_decay: Any = 1e-4, mask: Any = None,
          *, nesterov: bool = False, amsgrad: bool = False, amsgrad_max: str = "raw",
          maximize: bool = False, nu_dtype: Any = None,
          complex_convention: str = "abs"):  # fmt: skip
    """AdamW: Adam with decoupled weight decay, ``optax.adamw``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), with ``u_t`` the direction of ``adam`` (no L2 term in g_t)::

        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    Args:
      {adam_args}
      {adam_options}
      {decoupled_decay}
      {maximize}

    Conventions: torch.optim.AdamW(lr, (b1, b2), eps, wd) is ``adamw(lr, b1, b2, eps,
    weight_decay=wd)`` (torch's default decay is 1e-2, Optax's 1e-4).{refs}
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype,
                      complex_convention, nesterov, fn="adamw")  # fmt: skip
    return optimizer_chain("adamw", pre, learning_rate, weight_decay=weight_decay,
                           weight_decay_mask=mask, decoupled_weight_decay=True,
                           maximize=maximize)  # fmt: skip


for _f in (adam, adamw):
    fill_doc(_f, **ADAM_DOCS)
    fill_doc(_f, **COMMON_DOCS)
