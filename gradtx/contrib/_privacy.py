"""DP-SGD: per-example clipping and Gaussian noise, then SGD."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Chain, Identity, Transform, field, pytree_dataclass, scale_by_learning_rate
from ..transforms._momentum import trace


class DifferentiallyPrivateAggregateState(NamedTuple):
    rng_key: jax.Array  # the key of the next noise draw


def _as_key(fn: str, key: Any, seed: Any) -> jax.Array:
    if seed is not None:
        if key is not None:
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: pass one of key and seed, got both (key={key!r}, seed={seed!r})"
            )
        key = seed
    if key is None:
        return jax.random.key(0)
    if isinstance(key, (int,)) and not isinstance(key, bool):
        return jax.random.key(key)
    arr = jnp.asarray(key)
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return arr
    return jax.random.wrap_key_data(arr)


@pytree_dataclass
class DifferentiallyPrivateAggregate(Transform):
    """Clips each example's gradient to ``l2_norm_clip`` (global norm over the leaves), sums,
    adds Gaussian noise and averages (see ``differentially_private_aggregate``)."""

    fn_name = "contrib.differentially_private_aggregate"

    l2_norm_clip: Any = field(check=_checks.NONNEGATIVE)
    noise_multiplier: Any = field(check=_checks.NONNEGATIVE)
    key: Any = None

    def _init(self, params):
        return DifferentiallyPrivateAggregateState(self.key)

    def update(self, updates, state, params=None, **extra):
        """Aggregates per-example ``updates``; ``params`` (shaped without the batch axis) are
        not used and not checked against them."""
        return super().update(updates, state, None, **extra)

    def _update(self, updates, state, params, **extra):
        leaves, treedef = jax.tree.flatten(updates)
        if not leaves or any(jnp.ndim(g) < 1 for g in leaves):
            raise ValueError(
                f"{self.where()}: expects per-example gradients, every leaf with the batch on "
                "axis 0 (jax.vmap(jax.grad(loss)) gives them)."
            )
        n = leaves[0].shape[0]
        dt = _tree.compute_dtype(*(g.dtype for g in leaves))
        sq = sum(jnp.sum(_tree.abs_sq(g.astype(dt)).reshape(n, -1), axis=1) for g in leaves)
        clip = jnp.asarray(self.l2_norm_clip, dt)
        mult = jnp.nan_to_num(jnp.minimum(clip / jnp.sqrt(sq), 1.0), nan=1.0)
        std = clip * jnp.asarray(self.noise_multiplier, dt)
        new_key, *keys = jax.random.split(state.rng_key, len(leaves) + 1)
        out = []
        for g, k in zip(leaves, keys):
            summed = jnp.tensordot(mult.astype(g.dtype), g, axes=1)
            noise = jax.random.normal(k, summed.shape, g.dtype)
            out.append(((summed + std.astype(g.dtype) * noise) / n).astype(g.dtype))
        return treedef.unflatten(out), DifferentiallyPrivateAggregateState(new_key)


@pytree_dataclass
class DPSGD(Chain):
    """A chain whose first element aggregates per-example gradients: ``update`` ignores
    ``params`` (they have no batch axis, so they are not checked against the updates)."""

    fn_name = "contrib.dpsgd"

    def update(self, updates, state, params=None, **extra):
        return super().update(updates, state, None, **extra)


def differentially_private_aggregate(
    l2_norm_clip: Any,
    noise_multiplier: Any,
    key: Any = None,
    *,
    seed: int | None = None,
) -> DifferentiallyPrivateAggregate:
    """DP-SGD's private aggregation of per-example gradients (Optax's transform of that name).

    For a batch of B per-example gradients g_1..g_B (every leaf has the batch on axis 0)::

        c_i = min(1, C / ||g_i||)                  (||.||: global norm over the leaves)
        u = (sum_i c_i * g_i + C * sigma * N(0, I)) / B

    Args:
      l2_norm_clip: C, the per-example norm bound, >= 0.
      noise_multiplier: sigma, the noise standard deviation relative to C, >= 0.
      key: a PRNG key or an int seed; None is ``jax.random.key(0)``.
      seed: an int seed instead of ``key`` (Optax's older argument).

    It must come first in a chain: later transforms see one aggregated gradient. Its own
    ``update`` ignores ``params``; inside ``gradtx.chain`` call the chain's ``update`` without
    params (they do not match per-example updates), or use ``dpsgd``.
    """
    fn = "contrib.differentially_private_aggregate"
    return DifferentiallyPrivateAggregate(l2_norm_clip, noise_multiplier, _as_key(fn, key, seed))


def dpsgd(
    learning_rate: Any,
    l2_norm_clip: Any,
    noise_multiplier: Any,
    seed: int,
    momentum: Any = None,
    nesterov: bool = False,
) -> Transform:
    """DP-SGD (Optax's ``contrib.dpsgd``): SGD on privately aggregated gradients.

    ``update`` takes per-example gradients (every leaf with the batch on axis 0, e.g. from
    ``jax.vmap(jax.grad(loss), in_axes=(None, 0))``). Update rule (t = 0, 1, ...; B examples;
    C = l2_norm_clip, sigma = noise_multiplier)::

        c_i = min(1, C / ||g_{t,i}||)
        gbar_t = (sum_i c_i * g_{t,i} + C * sigma * xi_t) / B,   xi_t ~ N(0, I)
        b_t = momentum * b_{t-1} + gbar_t               (when momentum is not None)
        x_{t+1} = x_t - learning_rate(t) * b_t          (gbar_t + momentum * b_t: Nesterov)

    Args:
      learning_rate: step size >= 0 (float, array or schedule).
      l2_norm_clip: C, the per-example norm bound, >= 0.
      noise_multiplier: sigma, the noise standard deviation relative to C, >= 0.
      seed: the int seed of ``jax.random.key`` for the noise.
      momentum: momentum coefficient in [0, 1], or None (no buffer); default None.
      nesterov: Nesterov's form of the momentum; default False.

    Conventions: Optax's ``contrib.dpsgd``: the same noise for the same seed.

    References:
      Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, "Deep Learning with
      Differential Privacy", ACM CCS 2016. arXiv:1607.00133
    """
    fn = "contrib.dpsgd"
    _checks.check_nonnegative(fn, "learning_rate", learning_rate)
    _checks.CLOSED_UNIT(fn, "momentum", momentum)
    agg = DifferentiallyPrivateAggregate(l2_norm_clip, noise_multiplier, _as_key(fn, None, seed))
    mom = Identity() if momentum is None else trace(momentum, nesterov)
    return DPSGD((agg, mom, scale_by_learning_rate(learning_rate)))
