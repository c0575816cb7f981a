"""Mechanic: learns the scale of any base optimizer's updates."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_transform, field, pytree_dataclass, static_field
from ._common import copy_tree, scalar_dtype, tree_vdot


class MechanicState(NamedTuple):
    base_optimizer_state: Any  # the base optimizer's state
    count: jax.Array  # updates applied so far (int32, saturating)
    r: jax.Array  # per-beta reward
    m: jax.Array  # per-beta running max of |h|
    v: jax.Array  # per-beta sum of h^2
    s: jax.Array  # per-beta scale; their sum multiplies the base's updates
    x0: Any  # the params at the first update


@pytree_dataclass
class Mechanize(Transform):
    """Mechanic around a base optimizer (see ``mechanize``)."""

    fn_name = "contrib.mechanize"

    base_optimizer: Transform
    weight_decay: Any = field(1e-2, check=_checks.NONNEGATIVE)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    s_init: Any = field(1e-6, check=_checks.POSITIVE)
    num_betas: int = static_field(6, check=_checks.COUNT)

    def _init(self, params):
        dt = scalar_dtype(params)
        n = self.num_betas
        z = jnp.zeros((n,), dt)
        s = jnp.ones((n,), dt) * jnp.asarray(self.s_init, dt)
        base = self.base_optimizer._init(params)
        return MechanicState(base, jnp.zeros((), jnp.int32), z, z, z, s, copy_tree(params))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: mechanize needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        dt = state.s.dtype
        base_u, base_state = self.base_optimizer._update(
            updates, state.base_optimizer_state, params, **extra
        )
        first = state.count == 0
        x0 = jax.tree.map(lambda p, x: jnp.where(first, p, x), params, state.x0)
        eps = jnp.asarray(self.eps, dt)
        s_sum = jnp.sum(state.s)
        g_norm = _tree.tree_norm(updates).astype(dt)
        p_norm = _tree.tree_norm(params).astype(dt)
        coef = jnp.asarray(self.weight_decay, dt) * s_sum * g_norm / (p_norm + eps)
        # The memory-light form: Delta_{t-1} is recomputed from x_t and x0.
        delta_prev = jax.tree.map(lambda p, x: (x.astype(dt) - p.astype(dt)) / (s_sum + eps),
                                  params, x0)  # fmt: skip
        g_dec = jax.tree.map(lambda g, p: g.astype(dt) + coef * p.astype(dt), updates, params)
        h = tree_vdot(g_dec, delta_prev, dt)
        betas = jnp.asarray([1.0 - 0.1**i for i in range(1, self.num_betas + 1)], dt)
        h_clip = jnp.clip(h, -state.m, state.m)
        m = jnp.maximum(betas * state.m, jnp.abs(h) + eps)
        v = betas**2 * state.v + h**2
        r = betas * state.r + h_clip * state.s
        wealth = jnp.asarray(self.s_init, dt) / self.num_betas * m + jnp.maximum(r, 0)
        s = wealth / (jnp.sqrt(v) + eps)
        s_total = jnp.sum(s)

        def leaf(p, x, d, u):
            cd = _tree.compute_dtype(p.dtype, u.dtype, dt)
            delta = d.astype(cd) - u.astype(cd)
            new = x.astype(cd) - s_total.astype(cd) * delta
            return (new - p.astype(cd)).astype(u.dtype)

        out = jax.tree.map(leaf, params, x0, delta_prev, base_u)
        new = MechanicState(base_state, _tree.safe_increment(state.count), r, m, v, s, x0)
        return out, new


def mechanize(
    base_optimizer: Any,
    weight_decay: Any = 1e-2,
    eps: Any = 1e-8,
    s_init: Any = 1e-6,
    num_betas: int = 6,
) -> Mechanize:
    """Mechanic, a learning-rate tuner around any optimizer (Optax's ``contrib.mechanize``).

    Update rule (t = 1, 2, ...; betas_i = 1 - 0.1^i for i = 1..num_betas; every per-beta
    quantity is a vector over i; x_0 the params at the first update, S_t = sum_i s_{t,i})::

        d_t = base_optimizer's update (a descent step, negative of the direction)
        Delta_{t-1} = (x_0 - x_t) / (S_{t-1} + eps)
        g'_t = g_t + weight_decay * S_{t-1} * ||g_t|| / (||x_t|| + eps) * x_t
        h_t = <g'_t, Delta_{t-1}>
        m_t = max(betas * m_{t-1}, |h_t| + eps)
        v_t = betas^2 * v_{t-1} + h_t^2
        r_t = betas * r_{t-1} + clip(h_t, -m_{t-1}, m_{t-1}) * s_{t-1}
        s_t = (s_init / num_betas * m_t + max(r_t, 0)) / (sqrt(v_t) + eps)
        x_{t+1} = x_0 - S_t * (Delta_{t-1} - d_t)

    Args:
      base_optimizer: the optimizer whose updates are rescaled (a gradtx transform or any
        object with Optax's ``init``/``update``); give it a base learning rate of 1.
      weight_decay: Mechanic's own decay on the gradient it scores, >= 0; default 1e-2.
      eps: for numerical stability, >= 0; default 1e-8.
      s_init: the initial scale of each beta, > 0; default 1e-6.
      num_betas: how many betas (1 - 0.1, 1 - 0.01, ...), an integer >= 1; default 6.

    Conventions: Optax's ``contrib.mechanize`` (the paper's Algorithm 1 in its memory-light
    form, with the authors' clipping of h). The update needs ``params``; extra ``update``
    arguments go to the base optimizer.

    References:
      Cutkosky, Defazio, Mehta, "Mechanic: A Learning Rate Tuner", NeurIPS 2023.
      arXiv:2306.00144
    """
    return Mechanize(
        as_transform(base_optimizer, "contrib.mechanize", "base_optimizer"),
        weight_decay,
        eps,
        s_init,
        num_betas,
    )
