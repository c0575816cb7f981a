"""Averaged SGD, torch.optim.ASGD's semantics and defaults, with the averaged parameters."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
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
class ScaleByASGD(Elementwise):
    """ASGD's whole step (eta holds the learning rate) and the parameter average::

    out   = eta_{t-1} * (g_t + lambd * p_{t-1})           (so p_t = p_{t-1} - out)
    ax_t  = p_t                          if mu_{t-1} == 1
          = ax_{t-1} + mu_{t-1} * (p_t - ax_{t-1})        otherwise
    eta_t = lr(t - 1) / (1 + lambd * lr(t - 1) * t)^alpha;   mu_t = 1 / max(1, t - t0)
    (eta_0 = lr(0), mu_0 = 1, ax_0 = 0)
    """

    state_type = ASGDState
    fn_name = "asgd"
    reads_params = True
    carry_fields = ("eta", "mu")

    learning_rate: Any = field(1e-2, check=_checks.NONNEGATIVE)
    lambd: Any = field(1e-4, check=_checks.NONNEGATIVE)
    alpha: Any = field(0.75, check=_checks.NONNEGATIVE)
    t0: Any = field(1e6, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _carry_init(self):
        fd = _tree.float_dtype()
        lr0 = value_at(self.learning_rate, jnp.zeros((), jnp.int32))
        return {"eta": jnp.asarray(lr0, fd), "mu": jnp.ones((), fd)}

    def _next_carry(self, updates, state):
        sd = state.eta.dtype
        t = _tree.safe_increment(state.count).astype(sd)
        lr = jnp.asarray(value_at(self.learning_rate, state.count), sd)
        lambd = jnp.asarray(self.lambd, sd)
        eta_new = lr / (1 + lambd * lr * t) ** jnp.asarray(self.alpha, sd)
        mu_new = 1 / jnp.maximum(jnp.ones((), sd), t - jnp.asarray(self.t0, sd))
        return {"eta": eta_new.astype(sd), "mu": mu_new.astype(sd)}

    def _scalars(self, count, t, dtype, eta, mu):
        return dict(eta=eta, mu=mu, lambd=jnp.asarray(self.lambd, eta.dtype))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(
                f"{self.where()}: ASGD needs params; call update(grads, state, params)."
            )
        return super()._update(updates, state, params, **extra)

    def _leaf(self, s, g, p, ax):
        out = s.eta * (g + s.lambd * p)
        p_new = p - out
        return out, jnp.where(s.mu == 1, p_new, ax + s.mu * (p_new - ax))


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
    weight_decay: Any = None,
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
