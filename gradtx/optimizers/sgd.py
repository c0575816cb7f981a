"""Stochastic gradient descent: Optax's signature, torch's dampening and decay as keywords."""

from __future__ import annotations

from typing import Any

from .. import _checks
from .._transform import identity
from ..transforms._momentum import scale_by_momentum
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


def sgd(
    learning_rate: Any,
    momentum: Any = None,
    nesterov: bool = False,
    accumulator_dtype: Any = None,
    *,
    dampening: Any = None,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    momentum_form: str = "heavy_ball",
    maximize: bool = False,
):
    """Stochastic gradient descent, ``optax.sgd``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        b_t = momentum * b_{t-1} + g_t                       (b_0 = 0)
        b_t = momentum * b_{t-1} + (1 - dampening) * g_t     (b_1 = g_1; with a dampening)
        d_t = g_t + momentum * b_t   if nesterov else   b_t
        p_t = p_{t-1} - learning_rate * d_t

    Args:
      {learning_rate}
      momentum: None (no buffer, plain SGD) or a coefficient in [0, 1] (float, array or
        schedule). 0.0 keeps a buffer multiplied by zero.
      nesterov: Nesterov momentum (needs a momentum; torch also requires dampening == 0).
      accumulator_dtype: dtype of the momentum buffer (default: each parameter's dtype).
      dampening: None (Optax's buffer, from zero) or torch's dampening in [0, 1] (float, array
        or schedule): the buffer then starts at the first gradient and, as in torch, is the
        gradient while momentum == 0. Ignored by ``momentum_form="ema"``.
      {weight_decay}
      momentum_form: ``"heavy_ball"`` (Optax's ``trace``, torch's buffer) or ``"ema"``: the
        seed tutorial's ``b = m * b + (1 - m) * g`` from zero, whose first step is
        ``(1 - m) * g`` (torch's ``dampening=m`` differs: its first step is ``g``).
      {maximize}

    Conventions: Optax's defaults (no momentum, no decay). torch.optim.SGD(lr, momentum,
    dampening, wd, nesterov) is ``sgd(lr, momentum, nesterov, dampening=dampening,
    weight_decay=wd)``; ``gradtx.torch.sgd`` takes torch's names and defaults.

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
      Computational Mathematics and Mathematical Physics, 1964. doi:10.1016/0041-5553(64)90137-5
      Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and momentum in deep
      learning", ICML 2013.
    """
    _checks.check_choice("sgd", "momentum_form", momentum_form, ("heavy_ball", "ema"))
    if momentum is None:
        if nesterov:
            raise _checks.HyperparameterError(
                "gradtx.sgd: nesterov=True needs a momentum, got None"
            )
        pre = identity()
    else:
        if nesterov and momentum_form == "heavy_ball" and dampening is not None:
            conc = _checks.concrete_values(dampening)
            if conc is not None and float(conc.max()) != 0.0:
                raise _checks.HyperparameterError(
                    f"gradtx.sgd: nesterov=True needs dampening == 0, got {float(conc.max())}"
                )
        pre = scale_by_momentum(momentum, dampening, nesterov, momentum_form, accumulator_dtype)
    return optimizer_chain(
        "sgd",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(sgd, **COMMON_DOCS)
