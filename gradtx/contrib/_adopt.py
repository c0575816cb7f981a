"""ADOPT with Optax's contrib signature (the optimizer itself is ``gradtx.adopt``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import _checks
from .._transform import Transform
from ..optimizers import adopt as _adopt


def quarter_power(t: Any) -> Any:
    """``t^(1/4)``: ADOPT's clipping value at step t (the paper's and Optax's default)."""
    return t**0.25


def _check_clip(fn: str, clip_value_fn: Callable[[Any], Any]) -> None:
    if clip_value_fn is not quarter_power:
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: clip_value_fn must be the default t^(1/4) "
            f"(gradtx.contrib.quarter_power), got {clip_value_fn!r}; gradtx's ADOPT clips at "
            "t^(1/4) or not at all (use_clipping=False)"
        )


def scale_by_adopt(
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Any], Any] = quarter_power,
) -> Transform:
    """``gradtx.scale_by_adopt`` with Optax's contrib signature. ``clip_value_fn`` accepts
    only its default, ``t^(1/4)``."""
    _check_clip("contrib.scale_by_adopt", clip_value_fn)
    return _adopt.scale_by_adopt(b1, b2, eps, nesterov=nesterov, use_clipping=use_clipping,
                                 mu_dtype=mu_dtype)  # fmt: skip


def adopt(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    mu_dtype: Any = None,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    clip_value_fn: Callable[[Any], Any] = quarter_power,
) -> Transform:
    """``gradtx.adopt`` with Optax's contrib signature (no weight decay, as in Optax; the
    formula and references are there). ``clip_value_fn`` accepts only its default,
    ``t^(1/4)``."""
    _check_clip("contrib.adopt", clip_value_fn)
    return _adopt.adopt(learning_rate, b1, b2, eps, nesterov=nesterov,
                        use_clipping=use_clipping, mu_dtype=mu_dtype)  # fmt: skip
