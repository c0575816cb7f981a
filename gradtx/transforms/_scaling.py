"""Scalings: negation (maximize), a scheduled factor, the parameter's scale (norm or rms) and
distance over gradients (DoG)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf, leaf_norm
from .._transform import (
    CountState,
    EmptyState,
    Transform,
    field,
    pytree_dataclass,
    scale_tree,
    static_field,
    value_at,
)


@pytree_dataclass
class Negate(Transform):
    """``u <- -u``. At the head of a chain it turns minimization into maximization."""

    elementwise = True

    def _update(self, updates, state, params, **extra):
        return jax.tree.map(jnp.negative, updates), state


def negate() -> Negate:
    """Negates the updates (torch's ``maximize=True`` when placed first)."""
    return Negate()


# --------------------------------------------------------------------------------------------
# Scaling by a schedule, by the parameter's scale, and by distance over gradients


@pytree_dataclass
class ScaleBySchedule(Transform):
    """``u_t <- step_size_fn(count) * u_t``, ``count`` the updates applied before this one."""

    elementwise = True
    fn_name = "scale_by_schedule"

    step_size_fn: Any = field()

    def _init(self, params):
        return CountState(jnp.zeros((), jnp.int32))

    def _update(self, updates, state, params, **extra):
        factor = value_at(self.step_size_fn, state.count)
        return scale_tree(updates, factor), CountState(_tree.safe_increment(state.count))


def scale_by_schedule(step_size_fn: Any) -> ScaleBySchedule:
    """Multiplies the updates by a scheduled factor, sign kept::

        u_t <- step_size_fn(t - 1) * u_t          (t = 1, 2, ...: the first update uses 0)

    Args:
      step_size_fn: a schedule ``count -> factor`` (a gradtx schedule or any callable), or a
        constant (a float or an array); any real value, negative ones flip the direction.

    Conventions:
      ``optax.scale_by_schedule``: same signature and numbers (the factor is computed in at least
      float32 and the result cast back to each leaf's dtype). ``scale_by_learning_rate(lr)`` is
      ``scale_by_schedule(lambda t: -lr(t))`` restricted to rates >= 0. torch.optim's
      ``LambdaLR`` multiplies the learning rate the same way.
    """
    return ScaleBySchedule(step_size_fn)


@pytree_dataclass
class ScaleByParamBlockNorm(PerLeaf):
    """``u <- max(||p||, min_scale) * u`` per leaf (``||p||``: the leaf's L2 norm)."""

    fn_name = "scale_by_param_block_norm"
    state_type = EmptyState
    reads_params = True
    leaf_statistic = "per-leaf parameter norms"

    min_scale: Any = field(1e-3, check=_checks.NONNEGATIVE)

    def _leaf(self, s, u, p):
        cd = _tree.compute_dtype(u.dtype, p.dtype)
        scale = jnp.maximum(leaf_norm(p.astype(cd)), _tree.hp(self.min_scale, _tree.real_dtype(cd)))
        return ((u.astype(cd) * scale).astype(u.dtype),)


def scale_by_param_block_norm(min_scale: Any = 1e-3) -> ScaleByParamBlockNorm:
    """Scales each leaf's update by the norm of its parameter, floored at ``min_scale``::

        u <- max(||p||_2, min_scale) * u           (one factor per leaf)

    Needs ``params``.

    Args:
      min_scale: the smallest factor, >= 0 (default 1e-3), so parameters that start at zero
        still move.

    Conventions:
      ``optax.scale_by_param_block_norm``: same signature, defaults and numbers. torch.optim has
      no counterpart.

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018 (relative step sizes). arXiv:1804.04235
    """
    return ScaleByParamBlockNorm(min_scale)


@pytree_dataclass
class ScaleByParamBlockRMS(PerLeaf):
    """``u <- max(rms(p), min_scale) * u`` per leaf (``rms(p) = sqrt(mean(|p|^2))``)."""

    fn_name = "scale_by_param_block_rms"
    state_type = EmptyState
    reads_params = True
    leaf_statistic = "per-leaf parameter rms"

    min_scale: Any = field(1e-3, check=_checks.NONNEGATIVE)

    def _leaf(self, s, u, p):
        cd = _tree.compute_dtype(u.dtype, p.dtype)
        rms = jnp.sqrt(jnp.mean(_tree.abs_sq(p.astype(cd))))
        scale = jnp.maximum(rms, _tree.hp(self.min_scale, _tree.real_dtype(cd)))
        return ((u.astype(cd) * scale).astype(u.dtype),)


def scale_by_param_block_rms(min_scale: Any = 1e-3) -> ScaleByParamBlockRMS:
    """Scales each leaf's update by the root mean square of its parameter, floored::

        u <- max(sqrt(mean(|p|^2)), min_scale) * u      (one factor per leaf)

    Adafactor's parameter scale (``adafactor``'s ``multiply_by_parameter_scale``). Needs
    ``params``.

    Args:
      min_scale: the smallest factor, >= 0 (default 1e-3; Adafactor's eps2).

    Conventions:
      ``optax.scale_by_param_block_rms``: same signature, defaults and numbers.
      torch.optim.Adafactor's ``max(eps2, rms(p))`` factor is this with ``min_scale=eps2``.

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018. arXiv:1804.04235
    """
    return ScaleByParamBlockRMS(min_scale)


class ScaleByDistanceOverGradientsState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    max_dist: Any  # per leaf, r_t: the largest distance from the initial params (a scalar)
    grad_sum_of_squares: Any  # per leaf, G_t: the running sum of |g|^2 (a scalar)
    init_params: Any  # x_0, in param_dtype


@pytree_dataclass
class ScaleByDistanceOverGradients(PerLeaf):
    """Layer-wise DoG, per leaf::

    r_t = max(r_{t-1}, ||x_t - x_0||)         (r_0 = reps_rel * (1 + ||x_0||))
    G_t = G_{t-1} + ||g_t||^2                  (G_0 = 0)
    u_t = global_scale * r_t / sqrt(G_t + eps) * g_t
    """

    fn_name = "scale_by_distance_over_gradients"
    state_type = ScaleByDistanceOverGradientsState
    reads_params = True
    leaf_statistic = "per-leaf distances and gradient norms"

    reps_rel: Any = field(1e-6, check=_checks.POSITIVE)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    param_dtype: Any = static_field(jnp.float32)
    global_scale: Any = field(1.0, check=_checks.NONNEGATIVE)

    def _checked(self):
        return ("init_params",)  # the distance and the sum are one scalar per leaf

    def _init_leaf(self, p):
        rd = _tree.compute_dtype(_tree.real_dtype(p.dtype))
        x0 = p.astype(self.param_dtype) if self.param_dtype is not None else p
        r0 = _tree.hp(self.reps_rel, rd) * (1 + leaf_norm(p.astype(rd)))
        return r0, jnp.zeros((), rd), x0

    def _leaf(self, s, g, max_dist, grad_sum_of_squares, init_params, p):
        cd = _tree.compute_dtype(g.dtype, p.dtype, init_params.dtype)
        rd = max_dist.dtype
        dist = leaf_norm(p.astype(cd) - init_params.astype(cd)).astype(rd)
        r = jnp.maximum(max_dist, dist)
        big_g = grad_sum_of_squares + jnp.sum(_tree.abs_sq(g.astype(cd))).astype(rd)
        eta = _tree.hp(self.global_scale, rd) * r / jnp.sqrt(big_g + _tree.hp(self.eps, rd))
        return (g.astype(cd) * eta).astype(g.dtype), r, big_g, init_params


def scale_by_distance_over_gradients(
    reps_rel: Any = 1e-6,
    eps: Any = 1e-8,
    param_dtype: Any = jnp.float32,
    global_scale: Any = 1.0,
) -> ScaleByDistanceOverGradients:
    """Distance over gradients (DoG), the layer-wise form: a parameter-free step size per leaf::

        r_t = max(r_{t-1}, ||x_t - x_0||)          (r_0 = reps_rel * (1 + ||x_0||))
        G_t = G_{t-1} + ||g_t||^2                   (G_0 = 0)
        u_t = global_scale * r_t / sqrt(G_t + eps) * g_t

    ``x_t`` are the params passed to ``update`` (needed) and norms are per leaf. The sign is
    kept: follow it with ``scale_by_learning_rate(1.0)`` (or ``scale(-1.0)``) to descend.

    Args:
      reps_rel: the initial distance relative to ``1 + ||x_0||``, > 0 (default 1e-6).
      eps: added to ``G_t`` inside the root, >= 0 (default 1e-8).
      param_dtype: dtype the initial params are stored in (default float32; None keeps each
        parameter's dtype).
      global_scale: a factor on every step, >= 0 (default 1).

    Conventions:
      ``optax.scale_by_distance_over_gradients``: same signature, defaults and numbers, except
      that ``r`` and ``G`` are scalars per leaf (Optax keeps ``G`` as a shape-(1,) array, which
      turns a 0-d leaf's update into shape (1,)). torch.optim has no counterpart.

    References:
      Ivgi, Hinder, Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
      Schedule", ICML 2023. arXiv:2302.12022
    """
    return ScaleByDistanceOverGradients(reps_rel, eps, param_dtype, global_scale)
