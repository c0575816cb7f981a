"""Adafactor: torch.optim.Adafactor's algorithm, or Optax's, under one name."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree, _view
from .._transform import Transform, as_schedule, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class AdafactorState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    v_row: Any  # factored leaves: row statistics R (others: a (1,) placeholder)
    v_col: Any  # factored leaves: column statistics C (others: a (1,) placeholder)
    v: Any  # unfactored leaves: the full second moment V (others: a (1,) placeholder)
    m: Any = None  # EMA of the updates (momentum only)


def _factored_dims(shape: tuple[int, ...], convention: str, factored: bool, min_size: int):
    """(row axis, column axis) to factor over, or None for the full second moment."""
    if not factored or len(shape) < 2:
        return None
    if convention == "torch":
        return len(shape) - 2, len(shape) - 1
    order = np.argsort(shape)
    if shape[order[-2]] < min_size:
        return None
    return tuple(sorted((int(order[-2]), int(order[-1]))))


def _rms(x: jax.Array) -> jax.Array:
    return jnp.sqrt(jnp.mean(_tree.abs_sq(x)))


@pytree_dataclass
class ScaleByAdafactor(Transform):
    """Adafactor's preconditioner, relative to the learning rate (see ``adafactor``).

    With ``w_t = (t - decay_offset)^beta2_decay`` and, for a factored leaf with row axis r and
    column axis c (V is the full second moment otherwise)::

        R_t = (1 - w_t) R_{t-1} + w_t mean_c(g^2 [+ eps1]);  C_t likewise with mean_r
        Vhat = R_t C_t / max(mean_r(R_t), eps1)       V_t = (1 - w_t) V_{t-1} + w_t (g^2 [+ eps1])
        U = g / sqrt(max(Vhat, eps1^2))   (torch)      U = g / sqrt(Vhat)   (optax; eps1 in g^2)
        Uhat = U / max(1, rms(U) / d)
        out = max(eps2, rms(p)) * Uhat / max(1, lr * sqrt(t))     (torch)
            = max(eps2, rms(p)) * Uhat                            (optax)
        out <- EMA(out, momentum) without debiasing               (momentum only)

    so that ``lr * out`` is torch's ``max(eps2, rms(p)) * min(lr, 1/sqrt(t)) * Uhat``.
    """

    learning_rate: Any = 1e-2
    beta2_decay: Any = -0.8
    eps1: Any = None
    eps2: Any = 1e-3
    d: Any = 1.0
    decay_offset: Any = 0.0
    momentum: Any = None
    convention: str = static_field("torch")
    factored: bool = static_field(True)
    min_dim_size_to_factor: int = static_field(128)
    multiply_by_parameter_scale: bool = static_field(True)

    def __post_init__(self):
        object.__setattr__(self, "learning_rate", as_schedule(self.learning_rate))
        fn = "adafactor"
        _checks.check_choice(fn, "convention", self.convention, ("torch", "optax"))
        _checks.check_range(fn, "beta2_decay", self.beta2_decay, high=0.0)
        _checks.check_nonnegative(fn, "eps1", self.eps1)
        _checks.check_nonnegative(fn, "eps2", self.eps2)
        _checks.check_positive(fn, "d", self.d)
        _checks.check_nonnegative(fn, "decay_offset", self.decay_offset)
        _checks.check_unit_interval(fn, "momentum", self.momentum)

    def _dims(self, p):
        return _factored_dims(
            tuple(jnp.shape(p)), self.convention, self.factored, self.min_dim_size_to_factor
        )

    def _init(self, params):
        _view.check_leafwise("gradtx.adafactor", params, "per-leaf factored statistics")

        def stats(p):
            rd = _tree.real_dtype(jnp.result_type(p))
            dims = self._dims(p)
            one = jnp.zeros((1,), rd)
            if dims is None:
                return one, one, _tree.zeros_like(p, rd)
            r, c = dims
            shape = jnp.shape(p)
            row = jnp.zeros(shape[:c] + shape[c + 1 :], rd)
            col = jnp.zeros(shape[:r] + shape[r + 1 :], rd)
            return row, col, one

        res = jax.tree.map(stats, params)
        row, col, v = _tree.tree_unzip(params, res, 3)
        m = _tree.tree_zeros_like(params) if self.momentum is not None else None
        return AdafactorState(jnp.zeros((), jnp.int32), row, col, v, m)

    def _update(self, updates, state, params, **extra):
        _view.check_leafwise("gradtx.adafactor", updates, "per-leaf factored statistics")
        if params is None:
            raise ValueError(
                f"{self.where()}: Adafactor needs params; call update(grads, state, params)."
            )
        count = _tree.safe_increment(state.count)
        lr = value_at(self.learning_rate, state.count)
        torch_conv = self.convention == "torch"

        def leaf(g, p, row, col, v):
            cd = _tree.compute_dtype(g.dtype, p.dtype, v.dtype)
            rd = _tree.real_dtype(cd)
            gc = g.astype(cd)
            t = count.astype(rd) - _tree.hp(self.decay_offset, rd)
            w = t ** _tree.hp(self.beta2_decay, rd)
            if self.eps1 is None:
                eps1 = jnp.asarray(jnp.finfo(p.dtype).eps if torch_conv else 1e-30, rd)
            else:
                eps1 = _tree.hp(self.eps1, rd)
            g2 = _tree.abs_sq(gc)
            if not torch_conv:
                g2 = g2 + eps1
            dims = self._dims(p)
            one = jnp.zeros((1,), rd)
            if dims is None:
                v_new = (1 - w) * v.astype(rd) + w * g2
                row_new, col_new = row, col
                if torch_conv:
                    u = gc / jnp.sqrt(jnp.maximum(v_new, eps1 * eps1))
                else:
                    u = gc * v_new**-0.5
            else:
                r, c = dims
                row_new = (1 - w) * row.astype(rd) + w * jnp.mean(g2, axis=c)
                col_new = (1 - w) * col.astype(rd) + w * jnp.mean(g2, axis=r)
                r_red = r if r < c else r - 1  # the row axis inside row_new
                row_mean = jnp.mean(row_new, axis=r_red, keepdims=True)
                if torch_conv:
                    vhat = (
                        jnp.expand_dims(row_new, c)
                        * jnp.expand_dims(col_new, r)
                        / jnp.expand_dims(jnp.maximum(row_mean, eps1), c)
                    )
                    u = gc / jnp.sqrt(jnp.maximum(vhat, eps1 * eps1))
                else:
                    row_factor = (row_new / row_mean) ** -0.5
                    col_factor = col_new**-0.5
                    u = gc * jnp.expand_dims(row_factor, c) * jnp.expand_dims(col_factor, r)
                v_new = one
            u = u / jnp.maximum(1.0, _rms(u) / _tree.hp(self.d, rd))
            if self.multiply_by_parameter_scale:
                u = u * jnp.maximum(_tree.hp(self.eps2, rd), _rms(p.astype(cd)))
            if torch_conv:
                u = u / jnp.maximum(1.0, _tree.hp(lr, rd) * jnp.sqrt(count.astype(rd)))
            return (
                u.astype(g.dtype),
                row_new.astype(row.dtype),
                col_new.astype(col.dtype),
                v_new.astype(v.dtype),
            )

        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        res = _tree.batched_map(leaf, updates, params, state.v_row, state.v_col, state.v)
        u, row, col, v = _tree.tree_unzip(updates, res, 4)
        m = None
        if self.momentum is not None:
            b = value_at(self.momentum, state.count)

            def ema(x, mm):
                cd = _tree.compute_dtype(x.dtype, mm.dtype)
                bb = _tree.hp(b, cd)
                new = bb * mm.astype(cd) + (1 - bb) * x.astype(cd)
                return new.astype(x.dtype), new.astype(mm.dtype)

            res = jax.tree.map(ema, u, state.m)
            u, m = _tree.tree_unzip(updates, res, 2)
        return u, AdafactorState(count, row, col, v, m)


def scale_by_adafactor(
    learning_rate: Any = 1e-2,
    beta2_decay: Any = -0.8,
    eps1: Any = None,
    eps2: Any = 1e-3,
    d: Any = 1.0,
    *,
    decay_offset: Any = 0.0,
    momentum: Any = None,
    convention: str = "torch",
    factored: bool = True,
    min_dim_size_to_factor: int = 128,
    multiply_by_parameter_scale: bool = True,
) -> ScaleByAdafactor:
    """Adafactor's preconditioner without the final learning rate (see ``ScaleByAdafactor``)."""
    return ScaleByAdafactor(
        learning_rate,
        beta2_decay,
        eps1,
        eps2,
        d,
        decay_offset,
        momentum,
        convention,
        factored,
        min_dim_size_to_factor,
        multiply_by_parameter_scale,
    )


def adafactor(
    learning_rate: Any = 1e-2,
    beta2_decay: Any = -0.8,
    eps1: Any = None,
    eps2: Any = 1e-3,
    d: Any = 1.0,
    weight_decay: Any = 0.0,
    *,
    convention: str = "torch",
    momentum: Any = None,
    decay_offset: Any = 0.0,
    factored: bool = True,
    min_dim_size_to_factor: int = 128,
    multiply_by_parameter_scale: bool = True,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Adafactor, torch.optim.Adafactor's semantics by default, Optax's with
    ``convention="optax"``.

    torch's ``eps=(eps1, eps2)`` is split into named scalars. Update rule (t = 1, 2, ...;
    ``convention="torch"``)::

        w_t   = t^beta2_decay                      (= 1 - beta2_t; the first step has w = 1)
        rho_t = min(lr, 1 / sqrt(t));   a_t = max(eps2, rms(p_{t-1})) * rho_t
        leaves with >= 2 dims, factored over the LAST TWO axes (leading axes are batch):
          R_t = (1 - w_t) R_{t-1} + w_t mean_{-1}(g_t^2)       (row statistics)
          C_t = (1 - w_t) C_{t-1} + w_t mean_{-2}(g_t^2)       (column statistics)
          Vhat = R_t C_t / max(mean_{-2}(R_t), eps1)
        other leaves: Vhat = V_t = (1 - w_t) V_{t-1} + w_t g_t^2
        U_t   = g_t / sqrt(max(Vhat, eps1^2));   Uhat_t = U_t / max(1, rms(U_t) / d)
        p_t   = p_{t-1} * (1 - lr * weight_decay) - a_t * Uhat_t

    ``convention="optax"`` (``optax.adafactor``) differs in: eps1 (default 1e-30) is added to
    ``g^2`` instead of clamping; a leaf is factored over its two LARGEST axes, and only when the
    smaller of them is >= ``min_dim_size_to_factor``; there is no ``1/sqrt(t)`` cap
    (``rho_t = lr``).

    Args:
      {learning_rate} torch's default is 1e-2. Under the torch convention it is also capped by
        ``1/sqrt(t)`` (relative step).
      beta2_decay: the exponent of the second-moment decay, <= 0 (torch -0.8; Optax's
        ``decay_rate=0.8`` is ``beta2_decay=-0.8``).
      eps1: regulariser of the second moment (None: ``finfo(param dtype).eps`` under torch,
        1e-30 under optax).
      eps2: floor of the parameter scale rms(p), >= 0 (both 1e-3).
      d: clipping threshold of the update's rms, > 0 (Optax's ``clipping_threshold``).
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), multiplied by
        the learning rate (``p <- p * (1 - lr * weight_decay)``) in both conventions. Optax's
        ``weight_decay_rate`` is not multiplied by the learning rate: ``weight_decay_rate=r`` is
        ``weight_decay=r / lr`` for a constant lr.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      convention: ``"torch"`` or ``"optax"`` (see above).
      momentum: None, or the decay in [0, 1) of an EMA of the updates (Optax's ``momentum``, not
        debiased). Optax applies it after the learning rate, gradtx before: they agree for a
        constant learning rate.
      decay_offset: steps subtracted from t in w_t (Optax's ``decay_offset``, for fine-tuning).
      factored: False keeps the full second moment for every leaf.
      min_dim_size_to_factor: optax convention only (Optax's default 128).
      multiply_by_parameter_scale: scale by ``max(eps2, rms(p))`` (both: True).
      {maximize}

    Conventions: ``optax.adafactor(lr)`` is ``adafactor(lr, convention="optax")``.

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018. arXiv:1804.04235
    """
    pre = scale_by_adafactor(
        learning_rate,
        beta2_decay,
        eps1,
        eps2,
        d,
        decay_offset=decay_offset,
        momentum=momentum,
        convention=convention,
        factored=factored,
        min_dim_size_to_factor=min_dim_size_to_factor,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
    )
    return optimizer_chain(
        "adafactor",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(adafactor, **COMMON_DOCS)
