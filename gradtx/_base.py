"""Optax's protocol as values: an ``(init, update)`` pair of functions, and the callable types.

A gradtx transform is a pytree whose hyperparameters are leaves; a ``GradientTransformation``
is the plain pair of functions Optax users write by hand. Both work wherever a transform is
taken (``chain``, ``masked``, ``partition``, ``MultiSteps``...): the pair is held as a static
field, so its functions are traced with the step and may close over constants.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol


class TransformInitFn(Protocol):
    """The type of ``init``: ``init(params) -> state``.

    ``state`` is any pytree of arrays built from the example ``params`` (buffers shaped like
    them, counters).

    Conventions:
      ``optax.TransformInitFn``: the same protocol; use it in annotations.
    """

    def __call__(self, params: Any) -> Any: ...


class TransformUpdateFn(Protocol):
    """The type of ``update`` without extra arguments::

        update(updates, state, params=None) -> (new_updates, new_state)

    Conventions:
      ``optax.TransformUpdateFn``: the same protocol. ``chain`` passes no extra keyword
      argument (``value=``, ``loss=``) to a ``GradientTransformation`` built with one.
    """

    def __call__(self, updates: Any, state: Any, params: Any = None) -> tuple[Any, Any]: ...


class TransformUpdateExtraArgsFn(Protocol):
    """The type of ``update`` with extra keyword arguments::

        update(updates, state, params=None, **extra_args) -> (new_updates, new_state)

    An implementation names the extra arguments it needs as keyword-only parameters
    (``*, loss``) and takes the others in ``**extra_args``, ignoring them.

    Conventions:
      ``optax.TransformUpdateExtraArgsFn``: the same protocol.
    """

    def __call__(
        self, updates: Any, state: Any, params: Any = None, **extra_args: Any
    ) -> tuple[Any, Any]: ...


class GradientTransformation(NamedTuple):
    """A gradient transformation written as a pair of pure functions::

        state = init(params)
        new_updates, new_state = update(updates, state, params)

    Build your own transform from two functions and use it like any gradtx transform::

        def init(params):
            return gradtx.EmptyState()

        def update(updates, state, params=None):
            return jax.tree.map(lambda g: 2.0 * g, updates), state

        tx = gradtx.chain(gradtx.GradientTransformation(init, update), gradtx.sgd(0.1))

    Attributes:
      init: ``init(params) -> state`` (a ``TransformInitFn``).
      update: ``update(updates, state, params=None) -> (updates, state)`` (a
        ``TransformUpdateFn``). It receives no extra keyword arguments inside ``chain`` and the
        other combinators; build a ``GradientTransformationExtraArgs`` for an update that reads
        ``loss=`` or ``value=``.

    Inside gradtx's combinators the pair is held as a static field: its functions are traced
    with the compiled step, and the numbers they close over are constants of that program (a
    new pair, or new constants, compiles again). gradtx's own transforms keep their
    hyperparameters as pytree leaves instead.

    Conventions:
      ``optax.GradientTransformation``: the same NamedTuple fields (``init``, ``update``), so
      ``init, update = tx`` and ``tx.update(...)`` read the same. gradtx's factories return
      transform pytrees, not this tuple: ``isinstance(gradtx.adam(1e-3),
      gradtx.GradientTransformation)`` is False; test for ``init`` and ``update`` attributes
      instead.
    """

    init: TransformInitFn
    update: TransformUpdateFn


class GradientTransformationExtraArgs(GradientTransformation):
    """A ``GradientTransformation`` whose ``update`` takes extra keyword arguments::

        new_updates, new_state = update(updates, state, params, **extra_args)

    ``chain`` and the other combinators pass it every extra argument given to their own
    ``update`` (those its signature names, or all of them when it has ``**extra_args``).

    Attributes:
      init: ``init(params) -> state``.
      update: ``update(updates, state, params=None, **extra_args) -> (updates, state)`` (a
        ``TransformUpdateExtraArgsFn``).

    Conventions:
      ``optax.GradientTransformationExtraArgs``: a subclass of ``GradientTransformation`` with
      the same fields, so an ``isinstance`` check against the base class still holds.
    """

    update: TransformUpdateExtraArgsFn
