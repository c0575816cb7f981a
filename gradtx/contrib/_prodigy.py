"""Prodigy with Optax's contrib signature (the optimizer itself is ``gradtx.prodigy``)."""

from __future__ import annotations

from typing import Any

from .._transform import Transform
from ..optimizers import prodigy as _prodigy
from ._dadapt_adamw import _check_betas


def prodigy(
    learning_rate: Any = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    beta3: Any = None,
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    estim_lr_coef: Any = 1.0,
    weight_decay: Any = 0.0,
    safeguard_warmup: bool = False,
) -> Transform:
    """``gradtx.prodigy(..., bias_correction=True)`` with Optax's contrib signature:
    ``betas = (b1, b2)``, ``beta3`` is ``b3``, ``estim_lr0`` is ``d0`` and ``estim_lr_coef``
    is ``d_coef`` (the formula and references are there). One difference from Optax remains:
    ``d * eps`` uses the previous estimate d_{t-1}, the paper's, where Optax uses d_t."""
    _check_betas("contrib.prodigy", betas)
    b1, b2 = betas
    return _prodigy.prodigy(learning_rate, b1, b2, eps, weight_decay, b3=beta3, d0=estim_lr0,
                            d_coef=estim_lr_coef, bias_correction=True,
                            safeguard_warmup=safeguard_warmup)  # fmt: skip
