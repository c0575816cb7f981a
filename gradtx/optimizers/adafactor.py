"""Adafactor: Optax's ``adafactor`` and ``scale_by_factored_rms``, and the kernel that
torch.optim.Adafactor's arithmetic (``convention="torch"``) uses too."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import Chain, Transform, field, pytree_dataclass, static_field, value_at
from ..transforms._momentum import ema
from ..transforms._scaling import negate, scale_by_schedule
from ..transforms._weight_decay import add_decayed_weights
from ._common import COMMON_DOCS, fill_doc


class AdafactorState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    # Leaves that a statistic does not apply to hold None (no buffer): with thousands of leaves,
    # every state buffer is one more argument and output per call.
    v_row: Any  # factored leaves: row statistics R (others: None)
    v_col: Any  # factored leaves: column statistics C (others: None)
    v: Any  # unfactored leaves: the full second moment V (others: None)
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


@pytree_dataclass
class ScaleByAdafactor(PerLeaf):
    """Adafactor's preconditioner, relative to the learning rate (see ``adafactor``).

    With ``w_t = (t - decay_offset)^beta2_decay`` (or ``1 - decay_rate_fn(t - 1 - decay_offset,
    -beta2_decay)`` when ``decay_rate_fn`` is given) and, for a factored leaf with row axis r
    and column axis c (V is the full second moment otherwise; R, C and V are kept in at least
    float32)::

        R_t = (1 - w_t) R_{t-1} + w_t mean_c(g^2 [+ eps1]);  C_t likewise with mean_r
        Vhat = R_t C_t / max(mean_r(R_t), eps1)       V_t = (1 - w_t) V_{t-1} + w_t (g^2 [+ eps1])
        U = g / sqrt(max(Vhat, eps1^2))   (torch)      U = g / sqrt(Vhat)   (optax; eps1 in g^2)
        Uhat = U / max(1, rms(U) / d)                            (Uhat = U when d is None)
        out = max(eps2, rms(p)) * Uhat / max(1, lr * sqrt(t))     (torch)
            = max(eps2, rms(p)) * Uhat                            (optax)
        out <- EMA(out, momentum) without debiasing               (momentum only)

    so that ``lr * out`` is torch's ``max(eps2, rms(p)) * min(lr, 1/sqrt(t)) * Uhat``.

    No array of a leaf's size is stored besides the update: each reduction over ``g^2`` reads
    its own copy of ``g``, and ``rms(U)`` of a factored matrix takes the separable form
    ``mean(U^2) = sum_i a_i^2 sum_j g_ij^2 b_j^2 / size`` (``1 / Vhat_ij = a_i^2 b_j^2``) unless
    torch's ``eps1^2`` clamp binds somewhere in the leaf, where it takes ``mean(g^2 / Vhat)``.
    """

    fn_name = "adafactor"
    state_type = AdafactorState
    reads_params = True
    leaf_statistic = "per-leaf factored statistics"

    learning_rate: Any = 1e-2
    beta2_decay: Any = field(-0.8, check=_checks.Interval(high=0.0))
    eps1: Any = field(None, check=_checks.NONNEGATIVE)
    eps2: Any = field(1e-3, check=_checks.NONNEGATIVE)
    d: Any = field(1.0)
    decay_offset: Any = field(0.0, check=_checks.NONNEGATIVE)
    momentum: Any = field(None, check=_checks.UNIT)
    convention: str = static_field("torch", choices=("torch", "optax"))
    factored: bool = static_field(True)
    min_dim_size_to_factor: int = static_field(128)
    multiply_by_parameter_scale: bool = static_field(True)
    decay_rate_fn: Any = static_field(None)

    def __check_init__(self):
        # ``d=None`` turns the clipping off (Optax's ``clipping_threshold=None``).
        if self.d is not None:
            _checks.check_positive(self.fn_name, "d", self.d)

    def _buffers(self) -> tuple[str, ...]:
        return ("v_row", "v_col", "v") + (("m",) if self.momentum is not None else ())

    def _checked(self) -> tuple[str, ...]:
        # v_row, v_col and v hold None for the leaves they do not apply to.
        return ("m",) if self.momentum is not None else ()

    def _dims(self, shape):
        return _factored_dims(
            tuple(shape), self.convention, self.factored, self.min_dim_size_to_factor
        )

    def _init_leaf(self, p):
        # Statistics of g^2 in at least float32: a float16 gradient of 300 squares to 9e4,
        # past float16's largest finite value.
        rd = _tree.compute_dtype(_tree.real_dtype(jnp.result_type(p)))
        shape = jnp.shape(p)
        dims = self._dims(shape)
        if dims is None:
            stats = (None, None, _tree.zeros_like(p, rd))
        else:
            r, c = dims
            row = jnp.zeros(shape[:c] + shape[c + 1 :], rd)
            col = jnp.zeros(shape[:r] + shape[r + 1 :], rd)
            stats = (row, col, None)
        return stats + ((jnp.zeros_like(p),) if self.momentum is not None else ())

    def _scalars(self, count, t):
        s = {"t": t, "lr": value_at(self.learning_rate, count)}
        if self.momentum is not None:
            s["momentum"] = value_at(self.momentum, count)
        return s

    def _leaf(self, s, g, row, col, v, m=None, *, p):
        rule = _Rule(self, s)
        if v is not None:
            u, v = rule.unfactored(jnp.ravel(g), jnp.ravel(p), jnp.ravel(v))
            u, v = u.reshape(g.shape), v.reshape(p.shape)
        else:
            r, c = self._dims(g.shape)
            if g.size == g.shape[r] * g.shape[c]:  # a matrix, up to axes of size 1
                u, row_new, col_new = rule.factored_matrix(
                    *(x.reshape(g.shape[r], g.shape[c]) for x in (g, p)),
                    row.reshape(g.shape[r]),
                    col.reshape(g.shape[c]),
                )
                u = u.reshape(g.shape)
                row, col = row_new.reshape(row.shape), col_new.reshape(col.shape)
            else:
                u, row, col = rule.factored_direct(g, p, row, col, r, c)
        if self.momentum is None:
            return u, row, col, v
        cd = _tree.compute_dtype(u.dtype, m.dtype)
        b = _tree.hp(s.momentum, cd)
        new = b * m.astype(cd) + (1 - b) * u.astype(cd)
        return new.astype(u.dtype), row, col, v, new.astype(m.dtype)


def _real(x, cd):
    """A real factor in the compute dtype (complex for complex leaves: strict promotion)."""
    return x.astype(cd)


class _Rule:
    """Adafactor's arithmetic for one leaf, at one step (``s``: ``t`` and ``lr``)."""

    def __init__(self, tx, s):
        self.tx = tx
        self.count = s.t
        self.lr = s.lr
        self.torch = tx.convention == "torch"

    def _scalars(self, p_dtype, cd):
        tx = self.tx
        rd = _tree.real_dtype(cd)
        t = self.count.astype(rd) - _tree.hp(tx.decay_offset, rd)
        if tx.decay_rate_fn is None:
            w = t ** _tree.hp(tx.beta2_decay, rd)
        else:  # Optax's decay_rate_fn(step, decay_rate): the decay at the 0-based step
            w = 1 - jnp.asarray(tx.decay_rate_fn(t - 1, -_tree.hp(tx.beta2_decay, rd)), rd)
        if tx.eps1 is None:
            eps1 = jnp.asarray(jnp.finfo(p_dtype).eps if self.torch else 1e-30, rd)
        else:
            eps1 = _tree.hp(tx.eps1, rd)
        return rd, w, eps1

    def _scale(self, mean_sq_u, mean_sq_p, rd):
        """The leaf's factor: rms clipping, parameter scale, torch's relative-step cap."""
        tx = self.tx
        if tx.d is None:
            scale = jnp.ones_like(mean_sq_u)
        else:
            scale = 1.0 / jnp.maximum(1.0, jnp.sqrt(mean_sq_u) / _tree.hp(tx.d, rd))
        if mean_sq_p is not None:
            scale = scale * jnp.maximum(_tree.hp(tx.eps2, rd), jnp.sqrt(mean_sq_p))
        if self.torch:
            scale = scale / jnp.maximum(
                1.0, _tree.hp(self.lr, rd) * jnp.sqrt(self.count.astype(rd))
            )
        return scale

    def _mean_sq_p(self, p, cd):
        """The mean of |p|^2 (None: no parameter scale)."""
        if not self.tx.multiply_by_parameter_scale:
            return None
        return jnp.mean(_tree.abs_sq(p.astype(cd)))

    def unfactored(self, g, p, v):
        """One raveled leaf -> (update, new V)."""
        cd = _tree.compute_dtype(g.dtype, p.dtype, v.dtype)
        rd, w, eps1 = self._scalars(p.dtype, cd)

        def moment_and_update(g, v):
            gc = g.astype(cd)
            g2 = _tree.abs_sq(gc)
            if not self.torch:
                g2 = g2 + eps1
            v_new = (1 - w) * v.astype(rd) + w * g2
            if self.torch:
                u = gc / _real(jnp.sqrt(jnp.maximum(v_new, eps1 * eps1)), cd)
            else:
                u = gc * _real(v_new**-0.5, cd)
            return u, v_new

        # The rms of the update reduces its own recomputation of it (a second read of g and V)
        # instead of a stored copy of the update.
        g_a, v_a = jax.lax.optimization_barrier((g, v))
        u_a, _ = moment_and_update(g_a, v_a)
        scale = self._scale(jnp.mean(_tree.abs_sq(u_a)), self._mean_sq_p(p, cd), rd)
        u, v_new = moment_and_update(g, v)
        return (u * _real(scale, cd)).astype(g.dtype), v_new.astype(v.dtype)

    def _new_stats(self, mean_row, mean_col, row, col, w, eps1, rd, r, c):
        """EMAs of the row and column means of g^2, and the mean of the new row statistic."""
        if not self.torch:
            # Optax's mean(g^2 + eps1), with eps1 added to the mean: the same number, without
            # an array of the leaf's size holding g^2 + eps1.
            mean_row, mean_col = mean_row + eps1, mean_col + eps1
        row_new = (1 - w) * row.astype(rd) + w * mean_row
        col_new = (1 - w) * col.astype(rd) + w * mean_col
        r_red = r if r < c else r - 1  # the row axis inside row_new
        return row_new, col_new, jnp.mean(row_new, axis=r_red, keepdims=True)

    def factored_direct(self, g, p, row, col, r, c):
        """One factored leaf of any rank, as written: (update, new R, new C)."""
        cd = _tree.compute_dtype(g.dtype, p.dtype, row.dtype)
        rd, w, eps1 = self._scalars(p.dtype, cd)
        gc = g.astype(cd)
        g2 = _tree.abs_sq(gc)
        row_new, col_new, row_mean = self._new_stats(
            jnp.mean(g2, axis=c), jnp.mean(g2, axis=r), row, col, w, eps1, rd, r, c
        )
        if self.torch:
            vhat = (
                jnp.expand_dims(row_new, c)
                * jnp.expand_dims(col_new, r)
                / jnp.expand_dims(jnp.maximum(row_mean, eps1), c)
            )
            u = gc / _real(jnp.sqrt(jnp.maximum(vhat, eps1 * eps1)), cd)
        else:
            row_factor = (row_new / row_mean) ** -0.5
            col_factor = col_new**-0.5
            u = gc * _real(jnp.expand_dims(row_factor, c) * jnp.expand_dims(col_factor, r), cd)
        scale = self._scale(jnp.mean(_tree.abs_sq(u)), self._mean_sq_p(p, cd), rd)
        return (
            (u * _real(scale, cd)).astype(g.dtype),
            row_new.astype(row.dtype),
            col_new.astype(col.dtype),
        )

    def factored_matrix(self, g, p, row, col):
        """One factored (rows, cols) leaf, in the separable form: (update, new R, new C)."""
        cd = _tree.compute_dtype(g.dtype, p.dtype, row.dtype)
        rd, w, eps1 = self._scalars(p.dtype, cd)
        gc = g.astype(cd)
        g_row, g_col = jax.lax.optimization_barrier((gc, gc))
        g2_row, g2_col = _tree.abs_sq(g_row), _tree.abs_sq(g_col)
        row_new, col_new, row_mean = self._new_stats(
            jnp.mean(g2_row, axis=1), jnp.mean(g2_col, axis=0), row, col, w, eps1, rd, 0, 1
        )
        if self.torch:
            # torch: Vhat = R C / max(mean(R), eps1), U = g / sqrt(max(Vhat, eps1^2)).
            denom = jnp.maximum(row_mean, eps1)
            inv_row = jnp.where(row_new > 0, denom / row_new, 0.0)
            inv_col = jnp.where(col_new > 0, 1.0 / col_new, 0.0)
            # A zero statistic means every g in its row (column) is 0, whose U is 0 either way;
            # for the others the clamp is inactive when the smallest product clears it.
            inf = jnp.asarray(jnp.inf, rd)
            lo_row = jnp.min(jnp.where(row_new > 0, row_new / denom, inf))
            lo_col = jnp.min(jnp.where(col_new > 0, col_new, inf))
            separable = lo_row * lo_col >= eps1 * eps1
            cap = 1.0 / (eps1 * eps1)
        else:
            # optax: U = g (R / mean(R))^-1/2 C^-1/2, separable as it stands.
            inv_row, inv_col = row_mean / row_new, 1.0 / col_new
            separable, cap = None, None

        def inv_vhat():
            """1 / max(Vhat, eps1^2) (torch) or 1 / Vhat (optax), of the leaf's shape."""
            prod = inv_row[:, None] * inv_col[None, :]
            return prod if cap is None else jnp.minimum(prod, cap)

        def separable_form(g):
            g2 = _tree.abs_sq(g)
            return jnp.sum(inv_row * jnp.sum(g2 * inv_col[None, :], axis=1)) / g.size

        def clamped_form(g):
            return jnp.mean(_tree.abs_sq(g) * inv_vhat())

        # Its own copy of g: the statistics' reductions do not share a stored g^2 with it.
        g_u = jax.lax.optimization_barrier(gc)
        if separable is None:
            mean_sq_u = separable_form(g_u)
        else:
            mean_sq_u = jax.lax.cond(separable, separable_form, clamped_form, g_u)
        scale = self._scale(mean_sq_u, self._mean_sq_p(p, cd), rd)
        if cap is None:  # optax: g * (R / mean(R))^-1/2 * C^-1/2, as Optax computes it
            pre = jnp.sqrt(inv_row)[:, None] * jnp.sqrt(inv_col)[None, :]
        else:
            pre = jnp.sqrt(inv_vhat())
        u = gc * _real(pre * scale, cd)
        return u.astype(g.dtype), row_new.astype(row.dtype), col_new.astype(col.dtype)


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
    """Adafactor's preconditioner without the final learning rate (see ``ScaleByAdafactor``),
    torch.optim.Adafactor's arithmetic by default (``convention="torch"``)."""
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


def _decay_rate_pow(i: Any, exponent: Any = 0.8) -> jax.Array:
    """Adafactor's second-moment decay at the 0-based step ``i``: ``1 - (i + 1)^-exponent``."""
    t = jnp.asarray(i + 1, jnp.float32)
    return 1.0 - t ** (-exponent)


def _check_factored(fn: str, decay_rate: Any, offset_name: str, offset: Any, eps_name: str,
                    eps: Any, min_dim_size_to_factor: Any) -> None:  # fmt: skip
    """The kernel's declared ranges, reported under ``fn``'s argument names."""
    _checks.check_nonnegative(fn, "decay_rate", decay_rate)
    _checks.check_nonnegative(fn, offset_name, offset)
    _checks.check_nonnegative(fn, eps_name, eps)
    _checks.COUNT(fn, "min_dim_size_to_factor", min_dim_size_to_factor)


def _negated(decay_rate: Any) -> Any:
    """``-decay_rate``, the kernel's exponent ``beta2_decay`` (a number or an array)."""
    return -decay_rate if isinstance(decay_rate, (int, float)) else -jnp.asarray(decay_rate)


def scale_by_factored_rms(
    factored: bool = True,
    decay_rate: Any = 0.8,
    step_offset: Any = 0,
    min_dim_size_to_factor: int = 128,
    epsilon: Any = 1e-30,
    decay_rate_fn: Any = _decay_rate_pow,
) -> ScaleByAdafactor:
    """Divides the updates by a factored estimate of their root mean square (Adafactor's core).

    With ``w_t = 1 - decay_rate_fn(t - 1 - step_offset, decay_rate)`` (by default
    ``(t - step_offset)^-decay_rate``), per leaf::

        factored leaf (its two largest axes r, c, the smaller of size >= min_dim_size_to_factor):
          R_t = (1 - w_t) R_{t-1} + w_t mean_c(|g_t|^2 + epsilon);  C_t likewise with mean_r
          u_t = g_t * (R_t / mean_r(R_t))^-1/2 * C_t^-1/2      (R along r, C along c)
        other leaves:
          V_t = (1 - w_t) V_{t-1} + w_t (|g_t|^2 + epsilon);  u_t = g_t * V_t^-1/2

    Needs ``params`` (for the shapes).

    Args:
      factored: False keeps the full second moment for every leaf.
      decay_rate: the decay exponent, >= 0 (0.8).
      step_offset: steps subtracted from the count, >= 0 (to restart the decay when
        fine-tuning).
      min_dim_size_to_factor: factor a leaf only when its second-largest axis has at least this
        size, >= 1 (128).
      epsilon: added to ``|g|^2``, >= 0 (1e-30).
      decay_rate_fn: ``(step, decay_rate) -> beta2`` at the 0-based step (default
        ``1 - (step + 1)^-decay_rate``); a custom function is held static.

    Conventions: ``optax.scale_by_factored_rms``: same signature, defaults and numbers; the state
    keeps no placeholder buffers (a leaf's statistics that do not apply are None).
    torch.optim.Adafactor factors the last two axes and clamps instead of adding epsilon
    (``scale_by_adafactor(convention="torch")``).

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018. arXiv:1804.04235
    """
    fn = "scale_by_factored_rms"
    _check_factored(fn, decay_rate, "step_offset", step_offset, "epsilon", epsilon,
                    min_dim_size_to_factor)  # fmt: skip
    return ScaleByAdafactor(
        1.0,
        _negated(decay_rate),
        epsilon,
        d=None,
        decay_offset=step_offset,
        convention="optax",
        factored=factored,
        min_dim_size_to_factor=min_dim_size_to_factor,
        multiply_by_parameter_scale=False,
        decay_rate_fn=None if decay_rate_fn is _decay_rate_pow else decay_rate_fn,
    )


def adafactor(
    learning_rate: Any = None,
    min_dim_size_to_factor: int = 128,
    decay_rate: Any = 0.8,
    decay_offset: Any = 0,
    multiply_by_parameter_scale: bool = True,
    clipping_threshold: Any = 1.0,
    momentum: Any = None,
    dtype_momentum: Any = jnp.float32,
    weight_decay_rate: Any = None,
    eps: Any = 1e-30,
    factored: bool = True,
    weight_decay_mask: Any = None,
    *,
    convention: str = "optax",
    eps2: Any = 1e-3,
    weight_decay: Any = None,
    maximize: bool = False,
):
    """Adafactor, Optax's signature, defaults and arithmetic (torch's with ``convention``).

    Update rule (t = 1, 2, ...; ``w_t = (t - decay_offset)^-decay_rate``)::

        leaves factored over their two largest axes r, c (the smaller >= min_dim_size_to_factor):
          R_t = (1 - w_t) R_{t-1} + w_t mean_c(g_t^2 + eps);  C_t likewise with mean_r
          U_t = g_t * (R_t / mean_r(R_t))^-1/2 * C_t^-1/2
        other leaves:
          V_t = (1 - w_t) V_{t-1} + w_t (g_t^2 + eps);  U_t = g_t * V_t^-1/2
        Uhat_t = U_t / max(1, rms(U_t) / clipping_threshold)       (per leaf; None: no clip)
        a_t    = lr_t * (max(eps2, rms(p_{t-1})) * Uhat_t + weight_decay * p_{t-1})
                 (lr_t = 1 when learning_rate is None; the rms factor only with
                 multiply_by_parameter_scale)
        m_t    = momentum * m_{t-1} + (1 - momentum) * a_t          (with momentum; m_0 = 0)
        p_t    = p_{t-1} - (m_t or a_t) - weight_decay_rate * p_{t-1}

    ``convention="torch"`` takes torch.optim.Adafactor's preconditioner instead: each leaf of two
    or more axes is factored over its last two, eps (None: the dtype's machine epsilon) clamps
    ``Vhat = R C / max(mean(R), eps)`` from below at ``eps^2`` instead of being added to
    ``g^2``, and the step is capped by ``1 / sqrt(t)``: ``lr_t * max(eps2, rms(p)) * Uhat_t /
    max(1, lr_t * sqrt(t))``.

    Args:
      learning_rate: a float >= 0, an array or a schedule; None multiplies by nothing (Adafactor
        without an external rate).
      min_dim_size_to_factor: see the formula, >= 1 (Optax convention only).
      decay_rate: the exponent of the second-moment decay, >= 0 (float or array).
      decay_offset: steps subtracted from t in ``w_t``, >= 0 (for fine-tuning).
      multiply_by_parameter_scale: scale by ``max(eps2, rms(p))``.
      clipping_threshold: the largest rms of an update, > 0, or None for no clipping.
      momentum: None, or the decay in [0, 1) of a moving average of the steps (not debiased),
        taken after the learning rate.
      dtype_momentum: dtype of the momentum buffer (float32).
      weight_decay_rate: None, or a decoupled decay >= 0 (float, array or schedule) not
        multiplied by the learning rate.
      eps: regulariser of the second moment, >= 0 (None with ``convention="torch"``: the
        parameter dtype's machine epsilon).
      factored: False keeps the full second moment for every leaf.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one, for ``weight_decay_rate`` and ``weight_decay``. None decays every leaf.
      convention: ``"optax"`` or ``"torch"`` (see above).
      eps2: floor of the parameter scale ``rms(p)``, >= 0 (1e-3 in both).
      weight_decay: a decoupled decay >= 0 (float, array or schedule) multiplied by the
        learning rate, torch's (0: none).
      {maximize}

    Conventions: ``optax.adafactor``: same signature, defaults and numbers; ``convention``,
    ``eps2``, ``weight_decay`` and ``maximize`` are gradtx's additions. torch.optim.Adafactor's
    step is ``adafactor(lr, decay_rate=0.8, eps=None, multiply_by_parameter_scale=True,
    convention="torch")`` without its weight decay; ``gradtx.torch.adafactor`` takes torch's
    names and defaults (lr 1e-2) and its decay ``p <- p * (1 - lr * weight_decay)``.

    References:
      Shazeer, Stern, "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost", ICML
      2018. arXiv:1804.04235
    """
    fn = "adafactor"
    _check_factored(fn, decay_rate, "decay_offset", decay_offset, "eps", eps,
                    min_dim_size_to_factor)  # fmt: skip
    _checks.check_nonnegative(fn, "learning_rate", learning_rate)
    if clipping_threshold is not None:
        _checks.check_positive(fn, "clipping_threshold", clipping_threshold)
    if momentum is not None:
        _checks.check_unit_interval(fn, "momentum", momentum)
    _checks.check_nonnegative(fn, "weight_decay_rate", weight_decay_rate)
    _checks.check_nonnegative(fn, "weight_decay", weight_decay)
    kernel = ScaleByAdafactor(
        1.0 if learning_rate is None else learning_rate,  # the torch convention's 1/sqrt(t) cap
        _negated(decay_rate),
        eps,
        eps2,
        clipping_threshold,
        decay_offset=decay_offset,
        convention=convention,
        factored=factored,
        min_dim_size_to_factor=min_dim_size_to_factor,
        multiply_by_parameter_scale=multiply_by_parameter_scale,
    )
    parts: list[Transform] = [negate()] if maximize else []
    parts.append(kernel)
    if weight_decay is not None:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    if learning_rate is not None:
        parts.append(scale_by_schedule(learning_rate))
    if momentum is not None:
        parts.append(ema(momentum, debias=False, accumulator_dtype=dtype_momentum))
    if weight_decay_rate is not None:
        parts.append(add_decayed_weights(weight_decay_rate, weight_decay_mask))
    parts.append(negate())
    return Chain(tuple(parts))


fill_doc(adafactor, **COMMON_DOCS)
