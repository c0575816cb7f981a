"""Hyperparameter validation and tree-structure errors that name the path.

Validation runs only on concrete values (Python numbers, NumPy values and concrete JAX arrays).
Tracers are skipped: a traced hyperparameter is checked by whoever made it concrete.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


class TreeMismatchError(ValueError):
    """A gradient, parameter or state tree does not match the tree the optimizer expects."""


class HyperparameterError(ValueError):
    """A hyperparameter is outside its valid range."""


def concrete_values(value: Any) -> np.ndarray | None:
    """Returns ``value`` as a NumPy array when it is concrete, else ``None``.

    Schedules, callables, tracers and other non-numeric objects give ``None``.
    """
    if value is None or isinstance(value, (bool, str)) or callable(value):
        return None
    if isinstance(value, jax.core.Tracer):
        return None
    if isinstance(value, (int, float, np.number, np.ndarray, jax.Array)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, jax.errors.ConcretizationTypeError):  # pragma: no cover - tracers
            return None
    return None


def _fmt(value: Any) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(float(arr)) if arr.dtype.kind == "f" else repr(arr.item())
    return np.array2string(arr, threshold=8)


def check_range(
    fn: str,
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raises ``HyperparameterError`` when a concrete ``value`` is NaN or outside the interval.

    The message reads ``gradtx.adam: b1 must be in [0, 1), got 1.5``.
    """
    if isinstance(value, str):
        raise HyperparameterError(
            f"gradtx.{fn}: {name} must be a number, an array or a schedule, got {value!r}"
        )
    arr = concrete_values(value)
    if arr is None:
        return
    # An infinite bound is open: ``[0, inf)`` rejects inf, as its text says.
    lo_ok = (arr > low) if low_open or low == -math.inf else (arr >= low)
    hi_ok = (arr < high) if high_open or high == math.inf else (arr <= high)
    if np.all(lo_ok & hi_ok) and not np.any(np.isnan(arr)):
        return
    lb = "(" if low_open or low == -math.inf else "["
    rb = ")" if high_open or high == math.inf else "]"
    lo = "-inf" if low == -math.inf else f"{low:g}"
    hi = "inf" if high == math.inf else f"{high:g}"
    raise HyperparameterError(
        f"gradtx.{fn}: {name} must be in {lb}{lo}, {hi}{rb}, got {_fmt(value)}"
    )


class Interval:
    """A valid range for a hyperparameter field: ``field(0.9, check=Interval(0, 1, high_open=True))``.

    Calling it checks a concrete value the way ``check_range`` does. An infinite bound is always
    open: ``Interval(0)`` is ``[0, inf)`` and rejects ``inf``.
    """

    def __init__(
        self,
        low: float = -math.inf,
        high: float = math.inf,
        *,
        low_open: bool = False,
        high_open: bool = False,
        integer: bool = False,
    ):
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open
        self.integer = integer

    def __call__(self, fn: str, name: str, value: Any) -> None:
        if self.integer:
            arr = concrete_values(value)
            if arr is not None and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
                raise HyperparameterError(
                    f"gradtx.{fn}: {name} must be an integer in {self._text()}, got {_fmt(value)}"
                )
        check_range(
            fn, name, value, self.low, self.high, low_open=self.low_open, high_open=self.high_open
        )

    def _text(self) -> str:
        lb = "(" if self.low_open or self.low == -math.inf else "["
        rb = ")" if self.high_open or self.high == math.inf else "]"
        return f"{lb}{self.low:g}, {self.high:g}{rb}"

    def __repr__(self) -> str:
        return f"Interval{self._text()}"


#: The ranges most hyperparameters use.
NONNEGATIVE = Interval(0.0)
POSITIVE = Interval(0.0, low_open=True)
UNIT = Interval(0.0, 1.0, high_open=True)  # decay rates: [0, 1)
CLOSED_UNIT = Interval(0.0, 1.0)  # [0, 1]
COUNT = Interval(1, integer=True)  # iterations, periods: 1, 2, ...


def check_nonnegative(fn: str, name: str, value: Any) -> None:
    check_range(fn, name, value, 0.0, math.inf)


def check_positive(fn: str, name: str, value: Any) -> None:
    check_range(fn, name, value, 0.0, math.inf, low_open=True)


def check_unit_interval(fn: str, name: str, value: Any, *, high_open: bool = True) -> None:
    """``value`` in [0, 1) (decay rates), or [0, 1] with ``high_open=False``."""
    check_range(fn, name, value, 0.0, 1.0, high_open=high_open)


def check_choice(fn: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    if value not in choices:
        opts = ", ".join(repr(c) for c in choices)
        raise HyperparameterError(f"gradtx.{fn}: {name} must be one of {opts}, got {value!r}")


def path_str(path: tuple[Any, ...]) -> str:
    """A key path as a readable string: ``['layer'][0].w`` or ``<root>``."""
    return jax.tree_util.keystr(path) if path else "<root>"


def _describe(leaf: Any) -> str:
    if leaf is None:
        return "None"
    shape = getattr(leaf, "shape", None)
    dtype = getattr(leaf, "dtype", None)
    if shape is not None:
        return f"{dtype}{list(shape)}"
    return type(leaf).__name__


def first_difference(expected: Any, got: Any) -> tuple[str, str, str] | None:
    """Finds the first path where two trees differ in structure or leaf shape.

    Returns ``(path, expected, got)`` as strings, or ``None`` when the trees match.
    """
    is_leaf = lambda x: x is None
    exp_leaves, exp_def = jax.tree_util.tree_flatten(expected, is_leaf=is_leaf)
    got_leaves, got_def = jax.tree_util.tree_flatten(got, is_leaf=is_leaf)
    if exp_def == got_def and all(
        (v is None) == (g is None) and (v is None or np.shape(v) == np.shape(g))
        for v, g in zip(exp_leaves, got_leaves)
    ):
        return None  # the common case, decided without naming every path
    exp = jax.tree_util.tree_flatten_with_path(expected, is_leaf=is_leaf)[0]
    got_ = jax.tree_util.tree_flatten_with_path(got, is_leaf=is_leaf)[0]
    exp_map = {path_str(p): v for p, v in exp}
    got_map = {path_str(p): v for p, v in got_}
    for p, v in exp:
        key = path_str(p)
        if key not in got_map:
            return key, _describe(v), "missing"
        g = got_map[key]
        if (v is None) != (g is None):
            return key, _describe(v), _describe(g)
        if v is not None and np.shape(v) != np.shape(g):  # Python numbers are shape ()
            return key, _describe(v), _describe(g)
    for p, g in got_:
        key = path_str(p)
        if key not in exp_map:
            return key, "nothing (extra key)", _describe(g)
    if jax.tree_util.tree_structure(expected, is_leaf=is_leaf) != jax.tree_util.tree_structure(
        got, is_leaf=is_leaf
    ):
        return (
            "<root>",
            str(jax.tree_util.tree_structure(expected)),
            str(jax.tree_util.tree_structure(got)),
        )
    return None


def check_same_tree(where: str, expected: Any, got: Any, expected_name: str, got_name: str) -> None:
    """Raises ``TreeMismatchError`` naming ``where`` and the first differing path."""
    diff = first_difference(expected, got)
    if diff is None:
        return
    path, exp, g = diff
    raise TreeMismatchError(
        f"{where}: the {got_name} tree does not match the {expected_name} tree at {path}: "
        f"expected {exp}, got {g}. Pass {got_name} with the same structure and shapes as the "
        f"params given to init (or call init again for a new model)."
    )


def check_float_leaves(where: str, tree: Any, name: str) -> None:
    """Rejects integer and boolean leaves, naming the first offending path."""
    if all(_is_inexact(leaf) for leaf in jax.tree_util.tree_leaves(tree)):
        return  # the common case, decided without naming every path
    for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if not _is_inexact(leaf):
            dtype = getattr(leaf, "dtype", None)
            if dtype is None:
                dtype = np.asarray(leaf).dtype
            raise TypeError(
                f"{where}: {name} leaf at {path_str(p)} has dtype {dtype}; optimizers need "
                f"floating-point leaves. Keep integer and boolean arrays out of the optimized tree "
                f"(use gradtx.partition/freeze, or eqx.filter(model, eqx.is_inexact_array))."
            )


def _is_inexact(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    if dtype is None:
        dtype = np.asarray(leaf).dtype
    return jax.dtypes.issubdtype(dtype, np.inexact)
