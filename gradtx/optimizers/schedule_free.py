"""Schedule-free SGD and AdamW: averaging replaces the learning-rate schedule's decay."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Schedule, Transform, identity, pytree_dataclass, static_field, value_at
from ._common import COMMON_DOCS, fill_doc, optimizer_chain
from .rmsprop import scale_by_rmsprop


class ScheduleFreeState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    weight_sum: jax.Array  # sum of gamma_i^weight_lr_power so far
    x: Any  # the averaged iterate (evaluate the model here)
    z: Any  # the base optimizer's iterate
    base: Any  # the base optimizer's state

    def averaged(self, params: Any) -> Any:
        """The averaged iterate ``x`` in ``params``' dtypes (what ``gradtx.eval_params`` returns)."""
        return _tree.tree_cast_like(self.x, params)


@pytree_dataclass
class ScheduleFreeRate(Schedule):
    """``gamma_t = learning_rate(count) * min(1, t / warmup_steps) * sqrt(1 - b2^t)``.

    ``t = count + 1``; the warmup factor is 1 when ``warmup_steps`` is 0 and the bias-correction
    factor is 1 when ``b2`` is None (SGD). This is the paper's step size gamma_t.
    """

    learning_rate: Any = 1.0
    warmup_steps: Any = 0
    b2: Any = None

    def __call__(self, count):
        lr = jnp.asarray(value_at(self.learning_rate, count))
        dt = _tree.compute_dtype(lr.dtype)
        t = jnp.asarray(count).astype(dt) + 1
        w = jnp.asarray(self.warmup_steps, dt)
        out = lr.astype(dt) * jnp.where(w > 0, jnp.minimum(1, t / jnp.where(w > 0, w, 1)), 1)
        if self.b2 is not None:
            out = out * jnp.sqrt(_tree.bias_correction(value_at(self.b2, count), t, dt))
        return out


@pytree_dataclass
class ScheduleFree(Transform):
    """Schedule-free averaging around a base optimizer that steps ``z``.

    The params the model is trained at are ``y``; per update (t = 1, 2, ...)::

        z_{t+1} = z_t + base_update(g_t at y_t)          (the base's step uses gamma_t)
        c_{t+1} = gamma_t^r / sum_{i <= t} gamma_i^r      (r = weight_lr_power; 0 if the sum is 0)
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        y_{t+1} = b1 * x_{t+1} + (1 - b1) * z_{t+1}       (the update is y_{t+1} - y_t)

    ``gamma_t`` is ``learning_rate`` evaluated at the count before the update, so the first
    update uses ``schedule(0)``. Evaluate with ``gradtx.eval_params(state, params)``.
    """

    elementwise = True

    base: Transform
    learning_rate: Any = 1.0
    b1: Any = 0.9
    weight_lr_power: Any = 2.0
    state_dtype: Any = static_field(None)
    fn: str = static_field("schedule_free")

    def __check_init__(self):
        # Checked here, not declared: two factories share this class and errors name each.
        _checks.check_unit_interval(self.fn, "b1", self.b1, high_open=False)
        _checks.check_nonnegative(self.fn, "weight_lr_power", self.weight_lr_power)

    def _init(self, params):
        def copy(p):
            return (p + _tree.zeros_like(p)).astype(self.state_dtype or p.dtype)

        return ScheduleFreeState(
            jnp.zeros((), jnp.int32),
            jnp.zeros((), _tree.float_dtype()),
            jax.tree.map(copy, params),
            jax.tree.map(copy, params),
            self.base._init(params),
        )

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: schedule-free needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        _checks.check_same_tree(self.where(), updates, state.z, "updates", "z")
        gamma = jnp.asarray(value_at(self.learning_rate, state.count))
        dt = _tree.compute_dtype(gamma.dtype, state.weight_sum.dtype)
        w = gamma.astype(dt) ** jnp.asarray(self.weight_lr_power, dt)
        ws = state.weight_sum.astype(dt) + w
        c = jnp.where(ws > 0, w / jnp.where(ws > 0, ws, 1), 0)
        b1 = value_at(self.b1, state.count)
        dz, base_state = self.base._update(updates, state.base, params, **extra)

        def leaf(y, d, x, z):
            cd = _tree.compute_dtype(y.dtype, x.dtype, z.dtype, dt)
            z_new = z.astype(cd) + d.astype(cd)
            cc = c.astype(cd)
            x_new = (1 - cc) * x.astype(cd) + cc * z_new
            bb = _tree.hp(b1, cd)
            y_new = x_new + (1 - bb) * (z_new - x_new)  # b1 x + (1 - b1) z, exact where z = x
            u = (y_new - y.astype(cd)).astype(d.dtype)
            return u, x_new.astype(x.dtype), z_new.astype(z.dtype)

        out = jax.tree.map(leaf, params, dz, state.x, state.z)
        u, x, z = _tree.tree_unzip(params, out, 3)
        new = ScheduleFreeState(
            _tree.safe_increment(state.count), ws.astype(state.weight_sum.dtype), x, z, base_state
        )
        return u, new


_REFS = """
    References:
      Defazio, Yang, Mehta, Mishchenko, Khaled, Cutkosky, "The Road Less Scheduled",
      NeurIPS 2024. arXiv:2405.15682
"""

_CONV = """
    Conventions: the paper's Algorithm 1. It differs from ``optax.contrib.schedule_free_*`` in
    three ways: the first update uses ``learning_rate(0)`` for both the step and the average's
    weight (Optax evaluates the weight at ``learning_rate(1)``); the weights are
    ``gamma_t^weight_lr_power`` (Optax uses the running maximum of the rate); and ``x`` is kept
    in the state instead of being recovered from ``y`` and ``z`` (one more buffer, but exact and
    valid for ``b1 = 0``).
"""


def schedule_free_sgd(
    learning_rate: Any = 1.0,
    b1: Any = 0.9,
    weight_decay: Any = None,
    warmup_steps: Any = 0,
    weight_lr_power: Any = 2.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    state_dtype: Any = None,
):
    """Schedule-free SGD.

    Update rule (t = 1, 2, ...), where the model's params are ``y_t``::

        gamma_t = learning_rate(t - 1) * min(1, t / warmup_steps)
        z_{t+1} = z_t - gamma_t * (g_t + weight_decay * y_t)      (g_t taken at y_t)
        c_{t+1} = gamma_t^2 / sum_{i <= t} gamma_i^2
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        y_{t+1} = b1 * x_{t+1} + (1 - b1) * z_{t+1}

    Evaluate the model at ``gradtx.eval_params(state, params)`` (``x``).

    Args:
      {learning_rate} A constant is the intended use.
      b1: interpolation between the average and the base iterate, in [0, 1] (float, array or
        schedule).
      weight_decay: coefficient >= 0 of the decay taken at ``y`` (float, array or schedule).
      warmup_steps: linear warmup length (0: none).
      weight_lr_power: the exponent ``r`` of the averaging weights, >= 0.
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      state_dtype: dtype of ``x`` and ``z`` (default: each parameter's dtype).
    {conv}{refs}"""
    _checks.check_nonnegative("schedule_free_sgd", "warmup_steps", warmup_steps)
    rate = ScheduleFreeRate(learning_rate, warmup_steps, None)
    base = optimizer_chain(
        "schedule_free_sgd",
        identity(),
        rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        maximize=maximize,
    )
    _checks.check_nonnegative("schedule_free_sgd", "learning_rate", learning_rate)
    return ScheduleFree(base, rate, b1, weight_lr_power, state_dtype, "schedule_free_sgd")


def schedule_free_adamw(
    learning_rate: Any = 2.5e-3,
    b1: Any = 0.9,
    b2: Any = 0.999,
    eps: Any = 1e-8,
    weight_decay: Any = None,
    warmup_steps: Any = 0,
    weight_lr_power: Any = 2.0,
    *,
    maximize: bool = False,
    weight_decay_mask: Any = None,
    state_dtype: Any = None,
):
    """Schedule-free AdamW.

    Update rule (t = 1, 2, ...), where the model's params are ``y_t``::

        v_t = b2 * v_{t-1} + (1 - b2) * g_t^2                    (g_t taken at y_t)
        gamma_t = learning_rate(t - 1) * sqrt(1 - b2^t) * min(1, t / warmup_steps)
        z_{t+1} = z_t - gamma_t * (g_t / (sqrt(v_t) + eps) + weight_decay * y_t)
        c_{t+1} = gamma_t^2 / sum_{i <= t} gamma_i^2
        x_{t+1} = (1 - c_{t+1}) * x_t + c_{t+1} * z_{t+1}
        y_{t+1} = b1 * x_{t+1} + (1 - b1) * z_{t+1}

    Evaluate the model at ``gradtx.eval_params(state, params)`` (``x``).

    Args:
      {learning_rate} A constant is the intended use.
      b1: interpolation between the average and the base iterate, in [0, 1] (float, array or
        schedule).
      b2: decay of the second moment, in [0, 1) (float, array or schedule).
      eps: added outside the root, >= 0.
      weight_decay: coefficient >= 0 of the decoupled decay taken at ``y`` and scaled by
        ``gamma_t`` (float, array or schedule).
      warmup_steps: linear warmup length (0: none).
      weight_lr_power: the exponent ``r`` of the averaging weights, >= 0.
      {maximize}
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      state_dtype: dtype of ``x`` and ``z`` (default: each parameter's dtype).
    {conv}{refs}"""
    _checks.check_nonnegative("schedule_free_adamw", "warmup_steps", warmup_steps)
    _checks.check_unit_interval("schedule_free_adamw", "b2", b2)
    rate = ScheduleFreeRate(learning_rate, warmup_steps, b2)
    pre = scale_by_rmsprop(decay=b2, eps=eps)
    base = optimizer_chain(
        "schedule_free_adamw",
        pre,
        rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
        maximize=maximize,
    )
    _checks.check_nonnegative("schedule_free_adamw", "learning_rate", learning_rate)
    return ScheduleFree(base, rate, b1, weight_lr_power, state_dtype, "schedule_free_adamw")


fill_doc(schedule_free_sgd, conv=_CONV, refs=_REFS, **COMMON_DOCS)
fill_doc(schedule_free_adamw, conv=_CONV, refs=_REFS, **COMMON_DOCS)
