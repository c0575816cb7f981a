"""LAMB: Adam's direction plus decoupled decay, rescaled per leaf by a trust ratio."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree, _view
from .._mask import canonical_mask, resolve_mask
from .._transform import Chain, EmptyState, Transform, pytree_dataclass, static_field
from ..transforms._weight_decay import add_decayed_weights
from ._common import COMMON_DOCS, _has_decay, fill_doc, optimizer_chain
from .adam import scale_by_adam


@pytree_dataclass
class ScaleByTrustRatio(Transform):
    """Per-leaf trust ratio (stateless; needs params)::

    r = trust_coefficient * max(||p||, min_norm) / (max(||u||, min_norm) + eps)
    r = 1                                   where either norm is 0
    u <- r * u                              on the leaves where ``mask`` is True

    On ``gradtx.flatten(params, stack=True)`` buffers the norms are taken per stacked leaf (over
    the axes after the stacking axis), so LAMB and LARS give the tree's numbers there.
    """

    min_norm: Any = 0.0
    trust_coefficient: Any = 1.0
    eps: Any = 0.0
    mask: Any = static_field(None)
    fn: str = static_field("lamb")

    def __post_init__(self):
        object.__setattr__(self, "mask", canonical_mask(self.mask, self.fn))
        _checks.check_nonnegative(self.fn, "min_norm", self.min_norm)
        _checks.check_nonnegative(self.fn, "trust_coefficient", self.trust_coefficient)
        _checks.check_nonnegative(self.fn, "eps", self.eps)

    def _stack_axes(self, tree):
        """Per leaf, its leading axes that index stacked leaves (``flatten(stack=True)``)."""
        return _view.stack_axes(f"gradtx.{self.fn}", tree, "per-leaf trust ratios")

    def _init(self, params):
        self._stack_axes(params)
        return EmptyState()

    def _update(self, updates, state, params, **extra):
        stack = iter(self._stack_axes(updates))
        if params is None:
            raise ValueError(f"{self.where()}: the trust ratio needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        mask = resolve_mask(self.mask, params, self.where())

        def leaf(u, p, on):
            nb = next(stack)  # norms over each stacked leaf's own axes
            if not on:
                return u
            cd = _tree.compute_dtype(u.dtype, p.dtype)
            rd = _tree.real_dtype(cd)
            mn = _tree.hp(self.min_norm, rd)
            axes = tuple(range(nb, jnp.ndim(u)))

            def norm(x):
                return jnp.sqrt(jnp.sum(_tree.abs_sq(x.astype(cd)), axis=axes, keepdims=True))

            pn = jnp.maximum(norm(p), mn)
            un = jnp.maximum(norm(u), mn)
            r = _tree.hp(self.trust_coefficient, rd) * pn / (un + _tree.hp(self.eps, rd))
            r = jnp.where((pn == 0) | (un == 0), jnp.ones((), rd), r)
            return (u.astype(cd) * r).astype(u.dtype)

        return jax.tree.map(leaf, updates, params, mask), state


def lamb(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-6,
    weight_decay: Any = 0.0,
    *,
    eps_root: Any = 0.0,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """LAMB (layer-wise adaptive moments), Optax's semantics and defaults.

    Update rule (t = 1, 2, ...), per leaf::

        m_t, v_t as in adam; a_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
        d_t = a_t + weight_decay * p_{t-1}
        r_t = ||p_{t-1}|| / ||d_t||      (1 when either norm is 0)
        p_t = p_{t-1} - lr * r_t * d_t

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the root, >= 0 (1e-6, Optax's and the paper's).
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), added to the
        Adam direction *before* the trust ratio, as in ``optax.lamb`` and the paper.
      eps_root: added inside the root, >= 0.
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one (Optax's ``mask``). None decays every leaf.

    Conventions: ``lamb(lr, b1, b2, eps, wd)`` equals ``optax.lamb(lr, b1, b2, eps,
    weight_decay=wd)``.

    References:
      You, Li, Reddi, Hseu, Kumar, Bhojanapalli, Song, Demmel, Keutzer, Hsieh, "Large Batch
      Optimization for Deep Learning: Training BERT in 76 minutes", ICLR 2020. arXiv:1904.00962
    """
    _checks.check_nonnegative("lamb", "weight_decay", weight_decay)
    parts: list[Transform] = [scale_by_adam(b1, b2, eps, eps_root)]
    if _has_decay(weight_decay):
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(ScaleByTrustRatio(fn="lamb"))
    return optimizer_chain("lamb", Chain(tuple(parts)), learning_rate, maximize=maximize)


fill_doc(lamb, **COMMON_DOCS)
