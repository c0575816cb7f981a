"""Parameter averaging: EMA of the parameters, SWA/Polyak averaging, lookahead.

Each averaging transform passes the updates through (lookahead adjusts them on sync steps) and
keeps its average of the parameters *after* the update in its state. ``gradtx.eval_params``
reads that average out of any state, wherever the transform sits (in a chain, a partition group
or another wrapper), so the training loop keeps one params tree and one state::

    tx = gradtx.chain(gradtx.adamw(1e-3), gradtx.ema_params(0.999))
    ...
    eval_params = gradtx.eval_params(state, params)
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import (
    Schedule,
    Transform,
    as_transform,
    field,
    pytree_dataclass,
    static_field,
    value_at,
)


def _new_params(params: Any, updates: Any, where: str) -> Any:
    if params is None:
        raise ValueError(f"{where}: parameter averaging needs params; pass them to update.")
    _checks.check_same_tree(where, params, updates, "params", "updates")
    return jax.tree.map(
        lambda p, u: (
            p.astype(_tree.compute_dtype(p.dtype)) + u.astype(_tree.compute_dtype(p.dtype))
        ),
        params,
        updates,
    )


# --------------------------------------------------------------------------------------------
# EMA of the parameters


class EmaParamsState(NamedTuple):
    """count: steps taken. ema: the running average (zeros at start when debiased, else a copy
    of the params). decay_product: the product of the decays used so far when debiasing (1 at
    start), 0 without debiasing; the average is ``ema / (1 - decay_product)``."""

    count: jax.Array
    ema: Any
    decay_product: jax.Array

    def averaged(self, params: Any) -> Any:
        """The averaged parameters in ``params``' dtypes (what ``eval_params`` returns)."""
        corr = 1.0 - self.decay_product
        started = corr > 0

        def leaf(e, p):
            if e is None:
                return None
            c = corr.astype(_tree.compute_dtype(e.dtype))
            avg = e.astype(c.dtype) / jnp.where(started, c, 1)
            return jnp.where(started, avg, p.astype(c.dtype)).astype(p.dtype)

        return jax.tree.map(leaf, self.ema, params, is_leaf=lambda x: x is None)


@pytree_dataclass
class EmaParams(Transform):
    """Keeps an exponential moving average of the parameters after each update::

    d_t = decay                                       (warmup None)
        = min(decay, (1 + t) / (warmup + t))          (t = 1, 2, ...: TF's num_updates)
    e_t = d_t * e_{t-1} + (1 - d_t) * (p_{t-1} + u_t)
    average_t = e_t / (1 - d_1 * ... * d_t)          (debias; e_0 = 0)
              = e_t                                   (no debias; e_0 = p_0)
    """

    elementwise = True
    fn_name = "ema_params"

    decay: Any = field(0.999, check=_checks.UNIT)
    warmup: Any = field(None, check=_checks.POSITIVE)
    debias: bool = static_field(True)
    accumulator_dtype: Any = static_field(None)

    def _init(self, params):
        if self.debias:
            ema = _tree.tree_zeros_like(params, self.accumulator_dtype)
        else:
            ema = _tree.tree_cast(params, self.accumulator_dtype)
        prod = jnp.asarray(1.0 if self.debias else 0.0, _tree.float_dtype())
        return EmaParamsState(jnp.zeros((), jnp.int32), ema, prod)

    def _update(self, updates, state, params, **extra):
        new = _new_params(params, updates, self.where())
        d = jnp.asarray(value_at(self.decay, state.count), state.decay_product.dtype)
        if self.warmup is not None:
            t = _tree.count_as_float(state.count + 1, d.dtype)
            d = jnp.minimum(d, (1.0 + t) / (self.warmup + t))

        def leaf(e, x):
            cd = _tree.compute_dtype(e.dtype, x.dtype)
            dd = d.astype(_tree.real_dtype(cd))
            return (dd * e.astype(cd) + (1 - dd) * x.astype(cd)).astype(e.dtype)

        ema = jax.tree.map(leaf, state.ema, new)
        return updates, EmaParamsState(
            _tree.safe_increment(state.count), ema, state.decay_product * d
        )


def ema_params(
    decay: Any = 0.999,
    debias: bool = True,
    warmup: Any = None,
    *,
    accumulator_dtype: Any = None,
) -> EmaParams:
    """An exponential moving average of the parameters, for evaluation.

    Place it last in the chain (it reads ``params + updates``). Read the average with
    ``gradtx.eval_params(state, params)``.

    Args:
      decay: in [0, 1) (float, array or schedule).
      debias: start from zero and divide by ``1 - prod(decays)`` (Adam-style bias correction),
        so early averages are not pulled toward the initial parameters; False starts the average
        at the initial parameters (Flax/timm style).
      warmup: None, or w > 0 to use ``min(decay, (1 + t) / (w + t))`` at step t (w = 10 is
        TensorFlow's ``ExponentialMovingAverage(num_updates=...)``).
      accumulator_dtype: dtype of the average (default: each parameter's; float32 is advised for
        bf16 parameters).
    """
    return EmaParams(decay, warmup, debias, accumulator_dtype)


# --------------------------------------------------------------------------------------------
# SWA / Polyak averaging


class SwaState(NamedTuple):
    """count: steps taken. n_averaged: how many parameter snapshots the average holds.
    average: their running mean (zeros until the first snapshot)."""

    count: jax.Array
    n_averaged: jax.Array
    average: Any

    def averaged(self, params: Any) -> Any:
        """The averaged parameters in ``params``' dtypes (what ``eval_params`` returns)."""
        started = self.n_averaged > 0

        def leaf(a, p):
            if a is None:
                return None
            return jnp.where(started, a.astype(p.dtype), p)

        return jax.tree.map(leaf, self.average, params, is_leaf=lambda x: x is None)


@pytree_dataclass
class Swa(Transform):
    """Uniform average of the parameters after steps ``start_step, start_step + every, ...``::

    take a snapshot after update t (t = 1, 2, ...) when t > start_step and
        (t - start_step - 1) % every == 0
    average_n = average_{n-1} + (p_t - average_{n-1}) / n
    """

    elementwise = True
    fn_name = "swa"

    start_step: Any = field(0, check=_checks.NONNEGATIVE)
    every: Any = field(1, check=_checks.Interval(1))
    accumulator_dtype: Any = static_field(None)

    def _init(self, params):
        return SwaState(
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
            _tree.tree_zeros_like(params, self.accumulator_dtype),
        )

    def _update(self, updates, state, params, **extra):
        new = _new_params(params, updates, self.where())
        since = state.count - jnp.asarray(self.start_step, jnp.int32)
        take = jnp.logical_and(since >= 0, since % jnp.asarray(self.every, jnp.int32) == 0)
        n = state.n_averaged + take.astype(jnp.int32)

        def leaf(a, x):
            cd = _tree.compute_dtype(a.dtype, x.dtype)
            w = 1.0 / jnp.maximum(n, 1).astype(_tree.real_dtype(cd))
            out = a.astype(cd) + (x.astype(cd) - a.astype(cd)) * w
            return jnp.where(take, out, a.astype(cd)).astype(a.dtype)

        avg = jax.tree.map(leaf, state.average, new)
        return updates, SwaState(_tree.safe_increment(state.count), n, avg)


def swa(start_step: Any = 0, every: Any = 1, *, accumulator_dtype: Any = None) -> Swa:
    """Stochastic weight averaging (SWA) or Polyak averaging of the parameters.

    Averages the parameters after every ``every``-th update from update ``start_step + 1`` on,
    with equal weights; ``every=1`` is Polyak-Ruppert averaging. Place it last in the chain;
    read the average with ``gradtx.eval_params(state, params)``. Pair it with
    ``gradtx.swa_schedule`` for the learning rate. torch's ``AveragedModel`` +
    ``update_parameters`` called after the same steps gives the same average (recompute
    BatchNorm statistics separately, as with torch's ``update_bn``).

    References:
      Izmailov, Podoprikhin, Garipov, Vetrov, Wilson, "Averaging Weights Leads to Wider Optima
      and Better Generalization", UAI 2018. arXiv:1803.05407
      Polyak, Juditsky, "Acceleration of Stochastic Approximation by Averaging", SIAM J. Control
      Optim. 1992. doi:10.1137/0330046
    """
    return Swa(start_step, every, accumulator_dtype)


@pytree_dataclass
class SwaSchedule(Schedule):
    """``base(count)`` before ``start_step``, then an anneal from ``base(start_step)`` to
    ``swa_lr`` over ``anneal_steps``, then ``swa_lr``::

        s = clip((count - start_step) / anneal_steps, 0, 1)
        a = (1 - cos(pi * s)) / 2   (anneal="cos")   or   s   (anneal="linear")
        lr = (1 - a) * base(start_step) + a * swa_lr
    """

    fn_name = "swa_schedule"

    base: Any
    swa_lr: Any = field(check=_checks.NONNEGATIVE)
    start_step: Any
    anneal_steps: Any = field(10, check=_checks.NONNEGATIVE)
    anneal: str = static_field("cos", choices=("cos", "linear"))

    def __call__(self, count):
        t = _tree.count_as_float(count)
        base_now = jnp.asarray(value_at(self.base, count), t.dtype)
        base_start = jnp.asarray(value_at(self.base, jnp.asarray(self.start_step)), t.dtype)
        # step counts may be traced int32 (vmap over start_step): compute in t's float dtype
        start = jnp.asarray(self.start_step).astype(t.dtype)
        steps = jnp.asarray(self.anneal_steps).astype(t.dtype)
        s = jnp.clip((t - start) / jnp.maximum(steps, 1.0), 0.0, 1.0)
        if self.anneal == "cos":
            a = (1.0 - jnp.cos(math.pi * s)) / 2.0
        else:
            a = s
        annealed = (1.0 - a) * base_start + a * jnp.asarray(self.swa_lr).astype(t.dtype)
        return jnp.where(t < start, base_now, annealed)


def swa_schedule(
    base: Any, swa_lr: Any, start_step: Any, anneal_steps: Any = 10, anneal: str = "cos"
) -> SwaSchedule:
    """The SWA learning rate: ``base`` until ``start_step``, then torch's ``SWALR`` anneal.

    torch's ``SWALR(opt, swa_lr, anneal_epochs=anneal_steps, anneal_strategy=anneal)`` started
    at ``start_step`` (counting scheduler steps as updates) gives the same rates.

    Args:
      base: the learning rate before averaging (float or schedule).
      swa_lr: the constant rate reached after the anneal.
      start_step: the count at which the anneal starts.
      anneal_steps: steps of the anneal, >= 0 (0 jumps straight to swa_lr).
      anneal: ``"cos"`` or ``"linear"``.
    """
    return SwaSchedule(base, swa_lr, start_step, anneal_steps, anneal)


# --------------------------------------------------------------------------------------------
# Lookahead


class LookaheadState(NamedTuple):
    """count: fast steps taken. slow: the slow weights (``None`` when the params are a
    ``fast``/``slow`` pair, which holds them). inner_state: the fast optimizer's."""

    count: jax.Array
    slow: Any
    inner_state: Any

    def averaged(self, params: Any) -> Any:
        """The averaged parameters in ``params``' dtypes (what ``eval_params`` returns)."""
        if self.slow is None:  # the slow weights are in the params themselves
            return jax.tree.map(lambda _: None, params)
        return jax.tree.map(
            lambda s, p: None if s is None else s.astype(p.dtype),
            self.slow,
            params,
            is_leaf=lambda x: x is None,
        )


def _is_pair(params: Any) -> bool:
    """Whether ``params`` is a ``fast``/``slow`` pair (``optax.LookaheadParams``)."""
    return set(getattr(params, "_fields", ())) == {"fast", "slow"}


def _fast_optimizer(fn: str, name: str, value: Any) -> Transform:
    return as_transform(value, fn, "fast_optimizer")  # the argument ``lookahead`` takes


@pytree_dataclass
class Lookahead(Transform):
    """Lookahead around a fast optimizer (updates are for the fast weights ``p``)::

    p' = p + fast_update
    every sync_period-th step:  slow <- slow + slow_step_size * (p' - slow);  p' <- slow
    """

    elementwise = True
    fn_name = "lookahead"

    inner: Transform = field(converter=_fast_optimizer)
    sync_period: Any = field(5, check=_checks.COUNT)
    slow_step_size: Any = field(0.5, check=_checks.CLOSED_UNIT)
    reset_state: bool = static_field(False)

    def _params_like_updates(self, params):
        return params.fast if _is_pair(params) else params

    def _init(self, params):
        if _is_pair(params):
            return LookaheadState(jnp.zeros((), jnp.int32), None, self.inner._init(params.fast))
        slow = jax.tree.map(lambda p: p.astype(_tree.compute_dtype(p.dtype)), params)
        return LookaheadState(jnp.zeros((), jnp.int32), slow, self.inner._init(params))

    def _update(self, updates, state, params, **extra):
        pair = _is_pair(params)
        fast = params.fast if pair else params
        u, inner_state = self.inner._update(updates, state.inner_state, fast, **extra)
        new = _new_params(fast, u, self.where())
        count = _tree.safe_increment(state.count)
        sync = count % jnp.asarray(self.sync_period, jnp.int32) == 0

        def leaf(s, x, p, uu):
            cd = s.dtype
            a = _tree.hp(self.slow_step_size, cd)
            s_new = s + a * (x.astype(cd) - s)
            u_sync = (s_new - p.astype(cd)).astype(uu.dtype)
            return jnp.where(sync, s_new, s), jnp.where(sync, u_sync, uu)

        def pair_leaf(s, p, uu):
            # The sync step's two moves as deltas: with d = fast + u - slow, the slow weights
            # move by alpha * d and the fast ones by u - (1 - alpha) * d.
            cd = _tree.compute_dtype(s.dtype, p.dtype, uu.dtype)
            a = _tree.hp(self.slow_step_size, cd)
            on = sync.astype(cd)
            d = p.astype(cd) + uu.astype(cd) - s.astype(cd)
            fast_step = uu.astype(cd) - on * (1 - a) * d
            return fast_step.astype(uu.dtype), (on * a * d).astype(s.dtype)

        if self.reset_state:
            fresh = self.inner._init(fast)
            inner_state = jax.tree.map(lambda f, s: jnp.where(sync, f, s), fresh, inner_state)
        if pair:
            res = jax.tree.map(pair_leaf, params.slow, fast, u)
            fast_updates, slow_updates = _tree.tree_unzip(params.slow, res, 2)
            updates = params._replace(fast=fast_updates, slow=slow_updates)
            return updates, LookaheadState(count, None, inner_state)
        res = jax.tree.map(leaf, state.slow, new, fast, u)
        slow, out = _tree.tree_unzip(state.slow, res, 2)
        return out, LookaheadState(count, slow, inner_state)

    def _children(self, state):
        return (("", self.inner, state.inner_state),)


def lookahead(
    fast_optimizer: Any, sync_period: Any, slow_step_size: Any, reset_state: bool = False
) -> Lookahead:
    """Lookahead: k fast steps forward, then one step of the slow weights toward them::

        fast <- fast + fast_optimizer's update                       (every step)
        every sync_period-th step:
            slow <- slow + slow_step_size * (fast - slow);  fast <- slow

    Args:
      fast_optimizer: the fast optimizer (a gradtx transform or any object with init/update).
      sync_period: k, fast steps per synchronization, an integer >= 1.
      slow_step_size: alpha, in [0, 1].
      reset_state: re-initialize the fast optimizer's state at each synchronization.

    The params may be either form:

    - an ordinary tree (gradtx's form): the params are the fast weights, the slow weights live
      in the state and ``gradtx.eval_params(state, params)`` returns them;
    - a pair with fields ``fast`` and ``slow`` (``optax.LookaheadParams``): gradients are taken
      at ``params.fast`` and the updates move both fields, as in Optax.

    Conventions:
      ``optax.lookahead``'s signature (no defaults for ``sync_period`` and ``slow_step_size``)
      and trajectory in both forms (Optax's ``LookaheadParams.fast`` is gradtx's params in the
      first). torch.optim has no lookahead.

    References:
      Zhang, Lucas, Hinton, Ba, "Lookahead Optimizer: k steps forward, 1 step back",
      NeurIPS 2019. arXiv:1907.08610
    """
    return Lookahead(fast_optimizer, sync_period, slow_step_size, reset_state)


# --------------------------------------------------------------------------------------------
# The evaluation parameters


def _is_average(x: Any) -> bool:
    return callable(getattr(type(x), "averaged", None))


def eval_params(state: Any, params: Any) -> Any:
    """The parameters to evaluate with: the average an optimizer keeps, wherever it sits in the
    transform: ``ema_params``, ``swa``, ``lookahead`` (its slow weights), ``asgd`` (torch's
    ``ax``) and the schedule-free optimizers (the averaged iterate ``x``). It finds every state
    that defines ``averaged(params)``: the one accessor for all of them.

    Leaves no averaging transform covers (masked out, another partition group) are ``params``'
    own; before the first averaged step the average is ``params`` too. With no averaging
    transform in the state, this returns ``params``. Two averages covering the same leaf raise an
    error (use one averaging transform per leaf).
    """
    found = []

    def visit(x: Any) -> Any:
        if _is_average(x):
            found.append(x)
        return x

    jax.tree.map(visit, state, is_leaf=_is_average)
    out = params
    covered = jax.tree.map(lambda _: False, params)
    for st in found:
        avg = st.averaged(params)
        clash = jax.tree.map(
            lambda c, a: bool(c and a is not None), covered, avg, is_leaf=lambda x: x is None
        )
        if any(jax.tree.leaves(clash)):
            raise ValueError(
                "gradtx.eval_params: two averaging transforms (ema_params, swa, lookahead, ...) cover "
                "the same parameters; keep one per leaf (mask or partition them apart)."
            )
        covered = jax.tree.map(
            lambda c, a: bool(c or a is not None), covered, avg, is_leaf=lambda x: x is None
        )
        out = jax.tree.map(
            lambda o, a: o if a is None else a, out, avg, is_leaf=lambda x: x is None
        )
    return out
