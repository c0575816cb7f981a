"""AMSGrad under Optax's names: ``ScaleByAdam`` with the maximum of the corrected ``nu``."""

from __future__ import annotations

from typing import Any

from ._common import ADAM_DOCS, COMMON_DOCS, fill_doc, optimizer_chain
from .adam import ScaleByAdam


def scale_by_amsgrad(b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8, eps_root: Any = 0.0,
                     mu_dtype: Any = None, bias_correction_mu: bool = True,
                     bias_correction_nu: bool = True) -> ScaleByAdam:  # fmt: skip
    """AMSGrad's preconditioner (``ScaleByAdam``, ``amsgrad_max="corrected"``, as Optax's)."""
    return ScaleByAdam(b1, b2, eps, eps_root, True, "corrected", mu_dtype, None, "abs", False,
                       bias_correction_mu, bias_correction_nu, "scale_by_amsgrad")  # fmt: skip


def amsgrad(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
            eps_root: Any = 0.0, mu_dtype: Any = None, bias_correction_mu: bool = True,
            bias_correction_nu: bool = True):  # fmt: skip
    """AMSGrad, ``optax.amsgrad``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), with ``m_t``, ``v_t`` as in ``adam`` and ``vhat_0 = 0``::

        vhat_t = max(vhat_{t-1}, v_t / (1 - b2^t))
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(vhat_t + eps_root) + eps)

    Args:
      {adam_args}
      bias_correction_mu: False drops the division of ``m_t`` by ``1 - b1^t``.
      bias_correction_nu: False drops the division of ``v_t`` by ``1 - b2^t``.

    Conventions: torch's AMSGrad (the max of the uncorrected ``v_t``) is ``adam(lr, amsgrad=True)``;
    ``adam(lr, amsgrad=True, amsgrad_max="corrected")`` is this one with Adam's keywords.{refs}
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, True, "corrected", mu_dtype,
                      bias_correction_mu=bias_correction_mu,
                      bias_correction_nu=bias_correction_nu, fn="amsgrad")  # fmt: skip
    return optimizer_chain("amsgrad", pre, learning_rate)


fill_doc(amsgrad, **ADAM_DOCS)
fill_doc(amsgrad, **COMMON_DOCS)
