"""Schedule-free learning with Optax's contrib signatures.

``ScheduleFree`` (gradtx.optimizers.schedule_free) holds the averaging; this module builds it
around any base optimizer, and builds Optax's SGD and AdamW compositions.
"""

from __future__ import annotations

from typing import Any

from .. import _checks
from .._transform import Transform, as_transform, chain, scale_by_learning_rate
from ..optimizers import schedule_free as _sf
from ..optimizers.adam import scale_by_adam
from ..schedules._warmup import warmup_constant_schedule
from ..transforms._averaging import eval_params
from ._common import decay


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    """The averaged iterate ``x`` to evaluate the model at (Optax's name; the same as
    ``gradtx.eval_params``, which finds the average wherever it sits in the state)."""
    return eval_params(state, params)


def schedule_free(
    base_optimizer: Any,
    learning_rate: Any,
    b1: Any = 0.9,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> Transform:
    """Schedule-free averaging around any base optimizer (Optax's ``contrib.schedule_free``).

    The model's params are ``y``; the base optimizer (momentum switched off, its learning rate
    the same ``learning_rate``) steps ``z``. Update rule (t = 1, 2, ...;
    gamma_t = learning_rate(t - 1), r = weight_lr_power)::

        z_{t+1} = z_t + base_update(g_t at y_t)
        c_{t+1} = gamma_t^r / sum_{i <= t} gamma_i^r
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        y_{t+1} = b1 * x_{t+1} + (1 - b1) * z_{t+1}

    Evaluate at ``schedule_free_eval_params(state, params)`` (``x``).

    Args:
      base_optimizer: the optimizer stepping z (a gradtx transform or an Optax one).
      learning_rate: the rate weighing the average, >= 0 (float, array or schedule): a
        constant, or a warmup to a constant.
      b1: interpolation between x and z, in [0, 1]; default 0.9.
      weight_lr_power: the exponent r, >= 0; default 2.
      state_dtype: dtype of x and z (default: each parameter's dtype).

    Conventions: Optax's ``contrib.schedule_free`` for a constant rate. Two differences for a
    schedule: the weight of step t uses ``learning_rate(t - 1)`` (the count before the update,
    as every gradtx schedule; Optax evaluates it at t), and it is ``gamma_t^r`` where Optax
    takes the running maximum of the rate (the same for a warmup). gradtx keeps x in the state
    instead of recovering it from y and z, which also allows b1 = 0.

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less Scheduled",
      NeurIPS 2024. arXiv:2405.15682
    """
    _checks.check_nonnegative("contrib.schedule_free", "learning_rate", learning_rate)
    return _sf.ScheduleFree(
        base=as_transform(base_optimizer, "contrib.schedule_free", "base_optimizer"),
        learning_rate=learning_rate,
        b1=b1,
        weight_lr_power=weight_lr_power,
        state_dtype=state_dtype,
        fn="contrib.schedule_free",
    )


def _warmup(learning_rate: Any, warmup_steps: Any) -> Any:
    if warmup_steps is None:
        return learning_rate
    return warmup_constant_schedule(0.0, learning_rate, warmup_steps)


def schedule_free_sgd(
    learning_rate: Any = 1.0,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> Transform:
    """``gradtx.schedule_free_sgd`` with Optax's contrib signature (``warmup_steps=None`` is no
    warmup, ``weight_decay=None`` no decay; the formula and references are there)."""
    return _sf.schedule_free_sgd(
        learning_rate,
        b1=b1,
        weight_decay=0.0 if weight_decay is None else weight_decay,
        warmup_steps=0 if warmup_steps is None else warmup_steps,
        weight_lr_power=weight_lr_power,
        state_dtype=state_dtype,
    )


def schedule_free_adamw(
    learning_rate: Any = 0.0025,
    warmup_steps: int | None = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_lr_power: Any = 2.0,
    state_dtype: Any = None,
) -> Transform:
    """Schedule-free AdamW as Optax composes it (Optax's ``contrib.schedule_free_adamw``).

    ``schedule_free`` around AdamW without momentum, with the rate ``gamma_t =
    learning_rate(t - 1)`` (times a linear warmup from 0 over ``warmup_steps``)::

        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2                   (g_t taken at y_t)
        z_{t+1} = z_t - gamma_t * (g_t / (sqrt(v_t / (1 - b2^t)) + eps) + weight_decay * y_t)
        c_{t+1} = gamma_t^r / sum_{i <= t} gamma_i^r
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        y_{t+1} = b1 * x_{t+1} + (1 - b1) * z_{t+1}

    Args:
      learning_rate: peak step size >= 0 (float, array or schedule); default 0.0025.
      warmup_steps: linear warmup length, or None (none); default None.
      b1: interpolation between x and z, in [0, 1]; default 0.9.
      b2: decay of the second moment, in [0, 1); default 0.999.
      eps: added outside the root, >= 0; default 1e-8.
      weight_decay: decoupled decay >= 0, scaled by gamma_t; default 0.
      weight_lr_power: the exponent r, >= 0; default 2.
      state_dtype: dtype of x and z (default: each parameter's dtype).

    Conventions: Optax's composition; see ``schedule_free`` for the schedule's count. The
    top-level ``gradtx.schedule_free_adamw`` is the paper's Algorithm 1 instead: its averaging
    weights include Adam's bias correction ``sqrt(1 - b2^t)``, so early steps weigh less.

    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less Scheduled",
      NeurIPS 2024. arXiv:2405.15682
    """
    fn = "contrib.schedule_free_adamw"
    _checks.check_nonnegative(fn, "learning_rate", learning_rate)
    lr = _warmup(learning_rate, warmup_steps)
    base = chain(scale_by_adam(0.0, b2, eps), decay(fn, weight_decay), scale_by_learning_rate(lr))
    return _sf.ScheduleFree(base=base, learning_rate=lr, b1=b1, weight_lr_power=weight_lr_power,
                            state_dtype=state_dtype, fn=fn)  # fmt: skip
