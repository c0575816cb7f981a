"""Optimistic gradient descent: extrapolates with the previous gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class OptimisticState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    g_prev: Any  # the previous gradient


@pytree_dataclass
class ScaleByOptimisticGradient(Elementwise):
    """``u_t = (alpha + beta) * g_t - beta * g_{t-1}`` with ``g_0 = g_1``."""

    state_type = OptimisticState
    fn_name = "optimistic_gradient_descent"

    alpha: Any = field(1.0, check=_checks.NONNEGATIVE)
    beta: Any = field(1.0, check=_checks.NONNEGATIVE)

    def _scalars(self, count, t, dtype):
        alpha, beta = value_at(self.alpha, count), value_at(self.beta, count)
        return dict(alpha=alpha, beta=beta, first=count == 0)

    def _leaf(self, s, g, g_prev):
        prev = jnp.where(s.first, g, g_prev)
        return (s.alpha + s.beta) * g - s.beta * prev, g


def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> ScaleByOptimisticGradient:
    """The optimistic extrapolation (see ``ScaleByOptimisticGradient``)."""
    return ScaleByOptimisticGradient(alpha, beta)


def optimistic_gradient_descent(
    learning_rate: Any = 1e-3,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    weight_decay: Any = 0.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Optimistic gradient descent, Optax's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        p_t = p_{t-1} - lr * ((alpha + beta) * g_t - beta * g_{t-1})      (g_0 = g_1)

    Args:
      {learning_rate}
      alpha: weight of the current gradient, >= 0 (float, array or schedule).
      beta: weight of the extrapolation, >= 0 (float, array or schedule).
      {weight_decay}
      {maximize}

    Conventions: with weight_decay 0 this is ``optax.optimistic_gradient_descent(lr, alpha,
    beta)``, including its first step (the missing previous gradient is the current one).

    References:
      Mokhtari, Ozdaglar, Pattathil, "A Unified Analysis of Extra-gradient and Optimistic
      Gradient Methods for Saddle Point Problems: Proximal Point Approach", AISTATS 2020.
      arXiv:1901.08511
    """
    return optimizer_chain(
        "optimistic_gradient_descent",
        scale_by_optimistic_gradient(alpha, beta),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(optimistic_gradient_descent, **COMMON_DOCS)
