"""Gradient accumulation: run the inner transform once every ``every_k`` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_child, field, pytree_dataclass, static_field


class AccumulateState(NamedTuple):
    """``mini_step``: gradients accumulated since the last emitted update (0 .. every_k - 1).
    ``acc``: their running mean (``reduce="mean"``) or sum, one gradient-sized buffer.
    ``inner_state``: the inner transform's state, advanced only on emitting steps."""

    mini_step: jax.Array
    acc: Any
    inner_state: Any


@pytree_dataclass
class Accumulate(Transform):
    """Accumulates ``every_k`` gradients, then runs ``inner`` once on their mean (or sum).

    Each call::

        acc <- acc + (g - acc) / (mini_step + 1)       (reduce="mean", Welford's running mean)
        acc <- acc + g                                  (reduce="sum")
        if mini_step + 1 == every_k:  u, inner_state <- inner(acc); acc <- 0; mini_step <- 0
        else:                         u <- 0;                        mini_step += 1

    The branch is a ``lax.cond``: the inner transform's work is done only on emitting steps.
    """

    elementwise = True
    fn_name = "accumulate"

    inner: Transform = field(converter=as_child)
    every_k: Any = field(1, check=_checks.COUNT)
    reduce: str = static_field("mean", choices=("mean", "sum"))
    accumulator_dtype: Any = static_field(None)

    def _acc_dtype(self, p):
        if self.accumulator_dtype is not None:
            return self.accumulator_dtype
        return _tree.compute_dtype(jnp.result_type(p))

    def _init(self, params):
        acc = jax.tree.map(lambda p: _tree.zeros_like(p, self._acc_dtype(p)), params)
        return AccumulateState(jnp.zeros((), jnp.int32), acc, self.inner._init(params))

    def _update(self, updates, state, params, **extra):
        _checks.check_same_tree(self.where(), state.acc, updates, "accumulator", "updates")
        n = state.mini_step
        k = jnp.asarray(self.every_k, jnp.int32)

        def add(g, a):
            cd = _tree.compute_dtype(g.dtype, a.dtype)
            ac, gc = a.astype(cd), g.astype(cd)
            if self.reduce == "mean":
                out = ac + (gc - ac) / (n + 1).astype(_tree.real_dtype(cd))
            else:
                out = ac + gc
            return out.astype(a.dtype)

        acc = jax.tree.map(add, updates, state.acc)
        emit = n + 1 >= k
        grads = jax.tree.map(lambda a, g: a.astype(g.dtype), acc, updates)

        def do_emit(operands):
            grads, inner_state, acc = operands
            u, s = self.inner._update(grads, inner_state, params, **extra)
            return u, s, jax.tree.map(jnp.zeros_like, acc)

        out_shape = jax.eval_shape(lambda o: do_emit(o)[0], (grads, state.inner_state, acc))

        def hold(operands):
            _, inner_state, acc = operands
            u = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
            return u, inner_state, acc

        u, inner_state, acc = jax.lax.cond(emit, do_emit, hold, (grads, state.inner_state, acc))
        mini_step = jnp.where(emit, 0, n + 1).astype(jnp.int32)
        return u, AccumulateState(mini_step, acc, inner_state)

    def _children(self, state):
        return (("", self.inner, state.inner_state),)


def accumulate(
    inner: Any, every_k: Any, reduce: str = "mean", *, accumulator_dtype: Any = None
) -> Accumulate:
    """Gradient accumulation: ``inner`` runs on the mean (or sum) of every ``every_k`` gradients.

    ``accumulate(tx, k)`` gives the same parameters, every k steps, as ``tx`` applied to the mean
    of each k consecutive gradients; in between its updates are zero. With ``k = 1`` it is
    ``tx``. The inner transform runs under ``lax.cond`` only on emitting steps (Optax's
    ``MultiSteps`` computes it on every step and selects), and the extra memory is one buffer the
    size of the gradients.

    Args:
      inner: the transform to run on the accumulated gradient.
      every_k: steps per update, an int >= 1 (a pytree leaf: it can be traced or swept).
      reduce: ``"mean"`` (``optax.MultiSteps``'s default) or ``"sum"``.
      accumulator_dtype: dtype of the buffer; default: each gradient's dtype widened to at least
        float32 (so bf16/fp16 gradients accumulate without loss).

    Extra arguments (``loss=``) reach the inner transform on emitting steps (the values given
    at that step). ``state.mini_step == 0`` right after an update was emitted.
    """
    return Accumulate(inner, every_k, reduce, accumulator_dtype)


class ApplyEveryState(NamedTuple):
    """``count``: steps since the last emitted update, modulo k. ``grad_acc``: the running sum."""

    count: jax.Array
    grad_acc: Any


@pytree_dataclass
class ApplyEvery(Transform):
    """Sums the updates over k steps and emits the sum on the k-th; zeros in between."""

    elementwise = True
    fn_name = "apply_every"

    k: Any = field(1, check=_checks.COUNT)

    def _init(self, params):
        return ApplyEveryState(jnp.zeros((), jnp.int32), _tree.tree_zeros_like(params))

    def _update(self, updates, state, params, **extra):
        _checks.check_same_tree(self.where(), state.grad_acc, updates, "grad_acc", "updates")
        k = jnp.asarray(self.k, jnp.int32)
        c = state.count % k
        keep = c != 0
        emit = c == k - 1

        def add(g, a):
            cd = _tree.compute_dtype(g.dtype, a.dtype)
            return (jnp.where(keep, a.astype(cd), 0) + g.astype(cd)).astype(a.dtype)

        acc = jax.tree.map(add, updates, state.grad_acc)
        out = jax.tree.map(
            lambda a, g: jnp.where(emit, a, jnp.zeros_like(a)).astype(g.dtype), acc, updates
        )
        return out, ApplyEveryState(_tree.safe_increment(state.count) % k, acc)


def apply_every(k: Any = 1) -> ApplyEvery:
    """Sums the updates of k consecutive steps and emits the sum every k-th step::

        acc_t = g_t + (acc_{t-1} if t is not the first of a group of k else 0)
        u_t = acc_t on every k-th step, 0 otherwise

    Args:
      k: steps per emitted update, an integer >= 1 (default 1: every step).

    Transforms before it in a chain still update their state every step, so this is not the
    same as a k times larger batch; ``accumulate(tx, k)`` runs ``tx`` once per k gradients
    instead (Optax's ``MultiSteps``).

    Conventions:
      ``optax.apply_every``: same signature, state and numbers.
    """
    return ApplyEvery(k)


def skip_not_finite(updates: Any, gradient_step: Any, params: Any) -> tuple[jax.Array, Any]:
    """Whether to skip a step because the updates hold a NaN or an Inf.

    Args:
      updates: the gradients of this step.
      gradient_step: the number of updates applied so far (unused).
      params: the params (unused).

    Returns:
      ``(should_skip, {"should_skip": ..., "num_not_finite": ...})``: a bool scalar, and the
      number of non-finite elements as an int32.

    Conventions:
      ``optax.skip_not_finite``, a ``should_skip_update_fn`` for ``optax.MultiSteps``.
      ``gradtx.apply_if_finite`` is the transform that skips such steps.
    """
    del gradient_step, params
    count = jnp.zeros((), jnp.int32)
    for u in jax.tree.leaves(updates):
        count = count + jnp.sum(~jnp.isfinite(u)).astype(jnp.int32)
    should_skip = count > 0
    return should_skip, {"should_skip": should_skip, "num_not_finite": count}


def skip_large_updates(
    updates: Any, gradient_step: Any, params: Any, max_squared_norm: Any
) -> tuple[jax.Array, Any]:
    """Whether to skip a step because the squared global norm of the updates is too large.

    Args:
      updates: the gradients of this step.
      gradient_step: the number of updates applied so far (unused).
      params: the params (unused).
      max_squared_norm: the largest squared L2 norm accepted, >= 0; a NaN norm is skipped.

    Returns:
      ``(should_skip, {"should_skip": ..., "norm_squared": ...})``.

    Conventions:
      ``optax.skip_large_updates``, a ``should_skip_update_fn`` for ``optax.MultiSteps``; bind
      ``max_squared_norm`` with ``functools.partial``.
    """
    del gradient_step, params
    _checks.NONNEGATIVE("skip_large_updates", "max_squared_norm", max_squared_norm)
    norm_sq = _tree.tree_sum_squares(updates)
    should_skip = jnp.logical_not(norm_sq < max_squared_norm)
    return should_skip, {"should_skip": should_skip, "norm_squared": norm_sq}
