"""Schedules as pytrees: ``schedule(count) -> value`` with their parameters as leaves.

Also Optax's ``optax.schedules`` namespace: ``gradtx.schedules.<name>`` is ``gradtx.<name>``,
the same object (documented on the schedules page), for every schedule and for Optax's names
of that namespace (``inject_hyperparams``, ``InjectHyperparamsState``, ``Schedule``). The
modules inside this package are private.
"""

from .. import _namespace

#: The public names: gradtx's own of this family, and Optax's ``optax.schedules`` names.
NAMES = (
    "constant_schedule",
    "cosine_decay_schedule",
    "cosine_onecycle_schedule",
    "cosine_restarts_schedule",
    "cyclic_schedule",
    "exponential_decay",
    "inject_hyperparams",
    "inject_stateful_hyperparams",
    "InjectHyperparamsState",
    "inverse_sqrt_schedule",
    "inverse_time_decay_schedule",
    "join_schedules",
    "linear_onecycle_schedule",
    "linear_schedule",
    "multiply_schedules",
    "onecycle_momentum_schedule",
    "piecewise_constant_schedule",
    "piecewise_interpolate_schedule",
    "plot_schedules",
    "polynomial_schedule",
    "precond_update_prob_schedule",
    "reduce_on_plateau",
    "ReduceOnPlateauState",
    "Schedule",
    "schedule_values",
    "sgdr_schedule",
    "warmup_constant_schedule",
    "warmup_cosine_decay_schedule",
    "warmup_exponential_decay_schedule",
    "warmup_stable_decay_schedule",
)


__getattr__, __dir__ = _namespace.top_level_names(__name__, NAMES)
