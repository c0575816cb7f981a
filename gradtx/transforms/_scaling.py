"""Stateless scalings: negation (maximize) and the sign of the update."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._transform import Transform, pytree_dataclass


@pytree_dataclass
class Negate(Transform):
    """``u <- -u``. At the head of a chain it turns minimization into maximization."""

    elementwise = True

    def _update(self, updates, state, params, **extra):
        return jax.tree.map(jnp.negative, updates), state


def negate() -> Negate:
    """Negates the updates (torch's ``maximize=True`` when placed first)."""
    return Negate()
