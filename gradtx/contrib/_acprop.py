"""ACProp: AdaBelief's centred second moment, applied asynchronously (one step late)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ._common import ARGS_MASK, decay, with_learning_rate


class ACPropState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # m, the EMA of gradients
    nu: Any  # s, the EMA of squared prediction errors


@pytree_dataclass
class ScaleByACProp(Transform):
    """ACProp's direction (no learning rate)::

    s_hat_{t-1} = s_{t-1} / (1 - b2^(t-1))        (1 at t = 1)
    u_t = g_t / (sqrt(s_hat_{t-1}) + eps)
    s_t = b2 * s_{t-1} + (1 - b2) * (g_t - m_{t-1})^2 + eps_root
    m_t = b1 * m_{t-1} + (1 - b1) * g_t
    """

    fn_name = "contrib.acprop"
    elementwise = True

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-16, check=_checks.NONNEGATIVE)
    eps_root: Any = field(1e-16, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = _tree.tree_zeros_like
        return ACPropState(jnp.zeros((), jnp.int32), z(params), z(params))

    def _update(self, updates, state, params, **extra):
        _checks.check_same_tree(self.where(), updates, state.mu, "updates", "mu")
        k = state.count
        b1, b2 = value_at(self.b1, k), value_at(self.b2, k)
        first = k == 0
        t = jnp.where(first, 1, k).astype(_tree.float_dtype())

        def leaf(g, m, s):
            cd = _tree.compute_dtype(g.dtype, m.dtype, s.dtype)
            gc, mc, sc = g.astype(cd), m.astype(cd), s.astype(cd)
            b1c, b2c = _tree.hp(b1, cd), _tree.hp(b2, cd)
            s_hat = jnp.where(first, 1, sc / _tree.bias_correction(b2c, t, cd).astype(cd))
            u = gc / (jnp.sqrt(s_hat) + _tree.hp(self.eps, cd))
            e = gc - mc
            s_new = b2c * sc + (1 - b2c) * e * e + _tree.hp(self.eps_root, cd)
            m_new = b1c * mc + (1 - b1c) * gc
            return u.astype(g.dtype), m_new.astype(m.dtype), s_new.astype(s.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu, nu = _tree.tree_unzip(updates, out, 3)
        return u, ACPropState(_tree.safe_increment(k), mu, nu)


def scale_by_acprop(
    b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-16, eps_root: Any = 1e-16
) -> ScaleByACProp:
    """ACProp's direction without the learning rate (see ``acprop``)."""
    return ScaleByACProp(b1, b2, eps, eps_root)


def acprop(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-16,
    eps_root: Any = 1e-16,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Transform:
    """ACProp (Optax's ``contrib.acprop``).

    Update rule (t = 1, 2, ...; the denominator uses the statistics up to step t - 1)::

        s_hat_{t-1} = s_{t-1} / (1 - b2^(t-1))        (1 at t = 1)
        u_t = g_t / (sqrt(s_hat_{t-1}) + eps)
        s_t = b2 * s_{t-1} + (1 - b2) * (g_t - m_{t-1})^2 + eps_root
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        x_t = x_{t-1} - learning_rate(t - 1) * (u_t + weight_decay * x_{t-1})

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax.
      b1: decay of the gradient EMA m, in [0, 1); default 0.9.
      b2: decay of the prediction-error EMA s, in [0, 1); default 0.999.
      eps: added to ``sqrt(s_hat)``, >= 0; default 1e-16.
      eps_root: added to s at every step, >= 0; default 1e-16.
      weight_decay: decoupled decay coefficient >= 0, scaled by the learning rate; default 0.
      {mask}

    Conventions: Optax's ``contrib.acprop`` exactly. The numerator is the raw gradient and the
    prediction error uses ``m_{t-1}`` (the authors' code); the paper's pseudo-code writes
    ``g_t - m_t``.

    References:
      Zhuang, Ding, Tang, Dvornek, Tatikonda, Duncan, "Momentum Centering and Asynchronous
      Update for Adaptive Gradient Methods", NeurIPS 2021. arXiv:2110.05454
    """
    pre = ScaleByACProp(b1, b2, eps, eps_root)
    return with_learning_rate("contrib.acprop", learning_rate, pre,
                              decay("contrib.acprop", weight_decay, mask))  # fmt: skip


acprop.__doc__ = (acprop.__doc__ or "").replace("{mask}", ARGS_MASK)
