"""Gradient accumulation: run the inner transform once every ``every_k`` steps (``accumulate``,
and Optax's ``MultiSteps`` on top of it, with a scheduled ``k`` and skipped steps)."""

from __future__ import annotations

import functools
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from .. import _base, _checks, _tree
from .._transform import (
    Transform,
    as_child,
    field,
    pytree_dataclass,
    static_field,
    value_at,
)


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

    Conventions:
      ``optax.MultiSteps(inner, every_k)``'s numbers; ``MultiSteps`` takes Optax's arguments
      and state, and adds a schedule for k and skipped steps.
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


class ShouldSkipUpdateFunction(Protocol):
    """The type of ``MultiSteps``'s ``should_skip_update_fn``::

        should_skip, skip_state = fn(updates, gradient_step, params)

    ``should_skip`` is a boolean scalar array: True drops this step's gradients (the state
    is left as it was, except ``skip_state``). ``skip_state`` is any pytree of arrays (for
    logging) with the same structure and dtypes at every step; ``MultiSteps`` keeps the latest
    in ``MultiStepsState.skip_state``. ``gradient_step`` is the number of updates emitted so
    far; ``params`` may be ``None``.

    Conventions:
      ``optax.ShouldSkipUpdateFunction``: the same protocol; ``skip_not_finite`` and
      ``skip_large_updates`` (bound with ``functools.partial``) are two.
    """

    def __call__(self, updates: Any, gradient_step: Any, params: Any) -> tuple[jax.Array, Any]: ...


class MultiStepsState(NamedTuple):
    """The state of ``MultiSteps``.

    mini_step: gradients accumulated since the last emitted update (int32, 0 right after one).
    gradient_step: updates emitted so far (int32, saturating); the schedule of ``k`` reads it.
    inner_opt_state: the wrapped transform's state, advanced only when an update is emitted.
    acc_grads: the running mean (or sum) of the accumulated gradients.
    skip_state: what ``should_skip_update_fn`` returned last (``()`` without one).

    Conventions:
      ``optax.MultiStepsState``: the same fields in the same order, with the same dtypes.
    """

    mini_step: jax.Array
    gradient_step: jax.Array
    inner_opt_state: Any
    acc_grads: Any
    skip_state: Any = ()


@pytree_dataclass
class MultiSteps(Transform):
    """Gradient accumulation over a scheduled number of steps, with optional skipped steps.

    Each call, with ``k = every_k_schedule(gradient_step)`` and ``n = mini_step``::

        if should_skip_update_fn(g, gradient_step, params) is True:   u = 0, state unchanged
        acc <- acc + (g - acc) / (n + 1)          (use_grad_mean=True: the running mean)
        acc <- acc + g                            (use_grad_mean=False: the sum)
        if n + 1 == k:  u, inner_state <- opt.update(acc); acc <- 0; mini_step <- 0;
                        gradient_step += 1
        else:           u <- 0;                   mini_step <- n + 1

    The accumulation is ``accumulate(opt, k)``'s, so the wrapped transform runs under
    ``lax.cond`` only on steps that emit an update. A skipped step leaves the accumulator, the
    counters and the wrapped state as they were, so it is as if that gradient had never come.

    Args:
      opt: the transform to run on the accumulated gradient (a gradtx transform, an Optax
        transform or a ``GradientTransformation``).
      every_k_schedule: gradients per update: an int >= 1, or a schedule ``gradient_step ->
        k`` (a gradtx schedule or any callable; its values are cast to int32), which can grow
        the batch over training. An int or a gradtx schedule is a pytree leaf: it can be traced,
        swept or replaced without compiling again.
      use_grad_mean: accumulate the mean of the gradients (True, default) or their sum.
      should_skip_update_fn: ``None``, or a ``ShouldSkipUpdateFunction``
        (``skip_not_finite``, ``functools.partial(skip_large_updates, max_squared_norm=...)``)
        deciding per call whether to drop the gradients; held static.
      accumulator_dtype: dtype of ``acc_grads``; default: each parameter's dtype widened to at
        least float32.

    Extra ``update`` arguments (``loss=``, ``value=``) reach ``opt`` on emitting steps.
    ``has_updated(state)`` says whether the last call emitted an update. ``gradtx.pack`` lays
    the params out for ``opt`` when the skip test reads any layout alike (none,
    ``skip_not_finite``, ``skip_large_updates``); with another function it keeps every leaf.

    Conventions:
      ``optax.MultiSteps``: the same constructor arguments, state fields (``mini_step``,
      ``gradient_step``, ``inner_opt_state``, ``acc_grads``, ``skip_state``), methods
      (``init``, ``update``, ``has_updated``, ``gradient_transformation``, ``inner_opt``) and
      numbers. Differences: Optax computes the inner update on every step and multiplies it by
      0 or 1 (so an infinite inner update gives NaN on steps that emit nothing), gradtx only on
      emitting steps; Optax's ``accumulator_dtype`` defaults to float32 for every gradient,
      gradtx keeps float64 gradients in float64 (the same buffer for every narrower dtype).
      ``MultiSteps`` is itself a gradtx transform, so it can go in ``chain`` directly.
      ``accumulate(opt, k)`` is the same accumulation without the schedule, the skip test and
      the ``gradient_step`` counter.
    """

    fn_name = "MultiSteps"
    elementwise = True  # with a skip test that is a sum over all elements; see is_elementwise

    opt: Transform = field(converter=as_child)
    every_k_schedule: Any = field(check=_checks.COUNT)
    use_grad_mean: bool = static_field(True, choices=(True, False))
    should_skip_update_fn: Any = static_field(None)
    accumulator_dtype: Any = static_field(None)

    def __check_init__(self):
        fn = self.should_skip_update_fn
        if fn is not None and not callable(fn):
            raise TypeError(
                f"gradtx.MultiSteps: should_skip_update_fn must be None or a function "
                f"(updates, gradient_step, params) -> (should_skip, skip_state), got {fn!r}"
            )

    def _skip_reads_any_layout(self) -> bool:
        """Whether the skip test gives the same answer on any packing of the leaves: none, or
        gradtx's own two (a count of non-finite elements, a sum of squares)."""
        fn = self.should_skip_update_fn
        if isinstance(fn, functools.partial) and not fn.args:
            fn = fn.func
        return fn is None or fn is skip_not_finite or fn is skip_large_updates

    def is_elementwise(self) -> bool:
        return super().is_elementwise() and self._skip_reads_any_layout()

    def is_stackable(self) -> bool:
        return super().is_stackable() and self._skip_reads_any_layout()

    @property
    def inner_opt(self) -> Transform:
        """The wrapped transform (``opt``, as a gradtx transform)."""
        return self.opt

    def _accumulator(self, every_k: Any) -> Accumulate:
        reduce = "mean" if self.use_grad_mean else "sum"
        return Accumulate(self.opt, every_k, reduce, self.accumulator_dtype)

    def _skip(self, updates: Any, gradient_step: Any, params: Any) -> tuple[Any, Any]:
        should_skip, skip_state = self.should_skip_update_fn(updates, gradient_step, params)
        should_skip = jnp.asarray(should_skip)
        if should_skip.dtype != jnp.bool_ or should_skip.shape != ():
            raise ValueError(
                f"gradtx.MultiSteps: should_skip_update_fn must return a boolean scalar first, "
                f"got an array of dtype {should_skip.dtype} and shape {should_skip.shape}"
            )
        return should_skip, skip_state

    def _init(self, params):
        acc = self._accumulator(1)._init(params)
        gradient_step = jnp.zeros((), jnp.int32)
        skip_state = ()
        if self.should_skip_update_fn is not None:
            zeros = _tree.tree_zeros_like(params)
            _, skip_state = self._skip(zeros, gradient_step, params)
        return MultiStepsState(acc.mini_step, gradient_step, acc.inner_state, acc.acc, skip_state)

    def _update(self, updates, state, params, **extra):
        k = value_at(self.every_k_schedule, state.gradient_step)
        accumulator = self._accumulator(jax.lax.convert_element_type(k, jnp.int32))

        def accumulate_step(skip_state):
            inner = AccumulateState(state.mini_step, state.acc_grads, state.inner_opt_state)
            u, s = accumulator._update(updates, inner, params, **extra)
            emitted = s.mini_step == 0
            step = jnp.where(
                emitted, _tree.safe_increment(state.gradient_step), state.gradient_step
            )
            return u, MultiStepsState(s.mini_step, step, s.inner_state, s.acc, skip_state)

        if self.should_skip_update_fn is None:
            return accumulate_step(state.skip_state)
        should_skip, skip_state = self._skip(updates, state.gradient_step, params)
        out_shape = jax.eval_shape(lambda: accumulate_step(skip_state)[0])

        def hold(skip_state):
            zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out_shape)
            return zeros, state._replace(skip_state=skip_state)

        return jax.lax.cond(should_skip, hold, accumulate_step, skip_state)

    def has_updated(self, state: MultiStepsState) -> jax.Array:
        """Whether the call that returned ``state`` emitted an update: a boolean scalar,
        ``mini_step == 0 and gradient_step > 0``."""
        return jnp.logical_and(state.mini_step == 0, state.gradient_step > 0)

    def gradient_transformation(self) -> _base.GradientTransformationExtraArgs:
        """This transform's ``init`` and ``update`` as a ``GradientTransformation`` pair.

        Returns:
          A ``GradientTransformationExtraArgs`` (a ``GradientTransformation``): extra
          ``update`` arguments still reach ``opt`` inside ``chain``. Optax returns a plain
          ``GradientTransformation``, whose extra arguments ``optax.chain`` drops.
        """
        return _base.GradientTransformationExtraArgs(self.init, self.update)

    def _children(self, state):
        return (("", self.opt, state.inner_opt_state),)
