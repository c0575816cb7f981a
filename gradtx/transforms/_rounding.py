"""Stochastic rounding of parameter updates into bfloat16 and float16."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_transform, pytree_dataclass, static_field


def stochastic_round(x: jax.Array, dtype: Any, key: jax.Array) -> jax.Array:
    """Rounds ``x`` to ``dtype`` up or down at random, so that ``E[round(x)] = x``.

    With ``lo <= x <= hi`` the two ``dtype`` neighbours of ``x``::

        round(x) = hi  with probability (x - lo) / (hi - lo),   lo otherwise

    For bfloat16 from float32 this is done on the bits: add 16 uniform random bits to the
    float32 bit pattern and truncate the low 16 (bfloat16 is float32's top half, so the carry
    into bit 16 happens with exactly the probability above, subnormals included). For other
    targets (float16, whose exponent range is narrower) the two neighbours are computed and one
    is drawn. NaN and infinities are kept; a value that is already a ``dtype`` number is
    returned unchanged. The arithmetic runs in float32 (or wider); the result has ``dtype``.

    Args:
      x: the values to round (float32 or float64; lower precision is upcast first).
      dtype: the target dtype, narrower than ``x``'s (bfloat16 or float16).
      key: a JAX PRNG key; equal keys give equal roundings.
    """
    dtype = jnp.dtype(dtype)
    x = jnp.asarray(x)
    x = x.astype(_tree.compute_dtype(x.dtype))
    if jnp.finfo(dtype).bits >= jnp.finfo(x.dtype).bits:
        return x.astype(dtype)
    if dtype == jnp.bfloat16 and x.dtype == jnp.float32:
        bits = jax.lax.bitcast_convert_type(x, jnp.uint32)
        noise = jax.random.bits(key, x.shape, jnp.uint32) >> 16
        rounded = (bits + noise) & jnp.uint32(0xFFFF0000)
        out = jax.lax.bitcast_convert_type(rounded, jnp.float32).astype(dtype)
        return jnp.where(jnp.isfinite(x), out, x.astype(dtype))
    near = x.astype(dtype)
    back = near.astype(x.dtype)
    # The other neighbour: one dtype step from ``near`` towards x.
    toward = jnp.where(back > x, jnp.asarray(-jnp.inf, dtype), jnp.asarray(jnp.inf, dtype))
    other = jnp.nextafter(near, toward)
    lo = jnp.minimum(back, other.astype(x.dtype))
    hi = jnp.maximum(back, other.astype(x.dtype))
    gap = hi - lo
    p_up = jnp.where(gap > 0, (x - lo) / jnp.where(gap > 0, gap, 1), 0)
    u = jax.random.uniform(key, x.shape, x.dtype)
    out = jnp.where(u < p_up, hi, lo).astype(dtype)
    exact = (back == x) | ~jnp.isfinite(x) | ~jnp.isfinite(other)
    return jnp.where(exact, near, out)


def _leaf_keys(key: jax.Array, n: int) -> jax.Array:
    if not jax.dtypes.issubdtype(jnp.asarray(key).dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(jnp.asarray(key, jnp.uint32))
    return jax.random.split(key, max(n, 1))


def _is_low_precision(p: Any) -> bool:
    return jnp.result_type(p) in (jnp.dtype(jnp.bfloat16), jnp.dtype(jnp.float16))


def apply_updates_stochastic(params: Any, updates: Any, key: jax.Array) -> Any:
    """``params + updates`` with bfloat16 and float16 parameters rounded stochastically.

    The sum is formed in float32 (or wider) and each low-precision parameter is rounded to its
    dtype with ``stochastic_round`` (``E[p_new] = p + u``), one key per leaf split from
    ``key``. Other parameters are added as in ``gradtx.apply_updates`` (round to nearest).
    ``None`` leaves pass through.

    Why it matters: near 1.0 a bfloat16 step is 2^-7. An update of 1e-4 rounds to nothing
    with round-to-nearest, every step, so training stalls; rounded stochastically it moves the
    weight one step with probability 1e-4 / 2^-7, and the weight follows the float32
    trajectory in expectation, with no float32 master copy (``with_master_weights``) needed.

    The key is an argument, not state, so that ``gradtx.apply_updates`` stays deterministic and
    any training loop can draw its own keys (``jax.random.fold_in(key, step)``). To keep the
    key in the optimizer state instead, wrap the optimizer with ``with_stochastic_rounding``.

    Args:
      params: the parameters (any pytree; bfloat16 / float16 leaves are rounded stochastically).
      updates: the deltas to add, same tree.
      key: a JAX PRNG key (typed or raw uint32).
    """
    _checks.check_same_tree("gradtx.apply_updates_stochastic", params, updates, "params", "updates")
    leaves, treedef = jax.tree.flatten(params)
    ups = treedef.flatten_up_to(updates)
    keys = _leaf_keys(key, len(leaves))
    out = []
    for i, (p, u) in enumerate(zip(leaves, ups)):
        p = jnp.asarray(p)
        cd = _tree.compute_dtype(p.dtype, jnp.result_type(u))
        total = p.astype(cd) + jnp.asarray(u).astype(cd)
        if _is_low_precision(p):
            out.append(stochastic_round(total, p.dtype, keys[i]))
        else:
            out.append(total.astype(p.dtype))
    return treedef.unflatten(out)


class StochasticRoundingState(NamedTuple):
    key: jax.Array  # the PRNG key the next update splits
    inner: Any  # the wrapped optimizer's state


@pytree_dataclass
class WithStochasticRounding(Transform):
    """Returns updates that land low-precision params on a stochastic rounding of ``p + u``."""

    fn_name = "with_stochastic_rounding"

    inner: Transform
    seed: int = static_field(0)

    def _init(self, params):
        return StochasticRoundingState(jax.random.key(self.seed), self.inner._init(params))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(
                f"{self.where()}: stochastic rounding needs params; call "
                f"update(grads, state, params) with the current low-precision params."
            )
        u, inner = self.inner._update(updates, state.inner, params, **extra)
        next_key, sample = jax.random.split(state.key)
        new = apply_updates_stochastic(params, u, sample)

        def delta(n, p, d):
            if not _is_low_precision(p):
                return d
            # Both are p-dtype numbers, so their float32 difference is exact and
            # apply_updates(p, delta) lands exactly on n.
            return n.astype(jnp.float32) - p.astype(jnp.float32)

        return jax.tree.map(delta, new, params, u), StochasticRoundingState(next_key, inner)

    def __repr__(self) -> str:
        return f"WithStochasticRounding({self.inner!r}, seed={self.seed})"


def with_stochastic_rounding(tx: Any, seed: int = 0) -> WithStochasticRounding:
    """Makes ``tx``'s steps on bfloat16 / float16 params stochastically rounded.

    The wrapper keeps a PRNG key in its state. Each update computes ``tx``'s update ``u`` and
    returns, for each low-precision parameter ``p``, the float32 delta
    ``stochastic_round(p + u) - p``; ``gradtx.apply_updates(params, updates)`` (or Optax's)
    then lands exactly on the stochastically rounded value, so the wrapper works in any
    training loop. Float32 parameters get ``u`` unchanged. See ``apply_updates_stochastic``
    for the rounding and for the keyed function form.

    Args:
      tx: the optimizer (any gradtx transform or Optax-style object).
      seed: the integer seed of the key held in the state. Default 0.

    References:
      Gupta, Agrawal, Gopalakrishnan, Narayanan, "Deep Learning with Limited Numerical
      Precision", ICML 2015. arXiv:1502.02551
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise _checks.HyperparameterError(
            f"gradtx.with_stochastic_rounding: seed must be an integer, got {seed!r}"
        )
    return WithStochasticRounding(as_transform(tx, "with_stochastic_rounding", "tx"), seed)
