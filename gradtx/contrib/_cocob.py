"""COCOB-Backprop: coin betting instead of a learning rate."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, chain, field, pytree_dataclass, value_at
from ._common import ARGS_MASK, copy_tree, decay


class COCOBState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    init_particles: Any  # x_0, the params at init
    cumulative_gradients: Any  # theta = -sum of the (scaled) gradients
    scale: Any  # L, the largest |g| seen (starts at eps)
    subgradients: Any  # G, the sum of |g|
    reward: Any  # R, the reward


@pytree_dataclass
class ScaleByCOCOB(Transform):
    """COCOB-Backprop's step, per coordinate (g already scaled by ``learning_rate``)::

        L_t = max(L_{t-1}, |g_t|)
        G_t = G_{t-1} + |g_t|
        R_t = max(R_{t-1} - g_t * (x_t - x_0), 0)
        theta_t = theta_{t-1} - g_t
        x_{t+1} = x_0 + theta_t / (L_t * max(G_t + L_t, alpha * L_t)) * (L_t + R_t)

    and the update is ``x_{t+1} - x_t``. ``L_0 = eps``; the other sums start at zero.
    """

    fn_name = "contrib.cocob"
    elementwise = True

    alpha: Any = field(100.0, check=_checks.POSITIVE)
    eps: Any = field(1e-8, check=_checks.POSITIVE)
    learning_rate: Any = field(1.0, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = _tree.tree_zeros_like
        eps = self.eps
        scale = jax.tree.map(lambda p: _tree.full_like(p, 1) * _tree.hp(eps, p.dtype), params)
        return COCOBState(jnp.zeros((), jnp.int32), copy_tree(params), z(params), scale,
                          z(params), z(params))  # fmt: skip

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: COCOB needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        lr = value_at(self.learning_rate, state.count)

        def leaf(g, p, p0, theta, big_l, big_g, r):
            cd = _tree.compute_dtype(g.dtype, p.dtype, theta.dtype)
            c = _tree.hp(lr, cd) * g.astype(cd)
            pc, p0c = p.astype(cd), p0.astype(cd)
            big_l = jnp.maximum(big_l.astype(cd), jnp.abs(c))
            big_g = big_g.astype(cd) + jnp.abs(c)
            r = jnp.maximum(r.astype(cd) - c * (pc - p0c), 0)
            theta = theta.astype(cd) - c
            alpha = _tree.hp(self.alpha, cd)
            x = p0c + theta / (big_l * jnp.maximum(big_g + big_l, alpha * big_l)) * (big_l + r)
            dt = p.dtype
            return ((x - pc).astype(g.dtype), theta.astype(dt), big_l.astype(dt),
                    big_g.astype(dt), r.astype(dt))  # fmt: skip

        out = jax.tree.map(leaf, updates, params, state.init_particles,
                           state.cumulative_gradients, state.scale, state.subgradients,
                           state.reward)  # fmt: skip
        u, theta, big_l, big_g, r = _tree.tree_unzip(updates, out, 5)
        count = _tree.safe_increment(state.count)
        return u, COCOBState(count, state.init_particles, theta, big_l, big_g, r)


def scale_by_cocob(alpha: Any = 100.0, eps: Any = 1e-8) -> ScaleByCOCOB:
    """COCOB-Backprop's step without weight decay (see ``cocob``)."""
    return ScaleByCOCOB(alpha, eps)


def cocob(
    learning_rate: Any = 1.0,
    alpha: Any = 100.0,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Transform:
    """COCOB-Backprop: the continuous coin-betting optimizer (Optax's ``contrib.cocob``).

    Update rule, per coordinate (t = 1, 2, ...; x_0 the params at init)::

        g_t = learning_rate(t - 1) * (grad_t + weight_decay * x_t)
        L_t = max(L_{t-1}, |g_t|),   L_0 = eps
        G_t = G_{t-1} + |g_t|
        R_t = max(R_{t-1} - g_t * (x_t - x_0), 0)
        theta_t = theta_{t-1} - g_t
        x_{t+1} = x_0 + theta_t / (L_t * max(G_t + L_t, alpha * L_t)) * (L_t + R_t)

    There is no step size: the bet ``theta_t / ...`` sets it, and the learning rate only
    rescales the gradient (the update hardly depends on it).

    Args:
      learning_rate: multiplier of the gradient, >= 0 (float, array or schedule); default 1.
      alpha: the bet fraction's cap, > 0; default 100.
      eps: the initial ``L_0``, > 0; default 1e-8.
      weight_decay: L2 coefficient >= 0 added to the gradient before the bet; default 0.
      {mask}

    Conventions: Optax's ``contrib.cocob`` (Algorithm 2 of the paper, with the learning rate
    applied to the gradient). The update needs ``params``.

    References:
      Orabona, Tommasi, "Training Deep Networks without Learning Rates Through Coin Betting",
      NeurIPS 2017. arXiv:1705.07795
    """
    return chain(decay("contrib.cocob", weight_decay, mask),
                 ScaleByCOCOB(alpha, eps, learning_rate))  # fmt: skip


cocob.__doc__ = (cocob.__doc__ or "").replace("{mask}", ARGS_MASK)
