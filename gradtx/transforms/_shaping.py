"""Stateless reshaping of updates: sign, trust ratio, gradient centralization, non-negativity."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree, _view
from .._transform import EmptyState, Transform, pytree_dataclass


def _needs_params(t: Transform, params: Any, updates: Any) -> None:
    if params is None:
        raise ValueError(
            f"{t.where()}: this transform needs params; call update(g, state, params)."
        )
    _checks.check_same_tree(t.where(), params, updates, "params", "updates")


@pytree_dataclass
class ScaleBySign(Transform):
    """``u <- sign(u)`` (signSGD's direction; 0 stays 0)."""

    def _update(self, updates, state, params, **extra):
        return jax.tree.map(jnp.sign, updates), state


def scale_by_sign() -> ScaleBySign:
    """Replaces each update element by its sign (``optax.scale_by_sign``).

    References:
      Bernstein, Wang, Azizzadenesheli, Anandkumar, "signSGD: Compressed Optimisation for
      Non-Convex Problems", ICML 2018. arXiv:1802.04434
    """
    return ScaleBySign()


@pytree_dataclass
class ScaleByTrustRatio(Transform):
    """Per leaf (LARS/LAMB)::

    r = trust_coefficient * max(|p|, min_norm) / (max(|u|, min_norm) + eps)
    u <- u * r     (u unchanged when either norm is 0)
    """

    min_norm: Any = 0.0
    trust_coefficient: Any = 1.0
    eps: Any = 0.0

    def __post_init__(self):
        _checks.check_nonnegative("scale_by_trust_ratio", "min_norm", self.min_norm)
        _checks.check_nonnegative(
            "scale_by_trust_ratio", "trust_coefficient", self.trust_coefficient
        )
        _checks.check_nonnegative("scale_by_trust_ratio", "eps", self.eps)

    def _init(self, params):
        _view.check_leafwise("gradtx.scale_by_trust_ratio", params, "per-leaf trust ratios")
        return EmptyState()

    def _update(self, updates, state, params, **extra):
        _view.check_leafwise("gradtx.scale_by_trust_ratio", updates, "per-leaf trust ratios")
        _needs_params(self, params, updates)

        def leaf(u, p):
            cd = _tree.compute_dtype(u.dtype, p.dtype)
            rd = _tree.real_dtype(cd)
            mn = _tree.hp(self.min_norm, rd)
            p_norm = jnp.maximum(jnp.sqrt(jnp.sum(_tree.abs_sq(p.astype(cd)))), mn)
            u_norm = jnp.maximum(jnp.sqrt(jnp.sum(_tree.abs_sq(u.astype(cd)))), mn)
            r = _tree.hp(self.trust_coefficient, rd) * p_norm / (u_norm + _tree.hp(self.eps, rd))
            r = jnp.where(jnp.logical_or(p_norm == 0, u_norm == 0), jnp.ones_like(r), r)
            return (u.astype(cd) * r).astype(u.dtype)

        return jax.tree.map(leaf, updates, params), state


def scale_by_trust_ratio(
    min_norm: Any = 0.0, trust_coefficient: Any = 1.0, eps: Any = 0.0
) -> ScaleByTrustRatio:
    """Scales each leaf by its trust ratio ``|p| / |u|`` (``optax.scale_by_trust_ratio``).

    References:
      You, Gitman, Ginsburg, "Large Batch Training of Convolutional Networks", 2017 (LARS).
      arXiv:1708.03888
      You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76 minutes",
      ICLR 2020 (LAMB). arXiv:1904.00962
    """
    return ScaleByTrustRatio(min_norm, trust_coefficient, eps)


@pytree_dataclass
class Centralize(Transform):
    """``u <- u - mean(u over all axes but the first)`` for leaves with 2+ dimensions."""

    def _init(self, params):
        _view.check_leafwise("gradtx.centralize", params, "per-row means of matrices")
        return EmptyState()

    def _update(self, updates, state, params, **extra):
        _view.check_leafwise("gradtx.centralize", updates, "per-row means of matrices")

        def leaf(u):
            if u.ndim < 2:
                return u
            cd = _tree.compute_dtype(u.dtype)
            uc = u.astype(cd)
            return (uc - jnp.mean(uc, axis=tuple(range(1, u.ndim)), keepdims=True)).astype(u.dtype)

        return jax.tree.map(leaf, updates), state


def centralize() -> Centralize:
    """Gradient centralization (``optax.centralize``): each output row of a matrix or kernel
    gets zero mean; vectors and scalars pass through.

    References:
      Yong, Huang, Hua, Zhang, "Gradient Centralization: A New Optimization Technique for Deep
      Neural Networks", ECCV 2020. arXiv:2004.01461
    """
    return Centralize()


@pytree_dataclass
class KeepParamsNonnegative(Transform):
    """``u <- -p`` where ``p + u < 0``, so the parameters after the update are >= 0."""

    def _update(self, updates, state, params, **extra):
        _needs_params(self, params, updates)

        def leaf(u, p):
            cd = _tree.compute_dtype(u.dtype, p.dtype)
            neg = p.astype(cd) + u.astype(cd) < 0
            return jnp.where(neg, -p.astype(cd), u.astype(cd)).astype(u.dtype)

        return jax.tree.map(leaf, updates, params), state


def keep_params_nonnegative() -> KeepParamsNonnegative:
    """Projects onto ``p >= 0``: place it last, after the learning rate
    (``optax.keep_params_nonnegative``). The parameters must start non-negative."""
    return KeepParamsNonnegative()
