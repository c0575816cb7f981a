"""Flax NNX integration: ``gradtx.nnx.Optimizer``, an ``nnx.Optimizer`` whose transform is data.

A gradtx transform holds its hyperparameters as JAX scalars, so NNX must treat it as data (traced
by ``nnx.jit``), not as a static attribute: then one compiled step serves every learning rate.
Flax's own ``nnx.Optimizer`` stores its transform as a static attribute and rejects a transform
that holds arrays; this class is the same optimizer with that one difference::

    optimizer = gradtx.nnx.Optimizer(model, gradtx.adamw(1e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
        grads = nnx.grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)

    optimizer.tx = gradtx.adamw(3e-4)   # another rate: the same compiled step

Importing this module imports Flax (``pip install flax``); ``import gradtx`` does not.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp
from flax import nnx
from flax.nnx.training.optimizer import OptState, to_opt_state

from ._transform import apply_updates

__all__ = ["Optimizer"]


class Optimizer(nnx.Optimizer):
    """A drop-in for ``nnx.Optimizer`` whose transform ``tx`` is NNX data.

    The same constructor, ``update(model, grads, **extra)``, ``step`` and ``opt_state`` as
    Flax's; ``wrt`` defaults to ``nnx.Param``. Because ``tx`` is data, ``nnx.jit`` traces its
    hyperparameters: assigning ``optimizer.tx = gradtx.adam(other_lr)`` (the same kind of
    transform) reuses the compiled step, and ``gradtx.current_hyperparams(optimizer)`` reads the
    values of the last step.

    Args:
      model: the NNX module whose ``wrt`` variables are optimized.
      tx: a gradtx transform (any Optax-style transform works too, held as Flax holds it).
      wrt: which variables to optimize, an NNX filter (default ``nnx.Param``); pass the same
        filter to ``nnx.grad``.
      graph: NNX's graph mode, as in ``nnx.Optimizer``.
    """

    def __init__(self, model: Any, tx: Any, *, wrt: Any = nnx.Param, graph: bool | None = None):
        self.graph = graph
        self.step = OptState(jnp.array(0, dtype=jnp.uint32))
        self.tx = nnx.data(tx)
        self.opt_state = nnx.data(to_opt_state(tx.init(nnx.state(model, wrt, graph=graph))))
        self.wrt = wrt

    def update(self, model: Any, grads: Any, /, **kwargs: Any) -> Any:
        """Applies one step of ``tx`` to the ``wrt`` variables of ``model``; returns the updates."""
        params = nnx.as_pure(nnx.state(model, self.wrt, graph=self.graph))
        grads = nnx.as_pure(nnx.state(grads, self.wrt, graph=self.graph))
        updates, new_state = self.tx.update(
            grads, nnx.as_pure(self.opt_state), params, **nnx.as_pure(kwargs)
        )
        nnx.update(model, apply_updates(params, updates))
        nnx.update(self.opt_state, nnx.state(new_state, graph=self.graph))
        self.step[...] += 1
        return updates

    def transform_and_state(self) -> tuple[Any, Any]:
        """``(tx, state)`` with the state as plain arrays (what ``tx.update`` takes)."""
        return self.tx, nnx.as_pure(self.opt_state)
