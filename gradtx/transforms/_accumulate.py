"""Gradient accumulation: run the inner transform once every ``every_k`` steps."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_transform, field, pytree_dataclass, static_field


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

    inner: Transform
    every_k: Any = field(1, check=_checks.COUNT)
    reduce: str = static_field("mean", choices=("mean", "sum"))
    accumulator_dtype: Any = static_field(None)

    def __check_init__(self):
        object.__setattr__(self, "inner", as_transform(self.inner))

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
