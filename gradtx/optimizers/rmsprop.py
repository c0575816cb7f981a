"""RMSprop, torch.optim's semantics (eps outside the root), Optax's as an option."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _fusion, _tree
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import (
    COMMON_DOCS,
    fill_doc,
    optimizer_chain,
)


class RMSpropState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    v: Any  # EMA of squared gradients
    g_avg: Any = None  # EMA of gradients (centered only)
    b: Any = None  # momentum buffer (momentum only)


@pytree_dataclass
class ScaleByRMSprop(Transform):
    """RMSprop's preconditioner (no learning rate)::

    v_t = decay * v_{t-1} + (1 - decay) * |g_t|^2        (v_0 = initial_scale)
    gbar_t = decay * gbar_{t-1} + (1 - decay) * g_t       (centered only)
    a_t = sqrt(v_t - gbar_t^2) + eps   (outside)   or   sqrt(v_t - gbar_t^2 + eps)  (inside)
    b_t = momentum * b_{t-1} + g_t / a_t;  u_t = b_t      (with momentum)
    u_t = g_t / a_t                                       (without)
    """

    elementwise = True
    fn_name = "rmsprop"

    decay: Any = field(0.99, check=_checks.CLOSED_UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    momentum: Any = field(None, check=_checks.CLOSED_UNIT)
    centered: bool = static_field(False)
    eps_placement: str = static_field("outside", choices=("outside", "inside"))
    initial_scale: Any = 0.0

    def _init(self, params):
        v = jax.tree.map(
            lambda p: _tree.full_like(p, self.initial_scale, _tree.real_dtype(p.dtype)), params
        )
        g_avg = _tree.tree_zeros_like(params) if self.centered else None
        b = _tree.tree_zeros_like(params) if self.momentum is not None else None
        return RMSpropState(jnp.zeros((), jnp.int32), v, g_avg, b)

    def _update(self, updates, state, params, **extra):
        decay = value_at(self.decay, state.count)
        mom = value_at(self.momentum, state.count)
        centered, has_mom = self.centered, self.momentum is not None

        def leaf(g, v, ga=None, b=None):
            cd = _tree.compute_dtype(g.dtype, v.dtype)
            rd = _tree.real_dtype(cd)
            gc = g.astype(cd)
            d = _tree.hp(decay, rd)
            v_new = d * v.astype(rd) + (1 - d) * _tree.abs_sq(gc)
            var = v_new
            ga_new = None
            if centered:
                dc = _tree.hp(decay, cd)
                ga_new = dc * ga.astype(cd) + (1 - dc) * gc
                # Clamped: rounding (or a v that underflowed in fp16) must not give sqrt(<0).
                var = jnp.maximum(v_new - _tree.abs_sq(ga_new), 0.0)
            eps = _tree.hp(self.eps, rd)
            if self.eps_placement == "outside":
                u = gc / (jnp.sqrt(var) + eps).astype(cd)
            else:
                u = gc / jnp.sqrt(var + eps).astype(cd)
            b_new = None
            if has_mom:
                b_new = _tree.hp(mom, cd) * b.astype(cd) + u
                u = b_new
            out = [u.astype(g.dtype), v_new.astype(v.dtype)]
            if centered:
                out.append(ga_new.astype(ga.dtype))
            if has_mom:
                out.append(b_new.astype(b.dtype))
            return tuple(out)

        trees, names = [state.v], ["v"]
        if centered:
            trees.append(state.g_avg)
            names.append("g_avg")
        if has_mom:
            trees.append(state.b)
            names.append("b")

        def call(g, *rest):
            v = rest[0]
            ga = rest[1] if centered else None
            b = rest[-1] if has_mom else None
            return twin.run(leaf, g, v, ga, b)

        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion
        res = _tree.tree_map_with_check(self.where(), call, updates, *trees, names=tuple(names))
        outs = list(_tree.tree_unzip(updates, res, 1 + len(trees)))
        u, v = outs[0], outs[1]
        ga = outs[2] if centered else None
        b = outs[-1] if has_mom else None
        return u, RMSpropState(_tree.safe_increment(state.count), v, ga, b)


def scale_by_rmsprop(
    decay: Any = 0.99,
    eps: Any = 1e-8,
    momentum: Any = None,
    centered: bool = False,
    eps_placement: str = "outside",
    initial_scale: Any = 0.0,
) -> ScaleByRMSprop:
    """RMSprop's preconditioner without the learning rate (see ``ScaleByRMSprop``)."""
    return ScaleByRMSprop(decay, eps, momentum, centered, eps_placement, initial_scale)


def rmsprop(
    learning_rate: Any = 1e-2,
    decay: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    momentum: Any = None,
    centered: bool = False,
    *,
    eps_placement: str = "outside",
    initial_scale: Any = 0.0,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """RMSprop, torch.optim.RMSprop's semantics and defaults (torch's ``alpha`` is ``decay``).

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        v_t = decay * v_{t-1} + (1 - decay) * g_t^2
        a_t = sqrt(v_t) + eps         (centered: sqrt(v_t - gbar_t^2) + eps)
        b_t = momentum * b_{t-1} + g_t / a_t;  p_t = p_{t-1} - lr * b_t     (with momentum)
        p_t = p_{t-1} - lr * g_t / a_t                                      (without)

    Args:
      {learning_rate}
      decay: smoothing constant of the squared-gradient average, in [0, 1] (torch ``alpha``).
      eps: added to the denominator, outside the root by default (torch, 1e-8).
      {weight_decay}
      momentum: None (no buffer) or a coefficient in [0, 1]; the learning rate multiplies the
        buffer (torch) rather than entering it.
      centered: divide by the estimated standard deviation instead of the root mean square.
      eps_placement: ``"outside"`` (torch, the seed tutorial) or ``"inside"`` (Optax's default
        ``eps_in_sqrt=True``).
      initial_scale: starting value of ``v`` (Optax's ``initial_scale``; torch 0).
      {maximize}

    Conventions: ``optax.rmsprop(lr)`` (decay 0.9, eps inside) is
    ``rmsprop(lr, decay=0.9, eps_placement="inside")``. Optax applies momentum after the learning
    rate; the two agree for a constant learning rate.

    References:
      Tieleman, Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
      2012. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (centered).
      arXiv:1308.0850
    """
    pre = scale_by_rmsprop(decay, eps, momentum, centered, eps_placement, initial_scale)
    return optimizer_chain(
        "rmsprop",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(rmsprop, **COMMON_DOCS)
