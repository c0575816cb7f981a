"""Stateless building blocks: zero updates, functions of the updates, extra-argument support."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from .._transform import EmptyState, Transform, as_transform, pytree_dataclass, static_field


def init_empty_state(params: Any) -> EmptyState:
    """The ``init`` of a stateless transform: returns ``EmptyState()`` whatever the params.

    Args:
      params: ignored.

    Conventions:
      ``optax.init_empty_state``; gradtx's ``EmptyState`` is an empty NamedTuple like Optax's.
    """
    del params
    return EmptyState()


@pytree_dataclass
class SetToZero(Transform):
    """``u <- 0`` leaf by leaf, in each leaf's dtype."""

    elementwise = True

    def _update(self, updates, state, params, **extra):
        return jax.tree.map(jnp.zeros_like, updates), state


def set_to_zero() -> SetToZero:
    """Replaces every update by zeros, so ``apply_updates`` leaves the params unchanged::

        u <- 0

    Conventions:
      ``optax.set_to_zero``. ``gradtx.freeze`` without an inner transform uses ``-0.0``
      instead, which leaves every float parameter bit-identical (``p + (-0.0) == p`` for
      ``p = -0.0`` too, where ``-0.0 + 0.0`` is ``+0.0``); both are zero numerically.
    """
    return SetToZero()


@pytree_dataclass
class Stateless(Transform):
    """``u <- f(u, params)`` with ``f`` held static; no state."""

    f: Callable[[Any, Any], Any] = static_field()
    per_leaf: bool = static_field(False)

    def _update(self, updates, state, params, **extra):
        if not self.per_leaf:
            return self.f(updates, params), EmptyState()
        if params is None:
            return jax.tree.map(lambda u: self.f(u, None), updates), EmptyState()
        return jax.tree.map(self.f, updates, params), EmptyState()

    def __repr__(self) -> str:
        name = getattr(self.f, "__qualname__", type(self.f).__name__)
        kind = "stateless_with_tree_map" if self.per_leaf else "stateless"
        return f"{kind}({name})"


def stateless(f: Callable[[Any, Any], Any]) -> Stateless:
    """A transform from a function of the whole updates tree and the params::

        u <- f(u, params)          (params may be None)

    Args:
      f: ``f(updates, params) -> updates``, traced with the update (so it must be jit-able).
        It is held static: pass the same function object to reuse the compiled program.

    Conventions:
      ``optax.stateless``: the state is ``EmptyState()``.
    """
    return Stateless(f, False)


def stateless_with_tree_map(f: Callable[[Any, Any], Any]) -> Stateless:
    """A transform from a function applied leaf by leaf::

        u_leaf <- f(u_leaf, p_leaf)      (p_leaf is None when update gets no params)

    Args:
      f: ``f(update_leaf, param_leaf) -> update_leaf``, jit-able, held static.

    Conventions:
      ``optax.stateless_with_tree_map``: the state is ``EmptyState()``.
    """
    return Stateless(f, True)


def with_extra_args_support(tx: Any) -> Transform:
    """A transform whose ``update`` accepts extra keyword arguments (``value=``, ``loss=``).

    Every gradtx transform already does: it is returned as it is. Any other object with
    ``init`` and ``update`` (an Optax ``GradientTransformation``) is wrapped so that ``update``
    forwards only the extra arguments it takes (all of them when it has ``**kwargs``).

    Args:
      tx: a gradtx transform or any object with ``init`` and ``update``.

    Conventions:
      ``optax.with_extra_args_support``; the result is a gradtx transform (a pytree).
    """
    return as_transform(tx, "with_extra_args_support", "tx")
