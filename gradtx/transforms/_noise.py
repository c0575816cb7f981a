"""Annealed Gaussian gradient noise."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, _repr_value, field, pytree_dataclass


class AddNoiseState(NamedTuple):
    count: jax.Array  # steps taken
    key: jax.Array  # the PRNG key for the next step


@pytree_dataclass
class AddNoise(Transform):
    """``u <- u + sqrt(eta / t^gamma) * n`` with ``n ~ N(0, I)`` and t = 1, 2, ...

    Each step splits the state's key into (next key, sample key) and draws one standard normal
    vector with the sample key, as long as all leaves together, in at least float32; leaf i takes
    the next ``size_i`` entries in ``jax.tree.leaves`` order. (Complex leaves get real noise.)
    """

    fn_name = "add_noise"

    eta: Any = field(0.01, check=_checks.NONNEGATIVE)
    gamma: Any = field(0.55, check=_checks.NONNEGATIVE)
    key: Any = None

    def __check_init__(self):
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
        if not leaves:
            return updates, AddNoiseState(count, next_key)
        rd = _tree.compute_dtype(*(_tree.real_dtype(x.dtype) for x in leaves))
        sizes = [int(x.size) for x in leaves]
        # One draw for the whole tree (one PRNG kernel to compile, whatever the leaf count).
        flat = jax.random.normal(sample, (sum(sizes),), rd)
        std = jnp.sqrt(_tree.hp(self.eta, rd) / count.astype(rd) ** _tree.hp(self.gamma, rd))
        out, offset = [], 0
        for u, n in zip(leaves, sizes):
            noise = (std * flat[offset : offset + n]).reshape(u.shape)
            offset += n
            cd = _tree.compute_dtype(u.dtype, rd)
            out.append((u.astype(cd) + noise.astype(cd)).astype(u.dtype))
        return treedef.unflatten(out), AddNoiseState(count, next_key)


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
    return f"AddNoise(eta={_repr_value(self.eta)}, gamma={_repr_value(self.gamma)})"


AddNoise.__repr__ = _repr  # type: ignore[method-assign]
