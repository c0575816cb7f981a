"""Kron's preconditioner-update probability as a schedule."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .. import _checks
from .._transform import Schedule, field, pytree_dataclass


@pytree_dataclass
class PrecondUpdateProb(Schedule):
    """``p(n) = min(max(max_prob * exp(-decay * (n - flat_start)), min_prob), max_prob)``.

    ``max_prob`` for the first ``flat_start`` updates, then an exponential decay to
    ``min_prob`` (with the defaults, 1.0 up to update 250 and 0.03 from about update 3750).
    """

    fn_name = "precond_update_prob_schedule"

    max_prob: Any = field(1.0, check=_checks.CLOSED_UNIT)
    min_prob: Any = field(0.03, check=_checks.CLOSED_UNIT)
    decay: Any = field(0.001, check=_checks.NONNEGATIVE)
    flat_start: Any = field(250, check=_checks.NONNEGATIVE)

    def __call__(self, count):
        n = jnp.asarray(count).astype(jnp.float32)
        hi = jnp.asarray(self.max_prob, jnp.float32)
        start = jnp.asarray(self.flat_start).astype(jnp.float32)
        decayed = hi * jnp.exp(-jnp.asarray(self.decay, jnp.float32) * (n - start))
        return jnp.minimum(jnp.maximum(decayed, jnp.asarray(self.min_prob, jnp.float32)), hi)


def precond_update_prob_schedule(
    max_prob: Any = 1.0, min_prob: Any = 0.03, decay: Any = 0.001, flat_start: Any = 250
) -> PrecondUpdateProb:
    """Kron's default probability of updating the preconditioner at update ``n``::

        p(n) = min(max(max_prob * exp(-decay * (n - flat_start)), min_prob), max_prob)

    Args:
      max_prob: the probability during the flat start, in [0, 1]. Default 1.0.
      min_prob: the floor the decay reaches, in [0, 1]. Default 0.03.
      decay: the exponential rate per update after the flat start, >= 0. Default 0.001.
      flat_start: updates at ``max_prob`` before the decay begins, >= 0. Default 250.
    """
    return PrecondUpdateProb(max_prob, min_prob, decay, flat_start)
