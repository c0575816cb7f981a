"""SM3: memory-efficient Adagrad with one accumulator per tensor axis, plus momentum."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class SM3State(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # per leaf, a tuple of accumulators: one per axis (a single full one below 2-D)
    nu: Any  # momentum


def _axis_shape(shape: tuple[int, ...], axis: int) -> list[int]:
    return [n if i == axis else 1 for i, n in enumerate(shape)]


@pytree_dataclass
class ScaleBySM3(PerLeaf):
    """SM3's preconditioner (no learning rate), per leaf of rank r >= 2::

        acc_t = c * g_t^2 + b2 * min_i mu_{t-1}^(i)   (mu^(i) broadcast along axis i;
                                                       c = 1 if b2 == 1 else 1 - b2)
        mu_t^(i) = max of acc_t over every axis but i
        a_t = g_t * r_t,   r_t = 1 / sqrt(acc_t + eps) where acc_t > 0, else 0
        nu_t = b1 * nu_{t-1} + (1 - b1) * a_t;   u_t = nu_t

    Leaves below 2-D keep one full accumulator (``mu_t = acc_t``: Adagrad).
    """

    fn_name = "sm3"
    state_type = SM3State
    leaf_statistic = "per-axis accumulators"

    b1: Any = 0.9
    b2: Any = field(1.0, check=_checks.CLOSED_UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)

    def __check_init__(self):
        # Not declared on the field: the public argument is ``sm3``'s ``momentum``.
        _checks.check_unit_interval("sm3", "momentum", self.b1)

    def _checked(self):
        return ("nu",)  # mu holds one accumulator per axis

    def _init_leaf(self, p):
        rd = _tree.real_dtype(p.dtype)
        if p.ndim < 2:
            mu = (_tree.zeros_like(p, rd),)
        else:
            mu = tuple(jnp.zeros((n,), rd) for n in p.shape)
        return mu, _tree.zeros_like(p)

    def _scalars(self, count, t):
        return {"b1": value_at(self.b1, count)}

    def _leaf(self, s, g, mu, nu):
        cd = _tree.compute_dtype(g.dtype, nu.dtype)
        rd = _tree.real_dtype(cd)
        gc = g.astype(cd)
        b2 = _tree.hp(self.b2, rd)
        c = jnp.where(b2 == 1, jnp.ones((), rd), 1 - b2)
        if g.ndim < 2:
            prev = mu[0].astype(rd)
        else:
            prev = functools.reduce(
                jnp.minimum,
                [a.astype(rd).reshape(_axis_shape(g.shape, i)) for i, a in enumerate(mu)],
            )
        acc = c * _tree.abs_sq(gc) + b2 * prev
        # The gradient multiplies the selected factor, so a NaN gradient gives a NaN update
        # (as in Optax) instead of hiding behind the acc > 0 test.
        a = gc * jnp.where(acc > 0, jax.lax.rsqrt(acc + _tree.hp(self.eps, rd)), 0)
        c1 = _tree.hp(s.b1, rd)
        nu_new = c1 * nu.astype(cd) + (1 - c1) * a
        if g.ndim < 2:
            mu_new = (acc.astype(mu[0].dtype),)
        else:
            axes = range(g.ndim)
            mu_new = tuple(
                jnp.max(acc, axis=tuple(j for j in axes if j != i)).astype(mu[i].dtype)
                for i in axes
            )
        return nu_new.astype(g.dtype), mu_new, nu_new.astype(nu.dtype)


def scale_by_sm3(b1: Any = 0.9, b2: Any = 1.0, eps: Any = 1e-8) -> ScaleBySM3:
    """SM3's preconditioner without the learning rate (see ``ScaleBySM3``)."""
    return ScaleBySM3(b1, b2, eps)


def sm3(
    learning_rate: Any,
    momentum: Any = 0.9,
    *,
    weight_decay: Any = None,
    b2: Any = 1.0,
    eps: Any = 1e-8,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SM3 (square-root of minima of sums of maxima), Optax's semantics and defaults.

    Update rule (t = 1, 2, ...), per leaf with the accumulators of ``ScaleBySM3``::

        g_t = grad + weight_decay * p_{t-1}
        acc_t = g_t^2 + min_i mu_{t-1}^(i);   mu_t^(i) = max over the other axes of acc_t
        nu_t = momentum * nu_{t-1} + (1 - momentum) * g_t / sqrt(acc_t + eps)
        p_t = p_{t-1} - lr * nu_t

    Args:
      {learning_rate}
      momentum: decay of the momentum (an EMA, no bias correction), in [0, 1) (float, array or
        schedule).
      {weight_decay}
      b2: decay of the accumulators in [0, 1]; 1 (the paper, Optax's alias) sums them.
      eps: added inside the root, >= 0.
      {maximize}

    Conventions: ``optax.sm3``: same signature, defaults and numbers; ``weight_decay`` (torch's
    coupled L2 term), ``b2``, ``eps`` and ``maximize`` are gradtx's additions, and unlike Optax
    it also accepts a learning-rate schedule and 0-D leaves (treated like 1-D: one full
    accumulator). torch.optim has no SM3.

    References:
      Anil, Gupta, Koren, Singer, "Memory-Efficient Adaptive Optimization", NeurIPS 2019.
      arXiv:1901.11150
    """
    return optimizer_chain(
        "sm3",
        scale_by_sm3(momentum, b2, eps),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(sm3, **COMMON_DOCS)
