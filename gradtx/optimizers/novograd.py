"""NovoGrad: layer-wise second moments, with the weight decay inside the momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._mask import as_mask, resolve_mask
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class NovoGradState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # momentum, shaped like the params
    nu: Any  # one scalar per leaf: EMA of its squared norm


@pytree_dataclass
class ScaleByNovograd(PerLeaf):
    """NovoGrad's direction (no learning rate), per leaf::

    v_1 = ||g_1||^2;       v_t = b2 * v_{t-1} + (1 - b2) * ||g_t||^2
    d_t = g_t / (sqrt(v_t + eps_root) + eps) + weight_decay * p_{t-1}
    m_1 = d_1;             m_t = b1 * m_{t-1} + d_t
    u_t = m_t
    """

    fn_name = "novograd"
    state_type = NovoGradState
    leaf_statistic = "per-leaf gradient norms"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.25, check=_checks.UNIT)
    eps: Any = field(1e-6, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    mask: Any = static_field(None, converter=as_mask)
    mu_dtype: Any = static_field(None)

    def _needs_params(self):
        return self.weight_decay is not None

    def _checked(self):
        return ("mu",)  # nu holds one scalar per leaf

    def _init_leaf(self, p):
        return _tree.zeros_like(p, self.mu_dtype), jnp.zeros((), _tree.real_dtype(p.dtype))

    def _scalars(self, count, t):
        b1, b2, wd = (value_at(h, count) for h in (self.b1, self.b2, self.weight_decay))
        return {"first": count == 0, "b1": b1, "b2": b2, "wd": wd}

    def _statics(self, updates, params):
        if not self._needs_params():
            return {}
        return {"on": resolve_mask(self.mask, params, self.where())}

    def _leaf(self, s, g, mu, nu, p=None, on=False):
        cd = _tree.compute_dtype(g.dtype, mu.dtype, nu.dtype)
        rd = _tree.real_dtype(cd)
        gc = g.astype(cd)
        c1, c2 = _tree.hp(s.b1, rd), _tree.hp(s.b2, rd)
        sq = jnp.sum(_tree.abs_sq(gc))
        v_new = jnp.where(s.first, sq, c2 * nu.astype(rd) + (1 - c2) * sq)
        d = gc / (jnp.sqrt(v_new + _tree.hp(self.eps_root, rd)) + _tree.hp(self.eps, rd))
        if on:
            d = d + _tree.hp(s.wd, rd) * p.astype(cd)
        m_new = jnp.where(s.first, d, c1 * mu.astype(cd) + d)
        return m_new.astype(g.dtype), m_new.astype(mu.dtype), v_new.astype(nu.dtype)


def scale_by_novograd(
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mu_dtype: Any = None,
    *,
    mask: Any = None,
) -> ScaleByNovograd:
    """NovoGrad's direction without the learning rate (``ScaleByNovograd``; Optax's defaults)."""
    return ScaleByNovograd(b1, b2, eps, eps_root, weight_decay, mask, mu_dtype)


def novograd(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.25,
    eps: Any = 1e-6,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    *,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    maximize: bool = False,
):
    """NovoGrad, ``optax.novograd``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...), per leaf (``||.||`` is the leaf's L2 norm)::

        v_t = ||g_t||^2 (t = 1);   b2 * v_{t-1} + (1 - b2) * ||g_t||^2 (t > 1)
        d_t = g_t / (sqrt(v_t + eps_root) + eps) + weight_decay * p_{t-1}
        m_t = d_t (t = 1);         b1 * m_{t-1} + d_t (t > 1)
        p_t = p_{t-1} - lr * m_t

    Args:
      {learning_rate}
      b1: momentum coefficient in [0, 1) (float, array or schedule).
      b2: decay of the per-leaf second moment, in [0, 1) (float, array or schedule).
      eps: added outside the root, >= 0 (1e-6, Optax's alias; ``scale_by_novograd``'s is 1e-8).
      eps_root: added inside the root, >= 0.
      weight_decay: coefficient >= 0 (float, array or schedule) of the decay added to the
        normalized gradient *inside* the momentum, as in ``optax.novograd`` and the paper.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      {maximize}

    Conventions: Optax's. torch.optim has no NovoGrad.

    References:
      Ginsburg, Castonguay, Hrinchuk, Kuchaiev, Lavrukhin, Leary, Li, Nguyen, Zhang, Cohen,
      "Stochastic Gradient Methods with Layer-wise Adaptive Moments for Training of Deep
      Networks", 2019. arXiv:1905.11286
    """
    pre = ScaleByNovograd(b1, b2, eps, eps_root, weight_decay, weight_decay_mask, mu_dtype)
    return optimizer_chain("novograd", pre, learning_rate, maximize=maximize)


fill_doc(novograd, **COMMON_DOCS)
