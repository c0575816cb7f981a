"""``flatten``: an inner transform run on the updates raveled into one vector."""

from __future__ import annotations

from typing import Any

from .. import _tree
from .._transform import Transform, as_child, field, pytree_dataclass


@pytree_dataclass
class Flatten(Transform):
    """Runs ``inner`` on the updates (and params) raveled into one vector; see ``flatten``."""

    elementwise = True
    fn_name = "flatten"

    inner: Transform = field(converter=as_child)

    def is_stackable(self) -> bool:
        # The inner transform sees the elements in leaf order: only an elementwise one gives
        # the same numbers when the leaves are laid out otherwise.
        return self.is_elementwise()

    def _init(self, params):
        return self.inner._init(_tree.ravel(params))

    def _update(self, updates, state, params, **extra):
        flat_params = None if params is None else _tree.ravel(params)
        flat, state = self.inner._update(_tree.ravel(updates), state, flat_params, **extra)
        return _tree.unravel(updates, flat), state

    def _children(self, state):
        return (("", self.inner, state),)


def flatten(inner: Any) -> Flatten:
    """Runs ``inner`` on the updates raveled into one vector, its state included.

    Update rule::

        v      = concatenate([ravel(u) for u in leaves(updates)])     (leaves order)
        w      = concatenate([ravel(p) for p in leaves(params)])      (when params are given)
        v', s' = inner.update(v, s, w)
        u_i    = reshape(v'[offset_i : offset_i + size_i], shape_i)   cast to u_i's dtype

    The inner state is the state of one vector (``inner.init`` of the raveled params), so a
    transform with per-leaf buffers keeps one flat buffer each. The vector has the standard
    promotion of the leaves' dtypes. Useful for many small leaves; ``gradtx.pack`` keeps
    params, gradients and state packed across steps instead, without a concatenation per step.

    Args:
      inner: the transform to run on the vector (a gradtx transform or any object with
        ``init``/``update``, such as an Optax transform). Extra ``update`` arguments reach it.

    Conventions:
      ``optax.flatten``'s signature, state and numbers (an elementwise inner transform gives
      the numbers of the unflattened one). gradtx returns each update leaf in its own dtype,
      where Optax returns every leaf in the vector's dtype; they agree when the leaves share
      one. torch.optim has no counterpart (its ``foreach`` and ``fused`` kernels are
      implementation options, not transforms).
    """
    return Flatten(inner)
