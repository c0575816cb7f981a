"""Independent NumPy (float64) versions of the seed optimizers' formulas.

Written from the update rules in ../shared/reference/torch_optim.md and the docstrings, not from
gradtx's code. Every function runs a whole trajectory on a list of leaves:

    trajectory = sgd(params, grads, lr=0.1, momentum=0.9)

``params`` is a list of float64 arrays, ``grads`` a list over steps of lists of arrays shaped like
``params``; the result is a list over steps of the parameter lists after each step. ``lr`` (and
``weight_decay``) may be a number or a function of the count of updates applied before this one
(the first step uses ``lr(0)``). ``mask`` is a list of bools, one per leaf (True = decay that
leaf; None decays every leaf). One count is shared by all leaves, as in gradtx and Optax.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Leaves = list[np.ndarray]


def at(value: float | Callable[[int], float], count: int) -> float:
    """A hyperparameter's value at ``count`` (updates applied before this one)."""
    return float(value(count)) if callable(value) else float(value)


def _mask(mask: Sequence[bool] | None, n: int) -> list[bool]:
    return [True] * n if mask is None else [bool(m) for m in mask]


def _prepare(g: np.ndarray, p: np.ndarray, maximize: bool, wd: float, decay: bool) -> np.ndarray:
    """torch's first two steps: negate for maximize, then the coupled L2 term."""
    g = -g if maximize else g
    return g + wd * p if decay else g


def sgd(
    params: Leaves,
    grads: Sequence[Leaves],
    *,
    lr: Any,
    momentum: float | None = None,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: Any = 0.0,
    maximize: bool = False,
    ema: bool = False,
    mask: Sequence[bool] | None = None,
) -> list[Leaves]:
    """torch.optim.SGD; ``ema=True`` is the seed tutorial's ``b = m*b + (1-m)*g`` from zero.

    heavy ball: b_1 = g_1, b_t = m*b + (1-damp)*g;  d = g + m*b (nesterov) or b
                (momentum 0 or None: no buffer, d = g, as torch's ``if momentum != 0``)
    ema:        b_t = m*b + (1-m)*g (b_0 = 0);      d = (1-m)*g + m*b (nesterov) or b
    p <- p - lr * d
    """
    p = [x.copy() for x in params]
    dec = _mask(mask, len(p))
    buf: list[np.ndarray | None] = [None] * len(p)
    out = []
    for k, gs in enumerate(grads):
        step = at(lr, k)
        wd = at(weight_decay, k)
        for i, g in enumerate(gs):
            g = _prepare(g, p[i], maximize, wd, dec[i])
            d = g
            if momentum:  # None or 0: plain gradient step (ema with m = 0 is g too)
                m = momentum
                if ema:
                    prev = np.zeros_like(g) if buf[i] is None else buf[i]
                    buf[i] = m * prev + (1 - m) * g
                    d = (1 - m) * g + m * buf[i] if nesterov else buf[i]
                else:
                    buf[i] = g.copy() if buf[i] is None else m * buf[i] + (1 - dampening) * g
                    d = g + m * buf[i] if nesterov else buf[i]
            p[i] = p[i] - step * d
        out.append([x.copy() for x in p])
    return out


def adagrad(
    params: Leaves,
    grads: Sequence[Leaves],
    *,
    lr: Any,
    lr_decay: float = 0.0,
    weight_decay: Any = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    inside: bool = False,
    maximize: bool = False,
    mask: Sequence[bool] | None = None,
) -> list[Leaves]:
    """torch.optim.Adagrad; ``inside=True`` is Optax's ``g * rsqrt(s + eps)`` (0 where s == 0).

    s <- s + g^2 (s_0 = initial_accumulator_value)
    p <- p - lr / (1 + (t-1)*lr_decay) * g / (sqrt(s) + eps)
    """
    p = [x.copy() for x in params]
    dec = _mask(mask, len(p))
    s = [np.full_like(x, initial_accumulator_value) for x in p]
    out = []
    for k, gs in enumerate(grads):
        t = k + 1
        clr = at(lr, k) / (1 + (t - 1) * lr_decay)
        wd = at(weight_decay, k)
        for i, g in enumerate(gs):
            g = _prepare(g, p[i], maximize, wd, dec[i])
            s[i] = s[i] + g * g
            if inside:
                pos = s[i] > 0
                safe = np.where(pos, s[i], 1.0)
                u = np.where(pos, g / np.sqrt(safe + eps), 0.0)
            else:
                u = g / (np.sqrt(s[i]) + eps)
            p[i] = p[i] - clr * u
        out.append([x.copy() for x in p])
    return out


def rmsprop(
    params: Leaves,
    grads: Sequence[Leaves],
    *,
    lr: Any,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: Any = 0.0,
    momentum: float | None = None,
    centered: bool = False,
    inside: bool = False,
    initial_scale: float = 0.0,
    maximize: bool = False,
    mask: Sequence[bool] | None = None,
) -> list[Leaves]:
    """torch.optim.RMSprop (torch's ``alpha`` is gradtx's ``decay``); ``inside`` puts eps in the root.

    v <- alpha*v + (1-alpha)*g^2 (v_0 = initial_scale);  gbar <- alpha*gbar + (1-alpha)*g
    a = sqrt(v - gbar^2) + eps   (gbar = 0 unless centered)
    momentum: b <- m*b + g/a, p <- p - lr*b;   otherwise p <- p - lr*g/a
    """
    p = [x.copy() for x in params]
    dec = _mask(mask, len(p))
    v = [np.full_like(x, initial_scale) for x in p]
    gbar = [np.zeros_like(x) for x in p]
    buf = [np.zeros_like(x) for x in p]
    out = []
    for k, gs in enumerate(grads):
        step = at(lr, k)
        wd = at(weight_decay, k)
        for i, g in enumerate(gs):
            g = _prepare(g, p[i], maximize, wd, dec[i])
            v[i] = alpha * v[i] + (1 - alpha) * g * g
            var = v[i]
            if centered:
                gbar[i] = alpha * gbar[i] + (1 - alpha) * g
                var = v[i] - gbar[i] ** 2
            a = np.sqrt(var + eps) if inside else np.sqrt(var) + eps
            if momentum is not None:
                buf[i] = momentum * buf[i] + g / a
                p[i] = p[i] - step * buf[i]
            else:
                p[i] = p[i] - step * g / a
        out.append([x.copy() for x in p])
    return out


def adam(
    params: Leaves,
    grads: Sequence[Leaves],
    *,
    lr: Any,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    weight_decay: Any = 0.0,
    decoupled: bool = False,
    amsgrad: str | None = None,
    maximize: bool = False,
    mask: Sequence[bool] | None = None,
    nesterov: bool = False,
    bias_correction: bool = True,
) -> list[Leaves]:
    """torch.optim.Adam / AdamW, with Optax's ``eps_root``, AMSGrad variant and Nesterov.

    decoupled: p <- p * (1 - lr*wd)   else g <- g + wd*p
    m <- b1*m + (1-b1)*g;  v <- b2*v + (1-b2)*g^2;  bc1 = 1 - b1^t;  bc2 = 1 - b2^t
    (bc1 = bc2 = 1 without bias_correction, the AMSGrad paper)
    mhat = m / bc1;   nesterov (Dozat): mhat = b1 * m / (1 - b1^(t+1)) + (1 - b1) * g / bc1
    amsgrad "raw" (torch):       vmax <- max(vmax, v);        vhat = vmax / bc2
    amsgrad "corrected" (Optax): vmax <- max(vmax, v / bc2);  vhat = vmax
    p <- p - lr * mhat / (sqrt(vhat + eps_root) + eps)
    """
    assert amsgrad in (None, "raw", "corrected")
    p = [x.copy() for x in params]
    dec = _mask(mask, len(p))
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    vmax = [np.zeros_like(x) for x in p]
    out = []
    for k, gs in enumerate(grads):
        t = k + 1
        step = at(lr, k)
        wd = at(weight_decay, k)
        bc1, bc2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
        bc1_next = 1 - b1 ** (t + 1) if bias_correction else 1.0
        for i, g in enumerate(gs):
            g = -g if maximize else g
            p_prev = p[i]
            if dec[i] and decoupled:
                p[i] = p[i] * (1 - step * wd)
            elif dec[i]:
                g = g + wd * p_prev
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            if amsgrad == "raw":
                vmax[i] = np.maximum(vmax[i], v[i])
                vhat = vmax[i] / bc2
            elif amsgrad == "corrected":
                vmax[i] = np.maximum(vmax[i], v[i] / bc2)
                vhat = vmax[i]
            else:
                vhat = v[i] / bc2
            mhat = b1 * m[i] / bc1_next + (1 - b1) * g / bc1 if nesterov else m[i] / bc1
            p[i] = p[i] - step * mhat / (np.sqrt(vhat + eps_root) + eps)
        out.append([x.copy() for x in p])
    return out


# --- building blocks ------------------------------------------------------------------------


def add_decayed_weights(updates: Leaves, params: Leaves, wd: float, mask=None) -> Leaves:
    """u + wd * p on the masked leaves."""
    return [u + wd * p if d else u for u, p, d in zip(updates, params, _mask(mask, len(params)))]


def scale(updates: Leaves, factor: float) -> Leaves:
    return [factor * u for u in updates]


def negate(updates: Leaves) -> Leaves:
    return [-u for u in updates]


def apply_updates(params: Leaves, updates: Leaves) -> Leaves:
    """p + u in float64, cast back to each parameter's dtype."""
    return [
        (p.astype(np.float64) + u.astype(np.float64)).astype(p.dtype)
        for p, u in zip(params, updates)
    ]
