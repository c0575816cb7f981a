"""Stateless reshaping of updates: sign, trust ratio, gradient centralization, non-negativity,
normalization by the global norm."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf, leaf_norm
from .._mask import as_mask, resolve_mask
from .._transform import EmptyState, Transform, field, pytree_dataclass, static_field


def _needs_params(t: Transform, params: Any, updates: Any) -> None:
    if params is None:
        raise ValueError(
            f"{t.where()}: this transform needs params; call update(g, state, params)."
        )
    _checks.check_same_tree(t.where(), params, updates, "params", "updates")


@pytree_dataclass
class ScaleBySign(Transform):
    """``u <- sign(u)`` (signSGD's direction; 0 stays 0)."""

    elementwise = True

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
class ScaleByTrustRatio(PerLeaf):
    """Per-leaf trust ratio (LARS/LAMB; stateless, needs params)::

    r = trust_coefficient * max(||p||, min_norm) / (max(||u||, min_norm) + eps)
    r = 1                                   where either norm is 0
    u <- r * u                              on the leaves where ``mask`` is True

    ``fn`` is the public name that errors report (``lamb`` and ``lars`` build this transform
    too).
    """

    state_type = EmptyState
    reads_params = True
    leaf_statistic = "per-leaf trust ratios"

    min_norm: Any = 0.0
    trust_coefficient: Any = 1.0
    eps: Any = 0.0
    mask: Any = static_field(None, converter=as_mask)
    fn: str = static_field("scale_by_trust_ratio")

    def __check_init__(self):
        # Checked here, not declared: lamb and lars build this class and errors name them.
        _checks.check_nonnegative(self.fn, "min_norm", self.min_norm)
        _checks.check_nonnegative(self.fn, "trust_coefficient", self.trust_coefficient)
        _checks.check_nonnegative(self.fn, "eps", self.eps)

    def _name(self):
        return f"gradtx.{self.fn}"

    def _statics(self, updates, params):
        return {"on": resolve_mask(self.mask, params, self.where())}

    def _leaf(self, s, u, p, on):
        if not on:
            return (u,)
        cd = _tree.compute_dtype(u.dtype, p.dtype)
        rd = _tree.real_dtype(cd)
        mn = _tree.hp(self.min_norm, rd)
        pn = jnp.maximum(leaf_norm(p.astype(cd)), mn)
        un = jnp.maximum(leaf_norm(u.astype(cd)), mn)
        r = _tree.hp(self.trust_coefficient, rd) * pn / (un + _tree.hp(self.eps, rd))
        r = jnp.where((pn == 0) | (un == 0), jnp.ones((), rd), r)
        return ((u.astype(cd) * r).astype(u.dtype),)


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
class Centralize(PerLeaf):
    """``u <- u - mean(u over all axes but the first)`` for leaves with 2+ dimensions."""

    state_type = EmptyState
    leaf_statistic = "per-row means of matrices"

    def _name(self):
        return "gradtx.centralize"

    def _leaf(self, s, u):
        if u.ndim < 2:
            return (u,)
        cd = _tree.compute_dtype(u.dtype)
        uc = u.astype(cd)
        rows = tuple(range(1, u.ndim))
        return ((uc - jnp.mean(uc, axis=rows, keepdims=True)).astype(u.dtype),)


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

    elementwise = True

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


@pytree_dataclass
class NormalizeByUpdateNorm(Transform):
    """``u <- scale_factor * u / (||u|| + eps)`` with ``||u||`` the global L2 norm."""

    elementwise = True  # one global norm over every element
    fn_name = "normalize_by_update_norm"

    scale_factor: Any = field(1.0)
    eps: Any = field(1e-6, check=_checks.NONNEGATIVE)

    def _update(self, updates, state, params, **extra):
        norm = _tree.tree_norm(updates)
        denom = (norm + jnp.asarray(self.eps, norm.dtype)) / jnp.asarray(
            self.scale_factor, norm.dtype
        )

        def leaf(u):
            cd = _tree.compute_dtype(u.dtype)
            return (u.astype(cd) / denom.astype(_tree.real_dtype(cd))).astype(u.dtype)

        return jax.tree.map(leaf, updates), state


def normalize_by_update_norm(scale_factor: Any = 1.0, eps: Any = 1e-6) -> NormalizeByUpdateNorm:
    """Rescales the updates to a fixed global norm::

        u <- scale_factor * u / (||u|| + eps)        (||u||: L2 norm over every leaf)

    Args:
      scale_factor: the norm of the result (up to ``eps``); any real number (a negative one
        also flips the direction).
      eps: added to the norm so a zero update stays zero, >= 0 (default 1e-6).

    Conventions:
      ``optax.normalize_by_update_norm``: same signature, defaults and numbers. torch.optim has
      no counterpart.
    """
    return NormalizeByUpdateNorm(scale_factor, eps)
