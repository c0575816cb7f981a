"""Prodigy: Adam whose step size d is estimated on the fly (D-Adaptation with a faster d)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._mask import as_mask, resolve_mask
from .._transform import Transform, field, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class ProdigyState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    d: jax.Array  # the current step-size estimate d_k
    r: jax.Array  # weighted sum of <g_i, x_0 - x_i> (numerator of d_hat)
    m: Any  # first moment of d * g
    v: Any  # second moment of d * g
    s: Any  # weighted sum of gradients (its L1 norm is the denominator of d_hat)
    x0: Any  # the initial params


@pytree_dataclass
class ScaleByProdigy(Transform):
    """Prodigy's direction; the chain then multiplies by ``-learning_rate``. Per update
    (k = count, gamma_k = learning_rate(k), c_k = bias correction or 1)::

        m = b1 * m + (1 - b1) * d_k * g
        v = b2 * v + (1 - b2) * d_k^2 * g^2
        w = gamma_k * d_k^2 * c_k        (safeguard_warmup: d_k^2 alone weighs s)
        r = b3 * r + w * <g, x_0 - x_k>;   s = b3 * s + w * g
        d_{k+1} = max(d_k, d_coef * r / ||s||_1)
        u = d_k * c_k * (m / (sqrt(v) + d_k * eps) + weight_decay * x_k)

    with ``c_k = sqrt(1 - b2^(k+1)) / (1 - b1^(k+1))`` when ``bias_correction`` is True. The
    paper's ``(1 - b3)`` factor on ``r`` and ``s`` cancels in ``r / ||s||_1`` and is left out.
    """

    elementwise = True
    fn_name = "prodigy"

    learning_rate: Any = 1.0
    b1: Any = field(0.9, check=_checks.UNIT)
    b2: Any = field(0.999, check=_checks.UNIT)
    b3: Any = field(None, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    d0: Any = field(1e-6, check=_checks.POSITIVE)
    d_coef: Any = field(1.0, check=_checks.POSITIVE)
    weight_decay: Any = field(0.0, check=_checks.NONNEGATIVE)
    mask: Any = static_field(None, converter=as_mask)
    bias_correction: bool = static_field(False)
    safeguard_warmup: bool = static_field(False)

    def _init(self, params):
        leaves = [p for p in jax.tree.leaves(params) if p is not None]
        dt = _tree.compute_dtype(*(_tree.real_dtype(p.dtype) for p in leaves))
        z = _tree.tree_zeros_like
        x0 = jax.tree.map(lambda p: p + _tree.zeros_like(p), params)
        return ProdigyState(
            jnp.zeros((), jnp.int32),
            jnp.asarray(self.d0, dt),
            jnp.zeros((), dt),
            z(params),
            jax.tree.map(lambda p: _tree.zeros_like(p, _tree.real_dtype(p.dtype)), params),
            z(params),
            x0,
        )

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: prodigy needs params; pass them to update.")
        where = self.where()
        _checks.check_same_tree(where, params, updates, "params", "updates")
        _checks.check_same_tree(where, updates, state.m, "updates", "m")
        k = state.count
        dt = state.d.dtype
        t = _tree.safe_increment(k).astype(dt)
        gamma = jnp.asarray(value_at(self.learning_rate, k)).astype(dt)
        b1 = jnp.asarray(value_at(self.b1, k)).astype(dt)
        b2 = jnp.asarray(value_at(self.b2, k)).astype(dt)
        b3 = jnp.sqrt(b2) if self.b3 is None else jnp.asarray(value_at(self.b3, k)).astype(dt)
        d = state.d
        c = (
            jnp.sqrt(_tree.bias_correction(b2, t, dt)) / _tree.bias_correction(b1, t, dt)
            if self.bias_correction
            else jnp.ones((), dt)
        )
        w_r = gamma * d * d * c
        w_s = d * d if self.safeguard_warmup else w_r
        decay = self.weight_decay is not None
        wd = jnp.asarray(value_at(self.weight_decay, k)).astype(dt) if decay else None
        mask = resolve_mask(self.mask, params, where) if decay else None

        leaves, treedef = jax.tree.flatten(updates)
        ps = treedef.flatten_up_to(params)
        ms, vs = treedef.flatten_up_to(state.m), treedef.flatten_up_to(state.v)
        ss, x0s = treedef.flatten_up_to(state.s), treedef.flatten_up_to(state.x0)
        on = treedef.flatten_up_to(mask) if decay else [False] * len(leaves)
        r = b3 * state.r
        new_m, new_v, new_s, s_l1, dots = [], [], [], [], []
        for g, p, m, v, s, x0 in zip(leaves, ps, ms, vs, ss, x0s):
            cd = _tree.compute_dtype(g.dtype, p.dtype, m.dtype, v.dtype, dt)
            gc = g.astype(cd)
            dots.append(jnp.sum(gc * (x0.astype(cd) - p.astype(cd))).astype(dt))
            new_m.append(b1.astype(cd) * m.astype(cd) + (1 - b1.astype(cd)) * d.astype(cd) * gc)
            new_v.append(b2 * v.astype(cd) + (1 - b2) * (d * d) * _tree.abs_sq(gc))
            s_new = b3.astype(cd) * s.astype(cd) + w_s.astype(cd) * gc
            new_s.append(s_new)
            s_l1.append(jnp.sum(jnp.abs(s_new)).astype(dt))
        for x in dots:
            r = r + w_r * x
        den = sum(s_l1, jnp.zeros((), dt))
        d_hat = jnp.asarray(self.d_coef, dt) * r / jnp.where(den > 0, den, 1)
        d_new = jnp.where(den > 0, jnp.maximum(d, d_hat), d)
        out_u = []
        eps = jnp.asarray(self.eps, dt)
        for g, p, m_new, v_new, flag in zip(leaves, ps, new_m, new_v, on):
            u = m_new / (jnp.sqrt(v_new) + d * eps)
            if decay and flag:
                u = u + wd * p.astype(u.dtype)
            out_u.append((d * c * u).astype(g.dtype))
        unf = treedef.unflatten
        return unf(out_u), ProdigyState(
            _tree.safe_increment(k),
            d_new,
            r,
            unf([a.astype(b.dtype) for a, b in zip(new_m, ms)]),
            unf([a.astype(b.dtype) for a, b in zip(new_v, vs)]),
            unf([a.astype(b.dtype) for a, b in zip(new_s, ss)]),
            state.x0,
        )


def prodigy(
    learning_rate: Any = 1.0,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = None,
    *,
    b3: Any = None,
    d0: Any = 1e-6,
    d_coef: Any = 1.0,
    bias_correction: bool = False,
    safeguard_warmup: bool = False,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Prodigy (Adam version).

    Update rule (t = 1, 2, ...; gamma_t = learning_rate(t - 1); d_0 = d0; g_t taken at x_{t-1})::

        m_t = b1 * m_{t-1} + (1 - b1) * d_{t-1} * g_t
        v_t = b2 * v_{t-1} + (1 - b2) * d_{t-1}^2 * g_t^2
        r_t = b3 * r_{t-1} + (1 - b3) * gamma_t * d_{t-1}^2 * <g_t, x_0 - x_{t-1}>
        s_t = b3 * s_{t-1} + (1 - b3) * gamma_t * d_{t-1}^2 * g_t
        d_t = max(d_{t-1}, d_coef * r_t / ||s_t||_1)
        x_t = x_{t-1} - gamma_t * d_{t-1} * (m_t / (sqrt(v_t) + d_{t-1} * eps)
                                             + weight_decay * x_{t-1})

    Args:
      learning_rate: gamma, a multiplier of the estimated step (1.0; float, array or schedule).
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1).
      eps: added to ``sqrt(v)`` (scaled by ``d_{t-1}``), >= 0.
      weight_decay: decoupled decay coefficient >= 0, scaled by ``gamma_t * d_{t-1}`` like the
        step (the authors' ``decouple=True``, Optax's).
      b3: decay of ``r`` and ``s`` in [0, 1); None is ``sqrt(b2)`` (the paper's).
      d0: the initial estimate of d, > 0.
      d_coef: multiplier of the estimate, > 0.
      bias_correction: multiply the step and the weights of ``r`` and ``s`` by
        ``sqrt(1 - b2^t) / (1 - b1^t)`` (the authors' ``use_bias_correction``;
        ``optax.contrib.prodigy`` always does).
      safeguard_warmup: weigh ``s`` by ``d_{t-1}^2`` alone (no learning rate), which keeps a
        warmup from inflating the estimate (the authors' and Optax's option).
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.

    Conventions: the paper's Algorithm (Adam version), which is the authors' default. With
    ``bias_correction=True`` it is ``optax.contrib.prodigy`` except that the ``d * eps`` term
    uses d_{t-1} (the paper) where Optax uses d_t.

    References:
      Mishchenko, Defazio, "Prodigy: An Expeditiously Adaptive Parameter-Free Learner",
      ICML 2024. arXiv:2306.06101
    """
    _checks.check_nonnegative("prodigy", "learning_rate", learning_rate)
    pre = ScaleByProdigy(
        learning_rate, b1, b2, b3, eps, d0, d_coef, weight_decay, weight_decay_mask,
        bias_correction, safeguard_warmup,
    )  # fmt: skip
    return optimizer_chain("prodigy", pre, learning_rate, maximize=maximize)


fill_doc(prodigy, **COMMON_DOCS)
