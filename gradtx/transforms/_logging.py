"""``current_hyperparams``: the hyperparameter values used at the last step, for logging."""

from __future__ import annotations

import sys
from typing import Any

from .._transform import Transform, as_transform


def _collect(tx: Transform, state: Any, path: tuple[str, ...], out: list) -> None:
    for name, value in tx._hyperparams(state).items():
        out.append((path, name, value))
    for label, child, child_state in tx._children(state):
        _collect(child, child_state, (*path, label) if label else path, out)


def current_hyperparams(tx: Transform, state: Any = None) -> dict[str, Any]:
    """A flat dict of the learning rate and every scheduled (or state-scaled) value, as used at
    the last step, read from ``tx`` and its ``state``; no wrapper needed::

        gradtx.current_hyperparams(tx, state)   # {'learning_rate': Array(0.00098, ...)}
        gradtx.current_hyperparams(optimizer)   # a gradtx.nnx.Optimizer holds both
        gradtx.current_hyperparams(optimizer.tx, optimizer.opt_state)   # the same

    Keys are the field names (``learning_rate``, ``b1``, ``weight_decay``); where two
    transforms share a name, the key is prefixed with its place: chain indices and partition
    labels joined by ``/`` (``"decay/learning_rate"``; chain indices appear only where labels
    do not tell the values apart, as in ``"0/weight_decay"``). Before the first step
    the values are those the first step will use. Works under ``jit`` (values are arrays). A
    transform that is not gradtx's (an Optax one in a chain) reports the values its
    ``inject_hyperparams`` states hold, and nothing where it has none.
    """
    if state is None and hasattr(tx, "transform_and_state"):
        tx, state = tx.transform_and_state()
    if not (hasattr(tx, "init") and hasattr(tx, "update")):
        raise TypeError(
            "gradtx.current_hyperparams: tx must be a transform (with its state as the second "
            f"argument) or a gradtx.nnx.Optimizer, got {type(tx).__name__}"
        )
    tx = as_transform(tx)
    nnx = sys.modules.get("flax.nnx")
    if nnx is not None and state is not None:
        # The state as gradtx.nnx.Optimizer keeps it (``optimizer.opt_state``): NNX variables
        # around the arrays. Their values are what the transform reads.
        state = nnx.as_pure(state)
    items: list[tuple[tuple[str, ...], str, Any]] = []
    _collect(tx, state, (), items)
    counts: dict[str, int] = {}
    for _, name, _ in items:
        counts[name] = counts.get(name, 0) + 1
    # Colliding names get their path; chain indices are dropped when labels alone suffice.
    short = ["/".join((*(c for c in path if not c.isdigit()), name)) for path, name, _ in items]
    out: dict[str, Any] = {}
    for (path, name, value), s in zip(items, short):
        if counts[name] == 1:
            key = name
        elif sum(1 for t in short if t == s) == 1:
            key = s
        else:
            key = "/".join((*path, name))
        out[key] = value
    return out
