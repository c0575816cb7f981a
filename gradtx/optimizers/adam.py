"""Adam and AdamW (with AMSGrad), torch.optim's semantics, Optax's conventions as options."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _fusion, _tree
from .._transform import Transform, as_schedule, pytree_dataclass, static_field, value_at
from ._common import (
    COMMON_DOCS,
    fill_doc,
    optimizer_chain,
)


class AdamState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment
    v: Any  # second moment
    v_max: Any = None  # running max for AMSGrad (None without it)


@pytree_dataclass
class ScaleByAdam(Transform):
    """Adam's preconditioner (no learning rate)::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * |g_t|^2
        vbar_t = v_t                                  (Adam)
               = max(vbar_{t-1}, v_t)                 (AMSGrad, amsgrad_max="raw": torch)
        u_t = (m_t / (1 - b1^t)) / (sqrt(vbar_t / (1 - b2^t) + eps_root) + eps)

    With ``amsgrad_max="corrected"`` (Optax) the running max is taken over the bias-corrected
    ``v_t / (1 - b2^t)``.

    Complex parameters: with ``complex_convention="abs"`` (default, Optax) ``v`` is real and
    accumulates ``|g|^2 = re(g)^2 + im(g)^2``, so both parts of a weight share one step size.
    With ``"real_view"`` (torch) Adam runs on the real view ``(re, im)``: ``v`` is stored as
    ``v_re + i * v_im`` and each part is scaled by its own ``sqrt(v) + eps``.
    """

    elementwise = True

    b1: Any = 0.9
    b2: Any = 0.999
    eps: Any = 1e-8
    eps_root: Any = 0.0
    amsgrad: bool = static_field(False)
    amsgrad_max: str = static_field("raw")
    mu_dtype: Any = static_field(None)
    nu_dtype: Any = static_field(None)
    complex_convention: str = static_field("abs")

    def __post_init__(self):
        object.__setattr__(self, "b1", as_schedule(self.b1))
        object.__setattr__(self, "b2", as_schedule(self.b2))
        _checks.check_unit_interval("adam", "b1", self.b1)
        _checks.check_unit_interval("adam", "b2", self.b2)
        _checks.check_nonnegative("adam", "eps", self.eps)
        _checks.check_nonnegative("adam", "eps_root", self.eps_root)
        _checks.check_choice("adam", "amsgrad_max", self.amsgrad_max, ("raw", "corrected"))
        _checks.check_choice(
            "adam", "complex_convention", self.complex_convention, ("abs", "real_view")
        )

    def _nu_dtype(self, p):
        dt = self.nu_dtype or _tree.real_dtype(p.dtype)
        if self.complex_convention == "real_view" and jnp.iscomplexobj(p):
            return _tree.promote(dt, jnp.complex64)  # holds v_re + i * v_im
        return dt

    def _init(self, params):
        m = _tree.tree_zeros_like(params, self.mu_dtype)
        v = jax.tree.map(lambda p: _tree.zeros_like(p, self._nu_dtype(p)), params)
        v_max = jax.tree.map(lambda x: _tree.zeros_like(x), v) if self.amsgrad else None
        return AdamState(jnp.zeros((), jnp.int32), m, v, v_max)

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        b1 = value_at(self.b1, state.count)
        b2 = value_at(self.b2, state.count)
        corrected = self.amsgrad_max == "corrected"
        scalars: dict[Any, tuple[jax.Array, ...]] = {}
        twin = _fusion.Twin()  # one fused loop under XLA:CPU multi-output fusion

        def consts(cd):
            # Scalar work shared by every leaf of one compute dtype: traced once, not per leaf
            # (keeps trace and compile time flat in the number of leaves).
            if cd not in scalars:
                rd = _tree.real_dtype(cd)
                t = count.astype(rd)
                b1c, b2r = _tree.hp(b1, cd), _tree.hp(b2, rd)
                scalars[cd] = (
                    b1c,
                    1 - b1c,
                    b2r,
                    1 - b2r,
                    _tree.bias_correction(b1, t, rd),
                    _tree.bias_correction(b2, t, rd),
                    _tree.hp(self.eps_root, rd),
                    _tree.hp(self.eps, rd),
                )
            return scalars[cd]

        def leaf(g, m, v, vmax=None):
            if self.complex_convention == "real_view" and jnp.iscomplexobj(g):
                # torch: Adam on the real view, each of (re, im) with its own v.
                out = real_leaf(*(_real_view(x) for x in (g, m, v, vmax) if x is not None))
                return tuple(_complex_view(o, x.dtype) for o, x in zip(out, (g, m, v, vmax)))
            return twin.run(real_leaf, g, m, v, vmax)

        def real_leaf(g, m, v, vmax=None):
            cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype)
            rd = _tree.real_dtype(cd)
            b1c, omb1, b2r, omb2, bc1, bc2, eps_root, eps = consts(cd)
            gc = g.astype(cd)
            m_new = b1c * m.astype(cd) + omb1 * gc
            v_new = b2r * v.astype(rd) + omb2 * _tree.abs_sq(gc)
            if vmax is None:
                v_hat = v_new / bc2
                vmax_new = None
            elif corrected:
                vmax_new = jnp.maximum(vmax.astype(rd), v_new / bc2)
                v_hat = vmax_new
            else:
                vmax_new = jnp.maximum(vmax.astype(rd), v_new)
                v_hat = vmax_new / bc2
            denom = jnp.sqrt(v_hat + eps_root) + eps
            u = (m_new / bc1.astype(cd)) / denom.astype(cd)  # casts are no-ops for real cd
            out = (u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype))
            if vmax is not None:
                out = (*out, vmax_new.astype(vmax.dtype))
            return out

        where = self.where()
        if self.amsgrad:
            res = _tree.tree_map_with_check(
                where, leaf, updates, state.m, state.v, state.v_max, names=("m", "v", "v_max")
            )
            u, m, v, vmax = _tree.tree_unzip(updates, res, 4)
        else:
            res = _tree.tree_map_with_check(
                where, leaf, updates, state.m, state.v, names=("m", "v")
            )
            u, m, v = _tree.tree_unzip(updates, res, 3)
            vmax = None
        return u, AdamState(count, m, v, vmax)


def _real_view(x):
    """A complex array as a real one with a trailing (re, im) axis; real arrays unchanged."""
    if not jnp.iscomplexobj(x):
        return x
    return jnp.stack([jnp.real(x), jnp.imag(x)], axis=-1)


def _complex_view(x, dtype):
    """Inverse of ``_real_view`` for a complex ``dtype``."""
    if not jnp.issubdtype(dtype, jnp.complexfloating):
        return x.astype(dtype)
    return jax.lax.complex(x[..., 0], x[..., 1]).astype(dtype)


def scale_by_adam(
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    eps_root: Any = 0.0,
    amsgrad: bool = False,
    *,
    amsgrad_max: str = "raw",
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
) -> ScaleByAdam:
    """Adam's preconditioner without the learning rate (see ``ScaleByAdam``)."""
    return ScaleByAdam(
        b1, b2, eps, eps_root, amsgrad, amsgrad_max, mu_dtype, nu_dtype, complex_convention
    )


_ADAM_ARGS = """
    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0.
      {weight_decay}
      amsgrad: keep the running maximum of the second moment (AMSGrad).
      eps_root: added inside the square root (Optax's ``eps_root``; > 0 keeps meta-gradients
        finite when a gradient is exactly zero). Default 0, as in torch and Optax.
      amsgrad_max: ``"raw"`` (torch: max over the raw ``v``, then bias-corrected) or
        ``"corrected"`` (Optax's ``amsgrad``: max over the bias-corrected ``v``).
      {maximize}
      mu_dtype: dtype of ``m`` (default: each parameter's dtype). Use float32 with bf16 params.
      nu_dtype: dtype of ``v`` (default: each parameter's real dtype).
      complex_convention: for complex parameters, ``"abs"`` (default, Optax: ``v`` accumulates
        ``|g|^2``, one step size per complex weight) or ``"real_view"`` (torch: Adam on the
        ``(re, im)`` pairs, each part with its own ``v``).
"""

_ADAM_REFS = """
    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. arXiv:1412.6980
      Reddi, Kale, Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
      https://openreview.net/forum?id=ryQu7f-RZ
"""


def adam(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    amsgrad: bool = False,
    *,
    eps_root: Any = 0.0,
    amsgrad_max: str = "raw",
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
):
    """Adam, torch.optim.Adam's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = b1 * m_{t-1} + (1 - b1) * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2
        p_t = p_{t-1} - lr * (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)
    {args}      {decoupled}

    Conventions: with weight_decay 0 this is ``optax.adam(lr, b1, b2, eps)``; Optax's
    ``amsgrad`` is ``adam(..., amsgrad=True, amsgrad_max="corrected")``.
    {refs}"""
    pre = scale_by_adam(
        b1,
        b2,
        eps,
        eps_root,
        amsgrad,
        amsgrad_max=amsgrad_max,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        complex_convention=complex_convention,
    )
    return optimizer_chain(
        "adam",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=decoupled_weight_decay,
        maximize=maximize,
    )


def adamw(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = 1e-2,
    amsgrad: bool = False,
    *,
    eps_root: Any = 0.0,
    amsgrad_max: str = "raw",
    maximize: bool = False,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    nu_dtype: Any = None,
    complex_convention: str = "abs",
):
    """AdamW: Adam with decoupled weight decay, torch.optim.AdamW's semantics and defaults.

    Update rule (t = 1, 2, ...)::

        m_t, v_t, u_t as in adam (no L2 term in the gradient)
        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})
            = p_{t-1} * (1 - lr * weight_decay) - lr * u_t
    {args}
    Conventions: the decay is multiplied by the current (scheduled) learning rate, as in torch and
    ``optax.adamw``; only the default differs (torch 1e-2, Optax 1e-4). ``weight_decay_mask`` is
    Optax's ``mask``.
    {refs}
      Loshchilov, Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. arXiv:1711.05101
    """
    return adam(
        learning_rate,
        b1,
        b2,
        eps,
        weight_decay,
        amsgrad,
        eps_root=eps_root,
        amsgrad_max=amsgrad_max,
        decoupled_weight_decay=True,
        maximize=maximize,
        weight_decay_mask=weight_decay_mask,
        mu_dtype=mu_dtype,
        nu_dtype=nu_dtype,
        complex_convention=complex_convention,
    )


_args = fill_doc(type("_", (), {"__doc__": _ADAM_ARGS}), **COMMON_DOCS).__doc__
fill_doc(adam, args=_args, refs=_ADAM_REFS)
fill_doc(adamw, args=_args, refs=_ADAM_REFS)
fill_doc(adam, **COMMON_DOCS)
