"""AdEMAMix: Adam plus a slow exponential moving average of the gradients."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdEMAMixState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m1: Any  # fast EMA of gradients
    m2: Any  # slow EMA of gradients
    nu: Any  # second moment


def _warm_alpha(alpha: Any, t: jax.Array, steps: Any) -> jax.Array:
    """The paper's alpha scheduler: min(t * alpha / T, alpha)."""
    return jnp.minimum(t * alpha / steps, alpha)


def _warm_b3(b3: Any, b1: Any, t: jax.Array, steps: Any) -> jax.Array:
    """The paper's beta_3 scheduler: log-space interpolation from b1 to b3 over T steps."""
    lb3, lb1 = jnp.log(b3), jnp.log(b1)
    frac = t / steps
    return jnp.minimum(jnp.exp(lb1 * lb3 / ((1 - frac) * lb3 + frac * lb1)), b3)


@pytree_dataclass
class ScaleByAdEMAMix(Elementwise):
    """AdEMAMix's direction (no learning rate), t = count + 1::

        m1_t = b1 * m1_{t-1} + (1 - b1) * g_t
        m2_t = b3_t * m2_{t-1} + (1 - b3_t) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        u_t = (m1_t / (1 - b1^t) + alpha_t * m2_t) / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)

    ``alpha_t`` and ``b3_t`` are ``alpha`` and ``b3`` (numbers or schedules at ``count``), or,
    with ``warmup_steps = T``, the paper's schedulers ``min(t * alpha / T, alpha)`` and the
    log-space ramp of b3 from b1.
    """

    state_type = AdEMAMixState
    fn_name = "ademamix"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    b3: Any = field(0.9999, check=_checks.UNIT)
    alpha: Any = field(5.0, check=_checks.NONNEGATIVE)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    warmup_steps: Any = field(None, check=_checks.POSITIVE)
    mu_dtype: Any = static_field(None)

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype) if name == "nu" else self.mu_dtype or p.dtype

    def _scalars(self, count, t, dtype):
        b1, b2, b3, alpha = (value_at(h, count) for h in (self.b1, self.b2, self.b3, self.alpha))
        c1, c3, a = (_tree.hp(h, dtype) for h in (b1, b3, alpha))
        if self.warmup_steps is not None:
            steps = _tree.hp(self.warmup_steps, dtype)
            a, c3 = _warm_alpha(a, t, steps), _warm_b3(c3, c1, t, steps)
        bc1, bc2 = _tree.bias_correction(b1, t, dtype), _tree.bias_correction(b2, t, dtype)
        return dict(b1=b1, b2=b2, b3=c3, alpha=a, bc1=bc1, bc2=bc2, eps=self.eps,
                    eps_root=self.eps_root)  # fmt: skip

    def _leaf(self, s, g, m1, m2, nu):
        m1 = s.b1 * m1 + (1 - s.b1) * g
        m2 = s.b3 * m2 + (1 - s.b3) * g
        nu = s.b2.real * nu + (1 - s.b2.real) * _tree.abs_sq(g)
        num = m1 / s.bc1 + s.alpha * m2
        den = jnp.sqrt(nu / s.bc2.real + s.eps_root.real) + s.eps.real
        return num / den.astype(num.dtype), m1, m2, nu


def scale_by_ademamix(
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    *,
    warmup_steps: Any = None,
    mu_dtype: Any = None,
) -> ScaleByAdEMAMix:
    """AdEMAMix's direction without the learning rate (see ``ScaleByAdEMAMix``)."""
    return ScaleByAdEMAMix(b1, b2, b3, alpha, eps, eps_root, warmup_steps, mu_dtype)


def ademamix(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    b3: Any = 0.9999,
    alpha: Any = 5.0,
    eps: Any = 1e-8,
    weight_decay: Any = None,
    *,
    warmup_steps: Any = None,
    eps_root: Any = 0.0,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
):
    """AdEMAMix.

    Update rule (t = 1, 2, ...)::

        m1_t = b1 * m1_{t-1} + (1 - b1) * g_t
        m2_t = b3_t * m2_{t-1} + (1 - b3_t) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        p_t = p_{t-1} - lr * ((m1_t / (1 - b1^t) + alpha_t * m2_t)
                              / (sqrt(v_t / (1 - b2^t)) + eps) + weight_decay * p_{t-1})

    Args:
      {learning_rate}
      b1: decay of the fast EMA, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1).
      b3: decay of the slow EMA, in [0, 1) (float, array or schedule evaluated at the count).
      alpha: weight of the slow EMA, >= 0 (float, array or schedule).
      eps: added outside the root, >= 0.
      weight_decay: decoupled decay coefficient >= 0 scaled by the learning rate (the paper's
        and Optax's AdamW-style decay).
      warmup_steps: None, or ``T_alpha = T_beta3``: use the paper's schedulers for alpha and b3.
      eps_root: added inside the root, >= 0.
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one (Optax's ``mask``). None decays every leaf.
      mu_dtype: dtype of ``m1`` and ``m2`` (default: each parameter's dtype).

    Conventions: the paper's Algorithm 1; without ``warmup_steps`` it equals
    ``optax.contrib.ademamix`` with the same arguments (Optax's scale_by_ademamix default alpha
    is 6, its alias's 5, as here).

    References:
      Pagliardini, Ablin, Grangier, "The AdEMAMix Optimizer: Better, Faster, Older", ICLR 2025.
      arXiv:2409.03137
    """
    pre = scale_by_ademamix(
        b1, b2, b3, alpha, eps, eps_root, warmup_steps=warmup_steps, mu_dtype=mu_dtype
    )
    return optimizer_chain(
        "ademamix",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(ademamix, **COMMON_DOCS)
