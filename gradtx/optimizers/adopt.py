"""ADOPT: Adam with the second moment lagged one step and the normalization before momentum."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class ADOPTState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating); the first only sets nu
    mu: Any  # momentum of the normalized gradients
    nu: Any  # second moment (uses gradients up to the previous step)


@pytree_dataclass
class ScaleByADOPT(Elementwise):
    """ADOPT's direction (no learning rate). With k = count before the update::

    k = 0:  v = g^2; u = 0                               (initialization step)
    k > 0:  n = clip(g / max(sqrt(v_{k-1}), eps), -k^(1/4), k^(1/4))   (no clip if
                                                          use_clipping is False)
            m_k = b1 * m_{k-1} + (1 - b1) * n
            u = m_k   (nesterov: b1 * m_k + (1 - b1) * n)
            v_k = b2 * v_{k-1} + (1 - b2) * g^2
    """

    state_type = ADOPTState
    fn_name = "adopt"

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.9999, check=_checks.UNIT)
    eps: Any = field(1e-6, check=_checks.NONNEGATIVE)
    nesterov: bool = static_field(False)
    use_clipping: bool = static_field(True)
    mu_dtype: Any = static_field(None)

    def _buffer_dtype(self, name, p):
        return self.mu_dtype or p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        lim = count.astype(dtype) ** 0.25 if self.use_clipping else None
        return dict(b1=b1, b2=b2, eps=self.eps, lim=lim, first=count == 0)

    def _leaf(self, s, g, mu, nu):
        n = g / jnp.maximum(jnp.sqrt(nu), s.eps.real).astype(g.dtype)
        if self.use_clipping:
            n = jnp.clip(n, -s.lim, s.lim)
        mu = jnp.where(s.first, mu, s.b1 * mu + (1 - s.b1) * n)
        u = s.b1 * mu + (1 - s.b1) * n if self.nesterov else mu
        u = jnp.where(s.first, jnp.zeros_like(u), u)
        g2 = _tree.abs_sq(g)
        nu = jnp.where(s.first, g2, s.b2.real * nu + (1 - s.b2.real) * g2)
        return u, mu, nu


def scale_by_adopt(
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    *,
    nesterov: bool = False,
    use_clipping: bool = True,
    mu_dtype: Any = None,
) -> ScaleByADOPT:
    """ADOPT's direction without the learning rate (see ``ScaleByADOPT``)."""
    return ScaleByADOPT(b1, b2, eps, nesterov, use_clipping, mu_dtype)


def adopt(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.9999,
    eps: Any = 1e-6,
    weight_decay: Any = None,
    *,
    decoupled_weight_decay: bool = False,
    nesterov: bool = False,
    use_clipping: bool = True,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
):
    """ADOPT (modified Adam that converges with any b2).

    Update rule; the first update (t = 0) only initializes ``v_0 = g_0^2`` and leaves the
    params unchanged; then for t = 1, 2, ...::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * clip(g_t / max(sqrt(v_{t-1}), eps), t^(1/4))
        p_t = p_{t-1} - lr * m_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2

    Args:
      {learning_rate}
      b1: momentum decay, in [0, 1) (float, array or schedule).
      b2: second-moment decay, in [0, 1) (0.9999, the paper's).
      eps: lower bound of ``sqrt(v)``, >= 0 (1e-6, the paper's).
      {weight_decay}
      {decoupled}
      nesterov: Nesterov's form of the momentum (Optax's option).
      use_clipping: clip the normalized gradient at ``t^(1/4)`` (the paper's stable variant,
        the default of the authors' code and Optax); False is the paper's Algorithm 1.
      {maximize}
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).

    Conventions: the paper's algorithm with clipping; with weight_decay 0 this equals
    ``optax.contrib.adopt(lr, b1, b2, eps, nesterov=..., use_clipping=...)``. The coupled decay
    is the authors' default (``decouple=False``).

    References:
      Taniguchi, Harada, Minegishi, Oshima, Jeong, Nagahara, Iiyama, Suzuki, Iwasawa, Matsuo,
      "ADOPT: Modified Adam Can Converge with Any beta_2 with the Optimal Rate", NeurIPS 2024.
      arXiv:2411.02853
    """
    pre = scale_by_adopt(
        b1, b2, eps, nesterov=nesterov, use_clipping=use_clipping, mu_dtype=mu_dtype
    )
    return optimizer_chain(
        "adopt",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(adopt, **COMMON_DOCS)
