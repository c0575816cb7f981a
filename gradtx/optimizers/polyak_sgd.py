"""Polyak SGD: the stochastic Polyak step size, which reads the loss at each update."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import (
    CountState,
    Transform,
    field,
    pytree_dataclass,
    scale_tree,
    static_field,
    value_at,
)
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


@pytree_dataclass
class ScaleByPolyak(Transform):
    """The Polyak step (reads ``loss=`` from the extra arguments of ``update``)::

        G = ||learning_rate * g||^2 (over every leaf)
        gap = loss - f_min                (max(gap, 0) for variant "sps+")
        gamma = 0 if G + eps <= machine eps, else min(gap / (G + eps), max_learning_rate)
        u = gamma * g

    The norm is taken of the learning-rate-scaled gradient, as in Optax (where the learning
    rate is ``scaling``), so the step after the chain's ``-learning_rate`` matches Optax's.
    """

    elementwise = True
    fn_name = "polyak_sgd"

    learning_rate: Any = 1.0
    max_learning_rate: Any = field(1.0, check=_checks.NONNEGATIVE)
    f_min: Any = 0.0
    eps: Any = field(0.0, check=_checks.NONNEGATIVE)
    variant: str = static_field("sps", choices=("sps", "sps+"))

    def _init(self, params):
        return CountState(jnp.zeros((), jnp.int32))

    def _update(self, updates, state, params, **extra):
        if "loss" not in extra:
            raise TypeError(
                f"{self.where()}: polyak_sgd needs the current loss; call "
                "update(grads, state, params, loss=loss_value)."
            )
        lr = value_at(self.learning_rate, state.count)
        leaves = [x for x in jax.tree.leaves(updates) if x is not None]
        rd = _tree.compute_dtype(*(_tree.real_dtype(x.dtype) for x in leaves))
        sq = _tree.tree_sum_squares(updates).astype(rd) * _tree.hp(lr, rd) ** 2
        gap = jnp.asarray(extra["loss"]).astype(rd) - _tree.hp(self.f_min, rd)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denom = sq + _tree.hp(self.eps, rd)
        safe = jnp.where(denom > 0, denom, jnp.ones((), rd))
        step = jnp.minimum(gap / safe, _tree.hp(self.max_learning_rate, rd))
        step = jnp.where(denom <= jnp.finfo(rd).eps, jnp.zeros((), rd), step)
        return scale_tree(updates, step), CountState(_tree.safe_increment(state.count))


def scale_by_polyak(
    learning_rate: Any = 1.0,
    max_learning_rate: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> ScaleByPolyak:
    """The Polyak step size (see ``ScaleByPolyak``)."""
    return ScaleByPolyak(learning_rate, max_learning_rate, f_min, eps, variant)


def polyak_sgd(
    learning_rate: Any = 1.0,
    max_learning_rate: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
    weight_decay: Any = 0.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SGD with the stochastic Polyak step size (SPS_max), Optax's semantics.

    ``update`` needs the loss at the current params: ``tx.update(grads, state, params,
    loss=loss)``. Update rule (t = 1, 2, ...), with ``s = learning_rate``::

        g_t = grad + weight_decay * p_{t-1}
        gamma_t = min((loss_t - f_min) / (||s * g_t||^2 + eps), max_learning_rate)
        p_t = p_{t-1} - s * gamma_t * g_t

    Args:
      learning_rate: Optax's ``scaling``: a float >= 0, array or schedule (1.0 by default, the
        paper's SPS_max).
      max_learning_rate: upper bound of ``gamma``, >= 0.
      f_min: a lower bound of the loss (0 for interpolating models).
      eps: added to the squared norm, >= 0.
      variant: ``"sps"`` or ``"sps+"`` (the gap clipped at 0).
      {weight_decay}
      {maximize}

    Conventions: ``polyak_sgd(s, M, f_min, eps, variant)`` equals ``optax.polyak_sgd(M,
    scaling=s, f_min, eps, variant)`` driven with ``value=loss``; gradtx names the extra argument
    ``loss``. With ``maximize`` the loss is whatever is passed (negate it yourself).

    References:
      Loizou, Vaswani, Laradji, Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
      Adaptive Learning Rate for Fast Convergence", AISTATS 2021. arXiv:2002.10542
    """
    return optimizer_chain(
        "polyak_sgd",
        scale_by_polyak(learning_rate, max_learning_rate, f_min, eps, variant),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(polyak_sgd, **COMMON_DOCS)
