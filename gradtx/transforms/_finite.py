"""Non-finite safety: skip steps whose gradients hold NaN or Inf; replace NaNs by zeros."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_child, field, pytree_dataclass


class ApplyIfFiniteState(NamedTuple):
    """Counters of ``apply_if_finite``.

    notfinite_count: the current run of consecutive non-finite steps that were skipped. It is
      0 after a finite step, and also after a step that was applied because the run exceeded
      ``max_consecutive_errors`` (the give-up step starts a new run).
    last_finite: whether the last step's gradients were all finite.
    total_notfinite: all non-finite steps seen so far (skipped or given up on).
    total_skipped: the steps that were skipped (updates zero, inner state unchanged).
    inner_state: the inner transform's state, advanced only on applied steps.
    """

    notfinite_count: jax.Array
    last_finite: jax.Array
    total_notfinite: jax.Array
    total_skipped: jax.Array
    inner_state: Any


@pytree_dataclass
class ApplyIfFinite(Transform):
    """Skips steps with a non-finite gradient, at most ``max_consecutive_errors`` in a row."""

    elementwise = True
    fn_name = "apply_if_finite"

    inner: Transform = field(converter=as_child)
    max_consecutive_errors: Any = field(5, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = jnp.zeros((), jnp.int32)
        return ApplyIfFiniteState(z, jnp.asarray(True), z, z, self.inner._init(params))

    def _update(self, updates, state, params, **extra):
        finite = _tree.all_finite(updates)
        run = jnp.where(finite, 0, _tree.safe_increment(state.notfinite_count))
        give_up = jnp.logical_and(
            jnp.logical_not(finite), run > jnp.asarray(self.max_consecutive_errors, jnp.int32)
        )
        apply = jnp.logical_or(finite, give_up)

        def do_apply(operands):
            u, s = operands
            return self.inner._update(u, s, params, **extra)

        out_shape = jax.eval_shape(lambda o: do_apply(o)[0], (updates, state.inner_state))

        def skip(operands):
            _, s = operands
            return jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), out_shape), s

        u, inner_state = jax.lax.cond(apply, do_apply, skip, (updates, state.inner_state))
        not_finite = jnp.logical_not(finite)
        new = ApplyIfFiniteState(
            notfinite_count=jnp.where(give_up, 0, run).astype(jnp.int32),
            last_finite=finite,
            total_notfinite=jnp.where(
                not_finite, _tree.safe_increment(state.total_notfinite), state.total_notfinite
            ),
            total_skipped=jnp.where(
                apply, state.total_skipped, _tree.safe_increment(state.total_skipped)
            ),
            inner_state=inner_state,
        )
        return u, new

    def _children(self, state):
        return (("", self.inner, state.inner_state),)


def apply_if_finite(inner: Any, max_consecutive_errors: Any) -> ApplyIfFinite:
    """Runs ``inner`` only on steps whose gradients are all finite.

    Update rule::

        finite: u, s <- inner.update(g, s)                  run <- 0
        not:    run <- run + 1
                run <= max_consecutive_errors: u <- 0       (s unchanged: the step is skipped)
                run > max_consecutive_errors:  u, s <- inner.update(g, s);  run <- 0

    Args:
      inner: the transform to protect (a gradtx transform or any object with init/update).
      max_consecutive_errors: the most non-finite steps skipped in a row, an integer >= 0.

    A step with a NaN or Inf anywhere gives zero updates and leaves the inner state untouched.
    After more than ``max_consecutive_errors`` such steps in a row, the next non-finite step is
    applied (the optimizer gives up, as ``optax.apply_if_finite`` does) and the run counter
    restarts at 0, so a later burst of NaNs is skipped again. Optax keeps counting instead and
    then applies every following non-finite step until a finite one arrives.

    The state's counters (``ApplyIfFiniteState``) are exact before and after recovery:
    ``notfinite_count`` is the current run, ``total_notfinite`` every non-finite step,
    ``total_skipped`` the steps skipped. Extra arguments reach the inner transform.

    Conventions:
      ``optax.apply_if_finite``'s signature (no default for ``max_consecutive_errors``) and
      numbers up to the first give-up step; after it gradtx restarts the run as described
      above. torch.optim has no counterpart (``torch.amp.GradScaler`` skips steps likewise).
    """
    return ApplyIfFinite(inner, max_consecutive_errors)


class ZeroNansState(NamedTuple):
    """``found_nan``: per leaf, whether the last update held a NaN."""

    found_nan: Any


@pytree_dataclass
class ZeroNans(Transform):
    """``u <- where(isnan(u), 0, u)``; the state records which leaves had NaNs."""

    elementwise = True

    def _init(self, params):
        return ZeroNansState(jax.tree.map(lambda _: jnp.asarray(False), params))

    def _update(self, updates, state, params, **extra):
        found = jax.tree.map(lambda u: jnp.any(jnp.isnan(u)), updates)
        out = jax.tree.map(lambda u: jnp.where(jnp.isnan(u), jnp.zeros_like(u), u), updates)
        return out, ZeroNansState(found)


def zero_nans() -> ZeroNans:
    """Replaces NaNs in the updates by zeros (``optax.zero_nans``); Inf is left alone.

    ``state.found_nan`` holds, per leaf, whether the last update had a NaN.
    """
    return ZeroNans()
