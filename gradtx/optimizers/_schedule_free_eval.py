"""Reads the evaluation params out of a schedule-free optimizer's state."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from .schedule_free import ScheduleFreeState


def schedule_free_eval_params(state: Any, params: Any) -> Any:
    """The averaged iterate ``x`` to evaluate the model at, cast to ``params``' dtypes.

    ``state`` is the state of a schedule-free optimizer (or any tuple holding one, such as the
    state of a chain); ``params`` are the training params ``y``.
    """

    def find(s):
        if isinstance(s, ScheduleFreeState):
            return s
        if isinstance(s, tuple):
            for item in s:
                found = find(item)
                if found is not None:
                    return found
        return None

    sf = find(state)
    if sf is None:
        raise TypeError(
            "gradtx.schedule_free_eval_params: no ScheduleFreeState in the state; pass the "
            "state of schedule_free_sgd or schedule_free_adamw."
        )
    return jax.tree.map(lambda x, p: jnp.asarray(x).astype(jnp.result_type(p)), sf.x, params)
