"""Kron: PSGD with a Kronecker-factored whitening preconditioner."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


def _default_prob(count: Any) -> jax.Array:
    """``precond_update_prob_schedule()`` at ``count``, without building the schedule."""
    n = jnp.asarray(count).astype(jnp.float32)
    return jnp.clip(jnp.exp(-0.001 * (n - 250.0)), 0.03, 1.0)


class KronState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # momentum m (None with b1=None)
    Q: Any  # per leaf, a tuple of Kronecker factors: (n, n) upper-triangular or (n,) diagonal


def _factor_kinds(
    shape: tuple[int, ...], max_size: int, min_ndim: int, memory_save_mode: str | None
) -> list[bool]:
    """For each axis of a leaf, True where its factor is a triangular matrix."""
    d = len(shape)
    diag = [False] * d
    if memory_save_mode == "one_diag" and d:
        largest = max(shape)
        diag[max(i for i, n in enumerate(shape) if n == largest)] = True
    elif memory_save_mode == "all_diag":
        diag = [True] * d
    return [not (diag[i] or n == 1 or n > max_size or d < min_ndim) for i, n in enumerate(shape)]


def _mode(x: jax.Array, i: int, m: jax.Array) -> jax.Array:
    """``x x_i m``: the matrix ``m`` (n x n) applied along axis ``i`` of ``x``."""
    return jnp.moveaxis(jnp.tensordot(m, x, axes=([1], [i])), 0, i)


def _along(q: jax.Array, i: int, ndim: int) -> jax.Array:
    """A diagonal factor ``q`` shaped to broadcast along axis ``i``."""
    shape = [1] * ndim
    shape[i] = -1
    return q.reshape(shape)


def _mode_inv_t(x: jax.Array, i: int, q: jax.Array) -> jax.Array:
    """``x x_i q^{-T}`` for an upper-triangular ``q`` (a triangular solve, not an inverse)."""
    xi = jnp.moveaxis(x, i, 0)
    shape = xi.shape
    y = jax.scipy.linalg.solve_triangular(q, xi.reshape(shape[0], -1), trans=1, lower=False)
    return jnp.moveaxis(y.reshape(shape), 0, i)


def _gram(x: jax.Array, i: int) -> jax.Array:
    """``X_(i) X_(i)^T`` for the mode-``i`` unfolding ``X_(i)`` (n_i x rest)."""
    xi = jnp.moveaxis(x, i, 0).reshape(x.shape[i], -1)
    return xi @ xi.T


def _gram_diag(x: jax.Array, i: int) -> jax.Array:
    """The diagonal of ``X_(i) X_(i)^T``: sums of squares over every axis but ``i``."""
    return jnp.sum(x * x, axis=tuple(j for j in range(x.ndim) if j != i))


@jax.custom_jvp
def _max_abs(x: jax.Array) -> jax.Array:
    """``max |x|``, whose derivative is taken at one maximiser (the first, ``argmax``).

    JAX's own rule divides among the elements equal to the maximum, and XLA may round ``x``
    differently where it recomputes it for that comparison: no element matches and the
    derivative is 0 / 0."""
    return jnp.max(jnp.abs(x))


@_max_abs.defjvp
def _max_abs_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    a = jnp.abs(x).ravel()
    i = jnp.argmax(a)
    return a[i], jnp.sign(x.ravel()[i]) * dx.ravel()[i]


def _norm_lower_bound(m: jax.Array) -> jax.Array:
    """A lower bound of the spectral norm of a symmetric matrix: ``||M x|| / ||x||`` with ``x``
    the column of ``M`` of largest norm (computed on ``M / max|M|`` against overflow)."""
    s = _max_abs(m)
    mn = m / jnp.where(s > 0, s, 1)
    j = jnp.argmax(jnp.sum(mn * mn, axis=0))
    x = jax.lax.dynamic_index_in_dim(mn, j, axis=1, keepdims=False)
    nx = jnp.linalg.norm(x)
    est = jnp.linalg.norm(mn @ x) / jnp.where(nx > 0, nx, 1)
    return jnp.where(s > 0, s * est, 0)


def _precondition(factors: tuple[jax.Array, ...], x: jax.Array) -> jax.Array:
    """``x x_1 (Q_1^T Q_1) ... x_d (Q_d^T Q_d)`` (diagonal factors: ``q^2`` along their axis)."""
    if x.ndim == 0:
        return factors[0] * factors[0] * x
    for i, q in enumerate(factors):
        x = _mode(_mode(x, i, q), i, q.T) if q.ndim == 2 else x * _along(q * q, i, x.ndim)
    return x


def _update_factors(
    factors: tuple[jax.Array, ...], g: jax.Array, v: jax.Array, lr: jax.Array
) -> tuple[jax.Array, ...]:
    """One step of the whitening fit ``Q^T Q ~ (E[g g^T])^(-1/2)`` from ``g`` and ``v ~ N(0, I)``."""
    tiny = jnp.finfo(g.dtype).tiny
    if g.ndim == 0:
        (q,) = factors
        a, b = q * g, v / q
        t1, t2 = a * a, b * b
        return (q - lr * (t1 - t2) / (jnp.abs(t1 + t2) + tiny) * q,)
    if len(factors) > 1:
        # Rescale the factors to equal max-abs (their product, the preconditioner, unchanged).
        norms = jnp.stack([_max_abs(q) for q in factors])
        gmean = jnp.exp(jnp.mean(jnp.log(norms)))
        factors = tuple(q * (gmean / n) for q, n in zip(factors, norms))
    a, b = g, v
    for i, q in enumerate(factors):
        if q.ndim == 2:
            a, b = _mode(a, i, q), _mode_inv_t(b, i, q)
        else:
            a, b = a * _along(q, i, g.ndim), b / _along(q, i, g.ndim)
    out = []
    for i, q in enumerate(factors):
        if q.ndim == 2:
            t1, t2 = _gram(a, i), _gram(b, i)
            step = jnp.triu(t1 - t2) / (_norm_lower_bound(t1 + t2) + tiny)
            out.append(q - lr * step @ q)
        else:
            t1, t2 = _gram_diag(a, i), _gram_diag(b, i)
            out.append(q - lr * (t1 - t2) / (_max_abs(t1 + t2) + tiny) * q)
    return tuple(out)


@pytree_dataclass
class ScaleByKron(Transform):
    """Kron's preconditioned direction (no learning rate); see ``kron`` for the rule."""

    fn_name = "kron"

    b1: Any = field(0.9, check=_checks.UNIT)
    preconditioner_update_probability: Any = field(None, check=_checks.CLOSED_UNIT)
    preconditioner_lr: Any = field(0.1, check=_checks.Interval(0.0, 1.0, low_open=True))
    preconditioner_init_scale: Any = field(1.0, check=_checks.POSITIVE)
    max_size_triangular: int = static_field(8192, check=_checks.Interval(0, integer=True))
    min_ndim_triangular: int = static_field(2, check=_checks.Interval(0, integer=True))
    memory_save_mode: str | None = static_field(None, choices=(None, "one_diag", "all_diag"))
    mu_dtype: Any = static_field(None)
    precond_dtype: Any = static_field(None)
    seed: int = static_field(0)

    def _q_dtype(self, p):
        return jnp.dtype(self.precond_dtype or _tree.compute_dtype(p.dtype))

    def _init(self, params):
        leaves, treedef = jax.tree.flatten(params)
        qs = []
        for p in leaves:
            if jnp.iscomplexobj(p):
                raise TypeError("gradtx.kron: complex parameters are not supported")
            dt = self._q_dtype(p)
            shape = jnp.shape(p)
            if not shape:
                qs.append((jnp.asarray(self.preconditioner_init_scale, dt),))
                continue
            scale = jnp.asarray(self.preconditioner_init_scale, dt) ** (1.0 / len(shape))
            kinds = _factor_kinds(
                shape, self.max_size_triangular, self.min_ndim_triangular, self.memory_save_mode
            )
            # A factor shaped like its parameter (a vector's diagonal, a square matrix's
            # factor) takes the parameter's sharding, as every parameter-shaped buffer does.
            qs.append(
                tuple(
                    _tree._constrain_like(
                        scale * (jnp.eye(n, dtype=dt) if tri else jnp.ones((n,), dt)), p
                    )
                    for n, tri in zip(shape, kinds)
                )
            )
        mu = None if self.b1 is None else _tree.tree_zeros_like(params, self.mu_dtype)
        return KronState(jnp.zeros((), jnp.int32), mu, treedef.unflatten(qs))

    def _update(self, updates, state, params, **extra):
        count = _tree.safe_increment(state.count)
        leaves, treedef = jax.tree.flatten(updates)
        Qs = treedef.flatten_up_to(state.Q)
        cds = [_tree.compute_dtype(g.dtype) for g in leaves]
        if self.b1 is None:
            mu_leaves = None
            mhat = [g.astype(cd) for g, cd in zip(leaves, cds)]
        else:
            b1 = value_at(self.b1, state.count)
            mus = treedef.flatten_up_to(state.mu)
            mu_leaves, mhat = [], []
            for g, m, cd in zip(leaves, mus, cds):
                c1 = _tree.hp(b1, cd)
                m_new = c1 * m.astype(cd) + (1 - c1) * g.astype(cd)
                mu_leaves.append(m_new.astype(m.dtype))
                mhat.append(m_new / _tree.bias_correction(b1, count.astype(cd), cd))

        step_key = jax.random.fold_in(jax.random.key(self.seed), state.count)
        k_update, k_probe = jax.random.split(step_key)
        prob = self.preconditioner_update_probability
        prob = _default_prob(state.count) if prob is None else value_at(prob, state.count)
        do_update = jax.random.uniform(k_update, (), jnp.float32) < prob
        lr_p = self.preconditioner_lr

        def refit(qs):
            out = []
            for i, (x, q) in enumerate(zip(mhat, qs)):
                qd = q[0].dtype
                cd = _tree.compute_dtype(x.dtype, qd)
                v = jax.random.normal(jax.random.fold_in(k_probe, i), x.shape, cd)
                qc = tuple(f.astype(cd) for f in q)
                new = _update_factors(qc, x.astype(cd), v, _tree.hp(lr_p, cd))
                out.append(tuple(f.astype(qd) for f in new))
            return out

        Qs = jax.lax.cond(do_update, refit, lambda qs: [tuple(q) for q in qs], Qs)
        u = []
        for g, x, q in zip(leaves, mhat, Qs):
            cd = _tree.compute_dtype(x.dtype, q[0].dtype)
            pre = _precondition(tuple(f.astype(cd) for f in q), x.astype(cd))
            u.append(pre.astype(g.dtype))
        mu = None if mu_leaves is None else treedef.unflatten(mu_leaves)
        return treedef.unflatten(u), KronState(count, mu, treedef.unflatten(Qs))


def scale_by_kron(
    b1: Any = 0.9,
    preconditioner_update_probability: Any = None,
    *,
    preconditioner_lr: Any = 0.1,
    preconditioner_init_scale: Any = 1.0,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    seed: int = 0,
) -> ScaleByKron:
    """Kron's direction without the learning rate (see ``kron``)."""
    return ScaleByKron(
        b1,
        preconditioner_update_probability,
        preconditioner_lr,
        preconditioner_init_scale,
        max_size_triangular,
        min_ndim_triangular,
        memory_save_mode,
        None if mu_dtype is None else jnp.dtype(mu_dtype),
        None if precond_dtype is None else jnp.dtype(precond_dtype),
        seed,
    )


def kron(
    learning_rate: Any = 1e-3,
    b1: Any = 0.9,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    preconditioner_update_probability: Any = None,
    max_size_triangular: int = 8192,
    min_ndim_triangular: int = 2,
    memory_save_mode: str | None = None,
    mu_dtype: Any = None,
    precond_dtype: Any = None,
    *,
    preconditioner_lr: Any = 0.1,
    preconditioner_init_scale: Any = 1.0,
    seed: int = 0,
):
    """Kron: PSGD with a Kronecker-factored whitening preconditioner (psgd_jax's ``kron``).

    Update rule (t = 1, 2, ...), per leaf of order d with factors Q_1 .. Q_d::

        m_t = b1 * m_{t-1} + (1 - b1) * g_t,   mhat_t = m_t / (1 - b1^t)   (b1=None: mhat_t = g_t)
        with probability p(t - 1) (one draw per update, shared by all leaves):
            V ~ N(0, I), shaped like the leaf
            Q_i <- Q_i * (prod_j max|Q_j|)^(1/d) / max|Q_i|             (balance; P unchanged)
            A = mhat_t x_1 Q_1 x_2 Q_2 ... x_d Q_d
            B = V x_1 Q_1^{-T} x_2 Q_2^{-T} ... x_d Q_d^{-T}
            T1_i = A_(i) A_(i)^T,   T2_i = B_(i) B_(i)^T                  (mode-i unfoldings)
            triangular Q_i <- Q_i - lr_p * triu(T1_i - T2_i) / ||T1_i + T2_i||_lb * Q_i
            diagonal   q_i <- q_i - lr_p * diag(T1_i - T2_i) / max|diag(T1_i + T2_i)| * q_i
        u_t = mhat_t x_1 (Q_1^T Q_1) x_2 (Q_2^T Q_2) ... x_d (Q_d^T Q_d)
        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    ``x_i M`` applies the matrix ``M`` along axis ``i`` (a diagonal factor ``q`` multiplies
    that axis elementwise); ``lr_p = preconditioner_lr``; ``||.||_lb`` is a cheap lower bound of
    the spectral norm, ``||M c|| / ||c||`` with ``c`` the column of ``M`` of largest norm; a
    scalar leaf has one factor ``q`` with ``A = q g``, ``B = v / q`` and the diagonal rule. The
    fit drives ``P = Q^T Q`` towards the whitening preconditioner ``(E[mhat mhat^T])^(-1/2)``
    (Li's criterion ``E[h^T P h + v^T P^{-1} v]`` with ``h = mhat``), by steps on the Lie group
    of triangular matrices. Factors start as ``preconditioner_init_scale^(1/d) * I``.

    An axis gets a diagonal factor when its size is 1 or above ``max_size_triangular``, when
    the leaf has fewer than ``min_ndim_triangular`` axes, or by ``memory_save_mode``
    (``"one_diag"``: the largest axis, the last of equal largest; ``"all_diag"``: every axis).
    The draws are reproducible: the update's key is ``fold_in(key(seed), t - 1)``, split into
    one key for the update decision (``uniform() < p``) and one whose ``fold_in(., leaf index)``
    draws ``V`` for each leaf. Balancing runs at every preconditioner update (psgd_jax does it
    at random about every 100; it does not change ``P``, only keeps the factors' scales equal).

    Args:
      {learning_rate}
      b1: momentum decay in [0, 1) (float, array or schedule), or None for no momentum buffer.
        Default 0.9.
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), added after the
        preconditioner and scaled by the learning rate, as in psgd_jax. Default 0.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      preconditioner_update_probability: the probability of refitting the factors at an
        update, in [0, 1]: a float, array or schedule of the count. None (default) is
        ``precond_update_prob_schedule()``: 1.0 for 250 updates, then decaying as
        ``exp(-0.001 * (n - 250))`` to 0.03.
      max_size_triangular: axes longer than this get a diagonal factor, an integer >= 0.
        Default 8192.
      min_ndim_triangular: leaves with fewer axes get only diagonal factors, an integer >= 0.
        Default 2 (vectors are diagonal, matrices triangular).
      memory_save_mode: None (default), ``"one_diag"`` or ``"all_diag"``.
      mu_dtype: dtype of the momentum (default: each parameter's dtype).
      precond_dtype: dtype of the factors (default: float32, or the parameter's if wider).
      preconditioner_lr: the step of the factor fit, in (0, 1]. Default 0.1.
      preconditioner_init_scale: the initial ``P = scale^2 * I`` factor scale, > 0. Default 1.0.
      seed: the integer seed of the probe vectors and update decisions. Default 0.

    Conventions: psgd_jax's defaults; its soft trust region on the preconditioned update and
    its reduced matmul precisions are not applied (use ``gradtx.clip`` in a chain to bound
    steps).

    References:
      Li, "Preconditioned Stochastic Gradient Descent", IEEE Transactions on Neural Networks
      and Learning Systems, 2018. arXiv:1512.04202
      Li, "Preconditioner on Matrix Lie Group for SGD", ICLR 2019. arXiv:1809.10232
      Walters, Pooladzandi, Li, psgd_jax (kron), 2024.
      https://github.com/evanatyourservice/psgd_jax
    """
    pre = scale_by_kron(
        b1,
        preconditioner_update_probability,
        preconditioner_lr=preconditioner_lr,
        preconditioner_init_scale=preconditioner_init_scale,
        max_size_triangular=max_size_triangular,
        min_ndim_triangular=min_ndim_triangular,
        memory_save_mode=memory_save_mode,
        mu_dtype=mu_dtype,
        precond_dtype=precond_dtype,
        seed=seed,
    )
    return optimizer_chain(
        "kron",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
    )


fill_doc(kron, learning_rate=COMMON_DOCS["learning_rate"])
