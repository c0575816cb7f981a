"""Fromage: a relative (per-layer) step followed by a shrink that keeps the norm in check."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf, leaf_norm
from .._transform import CountState, field, pytree_dataclass, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


@pytree_dataclass
class ScaleByFromage(PerLeaf):
    """Fromage's direction; with the chain's ``-lr`` it gives the full Fromage step::

        r = max(||p||, min_norm) / max(||g||, min_norm)   (1 when min_norm is 0 and a norm is 0)
        s = sqrt(1 + lr^2)
        u = r * g / s + lr / (s * (s + 1)) * p

    so ``p - lr * u = (p - lr * r * g) / s``. It reads the learning rate itself (the shrink
    depends on it), with the same schedule and count as the chain's learning-rate step.
    """

    fn_name = "fromage"
    state_type = CountState
    reads_params = True
    leaf_statistic = "per-leaf norms"

    learning_rate: Any = 1e-2
    min_norm: Any = field(1e-6, check=_checks.NONNEGATIVE)

    def _scalars(self, count, t):
        return {"lr": value_at(self.learning_rate, count)}

    def _leaf(self, s, g, p):
        cd = _tree.compute_dtype(g.dtype, p.dtype)
        rd = _tree.real_dtype(cd)
        gc, pc = g.astype(cd), p.astype(cd)
        mn = _tree.hp(self.min_norm, rd)
        pn = jnp.maximum(leaf_norm(pc), mn)
        gn = jnp.maximum(leaf_norm(gc), mn)
        r = jnp.where((pn == 0) | (gn == 0), jnp.ones((), rd), pn / gn)
        a = _tree.hp(s.lr, rd)
        sc = jnp.sqrt(1 + a * a)
        return ((r * gc / sc + (a / (sc * (sc + 1))) * pc).astype(g.dtype),)


def scale_by_fromage(learning_rate: Any = 1e-2, min_norm: Any = 1e-6) -> ScaleByFromage:
    """Fromage's direction for a given learning rate (see ``ScaleByFromage``)."""
    return ScaleByFromage(learning_rate, min_norm)


def fromage(
    learning_rate: Any,
    min_norm: Any = 1e-6,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    maximize: bool = False,
):
    """Fromage (Frobenius matched gradient descent), ``optax.fromage``'s arguments and steps.

    Update rule (t = 1, 2, ...), per leaf::

        g_t = grad + weight_decay * p_{t-1}
        p_t = (p_{t-1} - lr * (||p_{t-1}|| / ||g_t||) * g_t) / sqrt(1 + lr^2)

    with both norms clipped below at ``min_norm``.

    Args:
      {learning_rate}
      min_norm: lower bound of both norms, >= 0 (1e-6, Optax's).
      {weight_decay}
      {maximize}

    Conventions: Optax's step (Optax builds the shrink as decay by ``1/sqrt(1 + lr^2) - 1``
    after the learning rate; the step is the same); ``weight_decay`` adds torch's coupled L2.
    torch.optim has no Fromage.

    References:
      Bernstein, Vahdat, Yue, Liu, "On the distance between two neural networks and the
      stability of learning", NeurIPS 2020. arXiv:2002.03432
    """
    return optimizer_chain(
        "fromage",
        scale_by_fromage(learning_rate, min_norm),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(fromage, **COMMON_DOCS)
