"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class SOAPState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    m: Any  # first moment, in the parameters' basis
    v: Any  # second moment, in the rotated basis
    L: Any  # left Shampoo statistic G G^T per 2-D leaf (None where not preconditioned)
    R: Any  # right Shampoo statistic G^T G per 2-D leaf (None where not preconditioned)
    Q_L: Any  # eigenbasis estimate of L (None where not preconditioned)
    Q_R: Any  # eigenbasis estimate of R (None where not preconditioned)


def _sides(shape: tuple[int, ...], max_dim: int) -> tuple[bool, bool]:
    """Which sides of a leaf of this shape get a preconditioner (only 2-D leaves do)."""
    if len(shape) != 2:
        return False, False
    return shape[0] <= max_dim, shape[1] <= max_dim


def _t(x: Any) -> Any:
    """The transpose of each matrix in ``x`` (its last two axes)."""
    return jnp.swapaxes(x, -1, -2)


@pytree_dataclass
class ScaleBySOAP(PerLeaf):
    """SOAP's direction (no learning rate). Per 2-D leaf ``G`` (m x n), t = count + 1::

        L_t = bs * L_{t-1} + (1 - bs) * G G^T;   R_t = bs * R_{t-1} + (1 - bs) * G^T G
        Q_L, Q_R = eigenvectors of L_1, R_1                       (t = 1)
        G' = Q_L^T G Q_R
        m_t = b1 * m_{t-1} + (1 - b1) * G;          M' = Q_L^T m_t Q_R
        v_t = b2 * v_{t-1} + (1 - b2) * G'^2
        u_t = c_t * Q_L (M' / (sqrt(v_t) + eps)) Q_R^T
        Q_L <- qr(L_t Q_L).Q, Q_R <- qr(R_t Q_R).Q  every precondition_frequency updates
                                                    (after the step: used from t + 1 on)

    with ``c_t = sqrt(1 - b2^t) / (1 - b1^t)`` (``bias_correction``) or 1, and
    ``bs = shampoo_beta`` (None: b2). A side longer than ``max_precond_dim`` keeps the identity
    basis, and leaves that are not 2-D run Adam (both bases the identity). The bases are
    treated as constants by ``jax.grad`` (their gradients are stopped).
    """

    fn_name = "soap"
    state_type = SOAPState
    leaf_statistic = "per-leaf preconditioner matrices"

    b1: Any = field(0.95, check=_checks.UNIT)
    b2: Any = field(0.95, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    shampoo_beta: Any = field(None, check=_checks.UNIT)
    precondition_frequency: Any = field(10, check=_checks.Interval(1, integer=True))
    max_precond_dim: int = static_field(10000)
    bias_correction: bool = static_field(True)

    def _checked(self):
        return ("m",)  # the statistics and bases are square matrices, one per side

    def _init_leaf(self, p):
        sides = _sides(p.shape, self.max_precond_dim)
        dt = _tree.compute_dtype(_tree.real_dtype(p.dtype))

        def mats(side, make):
            return make(p.shape[side], dtype=dt) if sides[side] else None

        zeros = lambda n, dtype: jnp.zeros((n, n), dtype)
        m, v = _tree.zeros_like(p), _tree.zeros_like(p, _tree.real_dtype(p.dtype))
        return m, v, mats(0, zeros), mats(1, zeros), mats(0, jnp.eye), mats(1, jnp.eye)

    def _scalars(self, count, t):
        b1, b2 = value_at(self.b1, count), value_at(self.b2, count)
        bs = b2 if self.shampoo_beta is None else value_at(self.shampoo_beta, count)
        refresh = (t % self.precondition_frequency) == 0
        return {"first": count == 0, "refresh": refresh, "t": t, "b1": b1, "b2": b2, "bs": bs}

    def _leaf(self, s, *per_leaf):
        orig = per_leaf
        # Under Explicit mesh axes the matrices are gathered (their products would have
        # sharded contracting axes) and the results are put back like the inputs.
        g, m, v, L, R, QL, QR = (_tree.gather_explicit(x) for x in per_leaf)
        cd = _tree.compute_dtype(g.dtype, m.dtype, v.dtype)
        rd = _tree.real_dtype(cd)
        t = s.t.astype(rd)
        c1, c2, cs = (_tree.hp(h, rd) for h in (s.b1, s.b2, s.bs))
        gc = g.astype(cd)

        def stat(S, prod):
            return cs * S + (1 - cs) * prod

        def basis(S, Q):
            S = jax.lax.stop_gradient(S)
            Q = jax.lax.stop_gradient(Q)
            return jax.lax.cond(s.first, lambda: jnp.linalg.eigh(S)[1].astype(Q.dtype), lambda: Q)

        def refreshed(S, Q):
            S = jax.lax.stop_gradient(S)
            return jax.lax.cond(
                s.refresh, lambda: jnp.linalg.qr(S @ Q)[0].astype(Q.dtype), lambda: Q
            )

        L_new = R_new = QL_new = QR_new = None
        if L is not None:
            L_new = stat(L, gc @ _t(gc))
            QL = basis(L_new, QL)
        if R is not None:
            R_new = stat(R, _t(gc) @ gc)
            QR = basis(R_new, QR)

        def to_rot(x):
            if QL is not None:
                x = _t(QL) @ x
            if QR is not None:
                x = x @ QR
            return x

        def from_rot(x):
            if QL is not None:
                x = QL @ x
            if QR is not None:
                x = x @ _t(QR)
            return x

        rot = to_rot(gc)
        m_new = c1 * m.astype(cd) + (1 - c1) * gc
        v_new = c2 * v.astype(rd) + (1 - c2) * _tree.abs_sq(rot)
        n = to_rot(m_new) / (jnp.sqrt(v_new) + _tree.hp(self.eps, rd))
        u = from_rot(n)
        if self.bias_correction:
            u = (
                u
                * jnp.sqrt(_tree.bias_correction(s.b2, t, rd))
                / _tree.bias_correction(s.b1, t, rd)
            )
        if L is not None:
            QL_new = refreshed(L_new, QL)
        if R is not None:
            QR_new = refreshed(R_new, QR)
        out = (u.astype(g.dtype), m_new.astype(m.dtype), v_new.astype(v.dtype))
        out += (L_new, R_new, QL_new, QR_new)
        return tuple(_tree.like_sharding(x, ref) for x, ref in zip(out, orig))


def scale_by_soap(
    b1: Any = 0.95,
    b2: Any = 0.95,
    eps: Any = 1e-8,
    shampoo_beta: Any = None,
    *,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    bias_correction: bool = True,
) -> ScaleBySOAP:
    """SOAP's direction without the learning rate (see ``ScaleBySOAP``)."""
    return ScaleBySOAP(
        b1, b2, eps, shampoo_beta, precondition_frequency, max_precond_dim, bias_correction
    )


def soap(
    learning_rate: Any = 3e-3,
    b1: Any = 0.95,
    b2: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.01,
    *,
    shampoo_beta: Any = None,
    precondition_frequency: int = 10,
    max_precond_dim: int = 10000,
    bias_correction: bool = True,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """SOAP (ShampoO with Adam in the Preconditioner's eigenbasis).

    Update rule per 2-D leaf (t = 1, 2, ...; see ``ScaleBySOAP`` for the bases)::

        G' = Q_L^T G_t Q_R;   M' = Q_L^T m_t Q_R,   m_t = b1 * m_{t-1} + (1 - b1) * G_t
        v_t = b2 * v_{t-1} + (1 - b2) * G'^2
        p_t = p_{t-1} - lr * (c_t * Q_L (M' / (sqrt(v_t) + eps)) Q_R^T + weight_decay * p_{t-1})

    Other leaves take the same step with identity bases (Adam).

    Args:
      {learning_rate}
      b1: decay of the first moment, in [0, 1) (0.95, the authors'; float, array or schedule).
      b2: decay of the second moment, in [0, 1) (0.95).
      eps: added outside the root, >= 0.
      weight_decay: decoupled decay coefficient >= 0 scaled by the learning rate (0.01, the
        authors' AdamW-style default).
      shampoo_beta: decay of the Shampoo statistics L and R in [0, 1); None uses b2.
      precondition_frequency: refresh the bases every this many updates (10), by one step of
        power iteration and a QR decomposition (the paper's Algorithm 4).
      max_precond_dim: a side longer than this keeps the identity basis.
      bias_correction: scale the step by ``sqrt(1 - b2^t) / (1 - b1^t)`` (the authors' default).
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.

    Conventions: the paper's Algorithm 3. The first update initializes the bases with an exact
    eigendecomposition of the first statistics (as the authors' code does) but then takes its
    step instead of skipping it; the QR refresh does not reorder eigenvectors; 1-D and
    higher-rank leaves run Adam rather than being preconditioned or reshaped.

    References:
      Vyas, Morwani, Zhao, Kwun, Shapira, Brandfonbrener, Janson, Kakade, "SOAP: Improving and
      Stabilizing Shampoo using Adam", ICLR 2025. arXiv:2409.11321
    """
    pre = scale_by_soap(
        b1,
        b2,
        eps,
        shampoo_beta,
        precondition_frequency=precondition_frequency,
        max_precond_dim=max_precond_dim,
        bias_correction=bias_correction,
    )
    return optimizer_chain(
        "soap",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )


fill_doc(soap, **COMMON_DOCS)
