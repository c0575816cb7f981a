"""Conditional transforms: run the inner transform only on the steps a predicate selects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _tree
from .._transform import Transform, as_child, field, pytree_dataclass, static_field


class ConditionallyTransformState(NamedTuple):
    """``inner_state``: the inner transform's state, advanced on selected steps only.
    ``step``: the steps seen so far (int32, saturating)."""

    inner_state: Any
    step: jax.Array


class ConditionallyMaskState(NamedTuple):
    """``step``: the steps seen so far (int32, saturating). ``inner_state``: the inner
    transform's state, advanced on selected steps only."""

    step: jax.Array
    inner_state: Any


@pytree_dataclass
class Conditionally(Transform):
    """Runs ``inner`` where ``should_transform_fn(step)`` is True; on the other steps the
    updates pass through (``mask=False``) or become zeros (``mask=True``)."""

    elementwise = True

    inner: Transform = field(converter=as_child)
    should_transform_fn: Callable[..., Any] = static_field()
    forward_extra_args: bool = static_field(False)
    mask: bool = static_field(False)

    @property
    def fn(self) -> str:
        """The public name that errors report."""
        return "conditionally_mask" if self.mask else "conditionally_transform"

    def __check_init__(self):
        if not callable(self.should_transform_fn):
            raise TypeError(
                f"gradtx.{self.fn}: should_transform_fn must be a function of the step count, got "
                f"{type(self.should_transform_fn).__name__}"
            )

    def _state(self, step, inner_state):
        if self.mask:
            return ConditionallyMaskState(step, inner_state)
        return ConditionallyTransformState(inner_state, step)

    def _init(self, params):
        return self._state(jnp.zeros((), jnp.int32), self.inner._init(params))

    def _update(self, updates, state, params, **extra):
        kwargs = extra if self.forward_extra_args else {}
        run = jnp.asarray(self.should_transform_fn(state.step, **kwargs))
        if run.shape != ():
            name = "conditionally_mask" if self.mask else "conditionally_transform"
            raise TypeError(
                f"gradtx.{name}: should_transform_fn must return a scalar (a bool), got shape "
                f"{run.shape}"
            )
        run = run.astype(jnp.bool_)

        def apply(operands):
            u, s = operands
            return self.inner._update(u, s, params, **extra)

        out_shape = jax.eval_shape(lambda o: apply(o)[0], (updates, state.inner_state))

        def skip(operands):
            u, s = operands
            if self.mask:
                return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), out_shape), s
            return jax.tree.map(lambda x, o: x.astype(o.dtype), u, out_shape), s

        u, inner_state = jax.lax.cond(run, apply, skip, (updates, state.inner_state))
        return u, self._state(_tree.safe_increment(state.step), inner_state)

    def _children(self, state):
        return (("", self.inner, state.inner_state),)


def conditionally_transform(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> Conditionally:
    """Runs ``inner`` only on the steps ``should_transform_fn`` selects::

        run = should_transform_fn(step, **extra if forward_extra_args)
        u, s <- inner.update(u, s)   if run
        u    <- u                    otherwise (the inner state is unchanged)

    Args:
      inner: the transform to run (a gradtx transform or any object with init/update).
      should_transform_fn: ``f(step) -> bool scalar``, where ``step`` counts the calls of
        ``update`` before this one (int32). Held static: pass the same function object to reuse
        the compiled program.
      forward_extra_args: also pass the extra arguments of ``update`` (``loss=``) to
        ``should_transform_fn`` as keywords.

    The branch is a ``lax.cond``: the inner transform's work is done only on selected steps.

    Conventions:
      ``optax.conditionally_transform``: same signature, state
      (``ConditionallyTransformState(inner_state, step)``) and numbers.
    """
    return Conditionally(inner, should_transform_fn, forward_extra_args, False)


def conditionally_mask(
    inner: Any, should_transform_fn: Callable[..., Any], forward_extra_args: bool = False
) -> Conditionally:
    """Runs ``inner`` on the steps ``should_transform_fn`` selects and zeros the updates on
    the others::

        run = should_transform_fn(step, **extra if forward_extra_args)
        u, s <- inner.update(u, s)   if run
        u    <- 0                    otherwise (the inner state is unchanged)

    Args:
      inner: the transform to run (a gradtx transform or any object with init/update).
      should_transform_fn: ``f(step) -> bool scalar``, where ``step`` counts the calls of
        ``update`` before this one (int32); held static.
      forward_extra_args: also pass the extra arguments of ``update`` to
        ``should_transform_fn`` as keywords.

    Conventions:
      ``optax.conditionally_mask``: same signature, state
      (``ConditionallyMaskState(step, inner_state)``) and numbers.
    """
    return Conditionally(inner, should_transform_fn, forward_extra_args, True)
