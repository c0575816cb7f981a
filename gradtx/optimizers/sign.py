"""signSGD and Signum: the sign of the gradient or of its moving average."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from .. import _checks, _tree
from .._kernel import Elementwise
from .._transform import field, pytree_dataclass, static_field, value_at
from ..transforms._shaping import scale_by_sign
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class SignumState(NamedTuple):
    count: jax.Array | None  # updates so far (int32, saturating); None when nothing reads it
    m: Any  # exponential moving average of the gradients


@pytree_dataclass
class ScaleBySignum(Elementwise):
    """Signum's direction (no learning rate)::

    m_t = beta * m_{t-1} + (1 - beta) * g_t       (m_0 = 0, no bias correction)
    u_t = sign(m_t)
    """

    state_type = SignumState
    fn_name = "signum"

    beta: Any = field(0.9, check=_checks.UNIT)
    accumulator_dtype: Any = static_field(None)

    def _buffer_dtype(self, name, p):
        return self.accumulator_dtype or p.dtype

    def _reads_count(self):
        return False

    def _scalars(self, count, t, dtype):
        return dict(beta=value_at(self.beta, count))

    def _leaf(self, s, g, m):
        m = s.beta * m + (1 - s.beta) * g
        return _tree.sign(m), m


def scale_by_signum(beta: Any = 0.9, accumulator_dtype: Any = None) -> ScaleBySignum:
    """Signum's direction without the learning rate (see ``ScaleBySignum``)."""
    return ScaleBySignum(beta, accumulator_dtype)


_REFS = """
    References:
      Bernstein, Wang, Azizzadenesheli, Anandkumar, "signSGD: Compressed Optimisation for
      Non-Convex Problems", ICML 2018. arXiv:1802.04434
"""


def sign_sgd(
    learning_rate: Any,
    *,
    weight_decay: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """signSGD, Optax's ``sign_sgd``.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        p_t = p_{t-1} - lr * sign(g_t)

    Args:
      {learning_rate}
      {weight_decay}
      {maximize}

    Conventions: ``optax.sign_sgd``: same signature and numbers; ``weight_decay`` (torch's
    coupled L2 term, taken before the sign) and ``maximize`` are gradtx's additions. torch.optim
    has no signSGD.
    {refs}"""
    return optimizer_chain(
        "sign_sgd",
        scale_by_sign(),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


def signum(
    learning_rate: Any,
    beta: Any = 0.9,
    accumulator_dtype: Any = None,
    *,
    weight_decay: Any = None,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Signum (signSGD with momentum), Optax's ``signum``.

    Update rule (t = 1, 2, ...)::

        g_t = grad + weight_decay * p_{t-1}
        m_t = beta * m_{t-1} + (1 - beta) * g_t          (m_0 = 0)
        p_t = p_{t-1} - lr * sign(m_t)

    Args:
      {learning_rate}
      beta: decay of the moving average, in [0, 1) (float, array or schedule).
      accumulator_dtype: dtype of ``m`` (default: each parameter's dtype).
      {weight_decay}
      {maximize}

    Conventions: ``optax.signum``: same signature, defaults and numbers; ``weight_decay``
    (torch's coupled L2 term, taken before the average) and ``maximize`` are gradtx's additions.
    torch.optim has no Signum.
    {refs}"""
    return optimizer_chain(
        "signum",
        scale_by_signum(beta, accumulator_dtype),
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )


fill_doc(sign_sgd, refs=_REFS, **COMMON_DOCS)
fill_doc(signum, refs=_REFS, **COMMON_DOCS)
