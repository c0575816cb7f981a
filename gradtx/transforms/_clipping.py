"""Clipping: element-wise, by global norm, by block RMS, adaptive (AGC), and the final step.

Every clipper keeps the global L2 norm of its input in its state (``ClipState.norm``), so the
pre-clip gradient norm can be logged without computing it twice. Global norms are summed with a
pairwise (balanced) reduction over leaves (``gradtx._tree.tree_norm``), which keeps compile time
low with thousands of leaves.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import Transform, field, pytree_dataclass, static_field, value_at


class ClipState(NamedTuple):
    """``norm``: global L2 norm of the updates this clipper received at its last step (float32
    or wider; 0 before the first step). ``count``: steps taken (for scheduled thresholds)."""

    count: jax.Array
    norm: jax.Array


def _init_state() -> ClipState:
    return ClipState(jnp.zeros((), jnp.int32), jnp.zeros((), _tree.float_dtype()))


def _next_state(state: ClipState, norm: jax.Array) -> ClipState:
    return ClipState(_tree.safe_increment(state.count), norm.astype(state.norm.dtype))


def _leaf_map(fn, updates):
    return jax.tree.map(lambda u: fn(u, _tree.compute_dtype(u.dtype)), updates)


@pytree_dataclass
class Clip(Transform):
    """``u <- clip(u, -max_delta, max_delta)`` element-wise (real and imaginary parts apart)."""

    elementwise = True
    fn_name = "clip"

    max_delta: Any = field(1.0, check=_checks.NONNEGATIVE)

    def _init(self, params):
        return _init_state()

    def _update(self, updates, state, params, **extra):
        norm = _tree.tree_norm(updates)
        d = value_at(self.max_delta, state.count)

        def leaf(u, cd):
            dd = _tree.hp(d, cd)
            if jnp.iscomplexobj(u):
                return jax.lax.complex(
                    jnp.clip(jnp.real(u), -dd, dd).astype(_tree.real_dtype(u.dtype)),
                    jnp.clip(jnp.imag(u), -dd, dd).astype(_tree.real_dtype(u.dtype)),
                )
            return jnp.clip(u.astype(cd), -dd, dd).astype(u.dtype)

        return _leaf_map(leaf, updates), _next_state(state, norm)


def clip(max_delta: Any) -> Clip:
    """Clips every update element to ``[-max_delta, max_delta]`` (``optax.clip``)."""
    return Clip(max_delta)


@pytree_dataclass
class ClipByGlobalNorm(Transform):
    """``u <- u * min(1, max_norm / ||u||)`` with ``||u||`` the L2 norm over all leaves.

    Identical to ``optax.clip_by_global_norm`` (``u`` is unchanged when ``||u|| < max_norm``).
    """

    elementwise = True
    fn_name = "clip_by_global_norm"

    max_norm: Any = field(1.0, check=_checks.POSITIVE)

    def _init(self, params):
        return _init_state()

    def _update(self, updates, state, params, **extra):
        norm = _tree.tree_norm(updates)
        c = jnp.asarray(value_at(self.max_norm, state.count), norm.dtype)
        # One scalar factor for every leaf: 1 below the threshold, c / norm above.
        factor = jnp.where(norm < c, jnp.ones_like(norm), c / jnp.where(norm < c, 1, norm))

        def leaf(u, cd):
            return (u.astype(cd) * factor.astype(cd)).astype(u.dtype)

        return _leaf_map(leaf, updates), _next_state(state, norm)


def clip_by_global_norm(max_norm: Any) -> ClipByGlobalNorm:
    """Rescales the updates so their global L2 norm is at most ``max_norm`` (torch's
    ``clip_grad_norm_`` without eps, ``optax.clip_by_global_norm``). The pre-clip norm is in
    ``state.norm``."""
    return ClipByGlobalNorm(max_norm)


@pytree_dataclass
class ClipByBlockRMS(PerLeaf):
    """Per leaf: ``u <- u / max(1, rms(u) / threshold)`` with ``rms(u) = sqrt(mean(|u|^2))``."""

    fn_name = "clip_by_block_rms"
    state_type = ClipState
    carry_fields = ("norm",)
    leaf_statistic = "per-leaf RMS clipping"

    threshold: Any = field(1.0, check=_checks.POSITIVE)

    def _carry_init(self):
        return {"norm": _init_state().norm}

    def _next_carry(self, updates, state):
        return {"norm": _next_state(state, _tree.tree_norm(updates)).norm}

    def _scalars(self, count, t):
        return {"threshold": value_at(self.threshold, count)}

    def _leaf(self, s, u):
        cd = _tree.compute_dtype(u.dtype)
        uc = u.astype(cd)
        rms = jnp.sqrt(jnp.mean(_tree.abs_sq(uc)))
        return ((uc / jnp.maximum(1.0, rms / _tree.hp(s.threshold, cd))).astype(u.dtype),)


def clip_by_block_rms(threshold: Any) -> ClipByBlockRMS:
    """Clips each leaf's root-mean-square to ``threshold`` (``optax.clip_by_block_rms``;
    Adafactor's update clipping)."""
    return ClipByBlockRMS(threshold)


def unitwise_norm(x: Any, axis: int | tuple[int, ...] | None = None) -> jax.Array:
    """The L2 norm of each output unit, broadcast to ``x``'s shape::

        n = sqrt(sum over the reduced axes of |x|^2)

    Args:
      x: an array (a parameter or gradient leaf).
      axis: the axes to reduce. ``None`` (default) picks them from the shape: scalars and
        vectors (at most one dimension of size > 1) reduce over everything; matrices (in, out)
        and 3-D (heads) over axis 0; 4-D conv kernels (H, W, in, out) over axes 0-2; 5-D over
        axes 0-3. Other shapes need ``axis``.

    Conventions:
      ``optax.unitwise_norm``: same signature and numbers (complex entries count ``|x|^2``).
    """
    x = jnp.asarray(x)
    shape = jnp.shape(x)
    if axis is None:
        if sum(d != 1 for d in shape) <= 1:
            axis = tuple(range(len(shape)))
        elif len(shape) in (2, 3):
            axis = (0,)
        elif len(shape) in (4, 5):
            axis = tuple(range(len(shape) - 1))
        else:
            raise ValueError(
                f"gradtx.unitwise_norm: without axis, x must have at most 5 dimensions (or one of "
                f"size > 1), got shape {shape}; pass axis= to name the axes to reduce."
            )
    norm = jnp.sqrt(jnp.sum(_tree.abs_sq(x), axis=axis, keepdims=True))
    return jnp.broadcast_to(norm, shape)


def unitwise_clip(g_norm: Any, max_norm: Any, grad: Any, div_eps: Any = 1e-6) -> jax.Array:
    """Rescales the units whose norm exceeds their bound::

        grad                                       where g_norm < max_norm
        grad * max_norm / max(g_norm, div_eps)     elsewhere

    Args:
      g_norm: the unit norms of ``grad`` (``unitwise_norm(grad)``), shaped like ``grad``.
      max_norm: the bounds, shaped like ``grad``.
      grad: the gradient leaf.
      div_eps: floor of the divisor, > 0 (default 1e-6).

    Conventions:
      ``optax.unitwise_clip``: same signature and numbers.
    """
    g_norm, max_norm, grad = jnp.asarray(g_norm), jnp.asarray(max_norm), jnp.asarray(grad)
    if not jnp.shape(g_norm) == jnp.shape(max_norm) == jnp.shape(grad):
        raise ValueError(
            f"gradtx.unitwise_clip: g_norm, max_norm and grad must have one shape, got "
            f"{jnp.shape(g_norm)}, {jnp.shape(max_norm)} and {jnp.shape(grad)}"
        )
    _checks.POSITIVE("unitwise_clip", "div_eps", div_eps)
    clipped = grad * (max_norm / jnp.maximum(g_norm, div_eps))
    return jnp.where(g_norm < max_norm, grad, clipped)


def _axis_tuple(fn: str, name: str, value: Any) -> Any:
    """A list of axes as the hashable tuple a static field holds."""
    return tuple(value) if isinstance(value, list) else value


@pytree_dataclass
class AdaptiveGradClip(PerLeaf):
    """AGC, unit-wise: ``g <- g * (clipping * max(|p|, eps) / |g|)`` where
    ``|g| > clipping * max(|p|, eps)``, with ``|.|`` the ``unitwise_norm``."""

    fn_name = "adaptive_grad_clip"
    state_type = ClipState
    carry_fields = ("norm",)
    reads_params = True
    leaf_statistic = "unit-wise norms"

    clipping: Any = field(1e-2, check=_checks.POSITIVE)
    eps: Any = field(1e-3, check=_checks.NONNEGATIVE)
    axis: Any = static_field(None, converter=_axis_tuple)

    def _carry_init(self):
        return {"norm": _init_state().norm}

    def _next_carry(self, updates, state):
        return {"norm": _next_state(state, _tree.tree_norm(updates)).norm}

    def _scalars(self, count, t):
        return {"clipping": value_at(self.clipping, count)}

    def _leaf(self, s, g, p):
        cd = _tree.compute_dtype(g.dtype, p.dtype)
        gc, pc = g.astype(cd), p.astype(cd)
        rd = _tree.real_dtype(cd)
        g_norm = unitwise_norm(gc, self.axis)
        p_norm = unitwise_norm(pc, self.axis)
        max_norm = _tree.hp(s.clipping, rd) * jnp.maximum(p_norm, _tree.hp(self.eps, rd))
        return (unitwise_clip(g_norm, max_norm, gc).astype(g.dtype),)


def adaptive_grad_clip(
    clipping: Any, eps: Any = 1e-3, axis: int | tuple[int, ...] | None = None
) -> AdaptiveGradClip:
    """Adaptive gradient clipping (AGC): clips each unit's gradient relative to its weights::

        bound = clipping * max(unitwise_norm(p), eps)
        g <- g                                  where unitwise_norm(g) < bound
        g <- g * bound / unitwise_norm(g)       elsewhere

    Args:
      clipping: the largest ratio of gradient to parameter norm per unit, > 0 (a float, an
        array or a schedule).
      eps: floor on the parameter norm (so zero-initialized units can move), >= 0.
      axis: the axes ``unitwise_norm`` reduces; ``None`` picks them from each leaf's shape.

    ``update`` needs the params. ``state.norm`` holds the global norm of the incoming updates.

    Conventions:
      ``optax.adaptive_grad_clip``: same signature and numbers (Optax keeps no state).
      torch.optim has no counterpart.

    References:
      Brock, De, Smith, Simonyan, "High-Performance Large-Scale Image Recognition Without
      Normalization", ICML 2021. arXiv:2102.06171
    """
    return AdaptiveGradClip(clipping, eps, axis)


def _per_example_norms(where: str, grads: Any) -> jax.Array:
    """The L2 norm of each example's gradient over the whole tree (axis 0 indexes examples)."""
    leaves = jax.tree.leaves(grads)
    sizes = {jnp.shape(g)[0] if jnp.ndim(g) else None for g in leaves}
    if not leaves or None in sizes or len(sizes) != 1:
        raise ValueError(
            f"{where}: every leaf of grads must have the same leading (per-example) axis, got "
            f"shapes {jax.tree.map(jnp.shape, grads)}"
        )
    total = None
    for g in leaves:
        sq = jnp.sum(
            _tree.abs_sq(g.astype(_tree.compute_dtype(g.dtype))), axis=tuple(range(1, g.ndim))
        )
        total = sq if total is None else total + sq
    return jnp.sqrt(total)


def per_example_global_norm_clip(grads: Any, l2_norm_clip: Any) -> tuple[Any, jax.Array]:
    """Clips each example's gradient to a global L2 norm, then sums over the examples::

        n_i = ||g_i|| over every leaf            (g_i: example i, axis 0 of each leaf)
        c_i = min(1, l2_norm_clip / n_i)         (1 when n_i = 0)
        out = sum_i c_i * g_i

    Args:
      grads: a tree whose leaves all have the examples on axis 0.
      l2_norm_clip: the largest norm of one example's gradient, >= 0.

    Returns:
      ``(summed_clipped_grads, num_clipped)``: the sum keeps each leaf's dtype without axis 0;
      ``num_clipped`` counts the examples whose norm exceeded the bound.

    Conventions:
      ``optax.per_example_global_norm_clip`` (DP-SGD's clipping; ``gradtx.contrib.dpsgd``
      adds the noise).
    """
    _checks.NONNEGATIVE("per_example_global_norm_clip", "l2_norm_clip", l2_norm_clip)
    norms = _per_example_norms("gradtx.per_example_global_norm_clip", grads)
    ratio = jnp.minimum(jnp.asarray(l2_norm_clip, norms.dtype) / norms, 1.0)
    factors = jnp.where(jnp.isnan(ratio), 1.0, ratio)
    clipped = jax.tree.map(
        lambda g: jnp.tensordot(factors.astype(_tree.compute_dtype(g.dtype)), g, axes=1).astype(
            g.dtype
        ),
        grads,
    )
    return clipped, jnp.sum(factors < 1.0)


def per_example_layer_norm_clip(
    grads: Any, global_l2_norm_clip: Any, uniform: bool = True
) -> tuple[Any, Any]:
    """Per-example clipping leaf by leaf, each leaf with its share of a global bound::

        bound_leaf = global_l2_norm_clip / sqrt(number of leaves)                (uniform)
        bound_leaf = global_l2_norm_clip * sqrt(leaf size / total size)         (otherwise)
        out_leaf, count_leaf = per_example_global_norm_clip(g_leaf, bound_leaf)

    The bounds' squares sum to ``global_l2_norm_clip ** 2``, so the clipped examples' global
    norms stay within it.

    Args:
      grads: a tree whose leaves all have the examples on axis 0.
      global_l2_norm_clip: the overall bound, >= 0.
      uniform: the same bound for every leaf (default), or bounds proportional to the square
        root of each leaf's size (per example).

    Returns:
      ``(summed_clipped_grads, num_clipped)``, both trees shaped like ``grads``'s structure.

    Conventions:
      ``optax.per_example_layer_norm_clip``.
    """
    where = "gradtx.per_example_layer_norm_clip"
    _checks.NONNEGATIVE("per_example_layer_norm_clip", "global_l2_norm_clip", global_l2_norm_clip)
    _per_example_norms(where, grads)  # the shape check
    leaves, treedef = jax.tree.flatten(grads)
    if uniform:
        bounds = [global_l2_norm_clip * (1.0 / len(leaves)) ** 0.5 for _ in leaves]
    else:
        total = sum(int(np.prod(jnp.shape(g)[1:])) for g in leaves)
        bounds = [
            global_l2_norm_clip * (int(np.prod(jnp.shape(g)[1:])) / total) ** 0.5 for g in leaves
        ]
    outs = [per_example_global_norm_clip(g, b) for g, b in zip(leaves, bounds)]
    return (
        treedef.unflatten([o[0] for o in outs]),
        treedef.unflatten([o[1] for o in outs]),
    )


@pytree_dataclass
class ClipUpdates(Transform):
    """Caps the final step: element-wise to ``max_delta`` and/or globally to ``max_norm``."""

    elementwise = True
    fn_name = "clip_updates"

    max_delta: Any = field(None, check=_checks.NONNEGATIVE)
    max_norm: Any = field(None, check=_checks.POSITIVE)

    def __check_init__(self):
        if self.max_delta is None and self.max_norm is None:
            raise _checks.HyperparameterError(
                "gradtx.clip_updates: give max_delta, max_norm or both, got neither"
            )

    def _init(self, params):
        return _init_state()

    def _update(self, updates, state, params, **extra):
        norm = _tree.tree_norm(updates)
        if self.max_delta is not None:
            updates, _ = Clip(self.max_delta)._update(updates, state, params)
        if self.max_norm is not None:
            updates, _ = ClipByGlobalNorm(self.max_norm)._update(updates, state, params)
        return updates, _next_state(state, norm)


def clip_updates(max_delta: Any = None, max_norm: Any = None) -> ClipUpdates:
    """Caps the parameter step itself; place it after the learning rate.

    Where ``clip``/``clip_by_global_norm`` act on gradients, this bounds how far the parameters
    move in one step: first each element to ``[-max_delta, max_delta]``, then the global norm to
    ``max_norm`` (either may be None). ``state.norm`` holds the step's norm before the cap.
    """
    return ClipUpdates(max_delta, max_norm)
