"""D-Adaptation for AdamW: the step size estimated from the distance travelled."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import scalar_dtype


class DAdaptAdamWState(NamedTuple):
    count: jax.Array  # k, updates applied so far (int32, saturating)
    exp_avg: Any  # m, the EMA of d * g
    exp_avg_sq: Any  # v, the EMA of g^2
    grad_sum: Any  # s, the sqrt(b2)-EMA of d * g
    estim_lr: jax.Array  # d, the distance estimate
    numerator_weighted: jax.Array  # r, the numerator of d's estimate


def _check_betas(fn: str, betas: Any) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: betas must be a pair (b1, b2), got {betas!r}"
        )
    for i, b in enumerate(betas):
        _checks.UNIT(fn, f"betas[{i}]", b)


@pytree_dataclass
class DAdaptAdamW(Transform):
    """D-Adapted AdamW, learning rate inside (see ``dadapt_adamw``)."""

    fn_name = "contrib.dadapt_adamw"

    learning_rate: Any = 1.0
    betas: Any = (0.9, 0.999)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    estim_lr0: Any = field(1e-6, check=_checks.POSITIVE)
    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)

    def __check_init__(self):
        _checks.check_nonnegative(self.fn_name, "learning_rate", self.learning_rate)
        _check_betas(self.fn_name, self.betas)

    def _init(self, params):
        dt = scalar_dtype(params)
        z = _tree.tree_zeros_like
        return DAdaptAdamWState(jnp.zeros((), jnp.int32), z(params), z(params), z(params),
                                jnp.asarray(self.estim_lr0, dt), jnp.zeros((), dt))  # fmt: skip

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: dadapt_adamw needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        k = state.count
        dt = state.estim_lr.dtype
        b1 = jnp.asarray(value_at(self.betas[0], k), dt)
        b2 = jnp.asarray(value_at(self.betas[1], k), dt)
        sb2 = jnp.sqrt(b2)
        t = _tree.safe_increment(k).astype(dt)
        bc = jnp.sqrt(_tree.bias_correction(b2, t, dt)) / _tree.bias_correction(b1, t, dt)
        lr = jnp.asarray(value_at(self.learning_rate, k), dt)
        dlr = state.estim_lr * lr * bc
        eps = jnp.asarray(self.eps, dt)
        wd = jnp.asarray(self.weight_decay, dt)

        leaves, treedef = jax.tree.flatten(updates)
        ps = treedef.flatten_up_to(params)
        ms = treedef.flatten_up_to(state.exp_avg)
        vs = treedef.flatten_up_to(state.exp_avg_sq)
        ss = treedef.flatten_up_to(state.grad_sum)
        num, s_l1 = jnp.zeros((), dt), jnp.zeros((), dt)
        out_u, out_m, out_v, out_s = [], [], [], []
        for g, p, m, v, s in zip(leaves, ps, ms, vs, ss):
            cd = _tree.compute_dtype(g.dtype, p.dtype, m.dtype, dt)
            gc, vc, sc = g.astype(cd), v.astype(cd), s.astype(cd)
            num = num + jnp.sum(gc * (sc / (jnp.sqrt(vc) + eps.astype(cd)))).astype(dt)
            m_new = b1.astype(cd) * m.astype(cd) + (1 - b1.astype(cd)) * dlr.astype(cd) * gc
            v_new = b2.astype(cd) * vc + (1 - b2.astype(cd)) * gc * gc
            s_new = sb2.astype(cd) * sc + (1 - sb2.astype(cd)) * dlr.astype(cd) * gc
            s_l1 = s_l1 + jnp.sum(jnp.abs(s_new)).astype(dt)
            u = -(wd * dlr).astype(cd) * p.astype(cd) - m_new / (jnp.sqrt(v_new) + eps.astype(cd))
            out_u.append(u.astype(g.dtype))
            out_m.append(m_new.astype(m.dtype))
            out_v.append(v_new.astype(v.dtype))
            out_s.append(s_new.astype(s.dtype))
        r = sb2 * state.numerator_weighted + (1 - sb2) * dlr * num
        d_hat = r / ((1 - sb2) * s_l1)
        d = jnp.maximum(state.estim_lr, d_hat)
        unf = treedef.unflatten
        new = DAdaptAdamWState(_tree.safe_increment(k), unf(out_m), unf(out_v), unf(out_s), d, r)
        return unf(out_u), new


def dadapt_adamw(
    learning_rate: Any = 1.0,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    estim_lr0: Any = 1e-6,
    weight_decay: Any = 0.0,
) -> DAdaptAdamW:
    """D-Adaptation AdamW (Optax's ``contrib.dadapt_adamw``).

    Update rule (t = 1, 2, ...; gamma_t = learning_rate(t - 1); d_0 = estim_lr0)::

        c_t = sqrt(1 - b2^t) / (1 - b1^t)
        l_t = d_{t-1} * gamma_t * c_t
        q_t = <g_t, s_{t-1} / (sqrt(v_{t-1}) + eps)>
        m_t = b1 * m_{t-1} + (1 - b1) * l_t * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        s_t = sqrt(b2) * s_{t-1} + (1 - sqrt(b2)) * l_t * g_t
        r_t = sqrt(b2) * r_{t-1} + (1 - sqrt(b2)) * l_t * q_t
        d_t = max(d_{t-1}, r_t / ((1 - sqrt(b2)) * ||s_t||_1))
        x_t = x_{t-1} - weight_decay * l_t * x_{t-1} - m_t / (sqrt(v_t) + eps)

    Args:
      learning_rate: multiplier of the estimated step (a schedule with peak 1 is the intended
        use), >= 0 (float, array or schedule); default 1.
      betas: ``(b1, b2)``, each in [0, 1); default (0.9, 0.999).
      eps: added to ``sqrt(v)``, >= 0; default 1e-8.
      estim_lr0: the initial estimate d_0, > 0; default 1e-6.
      weight_decay: decoupled decay >= 0, scaled by ``l_t``; default 0.

    Conventions: Optax's ``contrib.dadapt_adamw`` (the authors' ``DAdaptAdam`` with decoupled
    decay). The update needs ``params``.

    References:
      Defazio, Mishchenko, "Learning-Rate-Free Learning by D-Adaptation", ICML 2023.
      arXiv:2301.07733
    """
    return DAdaptAdamW(learning_rate, betas, eps, estim_lr0, weight_decay)
