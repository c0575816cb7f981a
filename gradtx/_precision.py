"""Mixed precision: a float32 master copy of low-precision weights.

The rest of gradtx's mixed-precision story lives in each optimizer: arithmetic runs in
``compute_dtype`` (at least float32, so eps, bias corrections and schedules never round to bf16
or fp16), moments default to the parameter's dtype and take ``mu_dtype``/``nu_dtype``
(``accumulator_dtype`` for SGD's momentum), and updates keep the gradient's dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from . import _tree
from ._transform import Transform, as_transform, pytree_dataclass, static_field


class MasterWeightsState(NamedTuple):
    master: Any  # the high-precision copy of the parameters
    inner: Any  # the wrapped optimizer's state, built on the master copy


@pytree_dataclass
class WithMasterWeights(Transform):
    """Runs ``inner`` on a high-precision copy of the parameters (see ``with_master_weights``)."""

    elementwise = True

    inner: Transform
    dtype: Any = static_field(jnp.float32)

    def _master_dtype(self, p):
        return _tree.compute_dtype(jnp.result_type(p), self.dtype)

    def _init(self, params):
        def copy(p):
            # Keep p's sharding, and let buffers made like the copy inherit it too.
            return _tree._constrain_like(jnp.asarray(p).astype(self._master_dtype(p)), p)

        master = jax.tree.map(copy, params)
        return MasterWeightsState(master, self.inner._init(master))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(
                f"{self.where()}: master weights need params; call "
                f"update(grads, state, params) with the current low-precision params."
            )
        grads = _tree.tree_cast_like(updates, state.master)
        u, inner = self.inner._update(grads, state.inner, state.master, **extra)
        master = jax.tree.map(lambda m, d: m + d.astype(m.dtype), state.master, u)

        def delta(m, p):
            # The step that lands p exactly on round(m): both are p-dtype values, so their
            # difference is exact in the master dtype and apply_updates adds it back exactly.
            return m.astype(p.dtype).astype(m.dtype) - p.astype(m.dtype)

        return jax.tree.map(delta, master, params), MasterWeightsState(master, inner)

    def __repr__(self) -> str:
        return f"WithMasterWeights({self.inner!r})"


def with_master_weights(tx: Any, dtype: Any = jnp.float32) -> WithMasterWeights:
    """Keeps a ``dtype`` (float32) master copy of low-precision (bf16/fp16) parameters.

    ``tx`` runs entirely on the master copy (its moments, weight decay and steps are float32);
    after each step the returned updates move the low-precision params to the master copy
    rounded to their dtype. Small steps that round to nothing in bf16 still accumulate in the
    master copy, which is what makes long bf16 runs converge.

    The updates are in the master dtype (not the gradient's) so that
    ``apply_updates(params, updates)`` lands exactly on ``master.astype(params.dtype)``: both
    are params-dtype numbers, so their difference is exact in float32 unless one step changes a
    weight by more than a factor 2^16. The master copy is ``state.master``.

    Example::

        tx = gradtx.with_master_weights(gradtx.adamw(1e-3))
        state = tx.init(bf16_params)             # state.master is float32
        updates, state = tx.update(bf16_grads, state, bf16_params)
        bf16_params = gradtx.apply_updates(bf16_params, updates)
    """
    return WithMasterWeights(as_transform(tx, "with_master_weights", "tx"), dtype)
