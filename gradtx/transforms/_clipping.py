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

from .. import _checks, _fusion, _tree
from .._kernel import PerLeaf
from .._transform import Transform, field, pytree_dataclass, value_at


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
            def scaled(x):
                return (x.astype(cd) * factor.astype(cd)).astype(u.dtype)

            out = scaled(u)
            _fusion.record(out, u, scaled)  # lets a fused optimizer recompute, not re-read, it
            return out

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
    layout_what = "per-leaf RMS clipping"

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


def unitwise_norm(x: jax.Array) -> jax.Array:
    """The L2 norm of each output unit, broadcast to ``x``'s shape.

    Scalars and vectors: the whole array. Matrices (in, out) and 3-D (heads): over axis 0.
    4-D conv kernels (H, W, in, out): over axes 0-2. 5-D: over axes 0-3. (Optax's convention.)
    """
    shape = jnp.shape(x)
    sq = _tree.abs_sq(x)
    if sum(d != 1 for d in shape) <= 1:
        axes = tuple(range(len(shape)))
    elif len(shape) in (2, 3):
        axes = (0,)
    elif len(shape) in (4, 5):
        axes = tuple(range(len(shape) - 1))
    else:
        raise ValueError(
            f"gradtx.adaptive_grad_clip: leaves must have 0 to 5 dimensions, got shape {shape}"
        )
    return jnp.broadcast_to(jnp.sqrt(jnp.sum(sq, axis=axes, keepdims=True)), shape)


@pytree_dataclass
class AdaptiveGradClip(PerLeaf):
    """AGC, unit-wise: ``g <- g * (clipping * max(|p|, eps) / |g|)`` where
    ``|g| > clipping * max(|p|, eps)``, with ``|.|`` the ``unitwise_norm``."""

    fn_name = "adaptive_grad_clip"
    state_type = ClipState
    carry_fields = ("norm",)
    reads_params = True
    layout_what = "unit-wise norms"

    clipping: Any = field(1e-2, check=_checks.POSITIVE)
    eps: Any = field(1e-3, check=_checks.NONNEGATIVE)

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
        g_norm = unitwise_norm(gc)
        max_norm = _tree.hp(s.clipping, rd) * jnp.maximum(unitwise_norm(pc), _tree.hp(self.eps, rd))
        clipped = gc * (max_norm / jnp.maximum(g_norm, 1e-6))
        return (jnp.where(g_norm < max_norm, gc, clipped).astype(g.dtype),)


def adaptive_grad_clip(clipping: Any, eps: Any = 1e-3) -> AdaptiveGradClip:
    """Adaptive gradient clipping (AGC) of Brock et al. (``optax.adaptive_grad_clip``).

    Args:
      clipping: maximum ratio of gradient to parameter norm per unit, > 0.
      eps: floor on the parameter norm (so zero-initialized units can move), >= 0.

    References:
      Brock, De, Smith, Simonyan, "High-Performance Large-Scale Image Recognition Without
      Normalization", ICML 2021. arXiv:2102.06171
    """
    return AdaptiveGradClip(clipping, eps)


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
