"""Optimistic gradient descent and optimistic Adam: extrapolate with the previous direction."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks
from .._kernel import Elementwise
from .._transform import Chain, field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain
from .adam import ScaleByAdam


class OptimisticState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    previous_gradient: Any  # the previous gradient


@pytree_dataclass
class ScaleByOptimisticGradient(Elementwise):
    """``u_t = (alpha + beta) * g_t - beta * g_{t-1}`` with ``g_0 = g_1``."""

    state_type = OptimisticState
    fn_name = "optimistic_gradient_descent"

    alpha: Any = field(1.0, check=_checks.NONNEGATIVE)
    beta: Any = field(1.0, check=_checks.NONNEGATIVE)
    fn: str = static_field("optimistic_gradient_descent", repr=False)  # the name errors report

    def _scalars(self, count, t, dtype):
        alpha, beta = value_at(self.alpha, count), value_at(self.beta, count)
        return dict(alpha=alpha, beta=beta, first=count == 0)

    def _leaf(self, s, g, previous_gradient):
        prev = jnp.where(s.first, g, previous_gradient)
        return (s.alpha + s.beta) * g - s.beta * prev, g


def scale_by_optimistic_gradient(alpha: Any = 1.0, beta: Any = 1.0) -> ScaleByOptimisticGradient:
    """The optimistic extrapolation (see ``ScaleByOptimisticGradient``)."""
    return ScaleByOptimisticGradient(alpha, beta, fn="scale_by_optimistic_gradient")


def optimistic_gradient_descent(
    learning_rate: Any,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    maximize: bool = False,
):
    """Optimistic gradient descent, ``optax.optimistic_gradient_descent``'s arguments and steps.

    Update rule (t = 1, 2, ...; ``weight_decay`` first adds ``wd * p_{t-1}`` to g_t, torch's L2)::

        p_t = p_{t-1} - lr * ((alpha + beta) * g_t - beta * g_{t-1})      (g_0 = g_1)

    Args:
      {learning_rate}
      alpha: weight of the current gradient, >= 0 (float, array or schedule).
      beta: weight of the extrapolation, >= 0 (float, array or schedule).
      {weight_decay}
      {maximize}

    Conventions: Optax's, including its first step (the missing previous gradient is the
    current one). torch.optim has no optimistic method.

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


def optimistic_adam(
    learning_rate: Any,
    optimism: Any = None,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    maximize: bool = False,
):
    """Optimistic Adam, ``optax.optimistic_adam``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), with ``a_t`` the direction of ``adam`` (``nesterov`` as there)::

        p_t = p_{t-1} - ((lr + optimism) * a_t - optimism * a_{t-1})      (a_0 = a_1)

    Args:
      {learning_rate} Here it weighs the current Adam direction.
      optimism: weight of the extrapolation, >= 0 (float, array or schedule); None: the
        learning rate.
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0; eps_root: inside it, >= 0.
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      nesterov: Nesterov's look-ahead on the first moment (Optax's default True).
      {maximize}

    Conventions: ``optimistic_adam_v2(lr=1, alpha=lr, beta=optimism)``. Optax deprecates this
    form and refuses schedules here; gradtx accepts them (both weights read the same count).

    References:
      Daskalakis, Ilyas, Syrgkanis, Zeng, "Training GANs with Optimism", ICLR 2018.
      arXiv:1711.00141
    """
    fn = "optimistic_adam"
    _checks.check_nonnegative(fn, "learning_rate", learning_rate)
    _checks.check_nonnegative(fn, "optimism", optimism)
    beta = learning_rate if optimism is None else optimism
    parts = [
        ScaleByAdam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov, fn=fn),
        ScaleByOptimisticGradient(learning_rate, beta, fn=fn),
    ]
    return optimizer_chain(fn, Chain(tuple(parts)), None, maximize=maximize)


def optimistic_adam_v2(
    learning_rate: Any,
    *,
    alpha: Any = 1.0,
    beta: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    nesterov: bool = True,
    maximize: bool = False,
):
    """Optimistic Adam, ``optax.optimistic_adam_v2``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), with ``a_t`` the direction of ``adam`` (``nesterov`` as there)::

        p_t = p_{t-1} - lr * ((alpha + beta) * a_t - beta * a_{t-1})      (a_0 = a_1)

    Args:
      {learning_rate}
      alpha: weight of the current Adam direction, >= 0 (float, array or schedule).
      beta: weight of the extrapolation, >= 0 (float, array or schedule).
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0; eps_root: inside it, >= 0.
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      nesterov: Nesterov's look-ahead on the first moment (Optax's default True).
      {maximize}

    Conventions: Optax's. torch.optim has no optimistic method.

    References:
      Daskalakis, Ilyas, Syrgkanis, Zeng, "Training GANs with Optimism", ICLR 2018.
      arXiv:1711.00141
    """
    fn = "optimistic_adam_v2"
    parts = [
        ScaleByAdam(b1, b2, eps, eps_root, mu_dtype=mu_dtype, nesterov=nesterov, fn=fn),
        ScaleByOptimisticGradient(alpha, beta, fn=fn),
    ]
    return optimizer_chain(fn, Chain(tuple(parts)), learning_rate, maximize=maximize)


for _f in (optimistic_gradient_descent, optimistic_adam, optimistic_adam_v2):
    fill_doc(_f, **COMMON_DOCS)
