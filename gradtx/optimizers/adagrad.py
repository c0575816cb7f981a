"""Adagrad, torch.optim's semantics (eps outside the root), Optax's as an option."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field
from ._common import (
    COMMON_DOCS,
    fill_doc,
    optimizer_chain,
)


class AdagradState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    s: Any  # sum of squared gradients


@pytree_dataclass
class ScaleByAdagrad(Elementwise):
    """Adagrad's preconditioner (no learning rate)::

    s_t = s_{t-1} + |g_t|^2                          (s_0 = initial_accumulator_value)
    u_t = g_t / (sqrt(s_t) + eps) / (1 + (t - 1) * lr_decay)      eps_placement="outside"
    u_t = g_t / sqrt(s_t + eps) where s_t > 0, else 0            eps_placement="inside"
    """

    state_type = AdagradState
    fn_name = "adagrad"

    lr_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    initial_accumulator_value: Any = field(0.0, check=_checks.NONNEGATIVE)
    eps: Any = field(1e-10, check=_checks.NONNEGATIVE)
    eps_placement: str = static_field("outside", choices=("outside", "inside"))
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype)

    def _initial(self, name):
        return self.initial_accumulator_value

    def _scalars(self, count, t, dtype):
        decay = 1 + (t - 1) * _tree.hp(self.lr_decay, dtype)
        return dict(eps=self.eps, decay=decay)

    def _leaf(self, c, g, s):  # c: this step's scalars (``s`` is the accumulator here)
        s = s + _tree.abs_sq(g)
        if self.eps_placement == "outside":
            u = g / (jnp.sqrt(s) + c.eps.real).astype(g.dtype)
        else:
            u = jnp.where(s > 0, jax.lax.rsqrt(s + c.eps.real), 0.0).astype(g.dtype) * g
        return u / c.decay, s


def scale_by_adagrad(
    lr_decay: Any = 0.0,
    initial_accumulator_value: Any = 0.0,
    eps: Any = 1e-10,
    eps_placement: str = "outside",
) -> ScaleByAdagrad:
    """Adagrad's preconditioner without the learning rate (see ``ScaleByAdagrad``)."""
    return ScaleByAdagrad(lr_decay, initial_accumulator_value, eps, eps_placement)


def adagrad(
    learning_rate: Any = 1e-2,
    lr_decay: Any = 0.0,
    weight_decay: Any = 0.0,
    initial_accumulator_value: Any = 0.0,
    eps: Any = 1e-10,
    *,
    eps_placement: str = "outside",
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adagrad, torch.optim.Adagrad's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        s_t = s_{t-1} + g_t^2                              (s_0 = initial_accumulator_value)
        p_t = p_{t-1} - lr / (1 + (t - 1) * lr_decay) * g_t / (sqrt(s_t) + eps)

    Args:
      {learning_rate}
      lr_decay: torch's learning-rate decay, >= 0.
      {weight_decay}
      initial_accumulator_value: starting value of ``s``, >= 0 (torch 0; Optax 0.1).
      eps: added outside the root by default (torch, 1e-10).
      eps_placement: ``"outside"`` (torch, the seed tutorial) or ``"inside"`` (Optax:
        ``g * rsqrt(s + eps)``, 0 where ``s == 0``).
      {maximize}

    Conventions: ``optax.adagrad(lr)`` is
    ``adagrad(lr, initial_accumulator_value=0.1, eps=1e-7, eps_placement="inside")``.

    References:
      Duchi, Hazan, Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization", JMLR 12, 2011. https://jmlr.org/papers/v12/duchi11a.html
    """
    pre = scale_by_adagrad(lr_decay, initial_accumulator_value, eps, eps_placement)
    return optimizer_chain(
        "adagrad",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(adagrad, **COMMON_DOCS)
