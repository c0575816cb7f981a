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
from ._common import COMMON_DOCS, _has_decay, fill_doc


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
    """

    # Its own init and update (the base gives the stacking axes only): unfactored leaves of one
    # size are updated together, and one switch picks the form of every factored leaf's rms.
    fn_name = "adafactor"
    state_type = AdafactorState
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

    def _dims(self, p, b: int = 0):
        """Factored (row, column) axes of ``p`` whose first ``b`` axes index stacked leaves."""
        dims = _factored_dims(
            tuple(jnp.shape(p))[b:], self.convention, self.factored, self.min_dim_size_to_factor
        )
        return None if dims is None else (dims[0] + b, dims[1] + b)

    def _init(self, params):
        leaves, treedef = jax.tree.flatten(params)
        b_l = self._stack_axes(params)

        def stats(p, b):
            # Statistics of g^2 in at least float32: a float16 gradient of 300 squares to 9e4,
            # past float16's largest finite value.
            rd = _tree.compute_dtype(_tree.real_dtype(jnp.result_type(p)))
            dims = self._dims(p, b)
            if dims is None:
                return None, None, _tree.zeros_like(p, rd)
            r, c = dims
            shape = jnp.shape(p)
            row = jnp.zeros(shape[:c] + shape[c + 1 :], rd)
            col = jnp.zeros(shape[:r] + shape[r + 1 :], rd)
            return row, col, None

        res = treedef.unflatten([stats(p, b) for p, b in zip(leaves, b_l)])
        row, col, v = _tree.tree_unzip(params, res, 3)
        m = _tree.tree_zeros_like(params) if self.momentum is not None else None
        return AdafactorState(jnp.zeros((), jnp.int32), row, col, v, m)

    def _update(self, updates, state, params, **extra):
        b_l = self._stack_axes(updates)
        if any(b_l):
            return self._update_stacked(b_l, updates, state, params, **extra)
        return self._update_leaves(b_l, updates, state, params, **extra)

    def _update_leaves(self, b_l, updates, state, params, **extra):
        if params is None:
            raise ValueError(
                f"{self.where()}: Adafactor needs params; call update(grads, state, params)."
            )
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        count = _tree.safe_increment(state.count)
        lr = value_at(self.learning_rate, state.count)
        treedef = jax.tree.structure(updates)
        g_l = treedef.flatten_up_to(updates)
        p_l = treedef.flatten_up_to(params)
        row_l = treedef.flatten_up_to(state.v_row)
        col_l = treedef.flatten_up_to(state.v_col)
        v_l = treedef.flatten_up_to(state.v)
        n = len(g_l)
        out_u: list[Any] = [None] * n
        out_row, out_col, out_v = list(row_l), list(col_l), list(v_l)

        rule = _Rule(self, count, lr)
        fac, unf = [], []  # (index, (row axis, column axis)) / index
        for i in range(n):
            dims = self._dims(p_l[i], b_l[i])
            if dims is None and b_l[i]:
                # A stack of unfactored leaves: one (k, n) array already.
                k = jnp.shape(g_l[i])[0]
                u, v_new = rule.unfactored(*(x[i].reshape(k, -1) for x in (g_l, p_l, v_l)))
                out_u[i] = u.reshape(jnp.shape(g_l[i]))
                out_v[i] = v_new.reshape(jnp.shape(v_l[i]))
            elif dims is None:
                unf.append(i)
            else:
                fac.append((i, dims))

        # Unfactored leaves: the full second moment, by groups of leaves of one size.
        for idx in _groups(unf, (g_l, p_l, v_l), lambda i: jnp.size(g_l[i])):
            g, p, v = (_stack([x[i] for i in idx]) for x in (g_l, p_l, v_l))
            u, v_new = rule.unfactored(g, p, v)
            if len(idx) == 1:
                u, v_new = u[None], v_new[None]
            for k, i in enumerate(idx):
                out_u[i] = u[k].reshape(jnp.shape(g_l[i]))
                out_v[i] = v_new[k].reshape(jnp.shape(v_l[i]))

        # Factored leaves, one by one (stacking equal shapes compiles faster but XLA:CPU's
        # reductions over a stacked (k, rows, cols) array ran 3-6x slower than over each leaf).
        # A leaf whose other axes all have size 1 runs as a (rows, cols) matrix in three phases,
        # so that the rms of every update can take its separable form under one switch (see
        # _Rule); a leaf with batch axes (a 3x3 convolution kernel, stacked layers) runs the
        # direct form.
        # Stacked leaves run the same forms with a leading batch axis.
        mats, stats = [], []
        for i, (r, c) in fac:
            shape, b = jnp.shape(p_l[i]), b_l[i]
            if int(np.prod(shape[b:])) != shape[r] * shape[c]:
                u, out_row[i], out_col[i] = rule.factored_direct(
                    g_l[i], p_l[i], row_l[i], col_l[i], r, c, b
                )
                out_u[i] = u
                continue
            mat = (*shape[:b], shape[r], shape[c])
            g, p = g_l[i].reshape(mat), p_l[i].reshape(mat)
            row, col = row_l[i].reshape(mat[:-1]), col_l[i].reshape(mat[:-2] + mat[-1:])
            mats.append((i, g))
            stats.append(rule.factored_stats(g, p, row, col, b, b + 1))
        if mats:
            mean_sq_u = rule.factored_mean_sq_u([g for _, g in mats], stats)
            for (i, g), st, msu in zip(mats, stats, mean_sq_u):
                out_u[i] = rule.factored_out(g, st, msu).reshape(jnp.shape(g_l[i]))
                out_row[i] = st.row.astype(row_l[i].dtype).reshape(jnp.shape(row_l[i]))
                out_col[i] = st.col.astype(col_l[i].dtype).reshape(jnp.shape(col_l[i]))

        u = treedef.unflatten(out_u)
        row = treedef.unflatten(out_row)
        col = treedef.unflatten(out_col)
        v = treedef.unflatten(out_v)
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

    def _update_stacked(self, b_l, updates, state, params, **extra):
        """Stacks of one leaf run as that leaf (XLA:CPU's reductions ran several times slower
        with a leading axis of size one); the others keep their stacking axis."""
        treedef = jax.tree.structure(updates)
        ones = [
            b == 1 and jnp.shape(g)[0] == 1 for b, g in zip(b_l, treedef.flatten_up_to(updates))
        ]

        def on_ones(tree, fn):
            if tree is None:
                return None
            xs = treedef.flatten_up_to(tree)
            return treedef.unflatten(
                [fn(x) if o and x is not None else x for x, o in zip(xs, ones)]
            )

        def squeeze(tree):
            return on_ones(tree, lambda x: x[0])

        def expand(tree):
            return on_ones(tree, lambda x: x[None])

        stats = ("v_row", "v_col", "v", "m")
        inner_b = [0 if o else b for b, o in zip(b_l, ones)]
        st = state._replace(**{f: squeeze(getattr(state, f)) for f in stats})
        u, new = self._update_leaves(
            inner_b, squeeze(updates), st, None if params is None else squeeze(params), **extra
        )
        return expand(u), new._replace(**{f: expand(getattr(new, f)) for f in stats})


# Unfactored leaves up to this many elements are stacked with others of the same size and dtypes
# and updated as one (k, n) array; larger ones run alone. Groups hold at most _GROUP_LEAVES
# leaves and _GROUP_ELEMENTS elements.
_STACK_MAX_SIZE = 1 << 16
_GROUP_LEAVES = 64
_GROUP_ELEMENTS = 1 << 20


def _groups(indices, arrays, key_of):
    """Indices of leaves to update together: same key and dtypes, small enough to stack."""
    by_key: dict[Any, list[int]] = {}
    order = []
    for i in indices:
        size = int(jnp.size(arrays[0][i]))
        if size > _STACK_MAX_SIZE:
            order.append([i])
            continue
        k = (key_of(i), tuple(jnp.result_type(a[i]) for a in arrays))
        if k not in by_key:
            by_key[k] = []
            order.append(by_key[k])
        by_key[k].append(i)
    out = []
    for idx in order:
        size = max(1, int(jnp.size(arrays[0][idx[0]])))
        step = max(1, min(_GROUP_LEAVES, _GROUP_ELEMENTS // size))
        out.extend(idx[k : k + step] for k in range(0, len(idx), step))
    return out


def _stack(xs):
    """Raveled leaves stacked along a new leading axis; one leaf is only raveled (XLA:CPU's
    reductions ran several times slower over a (1, n) array than over (n,))."""
    xs = [jnp.ravel(x) for x in xs]
    return xs[0] if len(xs) == 1 else jnp.stack(xs)


def _real(x, cd):
    """A real factor in the compute dtype (complex for complex leaves: strict promotion)."""
    return x.astype(cd)


class _FactoredStats(NamedTuple):
    row: jax.Array  # new row statistics
    col: jax.Array  # new column statistics
    inv_row: jax.Array  # a^2: the row factor of 1 / Vhat (0 where the row statistic is 0)
    inv_col: jax.Array  # b^2: the column factor of 1 / Vhat (0 where the column statistic is 0)
    separable: jax.Array  # scalar bool: 1 / Vhat = a^2 b^2 everywhere (no eps1^2 clamp)
    mean_sq_p: Any  # mean of |p|^2 (None without the parameter scale)
    cap: Any  # torch: 1 / eps1^2, the largest 1 / Vhat (optax: None)
    r: int  # row axis
    c: int  # column axis


class _Rule:
    """Adafactor's arithmetic: factored leaves one by one, unfactored ones stacked (k, n).

    Factored leaves never build an array of the leaf's size other than the update itself: with
    ``1 / Vhat_ij = a_i^2 b_j^2``, ``mean(U^2) = sum_i a_i^2 sum_j g_ij^2 b_j^2 / size`` is a
    row-wise reduction, and the row and column statistics each reduce their own copy of ``g^2``
    (one array read twice) instead of a shared ``g^2`` that XLA:CPU would store. Measured on one
    4096 x 4096 leaf (2-core CPU, donated update-and-apply step): 53 ms -> 15 ms.
    """

    def __init__(self, tx, count, lr):
        self.tx = tx
        self.count = count
        self.lr = lr
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
        """Per-leaf factor: rms clipping, parameter scale, torch's relative-step cap."""
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

    def _mean_sq_p(self, p, cd, axes):
        """Per-leaf mean of |p|^2 over ``axes``, kept as size-1 axes (None: no parameter scale)."""
        if not self.tx.multiply_by_parameter_scale:
            return None
        return jnp.mean(_tree.abs_sq(p.astype(cd)), axis=axes, keepdims=True)

    def unfactored(self, g, p, v):
        """(k, n) stacks of raveled leaves, or one raveled leaf (n,) -> (update, new V)."""
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
        mean_sq_u = jnp.mean(_tree.abs_sq(u_a), axis=-1, keepdims=True)
        mean_sq_p = self._mean_sq_p(p, cd, -1)
        scale = self._scale(mean_sq_u, mean_sq_p, rd)
        u, v_new = moment_and_update(g, v)
        return (u * _real(scale, cd)).astype(g.dtype), v_new.astype(v.dtype)

    def _new_stats(self, mean_row, mean_col, row, col, w, eps1, rd, r, c):
        """EMAs of the row and column means of g^2, and the mean of the new row statistic."""
        if not self.torch:
            # Optax's mean(g^2 + eps1), with eps1 added after the mean: inside it, XLA:CPU
            # would write eps1 out as an array of the leaf's size for its reduction kernel.
            mean_row, mean_col = mean_row + eps1, mean_col + eps1
        row_new = (1 - w) * row.astype(rd) + w * mean_row
        col_new = (1 - w) * col.astype(rd) + w * mean_col
        r_red = r if r < c else r - 1  # the row axis inside row_new
        return row_new, col_new, jnp.mean(row_new, axis=r_red, keepdims=True)

    def factored_direct(self, g, p, row, col, r, c, b=0):
        """One factored leaf of any rank, as written: (update, new R, new C). The first ``b``
        axes index stacked leaves (each has its own rms)."""
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
        red = tuple(range(b, g.ndim))  # one leaf's axes
        mean_sq_u = jnp.mean(_tree.abs_sq(u), axis=red, keepdims=True)
        scale = self._scale(mean_sq_u, self._mean_sq_p(p, cd, red), rd)
        return (
            (u * _real(scale, cd)).astype(g.dtype),
            row_new.astype(row.dtype),
            col_new.astype(col.dtype),
        )

    def factored_stats(self, g, p, row, col, r, c):
        cd = _tree.compute_dtype(g.dtype, p.dtype, row.dtype)
        rd, w, eps1 = self._scalars(p.dtype, cd)
        gc = g.astype(cd)
        g_row, g_col = jax.lax.optimization_barrier((gc, gc))
        g2_row, g2_col = _tree.abs_sq(g_row), _tree.abs_sq(g_col)
        row_new, col_new, row_mean = self._new_stats(
            jnp.mean(g2_row, axis=c), jnp.mean(g2_col, axis=r), row, col, w, eps1, rd, r, c
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
            inv_row = row_mean / row_new
            inv_col = 1.0 / col_new
            separable = jnp.asarray(True)
            cap = None
        mean_sq_p = self._mean_sq_p(p, cd, (r, c))
        return _FactoredStats(row_new, col_new, inv_row, inv_col, separable, mean_sq_p, cap, r, c)

    def factored_mean_sq_u(self, gs, stats):
        """mean(U^2) of every factored leaf; the exact clamped form if any leaf needs it."""

        def separable_form(gs):
            out = []
            for g, st in zip(gs, stats):
                g2 = _tree.abs_sq(g.astype(_tree.compute_dtype(g.dtype, st.row.dtype)))
                inner = jnp.sum(g2 * jnp.expand_dims(st.inv_col, st.r), axis=st.c)
                total = jnp.sum(st.inv_row * inner, axis=-1)[..., None, None]
                out.append(total / (g.shape[st.r] * g.shape[st.c]))
            return out

        def clamped_form(gs):
            return [
                jnp.mean(
                    _tree.abs_sq(g.astype(_tree.compute_dtype(g.dtype, st.row.dtype)))
                    * self._inv_vhat(st),
                    axis=(st.r, st.c),
                    keepdims=True,
                )
                for g, st in zip(gs, stats)
            ]

        # Own copies of g: XLA would otherwise share one g^2 between these reductions and the
        # statistics' ones, and store it.
        gs = jax.lax.optimization_barrier(list(gs))
        if not self.torch:
            return separable_form(gs)
        ok = jnp.all(jnp.stack([st.separable for st in stats]))
        return jax.lax.cond(ok, separable_form, clamped_form, gs)

    @staticmethod
    def _inv_vhat(st):
        """1 / max(Vhat, eps1^2) (torch) or 1 / Vhat (optax), broadcast to the leaf's shape."""
        prod = jnp.expand_dims(st.inv_row, st.c) * jnp.expand_dims(st.inv_col, st.r)
        return prod if st.cap is None else jnp.minimum(prod, st.cap)

    def factored_out(self, g, st, mean_sq_u):
        rd = st.row.dtype
        cd = _tree.compute_dtype(g.dtype, rd)
        scale = self._scale(mean_sq_u, st.mean_sq_p, rd)
        if st.cap is None:  # optax: g * (R / mean(R))^-1/2 * C^-1/2, as Optax computes it
            pre = jnp.expand_dims(jnp.sqrt(st.inv_row), st.c) * jnp.expand_dims(
                jnp.sqrt(st.inv_col), st.r
            )
        else:
            pre = jnp.sqrt(self._inv_vhat(st))
        u = g.astype(cd) * _real(pre * scale, cd)
        return u.astype(g.dtype)


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
    weight_decay: Any = 0.0,
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
    if _has_decay(weight_decay):
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
