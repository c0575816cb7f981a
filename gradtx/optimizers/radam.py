"""RAdam (rectified Adam): Optax's signature and defaults, torch's threshold and eps as options."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class RAdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # first moment
    nu: Any  # second moment


@pytree_dataclass
class ScaleByRAdam(Elementwise):
    """RAdam's preconditioner (no learning rate)::

    m_t, v_t   as in Adam;  bc1_t = 1 - b1^t;  bc2 = 1 - b2^t
    mhat_t     = m_t / bc1_t    (nesterov: b1 * m_t / bc1_{t+1} + (1 - b1) * g_t / bc1_t)
    rho_inf    = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / bc2
    r_t        = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
    rectified  = rho_t > threshold   (rho_t >= threshold with threshold_inclusive=True)
    out = r_t * mhat_t * sqrt(bc2) / (sqrt(v_t + eps_root) + eps)   (rectified, eps_placement="raw")
        = r_t * mhat_t / (sqrt(v_t / bc2 + eps_root) + eps)          (rectified, "corrected")
        = mhat_t                                                     (otherwise)

    ``fn`` is the public name that errors report.
    """

    state_type = RAdamState

    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    threshold: Any = 5.0
    threshold_inclusive: bool = static_field(False)
    eps_placement: str = static_field("raw", choices=("raw", "corrected"))
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))
    eps_root: Any = field(0.0, check=_checks.NONNEGATIVE)
    nesterov: bool = static_field(False)
    fn: str = static_field("radam", repr=False)
    # b2 as given and its rho_inf, computed in float64 from a Python number (as Optax does):
    # leaves like b2, so one compile serves every b2.
    b2_given: Any = field(None, repr=False)
    rho_inf_given: Any = field(None, repr=False)

    def __check_init__(self):
        b2 = self.b2
        if isinstance(b2, (int, float, np.number)):
            b2 = float(b2)
        elif not isinstance(b2, (jax.Array, np.ndarray)):
            return
        object.__setattr__(self, "b2_given", b2)
        object.__setattr__(self, "rho_inf_given", 2.0 / (1.0 - b2) - 1.0)

    def _buffer_dtype(self, name, p):
        return p.dtype if name == "mu" else _tree.real_dtype(p.dtype)

    def _scalars(self, count, t, dtype):
        b1, b2 = value_at(self.b1, count), _tree.hp(self.b2, dtype)
        bc1 = _tree.bias_correction(b1, t, dtype)
        b2_t = jax.lax.pow(b2, _tree.safe_increment(count))  # integer exponent, as Optax
        bc2 = 1.0 - b2_t
        rho_inf = 2.0 / (1.0 - b2) - 1.0
        if self.b2_given is not None:
            # One float32 ulp of b2 = 0.999 moves rho_inf by 0.03: where b2 is still the number
            # given, rho_inf is its float64 value (as Optax computes it); gradients unchanged.
            exact = _tree.hp(self.rho_inf_given, dtype)
            fix = jnp.where(b2 == _tree.hp(self.b2_given, dtype), exact - rho_inf, 0.0)
            rho_inf = rho_inf + jax.lax.stop_gradient(fix)
        rho = rho_inf - 2.0 * t * b2_t / bc2
        thr = _tree.hp(self.threshold, dtype)
        on = rho >= thr if self.threshold_inclusive else rho > thr
        rho = jnp.where(on, rho, rho_inf)  # r only where it is defined: finite gradients
        r = jnp.sqrt(
            (rho - 4.0) * (rho - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho)
        )
        return dict(b1=b1, b2=b2, bc1=bc1, bc1_next=_tree.bias_correction(b1, t + 1, dtype),
                    bc2=bc2, sqrt_bc2=jnp.sqrt(bc2), r=r, on=on, eps=self.eps,
                    eps_root=self.eps_root)  # fmt: skip

    def _leaf(self, s, g, mu, nu):
        mu = s.b1 * mu + (1 - s.b1) * g
        nu = s.b2.real * nu + (1 - s.b2.real) * _tree.abs_sq(g)
        m_hat = s.b1 * mu / s.bc1_next + (1 - s.b1) * g / s.bc1 if self.nesterov else mu / s.bc1
        if self.eps_placement == "raw":
            den = (jnp.sqrt(nu + s.eps_root.real) + s.eps.real) / s.sqrt_bc2.real
        else:
            den = jnp.sqrt(nu / s.bc2.real + s.eps_root.real) + s.eps.real
        return jnp.where(s.on, s.r * m_hat / den.astype(mu.dtype), m_hat), mu, nu


def scale_by_radam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    threshold_inclusive: bool = True,
    eps_placement: str = "corrected",
    complex_convention: str = "abs",
) -> ScaleByRAdam:
    """RAdam's preconditioner without the learning rate (``ScaleByRAdam``, as Optax's)."""
    return ScaleByRAdam(b1, b2, eps, threshold, threshold_inclusive, eps_placement,
                        complex_convention, eps_root, nesterov, "scale_by_radam")  # fmt: skip


def radam(
    learning_rate: Any,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    threshold: Any = 5.0,
    *,
    nesterov: bool = False,
    threshold_inclusive: bool = True,
    eps_placement: str = "corrected",
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    complex_convention: str = "abs",
):
    """RAdam (rectified Adam), ``optax.radam``'s arguments, defaults and steps.

    Update rule (t = 1, 2, ...; ``weight_decay`` first adds ``wd * p_{t-1}`` to g_t, torch's L2)::

        m_t     = b1 * m_{t-1} + (1 - b1) * g_t;   v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t >= threshold:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p_t = p_{t-1} - lr * r_t * (m_t / (1 - b1^t))
                          / (sqrt(v_t / (1 - b2^t) + eps_root) + eps)
        else:
            p_t = p_{t-1} - lr * m_t / (1 - b1^t)

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (a float or array; not a schedule, since
        rho_inf depends on it).
      eps: added to the denominator outside the square root, >= 0.
      eps_root: added inside the square root, >= 0.
      threshold: the rectification threshold on rho_t (5, as Optax and torch).
      nesterov: Nesterov's look-ahead on the first moment (``ScaleByRAdam``).
      threshold_inclusive: True rectifies when ``rho_t >= threshold`` (Optax); False when
        ``rho_t > threshold`` (torch).
      eps_placement: ``"corrected"`` adds eps to ``sqrt(v_t / (1 - b2^t))`` (Optax);
        ``"raw"`` adds it to ``sqrt(v_t)`` before the bias correction (torch, an effective eps
        of ``eps / sqrt(1 - b2^t)``).
      {weight_decay}
      {decoupled}
      {maximize}
      complex_convention: ``"abs"`` (one ``nu`` per complex weight) or ``"real_view"`` (torch:
        ``(re, im)`` as two real numbers).

    Conventions: torch.optim.RAdam(lr, (b1, b2), eps, wd) is ``radam(lr, b1, b2, eps,
    threshold_inclusive=False, eps_placement="raw", weight_decay=wd)``; ``gradtx.torch.radam``
    takes torch's names and defaults.

    References:
      Liu, Jiang, He, Chen, Liu, Gao, Han, "On the Variance of the Adaptive Learning Rate and
      Beyond", ICLR 2020. arXiv:1908.03265
    """
    pre = ScaleByRAdam(b1, b2, eps, threshold, threshold_inclusive, eps_placement,
                       complex_convention, eps_root, nesterov)  # fmt: skip
    return optimizer_chain(
        "radam",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


fill_doc(radam, **COMMON_DOCS)
