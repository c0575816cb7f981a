"""Small helpers the contrib optimizers share: dtypes, inner products and the decay step."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Identity, Transform, chain, scale_by_learning_rate
from ..transforms._weight_decay import add_decayed_weights

ARGS_MASK = """mask: a pytree of bools (True = decay that leaf) or a function from params to one;
        None decays every leaf."""


def dtype_of(*xs: Any) -> jnp.dtype:
    """The dtype leaf arithmetic runs in: the widest of the arrays' dtypes and float32."""
    return _tree.compute_dtype(*(jnp.result_type(x) for x in xs))


def scalar_dtype(params: Any) -> jnp.dtype:
    """The dtype of a transform's scalar state: the widest real dtype of ``params``, at least
    float32 (Optax keeps such scalars in the lowest dtype; float32 params give the same)."""
    leaves = [p for p in jax.tree.leaves(params) if p is not None]
    return _tree.compute_dtype(*(_tree.real_dtype(jnp.result_type(p)) for p in leaves))


def tree_vdot(a: Any, b: Any, dtype: Any) -> jax.Array:
    """``sum_i <a_i, b_i>`` over the leaves, in ``dtype``."""
    total = jnp.zeros((), dtype)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        cd = _tree.compute_dtype(dtype, x.dtype, y.dtype)
        total = total + jnp.sum(x.astype(cd) * y.astype(cd)).astype(dtype)
    return total


def copy_tree(params: Any) -> Any:
    """A distinct copy of ``params`` (state such as ``x0``), keeping dtypes and shardings."""
    return jax.tree.map(lambda p: p + _tree.zeros_like(p), params)


def decay(fn: str, weight_decay: Any, mask: Any = None) -> Transform:
    """``add_decayed_weights`` whose range error names ``fn``; None adds nothing (Optax's
    ``weight_decay=None``)."""
    if weight_decay is None:
        return Identity()
    _checks.check_nonnegative(fn, "weight_decay", weight_decay)
    return add_decayed_weights(weight_decay, mask)


def with_learning_rate(fn: str, learning_rate: Any, *parts: Transform) -> Transform:
    """``chain(*parts, scale_by_learning_rate(learning_rate))`` with ``fn`` named in errors."""
    _checks.check_nonnegative(fn, "learning_rate", learning_rate)
    return chain(*parts, scale_by_learning_rate(learning_rate))
