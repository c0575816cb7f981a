"""Optimistic gradient descent: extrapolates with the previous gradient."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class OptimisticState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    g_prev: Any  # the previous gradient


@pytree_dataclass
class ScaleByOptimisticGradient(Transform):
    """``u_t = (alpha + beta) * g_t - beta * g_{t-1}`` with ``g_0 = g_1``."""

    elementwise = True
    fn_name = "optimistic_gradient_descent"

    alpha: Any = field(1.0, check=_checks.NONNEGATIVE)
    beta: Any = field(1.0, check=_checks.NONNEGATIVE)

    def _init(self, params):
        return OptimisticState(jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params))

    def _update(self, updates, state, params, **extra):
        alpha = value_at(self.alpha, state.count)
        beta = value_at(self.beta, state.count)
        first = state.count == 0

        def leaf(g, gp):
            cd = _tree.compute_dtype(g.dtype, gp.dtype)
            gc = g.astype(cd)
            prev = jnp.where(first, gc, gp.astype(cd))
            a, b = _tree.hp(alpha, cd), _tree.hp(beta, cd)
            return ((a + b) * gc - b * prev).astype(g.dtype), g.astype(gp.dtype)

        out = _tree.tree_map_with_check(
            self.where(), leaf, updates, state.g_prev, names=("g_prev",)
        )
        u, gp = _tree.tree_unzip(updates, out, 2)
        return u, OptimisticState(_tree.safe_increment(state.count), gp)


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
