"""What every optimizer factory shares: the chain it builds and the argument text it documents."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import check_nonnegative
from .._transform import Chain, Transform, scale_by_learning_rate
from ..transforms._scaling import negate
from ..transforms._weight_decay import add_decayed_weights

ARGS_LEARNING_RATE = """learning_rate: step size, a float >= 0, an array (a batch of rates under vmap) or a
        schedule ``count -> value`` (a gradtx schedule or any callable). None applies no step
        size, only the sign flip (scale the updates elsewhere), as in Optax."""
ARGS_WEIGHT_DECAY = """weight_decay: L2 coefficient >= 0 (float, array or schedule), added to the gradient
        before the preconditioner as in torch (``g <- g + weight_decay * p``). None (the
        default) leaves the term out; any number, 0 included, is a hyperparameter leaf, so one
        compiled program serves every value.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one, e.g. ``gradtx.mask_by_path`` helpers. None decays every leaf."""
ARGS_DECOUPLED = """decoupled_weight_decay: if True, decay the parameters outside the preconditioner
        (``p <- p - lr * weight_decay * p``, AdamW) instead of the coupled L2 term."""
ARGS_DECOUPLED_DECAY = """weight_decay: decoupled decay >= 0 (float, array or schedule), times the current rate.
        0 is a leaf like any other value, so a sweep that includes it compiles once (Optax's
        program leaves the term out at a literal 0; the numbers are the same).
      mask: a pytree of bools (True = decay that leaf) or a function from params to one; None
        decays every leaf."""
ARGS_MAXIMIZE = """maximize: if True, ascend the objective (the gradient is negated first; the weight
        decay still shrinks the parameters, as in torch)."""


def is_literal_zero(value: Any) -> bool:
    """A Python or NumPy number equal to 0 (not an array, a schedule or a bool)."""
    return (
        isinstance(value, (int, float, np.number))
        and not isinstance(value, (bool, np.bool_))
        and value == 0
    )


def off_at_literal_zero(weight_decay: Any) -> Any:
    """None (no decay term) for a literal 0, else ``weight_decay``.

    For the factories whose default decay is 0 where the reference leaves the term out of the
    program at 0: Optax's adadelta, adan, lamb and lars, and torch's optimizers. Their default
    program is then the reference's; ``jnp.array(0.0)`` keeps the term (a sweep that includes
    0 compiles once).
    """
    return None if is_literal_zero(weight_decay) else weight_decay


def optimizer_chain(
    fn: str,
    preconditioner: Transform,
    learning_rate: Any,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Chain:
    """``[negate] -> [coupled L2] -> preconditioner -> [decoupled decay] -> -learning_rate``.

    The decay term is in the chain whenever ``weight_decay`` is not None: a 0 is a leaf like
    any other value, so a sweep that includes it compiles once.

    torch's order inside ``step()``: maximize, then weight decay, then the moments, then the step.
    Decoupled decay added after the preconditioner and scaled by ``-lr`` is
    ``p <- p - lr * (u + wd * p) = p * (1 - lr * wd) - lr * u``, torch's AdamW exactly.
    """
    check_nonnegative(fn, "learning_rate", learning_rate)
    check_nonnegative(fn, "weight_decay", weight_decay)
    parts: list[Transform] = []
    if maximize:
        parts.append(negate())
    decay = weight_decay is not None
    if decay and not decoupled_weight_decay:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(preconditioner)
    if decay and decoupled_weight_decay:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    # None: no scaling, only the sign flip (Optax's meaning; the step size is applied elsewhere).
    parts.append(negate() if learning_rate is None else scale_by_learning_rate(learning_rate))
    return Chain(tuple(parts))


def fill_doc(fn: Any, **parts: str) -> Any:
    """Replaces ``{name}`` placeholders in ``fn.__doc__`` (formulas keep their own braces)."""
    doc = fn.__doc__ or ""
    for key, text in parts.items():
        doc = doc.replace("{" + key + "}", text)
    fn.__doc__ = doc
    return fn


COMMON_DOCS = {
    "learning_rate": ARGS_LEARNING_RATE,
    "weight_decay": ARGS_WEIGHT_DECAY,
    "maximize": ARGS_MAXIMIZE,
    "decoupled": ARGS_DECOUPLED,
    "decoupled_decay": ARGS_DECOUPLED_DECAY,
}

# The arguments of the Adam family (adam, adamw, amsgrad, nadam, nadamw).
ADAM_DOCS = {
    "adam_options": """{adam_extras}
      amsgrad: keep the running maximum of ``nu`` (``amsgrad_max="raw"``: torch's AMSGrad;
        ``"corrected"``: ``optax.amsgrad``).""",
    "adam_args": """{learning_rate}
      b1: decay of the first moment, in [0, 1) (float, array or schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added to the denominator outside the square root, >= 0; eps_root: inside it, >= 0.
      mu_dtype: dtype of ``mu`` (default: each parameter's dtype).""",
    "adam_extras": """nesterov: Nesterov's look-ahead on the first moment (Dozat's NAdam, constant momentum).
      nu_dtype: dtype of ``nu`` (default: each parameter's real dtype).
      complex_convention: ``"abs"`` (Optax: one step size per complex weight) or
        ``"real_view"`` (torch: each of ``(re, im)`` with its own ``nu``).""",
    "refs": """

    References:
      Kingma, Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015. arXiv:1412.6980
      Reddi, Kale, Kumar, "On the Convergence of Adam and Beyond", ICLR 2018 (AMSGrad).
      https://openreview.net/forum?id=ryQu7f-RZ""",
}
