"""NAdam (Adam with Nesterov momentum): Optax's constant momentum, torch's warm-up as a kernel."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import ADAM_DOCS, COMMON_DOCS, fill_doc, optimizer_chain
from .adam import ScaleByAdam


class NAdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu_product: jax.Array  # prod_{i<=t} mu_i (scalar)
    mu: Any  # first moment
    nu: Any  # second moment


@pytree_dataclass
class ScaleByNAdam(Elementwise):
    """NAdam's preconditioner (no learning rate)::

    mu_t      = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))    (convention="torch")
              = b1                                             (convention="optax")
    Pi_t      = Pi_{t-1} * mu_t                                (Pi_0 = 1)
    m_t       = b1 * m_{t-1} + (1 - b1) * g_t
    v_t       = b2 * v_{t-1} + (1 - b2) * |g_t|^2
    d_t       = sqrt(v_t / (1 - b2^t)) + eps
    out       = (1 - mu_t) / (1 - Pi_t) * g_t / d_t
                + mu_{t+1} / (1 - Pi_t * mu_{t+1}) * m_t / d_t
    """

    state_type = NAdamState
    fn_name = "nadam"
    carry_fields = ("mu_product",)

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    momentum_decay: Any = field(4e-3, check=_checks.NONNEGATIVE)
    convention: str = static_field("torch", choices=("torch", "optax"))
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _carry_init(self):
        return {"mu_product": jnp.ones((), _tree.float_dtype())}

    def _momenta(self, count, t, mu_product):
        """``(mu_t, mu_{t+1}, Pi_t, Pi_t * mu_{t+1})`` in ``mu_product``'s dtype."""
        sd = mu_product.dtype
        b1 = jnp.asarray(value_at(self.b1, count), sd)
        if self.convention == "optax":  # constant momentum: the products are powers of b1
            return b1, b1, b1**t, b1 ** (t + 1.0)
        psi = jnp.asarray(self.momentum_decay, sd)
        mu_t = b1 * (1.0 - 0.5 * jnp.asarray(0.96, sd) ** (t * psi))
        mu_next = b1 * (1.0 - 0.5 * jnp.asarray(0.96, sd) ** ((t + 1.0) * psi))
        prod = mu_product * mu_t
        return mu_t, mu_next, prod, prod * mu_next

    def _next_carry(self, updates, state):
        sd = state.mu_product.dtype
        t = _tree.safe_increment(state.count).astype(sd)
        return {"mu_product": self._momenta(state.count, t, state.mu_product)[2].astype(sd)}

    def _scalars(self, count, t, dtype, mu_product):
        mu_t, mu_next, prod, prod_next = self._momenta(
            count, t.astype(mu_product.dtype), mu_product
        )
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        return dict(b1=b1, b2=b2, bc2=_tree.bias_correction(b2, t, dtype), eps=self.eps,
                    c_g=(1 - mu_t.astype(dtype)) / (1 - prod.astype(dtype)),
                    c_m=mu_next.astype(dtype) / (1 - prod_next.astype(dtype)))  # fmt: skip

    def _leaf(self, s, g, mu, nu):
        mu = s.b1 * mu + (1 - s.b1) * g
        nu = s.b2.real * nu + (1 - s.b2.real) * _tree.abs_sq(g)
        d = (jnp.sqrt(nu / s.bc2.real) + s.eps.real).astype(g.dtype)
        return s.c_g * g / d + s.c_m * mu / d, mu, nu


def scale_by_nadam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    momentum_decay: Any = 4e-3,
    convention: str = "torch",
    *,
    complex_convention: str = "abs",
) -> ScaleByNAdam:
    """NAdam's preconditioner without the learning rate (see ``ScaleByNAdam``)."""
    return ScaleByNAdam(b1, b2, eps, momentum_decay, convention, complex_convention)


def nadam(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
          eps_root: Any = 0.0, mu_dtype: Any = None, *, nesterov: bool = True,
          weight_decay: Any = None, weight_decay_mask: Any = None,
          decoupled_weight_decay: bool = False, maximize: bool = False, nu_dtype: Any = None,
          complex_convention: str = "abs"):  # fmt: skip
    """NAdam with a constant momentum, ``optax.nadam``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...; ``weight_decay`` first adds ``wd * p_{t-1}`` to g_t, torch's L2)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t;     v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        mhat_t = b1 * m_t / (1 - b1^(t+1)) + (1 - b1) * g_t / (1 - b1^t)
        p_t = p_{t-1} - lr * mhat_t / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)

    Args:
      {adam_args}
      {adam_extras}
      {weight_decay}
      {decoupled}
      {maximize}

    Conventions: ``adam(..., nesterov=True)``, as in Optax. torch.optim.NAdam warms the momentum
    up (``mu_t = b1 * (1 - 0.5 * 0.96^(t * momentum_decay))``): ``gradtx.torch.nadam``, or
    ``scale_by_nadam`` in a chain.

    References:
      {refs}
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, False, "raw", mu_dtype, nu_dtype, complex_convention,
                      nesterov, fn="nadam")  # fmt: skip
    return optimizer_chain("nadam", pre, learning_rate, weight_decay=weight_decay,
                           weight_decay_mask=weight_decay_mask, maximize=maximize,
                           decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip


def nadamw(learning_rate: Any, b1: Any = 0.9, b2: Any = 0.999, eps: Any = 1e-8,
           eps_root: Any = 0.0, mu_dtype: Any = None, weight_decay: Any = 1e-4, mask: Any = None,
           *, nesterov: bool = True, maximize: bool = False, nu_dtype: Any = None,
           complex_convention: str = "abs"):  # fmt: skip
    """NAdamW: NAdam with decoupled weight decay, ``optax.nadamw``'s arguments and steps.

    Update rule (t = 1, 2, ...), with ``u_t`` the direction of ``nadam`` (no L2 term in g_t)::

        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    Args:
      {adam_args}
      {adam_extras}
      {decoupled_decay}
      {maximize}

    Conventions: ``adamw(..., nesterov=True)``, as in Optax. torch's
    ``NAdam(decoupled_weight_decay=True)`` warms the momentum up: ``gradtx.torch.nadam``.

    References:
      {refs}
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    pre = ScaleByAdam(b1, b2, eps, eps_root, False, "raw", mu_dtype, nu_dtype, complex_convention,
                      nesterov, fn="nadamw")  # fmt: skip
    return optimizer_chain("nadamw", pre, learning_rate, weight_decay=weight_decay,
                           weight_decay_mask=mask, decoupled_weight_decay=True,
                           maximize=maximize)  # fmt: skip


_REFS = """Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. arXiv:1412.6980"""
for _f in (nadam, nadamw):
    fill_doc(_f, adam_args=ADAM_DOCS["adam_args"], adam_extras=ADAM_DOCS["adam_extras"], refs=_REFS)
    fill_doc(_f, **COMMON_DOCS)
