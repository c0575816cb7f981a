"""The chain of an optimizer whose preconditioner uses the learning rate itself."""

from __future__ import annotations

from typing import Any

from .._checks import check_nonnegative
from .._transform import Chain, Transform
from ..transforms._scaling import negate
from ._common import optimizer_chain


def lr_inside_chain(fn: str, preconditioner: Transform, learning_rate: Any, **kwargs: Any) -> Chain:
    """``optimizer_chain`` whose last step only flips the sign.

    For optimizers whose step size is part of their state or formula (Rprop's per-element step
    sizes, ASGD's decaying eta), the preconditioner holds ``learning_rate`` and emits the whole
    step; ``maximize``, ``weight_decay`` and ``weight_decay_mask`` mean what they mean everywhere.
    """
    check_nonnegative(fn, "learning_rate", learning_rate)
    chain = optimizer_chain(fn, preconditioner, 1.0, **kwargs)
    return Chain((*chain.transforms[:-1], negate()))
