"""MADGRAD: momentumized, adaptive, dual-averaged gradient descent."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, chain, field, pytree_dataclass, value_at
from ._common import copy_tree, decay


class MadgradState(NamedTuple):
    count: jax.Array  # k, updates applied so far (int32, saturating)
    grad_sum_sq: Any  # v, the weighted sum of squared gradients
    s: Any  # the weighted sum of gradients
    x0: Any  # the params at init


@pytree_dataclass
class ScaleByMadgrad(Transform):
    """MADGRAD's step with its learning rate inside (the update is ``x_{k+1} - x_k``)::

    lambda_k = (learning_rate(k) + eps) * sqrt(k + 1)
    s_{k+1} = s_k + lambda_k * g_k
    v_{k+1} = v_k + lambda_k * g_k^2
    z_{k+1} = x_0 - s_{k+1} / (v_{k+1}^(1/3) + eps)
    x_{k+1} = momentum * x_k + (1 - momentum) * z_{k+1}
    """

    fn_name = "contrib.madgrad"
    elementwise = True

    learning_rate: Any = field(1e-2, check=_checks.NONNEGATIVE)
    momentum: Any = field(0.9, check=_checks.UNIT)
    eps: Any = field(1e-6, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = _tree.tree_zeros_like
        return MadgradState(jnp.zeros((), jnp.int32), z(params), z(params), copy_tree(params))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: MADGRAD needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        k = state.count
        lr = value_at(self.learning_rate, k)
        mom = value_at(self.momentum, k)
        kf = k.astype(_tree.float_dtype())

        def leaf(g, p, v, s, x0):
            cd = _tree.compute_dtype(g.dtype, p.dtype, v.dtype)
            gc = g.astype(cd)
            eps = _tree.hp(self.eps, cd)
            lam = (_tree.hp(lr, cd) + eps) * jnp.sqrt(kf.astype(cd) + 1)
            v = v.astype(cd) + lam * gc * gc
            s = s.astype(cd) + lam * gc
            z = x0.astype(cd) - s / (jnp.cbrt(v) + eps)
            m = _tree.hp(mom, cd)
            pc = p.astype(cd)
            x = (1 - m) * z + m * pc
            return (x - pc).astype(g.dtype), v.astype(p.dtype), s.astype(p.dtype)

        out = jax.tree.map(leaf, updates, params, state.grad_sum_sq, state.s, state.x0)
        u, v, s = _tree.tree_unzip(updates, out, 3)
        return u, MadgradState(_tree.safe_increment(k), v, s, state.x0)


def scale_by_madgrad(learning_rate: Any, momentum: Any = 0.9, eps: Any = 1e-6) -> ScaleByMadgrad:
    """MADGRAD's step, learning rate included (see ``madgrad``)."""
    return ScaleByMadgrad(learning_rate, momentum, eps)


def madgrad(
    learning_rate: Any, momentum: Any = 0.9, weight_decay: Any = 0.0, eps: Any = 1e-6
) -> Transform:
    """MADGRAD (Optax's ``contrib.madgrad``).

    Update rule (k = 0, 1, ...; x_0 the params at init)::

        g_k = grad_k + weight_decay * x_k
        lambda_k = (learning_rate(k) + eps) * sqrt(k + 1)
        s_{k+1} = s_k + lambda_k * g_k
        v_{k+1} = v_k + lambda_k * g_k^2
        z_{k+1} = x_0 - s_{k+1} / (v_{k+1}^(1/3) + eps)
        x_{k+1} = momentum * x_k + (1 - momentum) * z_{k+1}

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax.
      momentum: weight of the previous iterate, in [0, 1); default 0.9.
      weight_decay: L2 coefficient >= 0 added to the gradient (coupled); default 0.
      eps: added to the learning rate and to the cube root, >= 0; default 1e-6.

    Conventions: Optax's ``contrib.madgrad`` and the authors' PyTorch code (``lr + eps``). The
    update needs ``params``.

    References:
      Defazio, Jelassi, "Adaptivity without Compromise: A Momentumized, Adaptive, Dual
      Averaged Gradient Method for Stochastic Optimization", JMLR 2022. arXiv:2101.11075
    """
    return chain(decay("contrib.madgrad", weight_decay),
                 ScaleByMadgrad(learning_rate, momentum, eps))  # fmt: skip
