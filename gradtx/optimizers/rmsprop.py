"""RMSprop: Optax's ``rmsprop``, ``scale_by_rms`` and ``scale_by_stddev``, and the kernel that
torch.optim.RMSprop's arithmetic (eps outside the root, momentum before the learning rate) uses."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import Chain, field, pytree_dataclass, static_field, value_at
from ..transforms._momentum import trace
from ._common import (
    COMMON_DOCS,
    fill_doc,
    optimizer_chain,
)


class RMSpropState(NamedTuple):
    count: jax.Array | None  # updates so far (int32, saturating); None when nothing reads it
    nu: Any  # EMA of squared gradients
    mu: Any = None  # EMA of gradients (centered only)
    momentum_buffer: Any = None  # torch's momentum, inside the kernel (gradtx.torch.rmsprop)


@pytree_dataclass
class ScaleByRMSprop(Elementwise):
    """RMSprop's preconditioner (no learning rate)::

    v_t = decay * v_{t-1} + (1 - decay) * |g_t|^2        (v_0 = initial_scale)
    gbar_t = decay * gbar_{t-1} + (1 - decay) * g_t       (centered only; gbar_0 = 0)
    vhat_t = v_t / c_t,  ghat_t = gbar_t / c_t            (c_t = 1 - decay^t with
                                                           bias_correction, else 1)
    a_t = sqrt(vhat_t - |ghat_t|^2) + eps   (outside)   or
          sqrt(vhat_t - |ghat_t|^2 + eps)   (inside)      (the difference clamped at 0)
    b_t = momentum * b_{t-1} + g_t / a_t;  u_t = b_t      (with momentum)
    u_t = g_t / a_t                                       (without)
    """

    state_type = RMSpropState
    fn_name = "rmsprop"

    decay: Any = field(0.99, check=_checks.CLOSED_UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    momentum: Any = field(None, check=_checks.CLOSED_UNIT)
    centered: bool = static_field(False)
    eps_placement: str = static_field("outside", choices=("outside", "inside"))
    initial_scale: Any = field(0.0, check=_checks.NONNEGATIVE)
    complex_convention: str = static_field("abs", choices=("abs", "real_view"))
    bias_correction: bool = static_field(False)

    def _buffers(self):
        return (
            "nu",
            *(("mu",) if self.centered else ()),
            *(("momentum_buffer",) if self.has_buffer else ()),
        )

    @property
    def has_buffer(self):
        return self.momentum is not None

    def _buffer_dtype(self, name, p):
        return _tree.real_dtype(p.dtype) if name == "nu" else p.dtype

    def _initial(self, name):
        return self.initial_scale if name == "nu" else 0.0

    def _reads_count(self):
        return self.bias_correction

    def _scalars(self, count, t, dtype):
        decay = value_at(self.decay, count)
        mom = value_at(self.momentum, count) if self.has_buffer else None
        bc = _tree.bias_correction(decay, t, dtype) if self.bias_correction else None
        return dict(decay=decay, momentum=mom, eps=self.eps, bc=bc)

    def _leaf(self, s, g, nu, mu=None, momentum_buffer=None):
        nu = s.decay.real * nu + (1 - s.decay.real) * _tree.abs_sq(g)
        var = nu / s.bc.real if self.bias_correction else nu
        if self.centered:
            mu = s.decay * mu + (1 - s.decay) * g
            g_hat = mu / s.bc if self.bias_correction else mu
            # Clamped: rounding (or a nu that underflowed in fp16) must not give sqrt(<0).
            var = jnp.maximum(var - _tree.abs_sq(g_hat), 0.0)
        if self.eps_placement == "outside":
            u = g / (jnp.sqrt(var) + s.eps.real).astype(g.dtype)
        else:
            u = g / jnp.sqrt(var + s.eps.real).astype(g.dtype)
        if self.has_buffer:
            u = momentum_buffer = s.momentum * momentum_buffer + u
        new = {"nu": nu, "mu": mu, "momentum_buffer": momentum_buffer}
        return (u, *(new[n] for n in self._buffers()))


def scale_by_rmsprop(
    decay: Any = 0.99,
    eps: Any = 1e-8,
    momentum: Any = None,
    centered: bool = False,
    eps_placement: str = "outside",
    initial_scale: Any = 0.0,
) -> ScaleByRMSprop:
    """RMSprop's preconditioner as torch.optim.RMSprop computes it, without the learning rate
    (see ``ScaleByRMSprop``): eps outside the root and the momentum buffer before the learning
    rate by default."""
    return ScaleByRMSprop(decay, eps, momentum, centered, eps_placement, initial_scale)


_RMS_ARGS = """decay: decay of the moving averages, in [0, 1] (float, array or schedule).
      eps: added to the second moment inside the root (``eps_in_sqrt=True``) or to its root,
        >= 0.
      initial_scale: starting value of the second moment, >= 0.
      eps_in_sqrt: where ``eps`` goes (see the formula).
      bias_correction: divide the moving averages by ``1 - decay^t``."""


def scale_by_rms(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByRMSprop:
    """Divides the updates by the root of a moving average of their squares::

        v_t = decay * v_{t-1} + (1 - decay) * |g_t|^2        (v_0 = initial_scale)
        vhat_t = v_t / (1 - decay^t)   if bias_correction else   v_t
        u_t = g_t / sqrt(vhat_t + eps)   (eps_in_sqrt)   or   g_t / (sqrt(vhat_t) + eps)

    Args:
      {rms_args}

    Conventions:
      ``optax.scale_by_rms``: same signature, defaults and numbers. torch.optim.RMSprop's
      denominator is ``eps_in_sqrt=False`` with ``decay=0.99``.

    References:
      Tieleman, Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
      2012.
    """
    _check_rms("scale_by_rms", decay, eps, initial_scale)
    return ScaleByRMSprop(
        decay, eps, None, False, _placement(eps_in_sqrt), initial_scale,
        bias_correction=bias_correction,
    )  # fmt: skip


def scale_by_stddev(
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    bias_correction: bool = False,
) -> ScaleByRMSprop:
    """Divides the updates by an estimate of their standard deviation (centered RMSprop)::

        v_t = decay * v_{t-1} + (1 - decay) * |g_t|^2        (v_0 = initial_scale)
        gbar_t = decay * gbar_{t-1} + (1 - decay) * g_t       (gbar_0 = 0)
        vhat_t, ghat_t = v_t / c_t, gbar_t / c_t              (c_t = 1 - decay^t with
                                                               bias_correction, else 1)
        u_t = g_t / sqrt(vhat_t - |ghat_t|^2 + eps)   (eps_in_sqrt)
        u_t = g_t / (sqrt(vhat_t - |ghat_t|^2) + eps)

    The difference ``vhat - |ghat|^2`` is clamped at 0 (rounding can make it slightly negative).

    Args:
      {rms_args}

    Conventions:
      ``optax.scale_by_stddev``: same signature, defaults and numbers (where Optax's difference
      is not negative). torch.optim.RMSprop with ``centered=True`` is ``eps_in_sqrt=False``
      with ``decay=0.99``.

    References:
      Graves, "Generating Sequences With Recurrent Neural Networks", 2013. arXiv:1308.0850
    """
    _check_rms("scale_by_stddev", decay, eps, initial_scale)
    return ScaleByRMSprop(
        decay, eps, None, True, _placement(eps_in_sqrt), initial_scale,
        bias_correction=bias_correction,
    )  # fmt: skip


def _placement(eps_in_sqrt: bool) -> str:
    return "inside" if eps_in_sqrt else "outside"


def _check_rms(fn: str, decay: Any, eps: Any, initial_scale: Any) -> None:
    """The kernel's declared ranges, reported under ``fn``'s name."""
    _checks.check_unit_interval(fn, "decay", decay, high_open=False)
    _checks.check_nonnegative(fn, "eps", eps)
    _checks.check_nonnegative(fn, "initial_scale", initial_scale)


def rmsprop(
    learning_rate: Any,
    decay: Any = 0.9,
    eps: Any = 1e-8,
    initial_scale: Any = 0.0,
    eps_in_sqrt: bool = True,
    centered: bool = False,
    momentum: Any = None,
    nesterov: bool = False,
    bias_correction: bool = False,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    maximize: bool = False,
):
    """RMSprop, Optax's signature, defaults and arithmetic.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        v_t = decay * v_{t-1} + (1 - decay) * g_t^2          (v_0 = initial_scale)
        gbar_t = decay * gbar_{t-1} + (1 - decay) * g_t       (centered only)
        vhat_t, ghat_t = v_t / c_t, gbar_t / c_t              (c_t = 1 - decay^t with
                                                               bias_correction, else 1)
        d_t = vhat_t - ghat_t^2 (centered) or vhat_t
        u_t = -lr_t * g_t / sqrt(d_t + eps)                   (eps_in_sqrt)
            = -lr_t * g_t / (sqrt(d_t) + eps)                 (otherwise)
        b_t = momentum * b_{t-1} + u_t                        (with momentum; b_0 = 0)
        p_t = p_{t-1} + b_t   (or + u_t + momentum * b_t with nesterov; + u_t without momentum)

    Args:
      {learning_rate}
      decay: decay of the moving averages, in [0, 1] (float, array or schedule).
      eps: added to the second moment inside the root (``eps_in_sqrt``) or to its root, >= 0.
      initial_scale: starting value of ``nu`` (v_0), >= 0.
      eps_in_sqrt: where ``eps`` goes (see the formula).
      centered: divide by the estimated standard deviation instead of the root mean square.
      momentum: None (no buffer) or a coefficient in [0, 1] (float, array or schedule) of a
        momentum applied after the learning rate.
      nesterov: Nesterov's form of the momentum (with ``momentum`` only).
      bias_correction: divide the moving averages by ``1 - decay^t``.
      {weight_decay}
      {maximize}

    Conventions: ``optax.rmsprop``: same signature, defaults and numbers; ``weight_decay`` and
    ``maximize`` are gradtx's additions (torch's coupled L2 term and sign). torch.optim.RMSprop
    is ``rmsprop(lr, decay=0.99, eps_in_sqrt=False)`` (torch's ``alpha`` is ``decay``), with
    its momentum for a constant learning rate: torch keeps the buffer before the learning rate,
    which differs under a schedule; ``gradtx.torch.rmsprop`` has torch's names and order.

    References:
      Tieleman, Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
      2012. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (centered).
      arXiv:1308.0850
    """
    _check_rms("rmsprop", decay, eps, initial_scale)
    pre = ScaleByRMSprop(
        decay, eps, None, centered, _placement(eps_in_sqrt), initial_scale,
        bias_correction=bias_correction,
    )  # fmt: skip
    chain = optimizer_chain(
        "rmsprop",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )
    if momentum is None:
        return chain
    _checks.check_unit_interval("rmsprop", "momentum", momentum, high_open=False)
    # After the learning rate, as Optax places it (Optax's ``trace``).
    return Chain((*chain.transforms, trace(momentum, nesterov)))


fill_doc(scale_by_rms, rms_args=_RMS_ARGS)
fill_doc(scale_by_stddev, rms_args=_RMS_ARGS)
fill_doc(rmsprop, **COMMON_DOCS)
