"""Noisy SGD: annealed Gaussian noise added to the gradient, the PRNG key kept in the state."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class NoiseState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    key: jax.Array  # the typed PRNG key the next update splits


def _static_key(key: Any) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """A seed or PRNG key as a hashable ``(impl, shape, key data)`` triple (held static)."""
    if isinstance(key, jax.core.Tracer):
        raise TypeError("gradtx.noisy_sgd: key must be concrete (a seed or a PRNG key), not traced")
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
    into one key per leaf, in leaf order (Optax's ``add_noise`` semantics, so equal keys give
    equal noise).
    """

    fn_name = "noisy_sgd"
    state_type = NoiseState
    keyed = True
    layout_what = "noise drawn with one PRNG key per leaf"

    eta: Any = field(0.01, check=_checks.NONNEGATIVE)
    gamma: Any = field(0.55, check=_checks.NONNEGATIVE)
    key: Any = static_field(0)

    def __check_init__(self):
        if not (isinstance(self.key, tuple) and len(self.key) == 3):
            object.__setattr__(self, "key", _static_key(self.key))

    def _carry_init(self):
        impl, shape, data = self.key
        arr = jnp.asarray(np.asarray(data, np.uint32).reshape(shape))
        return {"key": jax.random.wrap_key_data(arr, impl=impl)}

    def _scalars(self, count, t):
        return {"t": t, "eta": value_at(self.eta, count)}

    def _leaf(self, s, g, key):
        cd = _tree.compute_dtype(g.dtype)
        rd = _tree.real_dtype(cd)
        std = jnp.sqrt(_tree.hp(s.eta, rd) / s.t.astype(rd) ** _tree.hp(self.gamma, rd))
        z = jax.random.normal(key, g.shape, cd)
        return ((g.astype(cd) + std * z).astype(g.dtype),)


def _add_noise(eta: Any = 0.01, gamma: Any = 0.55, key: Any = 0) -> AddNoise:
    """Adds annealed Gaussian noise (see ``AddNoise``); ``key`` is a seed or a PRNG key."""
    return AddNoise(eta, gamma, key)


def noisy_sgd(
    learning_rate: Any = 1e-3,
    eta: Any = 0.01,
    gamma: Any = 0.55,
    key: Any = 0,
    weight_decay: Any = 0.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SGD with annealed gradient noise, Optax's ``noisy_sgd``.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        p_t = p_{t-1} - lr * (g_t + sqrt(eta / t^gamma) * z_t),   z_t ~ N(0, I)

    Args:
      {learning_rate}
      eta: base variance of the noise, >= 0 (float, array or schedule).
      gamma: annealing exponent, >= 0 (0.55, the paper's).
      key: an int seed or a JAX PRNG key (typed or raw uint32); it is part of the transform's
        static structure and the state carries the evolving key, so a run is reproducible.
      {weight_decay}
      {maximize}

    Conventions: with weight_decay 0 and the same key, ``noisy_sgd(lr, eta, gamma, key)`` draws
    the same noise as ``optax.noisy_sgd(lr, eta, gamma, key)`` (float32 leaves; lower-precision
    leaves draw in float32 and round).

    References:
      Neelakantan, Vilnis, Le, Sutskever, Kaiser, Kurach, Martens, "Adding Gradient Noise
      Improves Learning for Very Deep Networks", 2015. arXiv:1511.06807
    """
    return optimizer_chain(
        "noisy_sgd",
        _add_noise(eta, gamma, key),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(noisy_sgd, **COMMON_DOCS)
