"""Polyak SGD: the stochastic Polyak step size, which reads the loss at each update."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._transform import (
    Chain,
    Transform,
    field,
    pytree_dataclass,
    scale_by_learning_rate,
    scale_tree,
    static_field,
)
from ..transforms._scaling import negate
from ..transforms._weight_decay import add_decayed_weights
from ._common import COMMON_DOCS, fill_doc

# Optax's threshold below which the squared norm counts as zero (float64's machine epsilon).
_TINY = float(np.finfo(np.float64).eps)


@pytree_dataclass
class ScaleByPolyak(Transform):
    """The Polyak step (reads the loss, ``value=``, from the extra arguments of ``update``)::

        G = ||u||^2 (over every leaf of the incoming updates)
        gap = value - f_min                (max(gap, 0) for variant "sps+")
        gamma = 0 if G + eps <= 2.2e-16, else min(gap / (G + eps), max_learning_rate)
        u <- gamma * u

    ``fn`` is the public name that errors report (``polyak_sgd`` builds this transform too).
    """

    elementwise = True  # one global norm over every element

    f_min: Any = field(0.0)
    max_learning_rate: Any = field(1.0, check=_checks.NONNEGATIVE)
    eps: Any = field(0.0, check=_checks.NONNEGATIVE)
    variant: str = static_field("sps", choices=("sps", "sps+"))
    fn: str = static_field("scale_by_polyak")

    def _update(self, updates, state, params, **extra):
        # ``value`` is Optax's name; ``loss`` is accepted too, as gradtx's schedules take it.
        value = extra.get("value", extra.get("loss"))
        if value is None:
            raise TypeError(
                f"{self.where()}: gradtx.{self.fn} needs the current loss; call "
                "update(grads, state, params, value=loss_value)."
            )
        leaves = [x for x in jax.tree.leaves(updates) if x is not None]
        rd = _tree.compute_dtype(*(_tree.real_dtype(x.dtype) for x in leaves))
        sq = _tree.tree_sum_squares(updates).astype(rd)
        gap = jnp.asarray(value).astype(rd) - _tree.hp(self.f_min, rd)
        if self.variant == "sps+":
            gap = jnp.maximum(gap, 0)
        denom = sq + _tree.hp(self.eps, rd)
        zero = denom <= _TINY
        step = jnp.minimum(gap / jnp.where(zero, 1, denom), _tree.hp(self.max_learning_rate, rd))
        step = jnp.where(zero, jnp.zeros((), rd), step)
        return scale_tree(updates, step), state


def scale_by_polyak(
    f_min: Any = 0.0,
    max_learning_rate: Any = 1.0,
    eps: Any = 0.0,
    variant: str = "sps",
) -> ScaleByPolyak:
    """Scales the updates by the Polyak step size; ``update`` needs ``value=loss``::

        gap = value - f_min                              (max(gap, 0) for variant "sps+")
        gamma = min(gap / (||u||^2 + eps), max_learning_rate)
        gamma = 0 where ||u||^2 + eps <= 2.2e-16 (float64's machine epsilon)
        u <- gamma * u                                   (||u||: L2 norm over every leaf)

    Args:
      f_min: a lower bound of the loss (0 for interpolating models); float or array.
      max_learning_rate: upper bound of ``gamma``, >= 0.
      eps: added to the squared norm, >= 0.
      variant: ``"sps"`` or ``"sps+"`` (the gap clipped at 0).

    Conventions: ``optax.scale_by_polyak``: same signature, defaults and numbers, and the same
    ``value=`` extra argument (``loss=`` is accepted too). torch.optim has no counterpart.

    References:
      Loizou, Vaswani, Laradji, Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
      Adaptive Learning Rate for Fast Convergence", AISTATS 2021. arXiv:2002.10542
    """
    return ScaleByPolyak(f_min, max_learning_rate, eps, variant)


def polyak_sgd(
    max_learning_rate: Any = 1.0,
    scaling: Any = 1.0,
    f_min: Any = 0.0,
    eps: Any = 0.0,
    variant: str = "sps",
    *,
    weight_decay: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SGD with the stochastic Polyak step size (SPS_max), Optax's signature and arithmetic.

    ``update`` needs the loss at the current params: ``tx.update(grads, state, params,
    value=loss)``. Update rule (t = 1, 2, ..., ``s_t = scaling(t - 1)``)::

        g_t = grad + weight_decay * p_{t-1}
        gamma_t = min((value_t - f_min) / (||s_t * g_t||^2 + eps), max_learning_rate)
        p_t = p_{t-1} - gamma_t * s_t * g_t

    Args:
      max_learning_rate: upper bound of ``gamma``, >= 0.
      scaling: the step's scale, a float >= 0, an array or a schedule (1.0 by default, the
        paper's SPS_max); the norm is taken of the scaled gradient.
      f_min: a lower bound of the loss (0 for interpolating models).
      eps: added to the squared norm, >= 0.
      variant: ``"sps"`` or ``"sps+"`` (the gap clipped at 0).
      {weight_decay}
      {maximize}

    Conventions: ``optax.polyak_sgd``: same signature, defaults, numbers and ``value=`` extra
    argument (``loss=`` is accepted too); ``weight_decay`` (torch's coupled L2 term) and
    ``maximize`` are gradtx's additions. With ``maximize`` the loss is whatever is passed (negate
    it yourself). ``scaling`` is this optimizer's learning rate. torch.optim has no
    counterpart.

    References:
      Loizou, Vaswani, Laradji, Lacoste-Julien, "Stochastic Polyak Step-size for SGD: An
      Adaptive Learning Rate for Fast Convergence", AISTATS 2021. arXiv:2002.10542
    """
    fn = "polyak_sgd"
    _checks.check_nonnegative(fn, "scaling", scaling)
    _checks.check_nonnegative(fn, "weight_decay", weight_decay)
    parts: list[Transform] = []
    if maximize:
        parts.append(negate())
    if weight_decay is not None:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(scale_by_learning_rate(scaling))
    parts.append(ScaleByPolyak(f_min, max_learning_rate, eps, variant, fn=fn))
    return Chain(tuple(parts))


fill_doc(polyak_sgd, **COMMON_DOCS)
