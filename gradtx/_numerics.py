"""Numerics helpers for writing transforms: norms with safe gradients, saturating counters,
moment updates and bias correction over trees, and a gradient scaler.

Each works on concrete values and under ``jit``, ``vmap`` and ``grad``; numbers that are
hyperparameters (``decay``, ``min_norm``, ``scale``) may be traced. Arithmetic runs in at least
float32, as everywhere in gradtx.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _checks, _tree


def global_norm(updates: Any) -> jax.Array:
    """The L2 norm of a whole tree, every leaf together::

        ||u|| = sqrt(sum over leaves and elements of |u|^2)

    Args:
      updates: a pytree of arrays (``None`` leaves are skipped).

    Returns:
      A scalar in the widest leaf dtype, at least float32 (0 for a tree without leaves).

    The sum is the one ``clip_by_global_norm`` and ``gradtx.tree.norm`` use: small leaves are
    reduced together and the partial sums added pairwise, which compiles quickly with thousands
    of leaves.

    Conventions:
      ``optax.global_norm`` (``optax.tree.norm``): the same value up to rounding (the sum is
      ordered differently); for bfloat16 or float16 leaves Optax returns the norm in that dtype,
      gradtx in float32. Optax marks this name deprecated and warns; gradtx does not.
    """
    return _tree.tree_norm(updates)


def _floor_hp(fn: str, name: str, value: Any, like: jax.Array) -> jax.Array:
    """A lower bound (``min_norm``, ``min_rms``) checked and as an array of ``like``'s dtype."""
    _checks.NONNEGATIVE(fn, name, value)
    return jnp.asarray(value).astype(like.dtype)


def safe_norm(
    x: Any,
    min_norm: Any,
    ord: int | float | str | None = None,
    axis: int | tuple[int, ...] | None = None,
    keepdims: bool = False,
) -> jax.Array:
    """A norm floored at ``min_norm`` whose gradient is finite where the norm is small::

        n = max(norm(x, ord, axis), min_norm)
        dn/dx = 0 where norm(x) <= min_norm      (jnp.maximum alone gives NaN at x = 0)

    Args:
      x: an array.
      min_norm: the floor, a scalar >= 0 (a traced value is fine).
      ord: the order, as in ``jnp.linalg.norm`` (None: 2-norm of vectors, Frobenius norm of
        matrices; also 1, 2, inf, -inf, ``"fro"``, ``"nuc"``).
      axis: the axis (an int) or the two matrix axes (a pair) to reduce; None: all of a vector
        or a matrix, as in ``jnp.linalg.norm``.
      keepdims: keep the reduced axes as size 1.

    Where the norm is at most ``min_norm``, the norm is recomputed on ones instead of ``x`` (and
    thrown away), so neither branch of the select differentiates through a zero norm.

    Conventions:
      ``optax.safe_norm``: the same signature and values, and the same zero gradient at and
      below the floor.
    """
    x = jnp.asarray(x)
    norm = jnp.linalg.norm(x, ord=ord, axis=axis, keepdims=True)
    floor = _floor_hp("safe_norm", "min_norm", min_norm, norm)
    shielded = jnp.where(norm <= floor, jnp.ones_like(x), x)
    value = jnp.linalg.norm(shielded, ord=ord, axis=axis, keepdims=keepdims)
    if not keepdims:
        norm = jnp.squeeze(norm, axis=axis)
    return jnp.where(norm <= floor, floor, value)


def safe_root_mean_squares(x: Any, min_rms: Any) -> jax.Array:
    """The root mean square of all of ``x``, floored, with a finite gradient where it is small::

        r = max(sqrt(mean(|x|^2)), min_rms)
        dr/dx = 0 where sqrt(mean(|x|^2)) <= min_rms

    Args:
      x: an array (complex entries count ``|x|^2``).
      min_rms: the floor, >= 0.

    Conventions:
      ``optax.safe_root_mean_squares``: the same signature, values and gradients.
    """
    x = jnp.asarray(x)
    rms = jnp.sqrt(jnp.mean(_tree.abs_sq(x)))
    floor = _floor_hp("safe_root_mean_squares", "min_rms", min_rms, rms)
    small = rms <= floor
    shielded = jnp.where(small, jnp.ones_like(x), x)
    value = jnp.sqrt(jnp.mean(_tree.abs_sq(shielded)))
    return jnp.where(small, floor, value)


def safe_increment(count: Any) -> jax.Array:
    """``count + 1`` that stops at the largest value of ``count``'s dtype instead of wrapping::

        count + 1      where count < max(dtype)
        max(dtype)     elsewhere (NaN and inf counts of a float dtype too)

    Args:
      count: an integer or floating-point array (a Python int is int32).

    Returns:
      An array of ``count``'s dtype and shape.

    Raises:
      ValueError: for a boolean or complex ``count``.

    Conventions:
      ``optax.safe_increment``: the same values and dtype. gradtx's own step counts are int32
      and go through this same function.
    """
    return _tree.saturating_increment("safe_increment", count)


#: ``safe_increment`` under its older Optax name (``optax.safe_int32_increment``), so that code
#: written for it runs unchanged.
safe_int32_increment = safe_increment


def _check_decay(fn: str, decay: Any, *, high_open: bool = False) -> None:
    _checks.check_unit_interval(fn, "decay", decay, high_open=high_open)


def _check_order(fn: str, order: Any) -> None:
    _checks.POSITIVE(fn, "order", order)


def _moment_map(fn: Any, updates: Any, moments: Any, name: str, *, real: bool = False) -> Any:
    """``fn(g, m, compute_dtype)`` leaf by leaf with ``None`` updates passed through.

    Each result has the dtype Optax's formula promotes to: that of the gradient term (its real
    dtype with ``real=True``, for terms built from ``|g|``) and the moment, computed in at least
    float32.
    """
    _checks.check_same_tree(f"gradtx.{name}", updates, moments, "updates", "moments")

    def leaf(g, m):
        if g is None:
            return None
        g, m = jnp.asarray(g), jnp.asarray(m)
        g_dtype = _tree.real_dtype(g.dtype) if real else g.dtype
        out = _tree.promote(g_dtype, m.dtype)
        return fn(g, m, _tree.compute_dtype(out)).astype(out)

    return jax.tree.map(leaf, updates, moments, is_leaf=lambda x: x is None)


def _ema_weights(decay: Any, dtype: Any) -> tuple[jax.Array, jax.Array]:
    """``(1 - decay, decay)`` as arrays of ``dtype``; ``1 - decay`` is taken before the cast, so a
    Python ``decay`` gives the weights Optax's Python arithmetic gives."""
    return _tree.hp(1 - decay, dtype), _tree.hp(decay, dtype)


def update_moment(updates: Any, moments: Any, decay: Any, order: Any) -> Any:
    """The exponential moving average of the ``order``-th power of the updates, leaf by leaf::

        m_t = (1 - decay) * g_t^order + decay * m_{t-1}

    Args:
      updates: the gradients ``g_t``, a pytree (``None`` leaves stay ``None``).
      moments: ``m_{t-1}``, the same tree.
      decay: in [0, 1] (an array or a traced value is fine).
      order: the power, > 0 (``1`` for the first moment, ``2`` for the second).

    Returns:
      ``m_t``, each leaf in the promoted dtype of its gradient and moment, computed in at least
      float32.

    Conventions:
      ``optax.update_moment`` (``optax.tree.update_moment``): the same arguments and values.
      For complex gradients the power is of ``g`` itself, as in Optax; use
      ``update_moment_per_elem_norm`` for powers of ``|g|``.
    """
    _check_decay("update_moment", decay)
    _check_order("update_moment", order)

    def leaf(g, m, cd):
        w_new, w_old = _ema_weights(decay, cd)
        return w_new * (g.astype(cd) ** order) + w_old * m.astype(cd)

    return _moment_map(leaf, updates, moments, "update_moment")


def update_infinity_moment(updates: Any, moments: Any, decay: Any, eps: Any) -> Any:
    """The decaying running maximum of ``|g|`` (Adamax's second moment), leaf by leaf::

        u_t = max(|g_t| + eps, decay * u_{t-1})

    Args:
      updates: the gradients, a pytree (``None`` leaves stay ``None``).
      moments: ``u_{t-1}``, the same tree.
      decay: in [0, 1].
      eps: >= 0, added to ``|g_t|`` so the moment stays positive.

    Returns:
      ``u_t``, each leaf in the promoted dtype of its gradient and moment.

    Conventions:
      ``optax.update_infinity_moment`` (``optax.tree.update_infinity_moment``): the same
      arguments and values.
    """
    _check_decay("update_infinity_moment", decay)
    _checks.NONNEGATIVE("update_infinity_moment", "eps", eps)

    def leaf(g, m, cd):
        gc = g.astype(_tree.compute_dtype(g.dtype, cd))
        a = jnp.abs(gc) + _tree.hp(eps, _tree.real_dtype(gc.dtype))
        return jnp.maximum(a.astype(cd), _tree.hp(decay, cd) * m.astype(cd))

    return _moment_map(leaf, updates, moments, "update_infinity_moment", real=True)


def update_moment_per_elem_norm(updates: Any, moments: Any, decay: Any, order: Any) -> Any:
    """The exponential moving average of the ``order``-th power of each element's norm::

        m_t = (1 - decay) * n(g_t) + decay * m_{t-1}
        n(g) = g^order                 for real g
        n(g) = |g|^order               for complex g (real, |g|^2 = re^2 + im^2)

    Args:
      updates: the gradients, a pytree (``None`` leaves stay ``None``).
      moments: ``m_{t-1}``, the same tree.
      decay: in [0, 1].
      order: the power, > 0.

    Returns:
      ``m_t``, each leaf in the promoted dtype of its gradient and moment.

    Conventions:
      ``optax.update_moment_per_elem_norm`` (``optax.tree.update_moment_per_elem_norm``): the
      same arguments and values; for real gradients the power is of ``g`` itself, as in Optax.
    """
    _check_decay("update_moment_per_elem_norm", decay)
    _check_order("update_moment_per_elem_norm", order)
    half = order / 2
    if isinstance(half, float) and half.is_integer():
        half = int(half)

    def leaf(g, m, cd):
        gc = g.astype(_tree.compute_dtype(g.dtype, cd))
        n = _tree.abs_sq(gc) ** half if jnp.iscomplexobj(gc) else gc**order
        w_new, w_old = _ema_weights(decay, cd)
        return w_new * n.astype(cd) + w_old * m.astype(cd)

    return _moment_map(leaf, updates, moments, "update_moment_per_elem_norm", real=True)


def bias_correction(moment: Any, decay: Any, count: Any) -> Any:
    """Divides a moving average started from zero by its total weight::

        m_hat = m_t / (1 - decay^t)          (t = count, the number of averaged steps)

    Args:
      moment: ``m_t``, a pytree.
      decay: the moving average's decay, in [0, 1).
      count: ``t >= 1`` (an integer array, typically a state's incremented count).

    Returns:
      ``m_hat``, each leaf in its moment's dtype; ``1 - decay^t`` is computed in at least
      float32 (so it does not round to 0 in bfloat16).

    Conventions:
      ``optax.bias_correction`` (``optax.tree.bias_correction``): the same arguments and values
      for float32 moments; for bfloat16 moments Optax divides in bfloat16, gradtx in float32
      before rounding once.
    """
    _check_decay("bias_correction", decay, high_open=True)

    def leaf(m):
        m = jnp.asarray(m)
        cd = _tree.compute_dtype(m.dtype)
        c = _tree.bias_correction(decay, count, _tree.real_dtype(cd))
        return (m.astype(cd) / c.astype(cd)).astype(m.dtype)

    return jax.tree.map(leaf, moment)


@jax.custom_vjp
def _identity_scaled_backward(inputs: Any, scale: Any) -> Any:
    return inputs


def _scaled_forward(inputs: Any, scale: Any) -> tuple[Any, Any]:
    return inputs, scale


def _scaled_backward(scale: Any, cotangents: Any) -> tuple[Any, None]:
    def leaf(g):
        if not jnp.issubdtype(g.dtype, jnp.inexact):  # integer inputs: float0 cotangents
            return g
        cd = _tree.compute_dtype(g.dtype)
        return (g.astype(cd) * _tree.hp(scale, cd)).astype(g.dtype)

    return jax.tree.map(leaf, cotangents), None


_identity_scaled_backward.defvjp(_scaled_forward, _scaled_backward)


def scale_gradient(inputs: Any, scale: Any) -> Any:
    """The identity on the forward pass; multiplies the gradient by ``scale`` on the backward::

        forward:   y = x
        backward:  dL/dx = scale * dL/dy

    Args:
      inputs: a pytree of arrays.
      scale: any real number (a traced value is fine): 0 stops the gradient, -1 reverses it (a
        gradient reversal layer).

    Returns:
      ``inputs``, unchanged. The scaled cotangent is computed in at least float32 and cast back
      to each leaf's dtype; ``scale`` itself gets no gradient.

    Conventions:
      ``optax.scale_gradient``: the same values and gradients. A concrete scale of 1 returns
      ``inputs`` itself and 0 is ``jax.lax.stop_gradient``, as in Optax; a traced scale (which
      Optax rejects) always takes the scaled backward pass.
    """
    concrete = _checks.concrete_values(scale)
    if concrete is not None and np.ndim(concrete) == 0:
        if concrete == 1.0:
            return inputs
        if concrete == 0.0:
            return jax.lax.stop_gradient(inputs)
    return _identity_scaled_backward(inputs, scale)
