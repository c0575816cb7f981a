"""Adagrad: Optax's ``adagrad`` and ``scale_by_rss``, and the kernel that torch.optim.Adagrad's
arithmetic (eps outside the root, lr_decay) uses."""

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
    count: jax.Array | None  # updates so far (int32, saturating); None without an lr_decay
    sum_of_squares: Any  # sum of squared gradients


@pytree_dataclass
class ScaleByAdagrad(Elementwise):
    """Adagrad's preconditioner (no learning rate)::

    s_t = s_{t-1} + |g_t|^2                          (s_0 = initial_accumulator_value)
    a_t = sqrt(s_t) + eps                            eps_placement="outside"
    a_t = sqrt(s_t + eps)   (u_t = 0 where s_t == 0)   eps_placement="inside"
    u_t = g_t / a_t / (1 + (t - 1) * lr_decay)   (lr_decay=None: u_t = g_t / a_t, no count)
    """

    state_type = AdagradState
    fn_name = "adagrad"

    lr_decay: Any = field(None, check=_checks.NONNEGATIVE)
    initial_accumulator_value: Any = field(0.0, check=_checks.NONNEGATIVE)
    eps: Any = field(1e-10, check=_checks.NONNEGATIVE)
    eps_placement: str = static_field("outside", choices=("outside", "inside"))
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype)

    def _initial(self, name):
        return self.initial_accumulator_value

    def _reads_count(self):
        return self.lr_decay is not None

    def _scalars(self, count, t, dtype):
        decay = None if self.lr_decay is None else 1 + (t - 1) * _tree.hp(self.lr_decay, dtype)
        return dict(eps=self.eps, decay=decay)

    def _leaf(self, s, g, sum_of_squares):
        sum_of_squares = sum_of_squares + _tree.abs_sq(g)
        if self.eps_placement == "outside":
            u = g / (jnp.sqrt(sum_of_squares) + s.eps.real).astype(g.dtype)
        else:
            r = jax.lax.rsqrt(sum_of_squares + s.eps.real)
            u = jnp.where(sum_of_squares > 0, r, 0.0).astype(g.dtype) * g
        return (u if s.decay is None else u / s.decay), sum_of_squares


def scale_by_adagrad(
    lr_decay: Any = 0.0,
    initial_accumulator_value: Any = 0.0,
    eps: Any = 1e-10,
    eps_placement: str = "outside",
) -> ScaleByAdagrad:
    """Adagrad's preconditioner as torch.optim.Adagrad computes it, without the learning rate
    (see ``ScaleByAdagrad``): eps outside the root by default."""
    return ScaleByAdagrad(lr_decay, initial_accumulator_value, eps, eps_placement)


def scale_by_rss(initial_accumulator_value: Any = 0.1, eps: Any = 1e-7) -> ScaleByAdagrad:
    """Divides the updates by the root of the sum of their squares (Adagrad's preconditioner)::

        s_t = s_{t-1} + |g_t|^2                      (s_0 = initial_accumulator_value)
        u_t = g_t / sqrt(s_t + eps)   where s_t > 0, else 0

    Args:
      initial_accumulator_value: starting value of ``sum_of_squares`` (s_0), >= 0 (default
        0.1).
      eps: added to s_t inside the root, >= 0 (default 1e-7).

    Conventions:
      ``optax.scale_by_rss``: same signature, defaults and numbers. torch.optim.Adagrad's
      denominator is ``sqrt(s_t) + eps`` (``scale_by_adagrad``, eps 1e-10, ``s_0 = 0``).

    References:
      Duchi, Hazan, Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization", JMLR 12, 2011. https://jmlr.org/papers/v12/duchi11a.html
    """
    _checks.check_nonnegative(
        "scale_by_rss", "initial_accumulator_value", initial_accumulator_value
    )
    _checks.check_nonnegative("scale_by_rss", "eps", eps)
    return ScaleByAdagrad(None, initial_accumulator_value, eps, "inside")


def adagrad(
    learning_rate: Any,
    initial_accumulator_value: Any = 0.1,
    eps: Any = 1e-7,
    *,
    lr_decay: Any = None,
    weight_decay: Any = None,
    eps_placement: str = "inside",
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adagrad, Optax's signature, defaults and arithmetic.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        s_t = s_{t-1} + g_t^2                              (s_0 = initial_accumulator_value)
        a_t = sqrt(s_t + eps)   (eps_placement="inside"; 0 updates where s_t == 0)
            = sqrt(s_t) + eps   (eps_placement="outside")
        p_t = p_{t-1} - lr_t / (1 + (t - 1) * lr_decay) * g_t / a_t

    Args:
      {learning_rate}
      initial_accumulator_value: starting value of ``sum_of_squares`` (s_0), >= 0.
      eps: added to the accumulator inside the root (or to its root, see ``eps_placement``),
        >= 0.
      lr_decay: torch's learning-rate decay, >= 0, or None (the default: none, and no step
        count in the state, as in Optax).
      {weight_decay}
      eps_placement: ``"inside"`` (Optax) or ``"outside"`` (torch).
      {maximize}

    Conventions: ``optax.adagrad``: same signature, defaults and numbers; ``lr_decay``,
    ``weight_decay`` (torch's coupled L2 term), ``eps_placement`` and ``maximize`` are gradtx's
    additions. torch.optim.Adagrad is ``adagrad(lr, initial_accumulator_value=0.0, eps=1e-10,
    eps_placement="outside")`` with its ``lr_decay`` and ``weight_decay``
    (``gradtx.torch.adagrad`` takes torch's names and defaults).

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
