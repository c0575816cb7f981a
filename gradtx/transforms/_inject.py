"""``inject_hyperparams``: Optax's state layout for hyperparameters (``state.hyperparams``).

gradtx's hyperparameters are already pytree leaves of the transform, so nothing needs injecting
to trace, vmap or differentiate them. This wrapper gives the layout Optax users expect: the
values live in ``state.hyperparams`` (a dict that can be read, logged and overwritten between
steps), schedules are evaluated at the step count, and the inner transform is rebuilt from the
factory at every step with those values.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._transform import (
    CountState,
    Schedule,
    Transform,
    _repr_value,
    _Static,
    as_schedule,
    as_transform,
    pytree_dataclass,
    static_field,
)


class InjectHyperparamsState(NamedTuple):
    """count: steps taken. hyperparams: ``{name: value}`` used at the last step (at init: the
    values the first step will use); numeric entries may be overwritten between steps.
    hyperparams_states: ``{name: CountState}`` for each scheduled hyperparameter.
    inner_state: the inner transform's state."""

    count: jax.Array
    hyperparams: dict[str, Any]
    hyperparams_states: dict[str, Any]
    inner_state: Any


def _convert_floats(x: Any, dtype: Any) -> Any:
    """Floating-point values that are Python numbers or weakly typed, in ``dtype``; the rest
    (integers, strongly typed arrays) unchanged."""
    if isinstance(x, jax.Array) and not getattr(x, "weak_type", False):
        return x
    current = x.dtype if hasattr(x, "dtype") else type(x)
    if jax.dtypes.issubdtype(current, jnp.floating):
        return jnp.asarray(x, dtype)
    return x


def _highest_float(tree: Any) -> Any:
    """The widest floating dtype among the leaves of ``tree`` (float32 when none is)."""
    dtypes = [jnp.result_type(x) for x in jax.tree.leaves(tree)]
    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    if not floats:
        return _tree.float_dtype()
    return functools.reduce(jnp.promote_types, floats)


@pytree_dataclass
class InjectHyperparams(Transform):
    """The transform ``inner_factory(**static, **hyperparams)``, rebuilt at every step from the
    hyperparameters in its state (numbers) and its schedules (evaluated at the step count)."""

    elementwise = False

    numeric: dict[str, Any]
    schedules: dict[str, Any]
    inner_factory: Callable[..., Any] = static_field()
    others: Any = static_field()
    hyperparam_dtype: Any = static_field(None)

    def _dtype(self, ref: Any) -> Any:
        return self.hyperparam_dtype if self.hyperparam_dtype is not None else _highest_float(ref)

    def _inner(self, hparams: dict[str, Any]) -> Transform:
        return as_transform(self.inner_factory(**self.others.items, **hparams))

    def _init(self, params):
        dtype = self._dtype(params)
        zero = jnp.zeros((), jnp.int32)
        hparams = {k: jnp.asarray(_convert_floats(v, dtype)) for k, v in self.numeric.items()}
        hparams.update({k: _convert_floats(s(zero), dtype) for k, s in self.schedules.items()})
        states = {k: CountState(zero) for k in self.schedules}
        return InjectHyperparamsState(zero, hparams, states, self._inner(hparams)._init(params))

    def _update(self, updates, state, params, **extra):
        dtype = self._dtype(params if params is not None else updates)
        hparams = {k: _convert_floats(v, dtype) for k, v in state.hyperparams.items()}
        hparams.update(
            {
                k: _convert_floats(s(state.hyperparams_states[k].count), dtype)
                for k, s in self.schedules.items()
            }
        )
        states = {
            k: CountState(_tree.safe_increment(state.hyperparams_states[k].count))
            for k in self.schedules
        }
        u, inner_state = self._inner(hparams)._update(updates, state.inner_state, params, **extra)
        return u, InjectHyperparamsState(
            _tree.safe_increment(state.count), hparams, states, inner_state
        )

    def _hyperparams(self, state):
        return dict(state.hyperparams)

    def __repr__(self) -> str:
        name = getattr(self.inner_factory, "__name__", type(self.inner_factory).__name__)
        args = {**self.numeric, **self.schedules}
        inner = ", ".join(f"{k}={_repr_value(v)}" for k, v in args.items())
        return f"inject_hyperparams({name})({inner})"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number, np.ndarray, jax.Array)) and not isinstance(
        value, (bool, np.bool_)
    )


def inject_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """Wraps an optimizer factory so its hyperparameters live in ``state.hyperparams``::

        schedule = gradtx.cosine_decay_schedule(1e-3, 100)
        tx = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=schedule)
        state = tx.init(params)
        state.hyperparams["learning_rate"]          # the value the next step uses (at init) or
                                                    # the last step used (after a step)
        state.hyperparams["b1"] = jnp.asarray(0.8)  # takes effect at the next step

    At each step every numeric hyperparameter is read from ``state.hyperparams``, every schedule
    (any callable argument) is evaluated at the number of steps taken before this one, and the
    inner transform ``inner_factory(**hyperparams)`` updates with those values. Booleans,
    strings, ``None``, dtypes and the names in ``static_args`` are passed as given.

    Args:
      inner_factory: a function returning a transform (a gradtx factory such as
        ``gradtx.adam``, or an Optax one).
      static_args: names of arguments passed unchanged even when numeric or callable (a
        string or an iterable of strings); each must be a parameter of ``inner_factory``.
      hyperparam_dtype: dtype of the floating-point hyperparameters in the state; default: the
        widest floating dtype of the params.

    Returns:
      A factory with ``inner_factory``'s signature that returns the wrapped transform.
      ``gradtx.current_hyperparams(tx, state)`` reads ``state.hyperparams``.

    gradtx's transforms do not need this to sweep, vmap or differentiate hyperparameters: they
    are leaves already. It adapts code written for Optax's state layout.

    Conventions:
      ``optax.inject_hyperparams``: same signature, state fields (``count``, ``hyperparams``,
      ``hyperparams_states``, ``inner_state``) and numbers. Optax's stateful schedules are not
      supported; gradtx's schedules are functions of the count.
    """
    static = {static_args} if isinstance(static_args, str) else set(static_args)
    signature = inspect.signature(inner_factory)
    unknown = static - set(signature.parameters)
    if unknown:
        raise ValueError(
            f"gradtx.inject_hyperparams: static_args {sorted(unknown)} are not parameters of "
            f"{getattr(inner_factory, '__name__', inner_factory)!r}, whose parameters are "
            f"{list(signature.parameters)}"
        )

    @functools.wraps(inner_factory)
    def factory(*args: Any, **kwargs: Any) -> InjectHyperparams:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        numeric, schedules, others = {}, {}, {}
        for name, value in bound.arguments.items():
            kind = signature.parameters[name].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                if kind is inspect.Parameter.VAR_POSITIONAL and value:
                    raise TypeError(
                        "gradtx.inject_hyperparams: variadic positional arguments cannot be "
                        "injected; pass them by name"
                    )
                if kind is inspect.Parameter.VAR_KEYWORD:
                    others.update(value)
                continue
            if name in static or isinstance(value, (bool, np.bool_, str, type, np.dtype)):
                others[name] = value
            elif isinstance(value, Schedule) or (
                callable(value) and not isinstance(value, Transform) and not hasattr(value, "init")
            ):
                schedules[name] = as_schedule(value)
            elif _is_number(value):
                numeric[name] = value
            else:
                others[name] = value
        return InjectHyperparams(
            numeric, schedules, inner_factory, _Static(others), hyperparam_dtype
        )

    return factory


def inject_stateful_hyperparams(
    inner_factory: Callable[..., Any],
    static_args: str | Iterable[str] = (),
    hyperparam_dtype: Any = None,
) -> Callable[..., InjectHyperparams]:
    """``inject_hyperparams``, under the name Optax gives its variant with stateful schedules.

    Args:
      inner_factory: a function returning a transform.
      static_args: names of arguments passed unchanged (see ``inject_hyperparams``).
      hyperparam_dtype: dtype of the floating-point hyperparameters in the state.

    Conventions:
      ``optax.inject_stateful_hyperparams``'s signature; gradtx's schedules are functions of the
      step count, so both names build the same transform (Optax deprecates this one).
    """
    return inject_hyperparams(inner_factory, static_args, hyperparam_dtype)
