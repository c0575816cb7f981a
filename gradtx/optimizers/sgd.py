"""Stochastic gradient descent, with torch's or the exponential-moving-average momentum."""

from __future__ import annotations

import functools
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


class MomentumState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    b: Any  # the momentum buffer, shaped like the params


@pytree_dataclass
class ScaleByMomentum(Transform):
    """Momentum buffer ``b`` (no learning rate; see ``sgd``).

    ``form="heavy_ball"`` (torch.optim.SGD, Optax ``trace``)::

        b_1 = g_1                                   (a copy on the first step)
        b_t = momentum * b_{t-1} + (1 - dampening) * g_t
        u_t = g_t + momentum * b_t   if nesterov else   b_t
        (b_t = g_t when momentum == 0: torch keeps no buffer then, so dampening does nothing)

    ``form="ema"`` (the seed tutorial's exponential moving average, zero init)::

        b_t = momentum * b_{t-1} + (1 - momentum) * g_t
        u_t = (1 - momentum) * g_t + momentum * b_t   if nesterov else   b_t
    """

    elementwise = True
    fn_name = "sgd"

    momentum: Any = field(0.9, check=_checks.CLOSED_UNIT)
    dampening: Any = field(0.0, check=_checks.CLOSED_UNIT)
    nesterov: bool = static_field(False)
    form: str = static_field("heavy_ball")
    accumulator_dtype: Any = static_field(None)

    def __check_init__(self):
        # Not a declared choice: the public argument is ``sgd``'s ``momentum_form``.
        _checks.check_choice("sgd", "momentum_form", self.form, ("heavy_ball", "ema"))

    def _init(self, params):
        return MomentumState(
            jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params, self.accumulator_dtype)
        )

    def _update(self, updates, state, params, **extra):
        mu = value_at(self.momentum, state.count)
        dampening = value_at(self.dampening, state.count)
        first = state.count == 0

        @functools.cache
        def scalars(cd):
            # Once per dtype, not once per leaf (fewer traced and compiled scalar ops).
            m = _tree.hp(mu, cd)
            damp = _tree.hp(dampening, cd)
            return m, 1 - m, 1 - damp, first | (m == 0)

        def leaf(g, b):
            cd = _tree.compute_dtype(g.dtype, b.dtype)
            gc, bc = g.astype(cd), b.astype(cd)
            m, one_m, one_damp, restart = scalars(cd)
            if self.form == "ema":
                b_new = m * bc + one_m * gc
                u = one_m * gc + m * b_new if self.nesterov else b_new
            else:
                # torch keeps no buffer when momentum == 0, so dampening has no effect there
                b_new = jnp.where(restart, gc, m * bc + one_damp * gc)
                u = gc + m * b_new if self.nesterov else b_new
            return u.astype(g.dtype), b_new.astype(b.dtype)

        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion
        out = _tree.tree_map_with_check(
            self.where(), twin.wrap(leaf), updates, state.b, names=("momentum buffer",)
        )
        u, b = _tree.tree_unzip(updates, out, 2)
        return u, MomentumState(_tree.safe_increment(state.count), b)


def scale_by_momentum(
    momentum: Any = 0.9,
    dampening: Any = 0.0,
    nesterov: bool = False,
    form: str = "heavy_ball",
    accumulator_dtype: Any = None,
) -> ScaleByMomentum:
    """The momentum buffer of ``sgd`` without the learning rate (see ``ScaleByMomentum``)."""
    return ScaleByMomentum(momentum, dampening, nesterov, form, accumulator_dtype)


def sgd(
    learning_rate: Any = 1e-3,
    momentum: Any = None,
    dampening: Any = 0.0,
    nesterov: bool = False,
    weight_decay: Any = 0.0,
    *,
    momentum_form: str = "heavy_ball",
    maximize: bool = False,
    weight_decay_mask: Any = None,
    accumulator_dtype: Any = None,
):
    """Stochastic gradient descent, torch.optim.SGD's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        b_t = momentum * b_{t-1} + (1 - dampening) * g_t     (b_1 = g_1)
        d_t = g_t + momentum * b_t   if nesterov else   b_t
        p_t = p_{t-1} - learning_rate * d_t

    Args:
      {learning_rate}
      momentum: None (no buffer, plain SGD) or a coefficient in [0, 1] (float, array or
        schedule). 0.0 keeps a buffer multiplied by zero.
      dampening: torch's dampening in [0, 1] (float, array or schedule); ignored by
        ``momentum_form="ema"`` and, as in torch, when momentum == 0 (the step is then the plain
        gradient).
      nesterov: Nesterov momentum (needs a momentum; torch also requires dampening == 0).
      {weight_decay}
      momentum_form: ``"heavy_ball"`` (torch, and Optax's ``trace`` when dampening == 0) or
        ``"ema"``: the seed tutorial's ``b = m * b + (1 - m) * g`` from zero, whose first step is
        ``(1 - m) * g`` (torch's ``dampening=m`` differs: its first step is ``g``).
      {maximize}
      accumulator_dtype: dtype of the momentum buffer (default: each parameter's dtype).

    Conventions: with ``momentum_form="heavy_ball"`` and dampening 0 this is also
    ``optax.sgd(lr, momentum, nesterov)``.

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
      Computational Mathematics and Mathematical Physics, 1964. doi:10.1016/0041-5553(64)90137-5
      Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and momentum in deep
      learning", ICML 2013.
    """
    if momentum is None:
        if nesterov:
            raise _checks.HyperparameterError(
                "gradtx.sgd: nesterov=True needs a momentum, got None"
            )
        from .._transform import identity

        pre = identity()
    else:
        if nesterov and momentum_form == "heavy_ball":
            conc = _checks.concrete_values(dampening)
            if conc is not None and float(conc.max()) != 0.0:
                raise _checks.HyperparameterError(
                    f"gradtx.sgd: nesterov=True needs dampening == 0, got {float(conc.max())}"
                )
        pre = scale_by_momentum(momentum, dampening, nesterov, momentum_form, accumulator_dtype)
    return optimizer_chain(
        "sgd",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(sgd, **COMMON_DOCS)
