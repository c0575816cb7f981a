"""Averaged SGD, torch.optim.ASGD's semantics and defaults, with the averaged parameters."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc
from ._lr_inside import lr_inside_chain


class ASGDState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    eta: jax.Array  # the step size used by the next update (scalar)
    mu: jax.Array  # the averaging coefficient used by the next update (scalar)
    ax: Any  # the averaged parameters (read them with gradtx.eval_params)

    def averaged(self, params: Any) -> Any:
        """torch's ``ax`` in ``params``' dtypes (what ``gradtx.eval_params`` returns)."""
        return _tree.tree_cast_like(self.ax, params)


@pytree_dataclass
class ScaleByASGD(Transform):
    """ASGD's whole step (eta holds the learning rate) and the parameter average::

    out   = eta_{t-1} * (g_t + lambd * p_{t-1})           (so p_t = p_{t-1} - out)
    ax_t  = p_t                          if mu_{t-1} == 1
          = ax_{t-1} + mu_{t-1} * (p_t - ax_{t-1})        otherwise
    eta_t = lr(t - 1) / (1 + lambd * lr(t - 1) * t)^alpha;   mu_t = 1 / max(1, t - t0)
    (eta_0 = lr(0), mu_0 = 1, ax_0 = 0)
    """

    elementwise = True
    fn_name = "asgd"

    learning_rate: Any = field(1e-2, check=_checks.NONNEGATIVE)
    lambd: Any = field(1e-4, check=_checks.NONNEGATIVE)
    alpha: Any = field(0.75, check=_checks.NONNEGATIVE)
    t0: Any = field(1e6, check=_checks.NONNEGATIVE)

    def _init(self, params):
        fd = _tree.float_dtype()
        lr0 = value_at(self.learning_rate, jnp.zeros((), jnp.int32))
        return ASGDState(
            jnp.zeros((), jnp.int32),
            jnp.asarray(lr0, fd),
            jnp.ones((), fd),
            _tree.tree_zeros_like(params),
        )

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(
                f"{self.where()}: ASGD needs params; call update(grads, state, params)."
            )
        count = _tree.safe_increment(state.count)
        sd = state.eta.dtype
        lr = jnp.asarray(value_at(self.learning_rate, state.count), sd)
        lambd = jnp.asarray(self.lambd, sd)
        eta, mu = state.eta, state.mu

        def leaf(g, p, ax):
            cd = _tree.compute_dtype(g.dtype, p.dtype, ax.dtype, sd)
            gc, pc = g.astype(cd), p.astype(cd)
            out = eta.astype(cd) * (gc + lambd.astype(cd) * pc)
            p_new = pc - out
            axc = ax.astype(cd)
            ax_new = jnp.where(mu == 1, p_new, axc + mu.astype(cd) * (p_new - axc))
            return out.astype(g.dtype), ax_new.astype(ax.dtype)

        res = _tree.tree_map_with_check(
            self.where(), leaf, updates, params, state.ax, names=("params", "ax")
        )
        out, ax = _tree.tree_unzip(updates, res, 2)
        t = count.astype(sd)
        eta_new = lr / (1 + lambd * lr * t) ** jnp.asarray(self.alpha, sd)
        mu_new = 1 / jnp.maximum(jnp.ones((), sd), t - jnp.asarray(self.t0, sd))
        return out, ASGDState(count, eta_new.astype(sd), mu_new.astype(sd), ax)


def scale_by_asgd(
    learning_rate: Any = 1e-2, lambd: Any = 1e-4, alpha: Any = 0.75, t0: Any = 1e6
) -> ScaleByASGD:
    """ASGD's step, sign not flipped, and its average (see ``ScaleByASGD``)."""
    return ScaleByASGD(learning_rate, lambd, alpha, t0)


def asgd(
    learning_rate: Any = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
    weight_decay: Any = 0.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Averaged SGD, torch.optim.ASGD's semantics and defaults.

    Update rule (t = 1, 2, ...; eta_0 = lr, mu_0 = 1)::

        g_t   = grad + weight_decay * p_{t-1}
        p_t   = p_{t-1} * (1 - lambd * eta_{t-1}) - eta_{t-1} * g_t
        ax_t  = p_t  if mu_{t-1} == 1  else  ax_{t-1} + mu_{t-1} * (p_t - ax_{t-1})
        eta_t = lr / (1 + lambd * lr * t)^alpha
        mu_t  = 1 / max(1, t - t0)

    The averaged parameters ``ax`` are never written into the parameters; read them with
    ``gradtx.eval_params(state, params)`` (evaluate the model with them).

    Args:
      {learning_rate} As in torch, the step at t uses the eta computed at t - 1 (from the then
        current learning rate): a one-step lag under schedules.
      lambd: decay term >= 0 (torch's ``lambd``).
      alpha: power of the eta decay, >= 0.
      t0: the step after which averaging starts, >= 0 (torch 1e6: by default ``ax`` is a copy of
        the parameters).
      {weight_decay}
      {maximize}

    References:
      Polyak, Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
      and Optimization, 1992. doi:10.1137/0330046
      Bottou, "Stochastic Gradient Descent Tricks", Neural Networks: Tricks of the Trade, 2012.
    """
    return lr_inside_chain(
        "asgd",
        scale_by_asgd(learning_rate, lambd, alpha, t0),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(asgd, **COMMON_DOCS)
