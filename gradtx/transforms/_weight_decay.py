"""Weight decay as a chain element: ``u <- u + weight_decay * p`` on the masked leaves."""

from __future__ import annotations

from typing import Any

import jax

from .. import _checks, _tree
from .._mask import as_mask, resolve_mask
from .._transform import (
    Transform,
    count_of,
    field,
    next_count,
    pytree_dataclass,
    schedule_count,
    static_field,
    value_at,
)


@pytree_dataclass
class AddDecayedWeights(Transform):
    """``u <- u + weight_decay(count) * p`` where the mask is True.

    Placed before a preconditioner it is torch's coupled L2 term; placed after the preconditioner
    and before the learning rate it is AdamW's decoupled decay (``p <- p - lr * wd * p``); placed
    after ``scale(lr)`` and before ``negate()`` it is the seed tutorial's
    ``decrement += wd * params``.
    """

    elementwise = True
    fn_name = "add_decayed_weights"

    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    mask: Any = static_field(None, converter=as_mask)

    def _init(self, params):
        return schedule_count(self)

    def _update(self, updates, state, params, **extra):
        if params is None and not jax.tree.leaves(updates):  # nothing to decay (an empty part)
            return updates, next_count(state)
        if params is None:
            raise ValueError(
                f"{self.where()}: weight decay needs params; call update(grads, state, params)."
            )
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        wd = value_at(self.weight_decay, count_of(state))
        mask = resolve_mask(self.mask, params, self.where())

        def leaf(u, p, m):
            if not m:
                return u
            cd = _tree.compute_dtype(u.dtype, p.dtype)
            return (u.astype(cd) + _tree.hp(wd, cd) * p.astype(cd)).astype(u.dtype)

        out = jax.tree.map(leaf, updates, params, mask)
        return out, next_count(state)


def add_decayed_weights(weight_decay: Any = 0.0, mask: Any = None) -> AddDecayedWeights:
    """Adds ``weight_decay * params`` to the updates (see ``AddDecayedWeights``).

    Args:
      weight_decay: a float >= 0, an array or a schedule.
      mask: a pytree of bools (True = decay this leaf), or a function from params to one.
    """
    return AddDecayedWeights(weight_decay, mask)
