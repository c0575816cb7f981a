"""Complex parameters as pairs of real ones, for optimizers written for real numbers."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .._transform import Transform, as_child, field, pytree_dataclass


class RealImaginaryPair(NamedTuple):
    """A complex leaf seen by the inner optimizer: two real leaves."""

    real: Any
    imaginary: Any


class SplitRealAndImaginaryState(NamedTuple):
    inner_state: Any  # the inner optimizer's state, on the split tree


def _split(tree: Any) -> Any:
    def leaf(x):
        return RealImaginaryPair(jnp.real(x), jnp.imag(x)) if jnp.iscomplexobj(x) else x

    return None if tree is None else jax.tree.map(leaf, tree)


def _merge(tree: Any) -> Any:
    def leaf(x):
        return jax.lax.complex(x.real, x.imaginary) if isinstance(x, RealImaginaryPair) else x

    return jax.tree.map(leaf, tree, is_leaf=lambda x: isinstance(x, RealImaginaryPair))


@pytree_dataclass
class SplitRealAndImaginary(Transform):
    """Runs ``inner`` on ``(re, im)`` pairs of real leaves (see ``split_real_and_imaginary``)."""

    fn_name = "contrib.split_real_and_imaginary"

    inner: Any = field(None, converter=as_child)

    def _init(self, params):
        return SplitRealAndImaginaryState(self.inner._init(_split(params)))

    def _update(self, updates, state, params, **extra):
        u, s = self.inner._update(_split(updates), state.inner_state, _split(params), **extra)
        return _merge(u), SplitRealAndImaginaryState(s)

    def _children(self, state):
        return (("inner", self.inner, state.inner_state),)


def split_real_and_imaginary(inner: Any) -> SplitRealAndImaginary:
    """Runs a real optimizer on complex parameters as if each were two real ones.

    Each complex leaf ``z = x + i y`` (of the updates and the params) becomes the pair of real
    leaves ``(x, y)`` that ``inner`` sees; its updates ``(u_x, u_y)`` come back as
    ``u_x + i u_y``. Real leaves pass to ``inner`` unchanged. With JAX's convention, pass the
    conjugate of ``jax.grad``'s gradient for a descent step on a real loss.

    Args:
      inner: the optimizer (a gradtx transform, or any object with ``init`` and ``update``).

    Conventions: Optax's ``contrib.split_real_and_imaginary``. gradtx's own optimizers also
    take complex leaves directly (``complex_convention`` where the choice matters).
    """
    return SplitRealAndImaginary(inner)
