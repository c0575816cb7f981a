"""MoMo and MoMo-Adam: momentum with a Polyak-type step size from the loss."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import scalar_dtype, tree_vdot

# Below this squared norm of the momentum no step is taken (Optax's threshold).
_TINY = float(np.finfo(np.float64).eps)


def _loss(where: str, extra: dict[str, Any], dt: Any) -> jax.Array:
    value = extra.get("value", extra.get("loss"))
    if value is None:
        raise ValueError(
            f"{where}: MoMo needs the current loss; call update(grads, state, params, "
            "value=loss) (or loss=loss)."
        )
    return jnp.asarray(value).astype(dt)


class MomoState(NamedTuple):
    exp_avg: Any  # d, the EMA of gradients
    barf: jax.Array  # the EMA of losses
    gamma: jax.Array  # the EMA of <g, x>
    lb: jax.Array  # the lower bound of the loss in use
    count: jax.Array  # updates applied so far (int32, saturating)


class MomoAdamState(NamedTuple):
    exp_avg: Any  # d, the EMA of gradients
    exp_avg_sq: Any  # v, the EMA of g^2
    barf: jax.Array  # the EMA of losses
    gamma: jax.Array  # the EMA of <g, x>
    lb: jax.Array  # the lower bound of the loss in use
    count: jax.Array  # updates applied so far (int32, saturating)


@pytree_dataclass
class Momo(Transform):
    """MoMo, learning rate inside (see ``momo``)."""

    fn_name = "contrib.momo"

    learning_rate: Any = field(1.0, check=_checks.NONNEGATIVE)
    beta: Any = field(0.9, check=_checks.UNIT)
    lower_bound: Any = 0.0
    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    adapt_lower_bound: bool = static_field(False)

    def _init(self, params):
        dt = scalar_dtype(params)
        zero = jnp.zeros((), dt)
        lb = jnp.asarray(self.lower_bound, dt)
        return MomoState(_tree.tree_zeros_like(params), zero, zero, lb, jnp.zeros((), jnp.int32))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: MoMo needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        dt = state.barf.dtype
        f = _loss(self.where(), extra, dt)
        k = state.count
        b = jnp.where(k == 0, 0, jnp.asarray(value_at(self.beta, k), dt))
        barf = b * state.barf + (1 - b) * f
        d = jax.tree.map(lambda m, g: (b * m.astype(dt) + (1 - b) * g.astype(dt)).astype(m.dtype),
                         state.exp_avg, updates)  # fmt: skip
        gamma = b * state.gamma + (1 - b) * tree_vdot(updates, params, dt)
        d_sq = _tree.tree_sum_squares(d).astype(dt)
        iprod = tree_vdot(d, params, dt)
        alpha = jnp.asarray(value_at(self.learning_rate, k), dt)
        lam = jnp.asarray(self.weight_decay, dt)
        one = 1 + alpha * lam
        lb0 = jnp.asarray(self.lower_bound, dt)
        lb = state.lb
        if self.adapt_lower_bound:
            cap = one * (barf - gamma) + iprod
            lb = jnp.where(cap < one * state.lb, jnp.maximum(cap / (2 * one), lb0), state.lb)
        t1 = jnp.maximum(one * (barf - lb - gamma) + iprod, 0) / d_sq
        t1 = jnp.where(d_sq <= _TINY, 0, t1)
        tau = jnp.minimum(alpha, t1)
        shrink = alpha * lam / one
        u = jax.tree.map(
            lambda m, p, g: (-shrink * p.astype(dt) - tau * m.astype(dt)).astype(g.dtype),
            d, params, updates,
        )  # fmt: skip
        new_lb = state.lb
        if self.adapt_lower_bound:
            new_lb = jnp.maximum(barf + iprod - gamma - tau * d_sq / 2, lb0)
        return u, MomoState(d, barf, gamma, new_lb, _tree.safe_increment(k))


@pytree_dataclass
class MomoAdam(Transform):
    """MoMo-Adam, learning rate inside (see ``momo_adam``)."""

    fn_name = "contrib.momo_adam"

    learning_rate: Any = field(1e-2, check=_checks.NONNEGATIVE)
    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    lower_bound: Any = 0.0
    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    adapt_lower_bound: bool = static_field(False)

    def _init(self, params):
        dt = scalar_dtype(params)
        z = _tree.tree_zeros_like
        zero = jnp.zeros((), dt)
        lb = jnp.asarray(self.lower_bound, dt)
        return MomoAdamState(z(params), z(params), zero, zero, lb, jnp.zeros((), jnp.int32))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: MoMo-Adam needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        dt = state.barf.dtype
        f = _loss(self.where(), extra, dt)
        k = state.count
        t = _tree.safe_increment(k).astype(dt)
        b1 = jnp.asarray(value_at(self.b1, k), dt)
        b2 = jnp.asarray(value_at(self.b2, k), dt)
        eps = jnp.asarray(self.eps, dt)
        barf = b1 * state.barf + (1 - b1) * f
        d = jax.tree.map(lambda m, g: b1 * m.astype(dt) + (1 - b1) * g.astype(dt),
                         state.exp_avg, updates)  # fmt: skip
        v = jax.tree.map(lambda s, g: b2 * s.astype(dt) + (1 - b2) * g.astype(dt) ** 2,
                         state.exp_avg_sq, updates)  # fmt: skip
        bc1, bc2 = _tree.bias_correction(b1, t, dt), _tree.bias_correction(b2, t, dt)
        pre = jax.tree.map(lambda s: eps + jnp.sqrt(s / bc2), v)
        d_norm = tree_vdot(d, jax.tree.map(lambda m, q: m / q, d, pre), dt)
        gamma = b1 * state.gamma + (1 - b1) * tree_vdot(updates, params, dt)
        iprod = tree_vdot(d, params, dt)
        alpha = jnp.asarray(value_at(self.learning_rate, k), dt)
        lam = jnp.asarray(self.weight_decay, dt)
        one = 1 + alpha * lam
        lb0 = jnp.asarray(self.lower_bound, dt)
        lb = state.lb
        if self.adapt_lower_bound:
            cap = one * (barf - gamma) + iprod
            lb = jnp.where(cap < one * bc1 * state.lb,
                           jnp.maximum(cap / (2 * bc1 * one), lb0), state.lb)  # fmt: skip
        t1 = jnp.maximum(one * (barf - bc1 * lb - gamma) + iprod, 0) / d_norm
        t1 = jnp.where(d_norm <= _TINY, 0, t1)
        tau = jnp.minimum(alpha / bc1, t1)
        shrink = alpha * lam / one
        u = jax.tree.map(
            lambda m, q, p, g: (-shrink * p.astype(dt) - tau * m / q).astype(g.dtype),
            d, pre, params, updates,
        )  # fmt: skip
        new_lb = state.lb
        if self.adapt_lower_bound:
            new_lb = jnp.maximum((barf + iprod - gamma - tau * d_norm / 2) / bc1, lb0)
        cast = lambda tree: jax.tree.map(lambda x, ref: x.astype(ref.dtype), tree, updates)
        new = MomoAdamState(cast(d), cast(v), barf, gamma, new_lb, _tree.safe_increment(k))
        return u, new


def momo(
    learning_rate: Any = 1.0,
    beta: Any = 0.9,
    lower_bound: Any = 0.0,
    weight_decay: Any = 0.0,
    adapt_lower_bound: bool = False,
) -> Momo:
    """MoMo: SGD with momentum and a Polyak-type step size (Optax's ``contrib.momo``).

    ``update`` needs the loss at the current params: ``tx.update(grads, state, params,
    value=loss)`` (Optax's name; ``loss=`` works too). Update rule (t = 0, 1, ...;
    b = 0 at t = 0, else beta; alpha = learning_rate(t); lambda = weight_decay)::

        fbar_t = b * fbar_{t-1} + (1 - b) * f(x_t)
        d_t = b * d_{t-1} + (1 - b) * g_t
        gamma_t = b * gamma_{t-1} + (1 - b) * <g_t, x_t>
        h_t = (1 + alpha * lambda) * (fbar_t - lb - gamma_t) + <d_t, x_t>
        tau_t = min(alpha, max(h_t, 0) / ||d_t||^2)          (0 when ||d_t||^2 ~ 0)
        x_{t+1} = (x_t - tau_t * d_t - alpha * lambda / (1 + alpha * lambda) * x_t ... )

    precisely ``x_{t+1} = x_t - alpha * lambda / (1 + alpha * lambda) * x_t - tau_t * d_t``.
    With ``adapt_lower_bound`` the bound lb is re-estimated each step as in the paper's
    MoMo* (never below ``lower_bound``).

    Args:
      learning_rate: the cap alpha on the step size, >= 0 (float, array or schedule);
        default 1.
      beta: momentum coefficient in [0, 1); default 0.9.
      lower_bound: a lower bound of the loss (0 for most losses); default 0.
      weight_decay: decay lambda >= 0; default 0.
      adapt_lower_bound: estimate the lower bound on the fly; default False.

    Conventions: Optax's ``contrib.momo`` (the paper's Algorithm 2 with weight decay).

    References:
      Schaipp, Ohana, Eickenberg, Defazio, Gower, "MoMo: Momentum Models for Adaptive
      Learning Rates", ICML 2024. arXiv:2305.07583
    """
    return Momo(learning_rate, beta, lower_bound, weight_decay, adapt_lower_bound)


def momo_adam(
    learning_rate: Any = 1e-2,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    lower_bound: Any = 0.0,
    weight_decay: Any = 0.0,
    adapt_lower_bound: bool = False,
) -> MomoAdam:
    """MoMo-Adam: Adam(W) with a Polyak-type step size (Optax's ``contrib.momo_adam``).

    ``update`` needs the loss: ``tx.update(grads, state, params, value=loss)`` (or ``loss=``).
    Update rule (t = 1, 2, ...; alpha = learning_rate(t - 1); lambda = weight_decay)::

        fbar_t = b1 * fbar_{t-1} + (1 - b1) * f(x_t)
        d_t = b1 * d_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        D_t = eps + sqrt(v_t / (1 - b2^t))
        gamma_t = b1 * gamma_{t-1} + (1 - b1) * <g_t, x_t>
        h_t = (1 + alpha * lambda) * (fbar_t - (1 - b1^t) * lb - gamma_t) + <d_t, x_t>
        tau_t = min(alpha / (1 - b1^t), max(h_t, 0) / <d_t, d_t / D_t>)
        x_{t+1} = x_t - alpha * lambda / (1 + alpha * lambda) * x_t - tau_t * d_t / D_t

    Args:
      learning_rate: the cap alpha on the step size, >= 0 (float, array or schedule);
        default 1e-2.
      b1: decay of the gradient and loss EMAs, in [0, 1); default 0.9.
      b2: decay of the second moment, in [0, 1); default 0.999.
      eps: added to the preconditioner, >= 0; default 1e-8.
      lower_bound: a lower bound of the loss; default 0.
      weight_decay: decay lambda >= 0 (AdamW-like); default 0.
      adapt_lower_bound: estimate the lower bound on the fly; default False.

    Conventions: Optax's ``contrib.momo_adam`` (the paper's Algorithm 5).

    References:
      Schaipp, Ohana, Eickenberg, Defazio, Gower, "MoMo: Momentum Models for Adaptive
      Learning Rates", ICML 2024. arXiv:2305.07583
    """
    return MomoAdam(learning_rate, b1, b2, eps, lower_bound, weight_decay, adapt_lower_bound)
