"""torch.optim's optimizers: torch's argument names, defaults and arithmetic over gradtx kernels.

Each factory takes the arguments of the torch.optim class of the same name, less ``params``, in
torch's order and with torch's defaults, and builds the same chain as gradtx's own optimizers:
``[negate] -> [coupled L2] -> kernel -> [decoupled decay] -> -lr``. What torch decides per
tensor (complex parameters seen as pairs of reals, weight decay before or after the moments)
is fixed here to torch's choice; gradtx's extras (``weight_decay_mask``, buffer dtypes) come
after torch's arguments, keyword-only.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks
from .._transform import (
    Chain,
    Schedule,
    Transform,
    as_transform,
    identity,
    pytree_dataclass,
)
from ..optimizers._common import (
    fill_doc,
    is_literal_zero,
    off_at_literal_zero,
    optimizer_chain,
)
from ..optimizers._lr_inside import lr_inside_chain
from ..optimizers.adadelta import ScaleByAdadelta
from ..optimizers.adafactor import ScaleByAdafactor
from ..optimizers.adagrad import ScaleByAdagrad
from ..optimizers.adam import ScaleByAdam
from ..optimizers.adamax import ScaleByAdamax
from ..optimizers.asgd import ScaleByASGD
from ..optimizers.muon import MuonSplit, ScaleByMuon
from ..optimizers.nadam import ScaleByNAdam
from ..optimizers.radam import ScaleByRAdam
from ..optimizers.rmsprop import ScaleByRMSprop
from ..optimizers.rprop import ScaleByRprop
from ..transforms._momentum import ScaleByMomentum
from ..transforms._scaling import negate

# --------------------------------------------------------------------------------------------
# Schedules for every hyperparameter


@pytree_dataclass
class Scheduled(Transform):
    """Runs ``inner`` with each schedule among its hyperparameters evaluated at the step count.

    The count is ``state.count`` of ``inner``'s own state (the number of updates applied
    before this one), the count gradtx's schedules always see. The state is ``inner``'s, so
    ``gradtx.eval_params`` and checkpoints see no difference. Built only when a hyperparameter
    is a schedule.
    """

    # Capabilities are ``inner``'s: a combinator holds them when all its parts do.
    elementwise = True
    stackable = True

    inner: Transform

    def _init(self, params):
        return self.inner._init(params)

    def _update(self, updates, state, params, **extra):
        def at(v):
            return v(state.count) if isinstance(v, Schedule) else v

        inner = jax.tree.map(at, self.inner, is_leaf=lambda v: isinstance(v, Schedule))
        return inner._update(updates, state, params, **extra)

    def _children(self, state):
        return (("0", self.inner, state),)


def _scheduled(kernel: Transform) -> Transform:
    """``kernel``, wrapped in ``Scheduled`` when one of its hyperparameters is a schedule."""
    found = jax.tree.leaves(kernel, is_leaf=lambda v: isinstance(v, Schedule))
    if any(isinstance(v, Schedule) for v in found):
        return Scheduled(kernel)
    return kernel


# --------------------------------------------------------------------------------------------
# Argument checks: the kernels' declared ranges, reported under torch's argument names


def _check(fn: str, cls: type, field_name: str, arg: str, value: Any) -> None:
    """Checks ``value`` against the range ``cls`` declares for ``field_name``, as ``arg``."""
    for f in dataclasses.fields(cls):
        if f.name == field_name:
            check = f.metadata.get("check")
            if check is not None:
                check(fn, arg, value)
            choices = f.metadata.get("choices")
            if choices is not None:
                _checks.check_choice(fn, arg, value, choices)
            return
    raise AssertionError(f"{cls.__name__} has no field {field_name}")  # pragma: no cover


def _nonnegative(fn: str, **values: Any) -> None:
    for name, value in values.items():
        _checks.check_nonnegative(fn, name, value)


def _bools(fn: str, **values: Any) -> None:
    for name, value in values.items():
        if not isinstance(value, (bool, np.bool_)):
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: {name} must be True or False, got {value!r}"
            )


def _flags(fn: str, **values: Any) -> None:
    """torch's implementation switches: None or a bool (``foreach``, ``fused``), or a bool."""
    for name, value in values.items():
        optional = name in ("foreach", "fused")
        if isinstance(value, (bool, np.bool_)) or (optional and value is None):
            continue
        allowed = "None, True or False" if optional else "True or False"
        raise _checks.HyperparameterError(f"gradtx.{fn}: {name} must be {allowed}, got {value!r}")
    if values.get("foreach") and values.get("fused"):
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: foreach and fused cannot both be True (torch's rule); gradtx picks "
            f"its own layout, so leave both at None."
        )


def _pair(fn: str, name: str, value: Any, size: int = 2) -> tuple[Any, ...]:
    if isinstance(value, (tuple, list)) and len(value) == size:
        return tuple(value)
    raise _checks.HyperparameterError(
        f"gradtx.{fn}: {name} must be a tuple of {size} values, got {value!r}"
    )


def _kernel(cls: type, fn: str, **fields: Any) -> Transform:
    """``cls(**fields)``, naming ``gradtx.<fn>`` in its errors where the class takes a name; wrapped
    in ``Scheduled`` when a hyperparameter is a schedule the class would not evaluate itself."""
    if any(f.name == "fn" for f in dataclasses.fields(cls)):
        fields["fn"] = fn
    return _scheduled(cls(**fields))


# --------------------------------------------------------------------------------------------
# Argument text shared by the docstrings below

_DOCS = {
    "weight_decay": """weight_decay: L2 coefficient >= 0 (float, array or schedule), added to the
        gradient before the moments, as torch does (``g <- g + weight_decay * p``). A literal 0
        (the default) is torch's "off" and builds no term; ``jnp.array(0.0)`` keeps the term, so
        a sweep that includes 0 compiles once.""",
    "decoupled": """decoupled_weight_decay: if True, decay the parameters instead
        (``p <- p * (1 - lr * weight_decay)``, torch's AdamW form) and add nothing to the
        gradient.""",
    "maximize": """maximize: ascend the objective: the gradient is negated before anything else
        (the weight decay still shrinks the parameters, as in torch).""",
    "mask": """weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from
        params to one; torch's equivalent is a param group with ``weight_decay=0``. None decays
        every leaf.""",
}
_LR = """lr: the step size, >= 0 (torch's default {default}): a float, an array (a batch of rates
        under ``jax.vmap``) or a schedule ``count -> value`` (a gradtx schedule, one of
        ``gradtx.torch``'s lr schedulers, or any callable), where ``count`` is the number of
        steps taken before this one."""
_FLAG_TEXT = {
    "foreach": "None or a bool: torch's choice of kernels, checked but without effect (gradtx "
    "compiles one program per step and picks its own layout).",
    "fused": "None or a bool: as ``foreach``.",
    "capturable": "a bool: torch's CUDA-graph switch, checked but without effect.",
    "differentiable": "a bool, checked but without effect: every hyperparameter is "
    "differentiable with ``jax.grad`` anyway.",
}
_NUMBERS = """Every numeric hyperparameter may be a float, an array or a schedule evaluated at the step
    count: one compiled step serves every value, and ``jax.vmap`` and ``jax.grad`` go through
    them."""
_COMPLEX = """Complex parameters follow torch: each is a pair of reals ``(re, im)`` with its own
    statistics (torch's ``view_as_real``)."""


def _fill(fn: Any, real_view: bool = True) -> Any:
    """Fills the shared argument text of ``fn``'s docstring from its signature."""
    sig = inspect.signature(fn).parameters
    flags = "\n      ".join(
        textwrap.fill(f"{n}: {text}", 90, subsequent_indent=" " * 8)
        for n in sig
        if (text := _FLAG_TEXT.get(n)) is not None
    )
    extra = _NUMBERS + ("\n\n    " + _COMPLEX if real_view else "")
    doc = fn.__doc__.replace("\n\n    References:", "\n\n    " + extra + "\n\n    References:")
    fn.__doc__ = doc
    return fill_doc(fn, lr=_LR.format(default=sig["lr"].default), flags=flags, **_DOCS)


# --------------------------------------------------------------------------------------------
# The optimizers


def sgd(
    lr: Any = 1e-3,
    momentum: Any = 0,
    dampening: Any = 0,
    weight_decay: Any = 0,
    nesterov: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    differentiable: bool = False,
    fused: bool | None = None,
    momentum_form: str = "heavy_ball",
    weight_decay_mask: Any = None,
    accumulator_dtype: Any = None,
) -> Chain:
    """Stochastic gradient descent, as torch.optim.SGD.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        b_t = momentum * b_{t-1} + (1 - dampening) * g_t       (b_1 = g_1)
        d_t = g_t + momentum * b_t   if nesterov   else   b_t
        p_t = p_{t-1} - lr * d_t

    With ``momentum`` a literal 0 (the default) no buffer is kept and ``d_t = g_t``; an array
    or a schedule keeps one, and where it is 0 the step is the plain gradient, as torch's.

    Args:
      {lr}
      momentum: the momentum coefficient in [0, 1] (float, array or schedule).
      dampening: in [0, 1] (float, array or schedule); no effect while momentum is 0.
      {weight_decay}
      nesterov: Nesterov momentum; needs momentum > 0 and dampening 0, as in torch.
      {maximize}
      {flags}
      momentum_form: ``"heavy_ball"`` (torch) or ``"ema"``, the moving average of the seed
        tutorial's optimizer classes, ``b_t = momentum * b_{t-1} + (1 - momentum) * g_t`` from
        ``b_0 = 0`` (``dampening`` is then unused).
      {mask}
      accumulator_dtype: dtype of the momentum buffer (default: each parameter's dtype).

    Conventions: torch.optim.SGD exactly. ``optax.sgd(learning_rate, momentum, nesterov)`` is
    the same algorithm with dampening 0 and no weight decay (its momentum None is torch's 0).

    References:
      Polyak, "Some methods of speeding up the convergence of iteration methods", USSR
      Computational Mathematics and Mathematical Physics, 1964. doi:10.1016/0041-5553(64)90137-5
      Sutskever, Martens, Dahl, Hinton, "On the importance of initialization and momentum in deep
      learning", ICML 2013. https://proceedings.mlr.press/v28/sutskever13.html
    """
    fn = "torch.sgd"
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByMomentum, "momentum", "momentum", momentum)
    _check(fn, ScaleByMomentum, "dampening", "dampening", dampening)
    _check(fn, ScaleByMomentum, "form", "momentum_form", momentum_form)
    _bools(fn, nesterov=nesterov, maximize=maximize)
    _flags(fn, foreach=foreach, differentiable=differentiable, fused=fused)
    if nesterov:
        mom, damp = _checks.concrete_values(momentum), _checks.concrete_values(dampening)
        if (mom is not None and float(mom.min()) <= 0) or (
            momentum_form == "heavy_ball" and damp is not None and float(np.abs(damp).max()) != 0
        ):
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: nesterov=True needs momentum > 0 and dampening == 0 (torch's "
                f"rule), got momentum={momentum!r}, dampening={dampening!r}"
            )
    if is_literal_zero(momentum):
        pre: Transform = identity()
    else:
        pre = _kernel(ScaleByMomentum, fn, momentum=momentum, dampening=dampening,
                      nesterov=nesterov, form=momentum_form,
                      accumulator_dtype=accumulator_dtype)  # fmt: skip
    return optimizer_chain(fn, pre, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def _adam(fn, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled, mask, mu_dtype,
          nu_dtype):  # fmt: skip
    b1, b2 = _pair(fn, "betas", betas)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByAdam, "b1", "betas[0]", b1)
    _check(fn, ScaleByAdam, "b2", "betas[1]", b2)
    _check(fn, ScaleByAdam, "eps", "eps", eps)
    kernel = _kernel(ScaleByAdam, fn, b1=b1, b2=b2, eps=eps, amsgrad=amsgrad, amsgrad_max="raw",
                     mu_dtype=mu_dtype, nu_dtype=nu_dtype,
                     complex_convention="real_view")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=mask, decoupled_weight_decay=decoupled,
                           maximize=maximize)  # fmt: skip


def adam(
    lr: Any = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    amsgrad: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    decoupled_weight_decay: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> Chain:
    """Adam, as torch.optim.Adam.

    Update rule (t = 1, 2, ...; ``betas = (b1, b2)``)::

        g_t  = grad + weight_decay * p_{t-1}
        m_t  = b1 * m_{t-1} + (1 - b1) * g_t
        v_t  = b2 * v_{t-1} + (1 - b2) * g_t^2
        vbar = max(vbar_{t-1}, v_t)   if amsgrad   else   v_t
        p_t  = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(vbar / (1 - b2^t)) + eps)

    Args:
      {lr}
      betas: ``(b1, b2)``, the decays of the two moments, each in [0, 1).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      amsgrad: keep the running maximum of ``v`` (torch's AMSGrad: the max of the raw ``v``).
      {maximize}
      {flags}
      {decoupled}
      {mask}
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      nu_dtype: dtype of ``nu`` (default: each parameter's dtype).

    Conventions: torch.optim.Adam exactly. ``optax.adam(learning_rate, b1, b2, eps)`` is the
    same algorithm for real parameters without weight decay; Optax's ``amsgrad`` takes the
    maximum of the bias-corrected ``v``, and Optax treats a complex parameter as one number
    (``v`` accumulates ``|g|^2``).

    References:
      {refs}
    """
    fn = "torch.adam"
    _bools(fn, amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=decoupled_weight_decay)
    _flags(fn, foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
    return _adam(fn, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled_weight_decay,
                 weight_decay_mask, mu_dtype, nu_dtype)  # fmt: skip


def adamw(
    lr: Any = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 1e-2,
    amsgrad: bool = False,
    *,
    maximize: bool = False,
    foreach: bool | None = None,
    capturable: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
) -> Chain:
    """AdamW (Adam with decoupled weight decay), as torch.optim.AdamW.

    Update rule (t = 1, 2, ...)::

        m_t, v_t and vbar as in ``gradtx.torch.adam`` (nothing added to the gradient)
        p_t = p_{t-1} * (1 - lr * weight_decay)
              - lr * (m_t / (1 - b1^t)) / (sqrt(vbar / (1 - b2^t)) + eps)

    Args:
      {lr}
      betas: ``(b1, b2)``, the decays of the two moments, each in [0, 1).
      eps: added to the denominator outside the square root, >= 0.
      weight_decay: the decoupled decay coefficient >= 0 (float, array or schedule), multiplied
        by the current learning rate; torch default 1e-2.
      amsgrad: keep the running maximum of ``v`` (torch's AMSGrad: the max of the raw ``v``).
      {maximize}
      {flags}
      {mask}
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).
      nu_dtype: dtype of ``nu`` (default: each parameter's dtype).

    Conventions: torch.optim.AdamW exactly. ``optax.adamw`` is the same algorithm for real
    parameters, with a default weight decay of 1e-4 and its mask called ``mask``.

    References:
      {refs}
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    fn = "torch.adamw"
    _bools(fn, amsgrad=amsgrad, maximize=maximize)
    _flags(fn, foreach=foreach, capturable=capturable, differentiable=differentiable, fused=fused)
    return _adam(fn, lr, betas, eps, weight_decay, amsgrad, maximize, True, weight_decay_mask,
                 mu_dtype, nu_dtype)  # fmt: skip


_ADAM_REFS = """Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. arXiv:1412.6980
      Reddi, Kale, Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
      https://openreview.net/forum?id=ryQu7f-RZ"""
for _f in (adam, adamw):
    fill_doc(_f, refs=_ADAM_REFS)


def adagrad(
    lr: Any = 1e-2,
    lr_decay: Any = 0,
    weight_decay: Any = 0,
    initial_accumulator_value: Any = 0,
    eps: Any = 1e-10,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    fused: bool | None = None,
    weight_decay_mask: Any = None,
) -> Chain:
    """Adagrad, as torch.optim.Adagrad.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        s_t = s_{t-1} + g_t^2                             (s_0 = initial_accumulator_value)
        p_t = p_{t-1} - lr / (1 + (t - 1) * lr_decay) * g_t / (sqrt(s_t) + eps)

    Args:
      {lr}
      lr_decay: the learning rate's decay, >= 0 (float, array or schedule).
      {weight_decay}
      initial_accumulator_value: the starting value of ``sum_of_squares`` (s_0), >= 0.
      eps: added outside the square root, >= 0 (torch 1e-10).
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.Adagrad exactly, which is also the seed tutorial's Adagrad (eps
    outside the root, ``s_0 = 0``). ``optax.adagrad`` starts from ``s_0 = 0.1`` and divides by
    ``sqrt(s_t + eps)`` with eps 1e-7, and has no ``lr_decay``.

    References:
      Duchi, Hazan, Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
      Optimization", JMLR 12, 2011. https://jmlr.org/papers/v12/duchi11a.html
    """
    fn = "torch.adagrad"
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByAdagrad, "lr_decay", "lr_decay", lr_decay)
    _check(fn, ScaleByAdagrad, "initial_accumulator_value", "initial_accumulator_value",
           initial_accumulator_value)  # fmt: skip
    _check(fn, ScaleByAdagrad, "eps", "eps", eps)
    _bools(fn, maximize=maximize)
    _flags(fn, foreach=foreach, differentiable=differentiable, fused=fused)
    kernel = _kernel(ScaleByAdagrad, fn, lr_decay=lr_decay,
                     initial_accumulator_value=initial_accumulator_value, eps=eps,
                     eps_placement="outside", complex_convention="real_view")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def adadelta(
    lr: Any = 1.0,
    rho: Any = 0.9,
    eps: Any = 1e-6,
    weight_decay: Any = 0,
    foreach: bool | None = None,
    *,
    capturable: bool = False,
    maximize: bool = False,
    differentiable: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """Adadelta, as torch.optim.Adadelta.

    Update rule (t = 1, 2, ...)::

        g_t       = grad + weight_decay * p_{t-1}
        E[g^2]_t  = rho * E[g^2]_{t-1} + (1 - rho) * g_t^2
        dx_t      = sqrt(E[dx^2]_{t-1} + eps) / sqrt(E[g^2]_t + eps) * g_t
        E[dx^2]_t = rho * E[dx^2]_{t-1} + (1 - rho) * dx_t^2
        p_t       = p_{t-1} - lr * dx_t

    Args:
      {lr}
      rho: the decay of both running averages, in [0, 1].
      eps: added inside both square roots, >= 0.
      {weight_decay}
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.Adadelta exactly. ``optax.adadelta`` is the same algorithm for
    real parameters (its weight decay is also the coupled L2 term).

    References:
      Zeiler, "ADADELTA: An Adaptive Learning Rate Method", 2012. arXiv:1212.5701
    """
    fn = "torch.adadelta"
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByAdadelta, "rho", "rho", rho)
    _check(fn, ScaleByAdadelta, "eps", "eps", eps)
    _bools(fn, maximize=maximize)
    _flags(fn, foreach=foreach, capturable=capturable, differentiable=differentiable)
    kernel = _kernel(ScaleByAdadelta, fn, rho=rho, eps=eps, complex_convention="real_view")
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def adamax(
    lr: Any = 2e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    foreach: bool | None = None,
    *,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """Adamax (Adam with the infinity norm), as torch.optim.Adamax.

    Update rule (t = 1, 2, ...; ``betas = (b1, b2)``)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        u_t = max(b2 * u_{t-1}, |g_t| + eps)
        p_t = p_{t-1} - lr / (1 - b1^t) * m_t / u_t

    Args:
      {lr}
      betas: ``(b1, b2)``, the decays of the first moment and of the infinity norm, in [0, 1).
      eps: added to ``|g|`` inside the maximum, >= 0.
      {weight_decay}
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.Adamax exactly. ``optax.adamax`` is the same algorithm for real
    parameters without weight decay; ``optax.adamaxw`` decouples the decay.

    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, section 7.
      arXiv:1412.6980
    """
    fn = "torch.adamax"
    b1, b2 = _pair(fn, "betas", betas)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByAdamax, "b1", "betas[0]", b1)
    _check(fn, ScaleByAdamax, "b2", "betas[1]", b2)
    _check(fn, ScaleByAdamax, "eps", "eps", eps)
    _bools(fn, maximize=maximize)
    _flags(fn, foreach=foreach, differentiable=differentiable, capturable=capturable)
    kernel = _kernel(ScaleByAdamax, fn, b1=b1, b2=b2, eps=eps, complex_convention="real_view")
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def asgd(
    lr: Any = 1e-2,
    lambd: Any = 1e-4,
    alpha: Any = 0.75,
    t0: Any = 1e6,
    weight_decay: Any = 0,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    capturable: bool = False,
    *,
    weight_decay_mask: Any = None,
) -> Chain:
    """Averaged SGD, as torch.optim.ASGD, with the averaged parameters in the state.

    Update rule (t = 1, 2, ...; eta_0 = lr, mu_0 = 1, ax_0 = 0)::

        g_t   = grad + weight_decay * p_{t-1}
        p_t   = p_{t-1} * (1 - lambd * eta_{t-1}) - eta_{t-1} * g_t
        ax_t  = p_t  if mu_{t-1} == 1  else  ax_{t-1} + mu_{t-1} * (p_t - ax_{t-1})
        eta_t = lr / (1 + lambd * lr * t)^alpha
        mu_t  = 1 / max(1, t - t0)

    The averaged parameters ``ax`` are never written into the parameters; read them with
    ``gradtx.eval_params(state, params)``.

    Args:
      {lr} As in torch, the step at t uses the eta computed at t - 1 from the
        learning rate of then: a one-step lag under a schedule.
      lambd: the decay term, >= 0.
      alpha: the power of eta's decay, >= 0.
      t0: the step after which averaging starts, >= 0 (torch 1e6: by default ``ax`` is a copy
        of the parameters).
      {weight_decay}
      {maximize}
      {flags}
      {mask}

    Conventions: torch.optim.ASGD exactly. Optax has no ASGD.

    References:
      Polyak, Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
      and Optimization, 1992. doi:10.1137/0330046
      Bottou, "Stochastic Gradient Descent Tricks", Neural Networks: Tricks of the Trade, 2012.
      doi:10.1007/978-3-642-35289-8_25
    """
    fn = "torch.asgd"
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    for name, value in (("lambd", lambd), ("alpha", alpha), ("t0", t0)):
        _check(fn, ScaleByASGD, name, name, value)
    _bools(fn, maximize=maximize)
    _flags(fn, foreach=foreach, differentiable=differentiable, capturable=capturable)
    kernel = _kernel(ScaleByASGD, fn, learning_rate=lr, lambd=lambd, alpha=alpha, t0=t0,
                     complex_convention="real_view")  # fmt: skip
    return lr_inside_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def nadam(
    lr: Any = 2e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    momentum_decay: Any = 4e-3,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """NAdam (Adam with Nesterov momentum), as torch.optim.NAdam.

    Update rule (t = 1, 2, ...; ``betas = (b1, b2)``, psi = momentum_decay)::

        g_t  = grad + weight_decay * p_{t-1}
        mu_t = b1 * (1 - 0.5 * 0.96^(t * psi));   Pi_t = mu_1 * ... * mu_t
        m_t  = b1 * m_{t-1} + (1 - b1) * g_t
        v_t  = b2 * v_{t-1} + (1 - b2) * g_t^2
        d_t  = sqrt(v_t / (1 - b2^t)) + eps
        p_t  = p_{t-1} - lr * (1 - mu_t) / (1 - Pi_t) * g_t / d_t
                       - lr * mu_{t+1} / (1 - Pi_t * mu_{t+1}) * m_t / d_t

    Args:
      {lr}
      betas: ``(b1, b2)``, the decays of the two moments, each in [0, 1).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      momentum_decay: psi >= 0, how fast the momentum warms up to b1.
      {decoupled}
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.NAdam exactly. ``optax.nadam`` keeps the momentum constant
    (``mu_t = b1``, the limit psi -> inf) and ``optax.nadamw`` decouples the decay.

    References:
      Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
      https://openreview.net/forum?id=OM0jvwB8jIp57ZJjtNEZ
    """
    fn = "torch.nadam"
    b1, b2 = _pair(fn, "betas", betas)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByNAdam, "b1", "betas[0]", b1)
    _check(fn, ScaleByNAdam, "b2", "betas[1]", b2)
    _check(fn, ScaleByNAdam, "eps", "eps", eps)
    _check(fn, ScaleByNAdam, "momentum_decay", "momentum_decay", momentum_decay)
    _bools(fn, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    _flags(fn, foreach=foreach, capturable=capturable, differentiable=differentiable)
    kernel = _kernel(ScaleByNAdam, fn, b1=b1, b2=b2, eps=eps, momentum_decay=momentum_decay,
                     convention="torch", complex_convention="real_view")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize,
                           decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip


def radam(
    lr: Any = 1e-3,
    betas: tuple[Any, Any] = (0.9, 0.999),
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    decoupled_weight_decay: bool = False,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    capturable: bool = False,
    differentiable: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """RAdam (rectified Adam), as torch.optim.RAdam.

    Update rule (t = 1, 2, ...; ``betas = (b1, b2)``)::

        g_t     = grad + weight_decay * p_{t-1}
        m_t     = b1 * m_{t-1} + (1 - b1) * g_t;   v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        rho_inf = 2 / (1 - b2) - 1;   rho_t = rho_inf - 2 t b2^t / (1 - b2^t)
        if rho_t > 5:
            r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
            p_t = p_{t-1} - lr * r_t * m_t / (1 - b1^t) * sqrt(1 - b2^t) / (sqrt(v_t) + eps)
        else:
            p_t = p_{t-1} - lr * m_t / (1 - b1^t)

    Args:
      {lr}
      betas: ``(b1, b2)``, the decays of the two moments, each in [0, 1). A scheduled b2 moves
        rho_inf with it, as changing torch's betas between steps does.
      eps: added to ``sqrt(v_t)`` before the bias correction, >= 0.
      {weight_decay}
      {decoupled}
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.RAdam exactly. ``optax.radam`` rectifies when ``rho_t >= 5`` and
    adds eps after the bias correction.

    References:
      Liu, Jiang, He, Chen, Liu, Gao, Han, "On the Variance of the Adaptive Learning Rate and
      Beyond", ICLR 2020. arXiv:1908.03265
    """
    fn = "torch.radam"
    b1, b2 = _pair(fn, "betas", betas)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByRAdam, "b1", "betas[0]", b1)
    _check(fn, ScaleByRAdam, "b2", "betas[1]", b2)
    _check(fn, ScaleByRAdam, "eps", "eps", eps)
    _bools(fn, decoupled_weight_decay=decoupled_weight_decay, maximize=maximize)
    _flags(fn, foreach=foreach, capturable=capturable, differentiable=differentiable)
    kernel = _kernel(ScaleByRAdam, fn, b1=b1, b2=b2, eps=eps, threshold=5.0,
                     threshold_inclusive=False, eps_placement="raw",
                     complex_convention="real_view")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize,
                           decoupled_weight_decay=decoupled_weight_decay)  # fmt: skip


def rmsprop(
    lr: Any = 1e-2,
    alpha: Any = 0.99,
    eps: Any = 1e-8,
    weight_decay: Any = 0,
    momentum: Any = 0,
    centered: bool = False,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
    *,
    weight_decay_mask: Any = None,
) -> Chain:
    """RMSprop, as torch.optim.RMSprop.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        v_t = alpha * v_{t-1} + (1 - alpha) * g_t^2
        a_t = sqrt(v_t) + eps        (centered: sqrt(v_t - gbar_t^2) + eps, with
                                      gbar_t = alpha * gbar_{t-1} + (1 - alpha) * g_t)
        b_t = momentum * b_{t-1} + g_t / a_t;   p_t = p_{t-1} - lr * b_t      (momentum)
        p_t = p_{t-1} - lr * g_t / a_t                                     (momentum 0)

    With ``momentum`` a literal 0 (the default) no buffer is kept; an array or a schedule keeps
    one.

    Args:
      {lr}
      alpha: the smoothing constant of the squared-gradient average, in [0, 1].
      eps: added outside the square root, >= 0.
      {weight_decay}
      momentum: in [0, 1] (float, array or schedule); the learning rate multiplies the buffer.
      centered: divide by the estimated standard deviation instead of the root mean square.
      {flags}
      {maximize}
      {mask}

    Conventions: torch.optim.RMSprop exactly, which is also the seed tutorial's RMSProp (alpha
    0.99, eps outside the root). ``optax.rmsprop`` defaults to decay 0.9 with eps inside the
    root, and scales the momentum buffer's input by the learning rate (the same steps for a
    constant rate).

    References:
      Tieleman, Hinton, "Lecture 6.5 - RMSProp", COURSERA: Neural Networks for Machine Learning,
      2012. Graves, "Generating Sequences With Recurrent Neural Networks", 2013 (centered).
      arXiv:1308.0850
    """
    fn = "torch.rmsprop"
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByRMSprop, "decay", "alpha", alpha)
    _check(fn, ScaleByRMSprop, "eps", "eps", eps)
    _check(fn, ScaleByRMSprop, "momentum", "momentum", momentum)
    _bools(fn, centered=centered, maximize=maximize)
    _flags(fn, capturable=capturable, foreach=foreach, differentiable=differentiable)
    mom = None if is_literal_zero(momentum) else momentum
    kernel = _kernel(ScaleByRMSprop, fn, decay=alpha, eps=eps, momentum=mom, centered=centered,
                     eps_placement="outside", initial_scale=0.0,
                     complex_convention="real_view")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, maximize=maximize)  # fmt: skip


def rprop(
    lr: Any = 1e-2,
    etas: tuple[Any, Any] = (0.5, 1.2),
    step_sizes: tuple[Any, Any] = (1e-6, 50),
    *,
    capturable: bool = False,
    foreach: bool | None = None,
    maximize: bool = False,
    differentiable: bool = False,
) -> Chain:
    """Rprop (resilient backpropagation, iRprop-), as torch.optim.Rprop.

    Update rule (t = 1, 2, ...; ``etas = (eta_minus, eta_plus)``, ``step_sizes = (lo, hi)``)::

        s_t     = sign(g_t * g'_{t-1})                       (g'_0 = 0)
        eta_t   = eta_plus if s_t > 0;  eta_minus if s_t < 0;  1 otherwise
        Delta_t = clip(Delta_{t-1} * eta_t, lo, hi)          (Delta_0 = lr)
        g'_t    = 0 where s_t < 0, else g_t
        p_t     = p_{t-1} - sign(g'_t) * Delta_t

    Args:
      lr: the initial step size Delta_0 >= 0 (float, array or schedule; torch default 1e-2).
        As in torch it is read once: a schedule is evaluated at count 0 when the state is
        created.
      etas: ``(eta_minus, eta_plus)``, the decrease factor in (0, 1) and the increase factor
        > 1.
      step_sizes: ``(lo, hi)``, the bounds of the step sizes, each >= 0.
      {flags}
      {maximize}

    Conventions: torch.optim.Rprop exactly. ``optax.rprop`` differs: see ``gradtx.rprop``.
    torch's step sizes of a complex parameter start at ``lr + 0j``: the imaginary parts start
    from the lower bound, here too.

    References:
      Riedmiller, Braun, "A direct adaptive method for faster backpropagation learning: the
      RPROP algorithm", IEEE ICNN 1993. doi:10.1109/ICNN.1993.298623
      Igel, Huesken, "Improving the Rprop Learning Algorithm", NC 2000 (iRprop-).
    """
    fn = "torch.rprop"
    eta_minus, eta_plus = _pair(fn, "etas", etas)
    lo, hi = _pair(fn, "step_sizes", step_sizes)
    _nonnegative(fn, lr=lr)
    _check(fn, ScaleByRprop, "eta_minus", "etas[0]", eta_minus)
    _check(fn, ScaleByRprop, "eta_plus", "etas[1]", eta_plus)
    _check(fn, ScaleByRprop, "min_step_size", "step_sizes[0]", lo)
    _check(fn, ScaleByRprop, "max_step_size", "step_sizes[1]", hi)
    _bools(fn, maximize=maximize)
    _flags(fn, capturable=capturable, foreach=foreach, differentiable=differentiable)
    kernel = _kernel(ScaleByRprop, fn, learning_rate=lr, eta_minus=eta_minus, eta_plus=eta_plus,
                     min_step_size=lo, max_step_size=hi,
                     complex_convention="real_view")  # fmt: skip
    return lr_inside_chain(fn, kernel, lr, maximize=maximize)


def adafactor(
    lr: Any = 1e-2,
    beta2_decay: Any = -0.8,
    eps: tuple[Any, Any] = (None, 1e-3),
    d: Any = 1.0,
    weight_decay: Any = 0.0,
    *,
    foreach: bool | None = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """Adafactor, as torch.optim.Adafactor.

    Update rule (t = 1, 2, ...; ``eps = (eps1, eps2)``)::

        w_t   = t^beta2_decay                      (= 1 - beta2_t; the first step has w = 1)
        rho_t = min(lr, 1 / sqrt(t));   a_t = max(eps2, rms(p_{t-1})) * rho_t
        leaves with >= 2 axes, factored over their last two (leading axes are batch):
          R_t = (1 - w_t) R_{t-1} + w_t mean_{-1}(g_t^2)       (row statistics)
          C_t = (1 - w_t) C_{t-1} + w_t mean_{-2}(g_t^2)       (column statistics)
          Vhat = R_t C_t / max(mean_{-2}(R_t), eps1)
        other leaves: Vhat = V_t = (1 - w_t) V_{t-1} + w_t g_t^2
        U_t   = g_t / sqrt(max(Vhat, eps1^2));   Uhat_t = U_t / max(1, rms(U_t) / d)
        p_t   = p_{t-1} * (1 - lr * weight_decay) - a_t * Uhat_t

    Args:
      {lr} It is also capped by ``1 / sqrt(t)`` (the relative step).
      beta2_decay: the exponent of the second moment's decay, <= 0.
      eps: ``(eps1, eps2)``: eps1 >= 0 regularises the second moment (None:
        ``finfo(param dtype).eps``); eps2 >= 0 floors the parameter scale ``rms(p)``.
      d: the clipping threshold of the update's rms, > 0.
      weight_decay: the decoupled decay coefficient >= 0 (float, array or schedule), multiplied
        by the learning rate (not by rho_t), as in torch.
      foreach: torch's implementation switch (None or a bool); it changes no number.
      {maximize}
      {mask}

    Conventions: torch.optim.Adafactor exactly. torch rejects complex parameters; gradtx
    accepts them, with ``|g|^2`` in the statistics. ``optax.adafactor`` factors a leaf
    over its two largest axes (when the smaller is at least 128), adds eps1 to ``g^2``, has no
    ``1 / sqrt(t)`` cap and a decay rate not multiplied by the learning rate.

    Layouts: the params tree, or ``gradtx.flatten(params, stack=True)`` (each stacked leaf keeps
    its own statistics); raveled buffers raise ``TypeError``.

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018. arXiv:1804.04235
    """
    fn = "torch.adafactor"
    eps1, eps2 = _pair(fn, "eps", eps)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByAdafactor, "beta2_decay", "beta2_decay", beta2_decay)
    _check(fn, ScaleByAdafactor, "eps1", "eps[0]", eps1)
    _check(fn, ScaleByAdafactor, "eps2", "eps[1]", eps2)
    _checks.check_positive(fn, "d", d)
    _bools(fn, maximize=maximize)
    _flags(fn, foreach=foreach)
    kernel = _kernel(ScaleByAdafactor, fn, learning_rate=lr, beta2_decay=beta2_decay, eps1=eps1,
                     eps2=eps2, d=d, convention="torch")  # fmt: skip
    return optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                           weight_decay_mask=weight_decay_mask, decoupled_weight_decay=True,
                           maximize=maximize)  # fmt: skip


def muon(
    lr: Any = 1e-3,
    weight_decay: Any = 0.1,
    momentum: Any = 0.95,
    nesterov: bool = True,
    ns_coefficients: tuple[Any, Any, Any] = (3.4445, -4.775, 2.0315),
    eps: Any = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    fallback: Any = None,
    conv_layout: str = "oihw",
    batch_dims: int | None = None,
    ns_dtype: Any = jnp.bfloat16,
    maximize: bool = False,
    weight_decay_mask: Any = None,
) -> Chain:
    """Muon (momentum orthogonalised by Newton-Schulz), as torch.optim.Muon.

    Update rule for a matrix leaf (t = 1, 2, ...; ``ns_coefficients = (a, b, c)``)::

        B_t = momentum * B_{t-1} + (1 - momentum) * g_t             (B_0 = 0)
        U_t = (1 - momentum) * g_t + momentum * B_t  (nesterov)   or   B_t
        X   = U_t / max(||U_t||_F, eps)       (in ns_dtype; transposed when rows > cols)
        repeat ns_steps:  A = X X^T;  X = a X + (b A + c A A) X
        p_t = p_{t-1} * (1 - lr * weight_decay) - lr * s * X
        s   = sqrt(max(1, rows / cols))     (adjust_lr_fn None or "original")
            = 0.2 * sqrt(max(rows, cols))   ("match_rms_adamw")

    torch takes only matrices; gradtx also takes stacks of matrices (3-D leaves), convolution
    kernels (4-D, reshaped by ``conv_layout``) and stacks of kernels, and sends 0-D and 1-D
    leaves to ``fallback`` (see ``gradtx.muon`` for the rules).

    Args:
      {lr}
      weight_decay: the decoupled decay coefficient >= 0 (float, array or schedule), multiplied
        by the unadjusted learning rate; torch default 0.1.
      momentum: in [0, 1) (float, array or schedule).
      nesterov: the Nesterov form of the momentum (torch default True).
      ns_coefficients: ``(a, b, c)``, the Newton-Schulz coefficients (floats, arrays or
        schedules).
      eps: the floor of the Frobenius norm before the iteration, >= 0.
      ns_steps: the number of Newton-Schulz iterations, an integer in [0, 99].
      adjust_lr_fn: None, ``"original"`` or ``"match_rms_adamw"`` (the scale s above).
      fallback: the optimizer of 0-D and 1-D leaves, a complete optimizer (a gradtx or Optax
        transform). None: ``gradtx.torch.adamw(lr, weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask)``.
      conv_layout: ``"oihw"`` (torch) or ``"hwio"`` (Flax), the layout of 4-D kernels.
      batch_dims: None or the number of leading batch axes of every leaf with >= 3 axes.
      ns_dtype: the dtype of the iteration (torch: bfloat16, rounded where torch's CPU kernels
        round; float32 or float64 for a more exact orthogonalisation).
      maximize: ascend the objective, on the fallback's leaves too (torch's Muon has no
        ``maximize``).
      {mask}

    Conventions: torch.optim.Muon exactly (in bfloat16, to the rounding of torch's CPU
    kernels). ``optax.contrib.muon`` uses a bias-corrected momentum and another default
    scale.

    References:
      Jordan, Jin, Boza, You, Cesista, Newhouse, Bernstein, "Muon: An optimizer for hidden layers
      in neural networks", 2024. https://kellerjordan.github.io/posts/muon/
      Liu et al., "Muon is Scalable for LLM Training", 2025. arXiv:2502.16982
    """
    fn = "torch.muon"
    a, b, c = _pair(fn, "ns_coefficients", ns_coefficients, 3)
    _nonnegative(fn, lr=lr, weight_decay=weight_decay)
    _check(fn, ScaleByMuon, "momentum", "momentum", momentum)
    _check(fn, ScaleByMuon, "eps", "eps", eps)
    _check(fn, ScaleByMuon, "ns_steps", "ns_steps", ns_steps)
    _check(fn, ScaleByMuon, "adjust_lr_fn", "adjust_lr_fn", adjust_lr_fn)
    _check(fn, ScaleByMuon, "conv_layout", "conv_layout", conv_layout)
    _bools(fn, nesterov=nesterov, maximize=maximize)
    kernel = _kernel(ScaleByMuon, fn, momentum=momentum, ns_a=a, ns_b=b, ns_c=c, eps=eps,
                     nesterov=nesterov, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn,
                     conv_layout=conv_layout, batch_dims=batch_dims,
                     ns_dtype=ns_dtype)  # fmt: skip
    matrices = optimizer_chain(fn, kernel, lr, weight_decay=off_at_literal_zero(weight_decay),
                               weight_decay_mask=weight_decay_mask,
                               decoupled_weight_decay=True)  # fmt: skip
    if fallback is None:
        fallback = adamw(lr, weight_decay=weight_decay, weight_decay_mask=weight_decay_mask)
    split = MuonSplit(matrices, as_transform(fallback, "torch.muon", "fallback"))
    return Chain((negate(), split)) if maximize else Chain((split,))


for _f in (adam, adamw, adagrad, adadelta, adamax, asgd, nadam, radam, rmsprop, rprop):
    _fill(_f)
for _f in (sgd, adafactor, muon):  # linear in g, or no complex convention of torch's
    _fill(_f, real_view=False)
