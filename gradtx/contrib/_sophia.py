"""Sophia: Adam-like steps preconditioned by a clipped EMA of the Hessian diagonal."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, as_transform, field, pytree_dataclass, static_field, value_at
from ._common import ARGS_MASK, decay, with_learning_rate


class HutchinsonState(NamedTuple):
    key: jax.Array  # the PRNG key of the next probe


def _as_key(fn: str, name: str, value: Any) -> Any:
    """The converter of a seed field: ``None``, a typed PRNG key made of an int or key data."""
    if value is None:
        return None
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return jax.random.key(value)
    arr = jnp.asarray(value)
    if jnp.issubdtype(arr.dtype, jax.dtypes.prng_key):
        return arr
    return jax.random.wrap_key_data(arr)


@pytree_dataclass
class HutchinsonEstimator(Transform):
    """Hutchinson's estimate of the Hessian diagonal of ``obj_fn`` at ``params``::

        z ~ Rademacher (one key per leaf, split from the state's key)
        h = z * (H z)          (H z by forward-over-reverse differentiation)

    Its ``update`` ignores the gradient and returns ``h``; it needs ``obj_fn=`` (a function of
    the params returning the scalar loss) among the extra arguments.
    """

    fn_name = "contrib.hutchinson_estimator_diag_hessian"

    random_seed: Any = field(None, converter=_as_key)

    def _init(self, params):
        key = jax.random.PRNGKey(0) if self.random_seed is None else self.random_seed
        return HutchinsonState(key)

    def _update(self, updates, state, params, **extra):
        obj_fn = extra.get("obj_fn")
        if params is None or obj_fn is None:
            raise ValueError(
                f"{self.where()}: the Hessian estimate needs params and obj_fn; call "
                "update(grads, state, params, obj_fn=lambda params: loss)."
            )
        key, sub = jax.random.split(state.key)
        leaves, treedef = jax.tree.flatten(params)
        keys = jax.random.split(sub, len(leaves))
        low = min((p.dtype for p in leaves), key=lambda d: jnp.finfo(d).bits)
        signs = [jax.random.rademacher(k, p.shape, jnp.float32).astype(low)
                 for k, p in zip(keys, leaves)]  # fmt: skip
        z = treedef.unflatten(signs)
        hz = jax.jvp(jax.grad(obj_fn), (params,), (z,))[1]
        return jax.tree.map(lambda a, b: a * b, hz, z), HutchinsonState(key)


def hutchinson_estimator_diag_hessian(random_seed: Any = None) -> HutchinsonEstimator:
    """Hutchinson's Hessian-diagonal estimator (Optax's ``contrib`` transform of that name).

    Args:
      random_seed: a PRNG key (or an int seed) for the probes; None is ``PRNGKey(0)``.
    """
    return HutchinsonEstimator(random_seed)


_DEFAULT_ESTIMATOR = hutchinson_estimator_diag_hessian()


class SophiaState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # m, the EMA of gradients
    nu: Any  # h, the EMA of Hessian-diagonal estimates
    hessian_fn_state: Any  # the estimator's state


def _hessian_estimator(fn: str, name: str, value: Any) -> Transform:
    """The converter of ``hessian_diagonal_fn``: Hutchinson's estimator when ``None``."""
    return hutchinson_estimator_diag_hessian() if value is None else as_transform(value, fn, name)


@pytree_dataclass
class ScaleBySophia(Transform):
    """Sophia's direction (no learning rate; see ``sophia``)."""

    fn_name = "contrib.sophia"

    b1: Any = field(0.965, check=_checks.UNIT)
    b2: Any = field(0.99, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.POSITIVE)
    gamma: Any = field(0.01, check=_checks.POSITIVE)
    clip_threshold: Any = field(1.0, check=_checks.POSITIVE)
    update_interval: Any = field(10, check=_checks.COUNT)
    hessian_diagonal_fn: Any = field(None, converter=_hessian_estimator)
    mu_dtype: Any = static_field(None)
    verbose: bool = static_field(False)
    print_win_rate_every_n_steps: int = static_field(0)

    def _init(self, params):
        mu = jax.tree.map(lambda p: _tree.zeros_like(p, self.mu_dtype), params)
        return SophiaState(jnp.zeros((), jnp.int32), mu, _tree.tree_zeros_like(params),
                           self.hessian_diagonal_fn._init(params))  # fmt: skip

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: Sophia needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        k = state.count
        t = _tree.safe_increment(k).astype(_tree.float_dtype())
        b1, b2 = value_at(self.b1, k), value_at(self.b2, k)

        def leaf(g, m, h):
            cd = _tree.compute_dtype(g.dtype, m.dtype, h.dtype)
            b1c = _tree.hp(b1, cd)
            m = b1c * m.astype(cd) + (1 - b1c) * g.astype(cd)
            m_hat = m / _tree.bias_correction(b1c, t, cd).astype(cd)
            den = jnp.maximum(_tree.hp(self.gamma, cd) * h.astype(cd), _tree.hp(self.eps, cd))
            u = m_hat / den
            if self.clip_threshold is not None:
                c = _tree.hp(self.clip_threshold, cd)
                u = jnp.clip(u, -c, c)
            return u.astype(g.dtype), m.astype(self.mu_dtype or m.dtype)

        out = jax.tree.map(leaf, updates, state.mu, state.nu)
        u, mu = _tree.tree_unzip(updates, out, 2)
        if self.clip_threshold is not None and self.verbose and self.print_win_rate_every_n_steps:
            c = self.clip_threshold
            inside = sum(jnp.sum(jnp.abs(x) < c) for x in jax.tree.leaves(u))
            rate = inside / sum(x.size for x in jax.tree.leaves(u))
            jax.lax.cond(
                _tree.safe_increment(k) % self.print_win_rate_every_n_steps == 0,
                lambda: jax.debug.print("Sophia optimizer win rate: {}", rate),
                lambda: None,
            )

        def refresh(hs, nu):
            hd, hs = self.hessian_diagonal_fn._update(updates, hs, params, **extra)
            b2c = value_at(b2, k)

            def ema(d, n):
                cd = _tree.compute_dtype(d.dtype, n.dtype)
                b = _tree.hp(b2c, cd)
                return (b * n.astype(cd) + (1 - b) * d.astype(cd)).astype(n.dtype)

            return hs, jax.tree.map(ema, hd, nu)

        hs, nu = jax.lax.cond(
            k % jnp.asarray(self.update_interval).astype(k.dtype) == 0,
            refresh,
            lambda hs, nu: (hs, nu),
            state.hessian_fn_state,
            state.nu,
        )
        return u, SophiaState(_tree.safe_increment(k), mu, nu, hs)


def sophia(
    learning_rate: Any,
    b1: Any = 0.965,
    b2: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-4,
    weight_decay_mask: Any = None,
    gamma: Any = 0.01,
    clip_threshold: Any = 1.0,
    update_interval: Any = 10,
    hessian_diagonal_fn: Any = _DEFAULT_ESTIMATOR,
    mu_dtype: Any = None,
    verbose: bool = False,
    print_win_rate_every_n_steps: int = 0,
) -> Transform:
    """Sophia (Optax's ``contrib.sophia``; Sophia-H with the default estimator).

    ``update`` passes its extra arguments to ``hessian_diagonal_fn``; the default Hutchinson
    estimator needs ``obj_fn=lambda params: loss`` (the current batch's loss). Update rule
    (t = 1, 2, ...; k = update_interval; lr = learning_rate(t - 1))::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = clip((m_t / (1 - b1^t)) / max(gamma * h_{t-1}, eps), -clip_threshold,
                   clip_threshold)
        h_t = b2 * h_{t-1} + (1 - b2) * hessian_diagonal(x_t)   if (t - 1) % k == 0
            = h_{t-1}                                           otherwise
        x_t = x_{t-1} - lr * (u_t + weight_decay * x_{t-1})

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax.
      b1: decay of the gradient EMA, in [0, 1); default 0.965.
      b2: decay of the Hessian EMA per refresh, in [0, 1); default 0.99.
      eps: the floor of the denominator, > 0; default 1e-8.
      weight_decay: decoupled decay >= 0, scaled by the learning rate; default 1e-4.
      weight_decay_mask: a pytree of bools or a function from params to one; default None.
      gamma: the scale of the Hessian in the denominator, > 0; default 0.01.
      clip_threshold: the clip of the update, > 0, or None (no clip); default 1.
      update_interval: refresh the Hessian every this many steps, an integer >= 1;
        default 10.
      hessian_diagonal_fn: a transform whose ``update`` returns the Hessian diagonal (a gradtx
        transform or an Optax one); default ``hutchinson_estimator_diag_hessian()`` (keyed by
        ``PRNGKey(0)``).
      mu_dtype: dtype of m (default: each parameter's dtype).
      verbose: print the fraction of unclipped coordinates (the win rate).
      print_win_rate_every_n_steps: how often ``verbose`` prints (0: never).

    Conventions: Optax's ``contrib.sophia``: the step uses the Hessian EMA from before this
    step's refresh, and the Hutchinson probes are Rademacher vectors (the paper's Gaussian
    ones have the same expectation).

    References:
      Liu, Li, Hall, Liang, Ma, "Sophia: A Scalable Stochastic Second-order Optimizer for
      Language Model Pre-training", ICLR 2024. arXiv:2305.14342
    """
    pre = ScaleBySophia(b1, b2, eps, gamma, clip_threshold, update_interval,
                        hessian_diagonal_fn, mu_dtype, verbose,
                        print_win_rate_every_n_steps)  # fmt: skip
    fn = "contrib.sophia"
    return with_learning_rate(fn, learning_rate, pre, decay(fn, weight_decay, weight_decay_mask))


sophia.__doc__ = (sophia.__doc__ or "").replace("{mask}", ARGS_MASK)
