"""AdEMAMix with Optax's contrib signature, and the simplified AdEMAMix."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, value_at
from ..optimizers import ademamix as _full
from ._common import ARGS_MASK, decay, with_learning_rate


def scale_by_ademamix(
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 6.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
) -> Transform:
    """``gradtx.scale_by_ademamix`` with Optax's contrib signature (alpha defaults to 6 here,
    as in ``optax.contrib.scale_by_ademamix``; the optimizer's default is 5)."""
    return _full.scale_by_ademamix(b1, b2, b3, alpha, eps, eps_root, mu_dtype=mu_dtype)


def ademamix(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    mu_dtype: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Transform:
    """``gradtx.ademamix`` with Optax's contrib signature (``mask`` is its
    ``weight_decay_mask``; the formula and references are there)."""
    return _full.ademamix(learning_rate, b1, b2, b3, alpha, eps, weight_decay,
                          eps_root=eps_root, mu_dtype=mu_dtype,
                          weight_decay_mask=mask)  # fmt: skip


class ScaleBySimplifiedAdEMAMixState(NamedTuple):
    count: jax.Array  # t, updates applied so far (int32, saturating)
    m: Any  # the accumulated (undamped) momentum
    n: Any  # the EMA of g^2


@pytree_dataclass
class ScaleBySimplifiedAdEMAMix(Transform):
    """Simplified AdEMAMix's direction (no learning rate)::

    m_t = b1 * m_{t-1} + g_t
    n_t = b2 * n_{t-1} + (1 - b2) * g_t^2
    u_t = (m_t + alpha * g_t) / (sqrt(n_t / (1 - b2^t) + eps_root) + eps)
    """

    fn_name = "contrib.simplified_ademamix"
    elementwise = True

    b1: Any = field(0.99, check=_checks.UNIT)
    b2: Any = field(0.95, check=_checks.UNIT)
    alpha: Any = field(0.0, check=_checks.NONNEGATIVE)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)

    def _init(self, params):
        z = _tree.tree_zeros_like
        return ScaleBySimplifiedAdEMAMixState(jnp.zeros((), jnp.int32), z(params), z(params))

    def _update(self, updates, state, params, **extra):
        _checks.check_same_tree(self.where(), updates, state.m, "updates", "m")
        k = state.count
        b1, b2, alpha = (value_at(x, k) for x in (self.b1, self.b2, self.alpha))
        t = _tree.safe_increment(k).astype(_tree.float_dtype())

        def leaf(g, m, n):
            cd = _tree.compute_dtype(g.dtype, m.dtype, n.dtype)
            gc = g.astype(cd)
            b2c = _tree.hp(b2, cd)
            m = _tree.hp(b1, cd) * m.astype(cd) + gc
            n = b2c * n.astype(cd) + (1 - b2c) * gc * gc
            n_hat = n / _tree.bias_correction(b2c, t, cd).astype(cd)
            den = jnp.sqrt(n_hat + _tree.hp(self.eps_root, cd)) + _tree.hp(self.eps, cd)
            u = (m + _tree.hp(alpha, cd) * gc) / den
            return u.astype(g.dtype), m.astype(g.dtype), n.astype(g.dtype)

        out = jax.tree.map(leaf, updates, state.m, state.n)
        u, m, n = _tree.tree_unzip(updates, out, 3)
        return u, ScaleBySimplifiedAdEMAMixState(_tree.safe_increment(k), m, n)


def scale_by_simplified_ademamix(
    b1: Any = 0.99, b2: Any = 0.95, alpha: Any = 0.0, eps: Any = 1e-8, eps_root: Any = 0.0
) -> ScaleBySimplifiedAdEMAMix:
    """Simplified AdEMAMix's direction without the learning rate (see
    ``simplified_ademamix``)."""
    return ScaleBySimplifiedAdEMAMix(b1, b2, alpha, eps, eps_root)


def simplified_ademamix(
    learning_rate: Any,
    b1: Any = 0.99,
    b2: Any = 0.95,
    alpha: Any = 0.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    weight_decay: Any = 0.0,
    mask: Any = None,
) -> Transform:
    """Simplified AdEMAMix (Optax's ``contrib.simplified_ademamix``).

    Update rule (t = 1, 2, ...)::

        m_t = b1 * m_{t-1} + g_t
        n_t = b2 * n_{t-1} + (1 - b2) * g_t^2
        u_t = (m_t + alpha(t - 1) * g_t) / (sqrt(n_t / (1 - b2^t) + eps_root) + eps)
        x_t = x_{t-1} - learning_rate(t - 1) * (u_t + weight_decay * x_{t-1})

    One momentum buffer without the ``(1 - b1)`` damping replaces AdEMAMix's two EMAs; with
    ``alpha = 0`` and ``learning_rate * (1 - b1)`` it is Adam without first-moment bias
    correction.

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax.
      b1: decay of the momentum, in [0, 1); default 0.99.
      b2: decay of the second moment, in [0, 1); default 0.95.
      alpha: weight of the current gradient, >= 0 (float, array or schedule); default 0.
      eps: added outside the root, >= 0; default 1e-8.
      eps_root: added inside the root, >= 0; default 0.
      weight_decay: decoupled decay >= 0, scaled by the learning rate; default 0.
      {mask}

    Conventions: Optax's ``contrib.simplified_ademamix`` exactly.

    References:
      Morwani, Vyas, Kakade, Kwun, Shapira, "Connections between Schedule-Free Optimizers,
      AdEMAMix, and Accelerated SGD Variants", 2025. arXiv:2502.02431
    """
    pre = ScaleBySimplifiedAdEMAMix(b1, b2, alpha, eps, eps_root)
    fn = "contrib.simplified_ademamix"
    return with_learning_rate(fn, learning_rate, pre, decay(fn, weight_decay, mask))


simplified_ademamix.__doc__ = (simplified_ademamix.__doc__ or "").replace("{mask}", ARGS_MASK)
