"""What every optimizer factory shares: the chain it builds and the argument text it documents."""

from __future__ import annotations

from typing import Any

from .._checks import check_nonnegative
from .._transform import Chain, Transform, scale_by_learning_rate
from ..transforms._scaling import negate
from ..transforms._weight_decay import add_decayed_weights

ARGS_LEARNING_RATE = """learning_rate: step size, a float >= 0, an array (a batch of rates under vmap) or a
        schedule ``count -> value`` (a gradtx schedule or any callable). None applies no step
        size, only the sign flip (scale the updates elsewhere), as in Optax."""
ARGS_WEIGHT_DECAY = """weight_decay: L2 coefficient >= 0 (float, array or schedule), added to the gradient
        before the preconditioner as in torch (``g <- g + weight_decay * p``). A literal 0 adds
        nothing to the program; pass an array to sweep it.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one, e.g. ``gradtx.mask_by_path`` helpers. None decays every leaf."""
ARGS_DECOUPLED = """decoupled_weight_decay: if True, decay the parameters outside the preconditioner
        (``p <- p - lr * weight_decay * p``, AdamW) instead of the coupled L2 term."""
ARGS_DECOUPLED_DECAY = """weight_decay: decoupled decay >= 0 (float, array or schedule), times the current rate.
      mask: a pytree of bools (True = decay that leaf) or a function from params to one; None
        decays every leaf."""
ARGS_MAXIMIZE = """maximize: if True, ascend the objective (the gradient is negated first; the weight
        decay still shrinks the parameters, as in torch)."""


def _has_decay(weight_decay: Any) -> bool:
    if weight_decay is None:
        return False
    if isinstance(weight_decay, (int, float)) and not isinstance(weight_decay, bool):
        return weight_decay != 0
    return True


def optimizer_chain(
    fn: str,
    preconditioner: Transform,
    learning_rate: Any,
    *,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    decoupled_weight_decay: bool = False,
    maximize: bool = False,
) -> Chain:
    """``[negate] -> [coupled L2] -> preconditioner -> [decoupled decay] -> -learning_rate``.

    torch's order inside ``step()``: maximize, then weight decay, then the moments, then the step.
    Decoupled decay added after the preconditioner and scaled by ``-lr`` is
    ``p <- p - lr * (u + wd * p) = p * (1 - lr * wd) - lr * u``, torch's AdamW exactly.
    """
    check_nonnegative(fn, "learning_rate", learning_rate)
    check_nonnegative(fn, "weight_decay", weight_decay)
    parts: list[Transform] = []
    if maximize:
        parts.append(negate())
    decay = _has_decay(weight_decay)
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
