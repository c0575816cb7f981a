"""SAM: sharpness-aware minimization as a wrapper of an outer and an adversarial optimizer."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import (
    EmptyState,
    Transform,
    apply_updates,
    as_transform,
    pytree_dataclass,
    scale_tree,
    static_field,
)

NormalizeState = EmptyState


@pytree_dataclass
class Normalize(Transform):
    """``u <- g / ||g||`` (global L2 norm over every leaf)."""

    def _update(self, updates, state, params, **extra):
        return scale_tree(updates, 1 / _tree.tree_norm(updates)), state


def normalize() -> Normalize:
    """Divides the updates by their global L2 norm (SAM's adversarial direction)."""
    return Normalize()


class SAMState(NamedTuple):
    steps_since_sync: jax.Array  # adversarial steps since the last outer update
    opt_state: Any  # the outer optimizer's state
    adv_state: Any  # the adversarial optimizer's state
    cache: Any  # the outer params (None in opaque mode)


def _negate(tree: Any) -> Any:
    return jax.tree.map(lambda x: -x, tree)


def _pick(cond: Any, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


@pytree_dataclass
class SAM(Transform):
    """SAM around an outer and an adversarial optimizer (see ``sam``)."""

    fn_name = "contrib.sam"

    optimizer: Transform
    adv_optimizer: Transform
    sync_period: int = static_field(2, check=_checks.COUNT)
    reset_state: bool = static_field(True)
    opaque_mode: bool = static_field(False)
    batch_axis_name: Any = static_field(None)

    def _init(self, params):
        return SAMState(
            jnp.zeros((), jnp.int32),
            self.optimizer._init(params),
            self.adv_optimizer._init(params),
            None if self.opaque_mode else jax.tree.map(lambda p: p + _tree.zeros_like(p), params),
        )

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: SAM needs params; pass them to update.")
        if self.opaque_mode:
            return self._opaque(updates, state, params, extra.get("grad_fn"))
        first = state.steps_since_sync == 0
        last = state.steps_since_sync == self.sync_period - 1
        adv_u, adv_state = self.adv_optimizer._update(updates, state.adv_state, params)
        adv_u = _negate(adv_u)
        opt_u, opt_state = self.optimizer._update(updates, state.opt_state, state.cache)
        opt_u = jax.tree.map(lambda c, p, u: c - p + u, state.cache, params, opt_u)
        cache = _pick(first, params, state.cache)
        out = _pick(last, opt_u, adv_u)
        if self.reset_state:
            adv_state = _pick(last, self.adv_optimizer._init(params), adv_state)
        else:
            adv_state = _pick(last, state.adv_state, adv_state)
        opt_state = _pick(last, opt_state, state.opt_state)
        steps = (state.steps_since_sync + 1) % self.sync_period
        return out, SAMState(steps, opt_state, adv_state, cache)

    def _opaque(self, updates, state, params, grad_fn):
        if grad_fn is None:
            raise ValueError(
                f"{self.where()}: opaque_mode=True needs grad_fn; call update(grads, state, "
                "params, grad_fn=lambda params, i: gradient at params)."
            )
        adv_params, adv_u, adv_state = params, updates, state.adv_state
        for i in range(self.sync_period - 1):
            adv_u, adv_state = self.adv_optimizer._update(adv_u, adv_state, adv_params)
            adv_params = apply_updates(adv_params, _negate(adv_u))
            adv_u = grad_fn(adv_params, i)
            if self.batch_axis_name is not None:
                adv_u = jax.lax.pmean(adv_u, axis_name=self.batch_axis_name)
        if self.reset_state:
            adv_state = self.adv_optimizer._init(params)
        out, opt_state = self.optimizer._update(adv_u, state.opt_state, params)
        return out, SAMState(jnp.zeros((), jnp.int32), opt_state, adv_state, None)


def sam(
    optimizer: Any,
    adv_optimizer: Any,
    sync_period: int = 2,
    reset_state: bool = True,
    opaque_mode: bool = False,
    batch_axis_name: str | None = None,
) -> SAM:
    """SAM, sharpness-aware minimization (Optax's ``contrib.sam``).

    With ``adv_optimizer = chain(normalize(), sgd(rho))`` and ``sync_period = 2`` this is the
    paper's step (t = 0, 1, ...; g(x) the gradient at x)::

        e_t = rho * g(x_t) / ||g(x_t)||                 (adversarial step, ascent)
        x_{t+1} = x_t - outer_step(g(x_t + e_t))        (outer optimizer, from x_t)

    In the default transparent mode every call to ``update`` is one step: ``sync_period - 1``
    adversarial steps (the params move to ``x + e``) then one outer step, which restarts from
    the cached outer params. With ``opaque_mode=True`` one call runs all of them, calling
    ``grad_fn(params, i)`` for the gradients at the adversarial points, and the params only
    ever hold outer iterates.

    Args:
      optimizer: the outer optimizer (a gradtx transform or any Optax-shaped object).
      adv_optimizer: the adversarial optimizer; its descent step is negated into an ascent
        step (``chain(normalize(), sgd(rho))`` is the paper's).
      sync_period: adversarial steps plus one outer step per cycle, an integer >= 1;
        default 2.
      reset_state: re-initialize the adversarial optimizer after each outer step; default
        True.
      opaque_mode: run the whole cycle inside one ``update`` (needs ``grad_fn=``); default
        False.
      batch_axis_name: in opaque mode, ``pmean`` the adversarial gradients over this axis;
        default None.

    Conventions: Optax's ``contrib.sam``. ``grad_fn`` is held static: pass the same function
    object each step to reuse the compiled update.

    References:
      Foret, Kleiner, Mobahi, Neyshabur, "Sharpness-Aware Minimization for Efficiently
      Improving Generalization", ICLR 2021. arXiv:2010.01412
    """
    return SAM(
        as_transform(optimizer, "contrib.sam", "optimizer"),
        as_transform(adv_optimizer, "contrib.sam", "adv_optimizer"),
        sync_period,
        reset_state,
        opaque_mode,
        batch_axis_name,
    )
