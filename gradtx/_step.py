"""``gradtx.step``: update and apply in one compiled call that reuses the old buffers."""

from __future__ import annotations

from typing import Any

import jax

from ._transform import OptState, Params, Updates, apply_updates, as_transform, split_extra


def _step(tx: Any, grads: Updates, state: OptState, params: Params, dynamic: Any, static: Any):
    updates, new_state = tx._update(grads, state, params, **dynamic, **static.items)
    # Outputs in the order of the donated inputs (state, then params): JAX pairs donated input
    # buffers with outputs of the same shape and dtype in order, so (params, state) would hand
    # m's buffer to the new params and XLA would add a full copy per buffer to stay correct.
    return new_state, apply_updates(params, updates)


# Arguments: 0 tx, 1 grads, 2 state, 3 params, 4 array extras, 5 static extras. The old state
# and params are donated.
_compiled_step = jax.jit(_step, donate_argnums=(2, 3), static_argnums=(5,))


def step(
    tx: Any, grads: Updates, state: OptState, params: Params, **extra: Any
) -> tuple[Params, OptState]:
    """One optimizer step, ``tx.update`` then ``apply_updates``, as one compiled call.

    ``params, state = gradtx.step(tx, grads, state, params)`` gives the same numbers as::

        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)

    but runs as one program (so XLA fuses the update into the parameter write) and **donates**
    the buffers of the old ``params`` and ``state``: XLA writes the new parameters and the new
    state into the memory the old ones occupied, instead of allocating fresh buffers. For large
    models this is the difference between running at memory bandwidth and paying for fresh pages
    on every step, and it halves the peak memory of the update.

    What donation means for the caller: after the call, the ``params`` and ``state`` arrays you
    passed in are deleted (reading them raises ``RuntimeError: Array has been deleted``). Always
    rebind both names to the returned values, as above, and do not keep other references to the
    old arrays (a copy you want to keep must be made before the call, e.g. ``jnp.copy``).
    ``grads``, ``tx`` and ``extra`` are not donated. Inside an outer ``jax.jit`` there is nothing
    to donate, and ``step`` is simply the fused update.

    ``params`` may be packed (``gradtx.pack(params, tx)``): the step then runs a few fused loops
    over the packed buffers, whatever the number of leaves, and donates them.

    Args:
      tx: a gradtx transform (or any object with Optax's ``init``/``update``, which is wrapped).
        Its hyperparameters are traced, so changing their values does not recompile; they are
        device scalars made at construction, so no call copies them from the host.
      grads: the gradients, shaped like ``params``.
      state: the state from ``tx.init(params)`` or from the previous ``step``.
      params: the current parameters.
      **extra: extra arguments for ``update`` (e.g. ``loss=`` for optimizers that read it).

    Returns:
      ``(new_params, new_state)``, with the dtypes and shardings of the old ones.

    Raises:
      ValueError: an array of ``grads`` (or of ``extra``) is also an array of ``params`` or
        ``state``: a donated buffer cannot be read by the same call.
    """
    try:
        new_state, new_params = _compiled_step(
            as_transform(tx), grads, state, params, *split_extra(extra)
        )
    except Exception as e:
        # Checked only on failure, so the step pays nothing for it.
        donated = {id(x) for x in jax.tree.leaves((state, params))}
        if not any(id(x) in donated for x in jax.tree.leaves((grads, extra))):
            raise
        raise ValueError(
            "gradtx.step: an array of grads (or of extra) is also one of params or state, which "
            "step donates, so XLA cannot reuse its memory. Pass grads that are their own arrays "
            "(a copy: jax.tree.map(jnp.copy, grads)), or call tx.update and "
            "gradtx.apply_updates, which donate nothing."
        ) from e
    return new_params, new_state
