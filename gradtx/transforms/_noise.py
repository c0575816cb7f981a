"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, pytree_dataclass


class AddNoiseState(NamedTuple):
    count: jax.Array  # steps taken
    key: jax.Array  # the PRNG key for the next step


@pytree_dataclass
class AddNoise(Transform):
    """``u <- u + sqrt(eta / t^gamma) * n`` with ``n ~ N(0, I)`` and t = 1, 2, ...

    Each step splits the state's key into (next key, sample key), then the sample key into one
    key per leaf (in ``jax.tree.leaves`` order). Noise is drawn in at least float32.
    """

    eta: Any = 0.01
    gamma: Any = 0.55
    key: Any = None

    def __post_init__(self):
        _checks.check_nonnegative("add_noise", "eta", self.eta)
        _checks.check_nonnegative("add_noise", "gamma", self.gamma)
        key = self.key
        if key is None or isinstance(key, int):
            raise TypeError(
                "gradtx.add_noise: pass key=jax.random.key(seed) (or an int seed via "
                "add_noise(eta, gamma, seed)); got " + repr(key)
            )

    def _init(self, params):
        return AddNoiseState(jnp.zeros((), jnp.int32), self.key)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        next_key, sample = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(updates)
        keys = jax.random.split(sample, max(len(leaves), 1))

        def leaf(u, k):
            cd = _tree.compute_dtype(u.dtype)
            rd = _tree.real_dtype(cd)
            std = jnp.sqrt(_tree.hp(self.eta, rd) / count.astype(rd) ** _tree.hp(self.gamma, rd))
            n = jax.random.normal(k, u.shape, cd)
            return (u.astype(cd) + std * n).astype(u.dtype)

        out = treedef.unflatten([leaf(u, keys[i]) for i, u in enumerate(leaves)])
        return out, AddNoiseState(count, next_key)


def add_noise(eta: Any, gamma: Any = 0.55, seed: Any = 0) -> AddNoise:
    """Adds annealed Gaussian noise with variance ``eta / t^gamma`` (``optax.add_noise``).

    Args:
      eta: initial variance, >= 0.
      gamma: annealing exponent, >= 0 (0.55 in the paper).
      seed: an int seed or a JAX PRNG key; the key is carried in the state.

    References:
      Neelakantan et al., "Adding Gradient Noise Improves Learning for Very Deep Networks",
      2015. arXiv:1511.06807
    """
    key = jax.random.key(seed) if isinstance(seed, int) else seed
    return AddNoise(eta, gamma, key)


def _repr(self: AddNoise) -> str:
    return f"AddNoise(eta={self.eta!r}, gamma={self.gamma!r})"


AddNoise.__repr__ = _repr  # type: ignore[method-assign]
