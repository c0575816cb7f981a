"""Annealed Gaussian gradient noise, drawn with Optax's key stream."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import _repr_value, field, pytree_dataclass, static_field, value_at


class AddNoiseState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    key: jax.Array  # the typed PRNG key the next update splits


def _static_key(fn: str, name: str, key: Any) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """A seed or PRNG key as a hashable ``(impl, shape, key data)`` triple (held static)."""
    if isinstance(key, tuple) and len(key) == 3:  # already the triple
        return key
    if isinstance(key, jax.core.Tracer):
        raise TypeError(f"gradtx.{fn}: {name} must be concrete (a seed or a PRNG key), not traced")
    with jax.ensure_compile_time_eval():
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = jax.random.key(int(key))
        key = key if isinstance(key, jax.Array) else jnp.asarray(key)
        if not jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
        impl = str(jax.random.key_impl(key))
        data = np.asarray(jax.random.key_data(key)).astype(np.uint32)
    return impl, tuple(data.shape), tuple(int(x) for x in data.ravel())


@pytree_dataclass
class AddNoise(PerLeaf):
    """``u_t = g_t + sqrt(eta / t^gamma) * z_t`` with ``z_t ~ N(0, I)`` drawn per leaf.

    Each update splits the state's key into (next key, sample key) and splits the sample key
    into one key per leaf, in leaf order; leaf i draws ``normal(keys[i], shape)`` in its compute
    dtype (Optax's ``add_noise`` stream, so equal keys give equal noise on float32 leaves).
    ``fn`` is the public name that errors report (``noisy_sgd`` builds this transform too).
    """

    state_type = AddNoiseState
    keyed = True
    leaf_statistic = "noise drawn with one PRNG key per leaf"

    eta: Any = field(0.01, check=_checks.NONNEGATIVE)
    gamma: Any = field(0.55, check=_checks.NONNEGATIVE)
    key: Any = static_field(0, converter=_static_key)
    fn: str = static_field("add_noise")

    def _name(self):
        return f"gradtx.{self.fn}"

    def _carry_init(self):
        impl, shape, data = self.key
        arr = jnp.asarray(np.asarray(data, np.uint32).reshape(shape))
        return {"key": jax.random.wrap_key_data(arr, impl=impl)}

    def _scalars(self, count, t):
        return {"t": t, "eta": value_at(self.eta, count), "gamma": value_at(self.gamma, count)}

    def _leaf(self, s, g, key):
        cd = _tree.compute_dtype(g.dtype)
        rd = _tree.real_dtype(cd)
        std = jnp.sqrt(_tree.hp(s.eta, rd) / s.t.astype(rd) ** _tree.hp(s.gamma, rd))
        z = jax.random.normal(key, g.shape, cd)
        return ((g.astype(cd) + std * z).astype(g.dtype),)

    def __repr__(self) -> str:
        return f"AddNoise(eta={_repr_value(self.eta)}, gamma={_repr_value(self.gamma)})"


def noise_key(fn: str, key: Any, seed: Any) -> Any:
    """Optax's ``key``/``seed`` arguments as one key: ``seed`` is an int seed; neither is seed 0."""
    if seed is not None:
        if key is not None:
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: pass either key or seed, not both (got key={key!r}, seed={seed!r})"
            )
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: seed must be an int, got {seed!r} (pass a PRNG key as key=)"
            )
        return int(seed)
    return 0 if key is None else key


def add_noise(eta: Any, gamma: Any, key: Any = None, *, seed: Any = None) -> AddNoise:
    """Adds annealed Gaussian noise to the updates::

        u_t <- u_t + sqrt(eta / t^gamma) * z_t,   z_t ~ N(0, I)   (t = 1, 2, ...)

    Args:
      eta: the noise variance at the first step, >= 0 (float, array or schedule).
      gamma: the annealing exponent, >= 0 (0.55 in the paper; float, array or schedule).
      key: a JAX PRNG key (typed or raw uint32) or an int seed; None is seed 0. It is part of
        the transform's static structure and the state carries the evolving key, so a run is
        reproducible.
      seed: an int seed, instead of ``key``.

    Conventions: ``optax.add_noise``: same signature, defaults and key stream (each step splits
    the state's key into the next key and a sample key, and the sample key into one key per
    leaf), so the same key gives the same noise on float32 leaves; lower-precision leaves draw
    in float32 and round. Optax warns when no key is given and marks ``seed`` deprecated; gradtx
    takes both quietly. torch.optim has no counterpart.

    References:
      Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach, Martens, "Adding Gradient Noise
      Improves Learning for Very Deep Networks", 2015. arXiv:1511.06807
    """
    return AddNoise(eta, gamma, noise_key("add_noise", key, seed))
