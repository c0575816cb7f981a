"""Line searches: Optax's zoom and backtracking searches, and torch.optim.LBFGS's strong Wolfe.

A line search scales an update direction ``u`` by a step size ``eta`` chosen from values of the
objective along the line ``w + eta * u``. It reads three extra arguments of ``update``:
``value`` (the objective at the current params), ``grad`` (its gradient there) and ``value_fn``
(the objective, ``value_fn(params, **kwargs) -> scalar``; any other extra argument that
``value_fn`` names is passed to it). Every search is a ``lax.while_loop``, so it compiles once
and runs under ``jit``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, static_field

# --------------------------------------------------------------------------------------------
# Tree arithmetic on search directions


def tree_vdot(a: Any, b: Any) -> jax.Array:
    """``Re <a, b>`` summed over the leaves (``a`` conjugated), in at least float32."""
    leaves_a = [x for x in jax.tree.leaves(a) if x is not None]
    leaves_b = [x for x in jax.tree.leaves(b) if x is not None]
    rd = value_dtype(a)
    out = jnp.zeros((), rd)
    for x, y in zip(leaves_a, leaves_b):
        cd = _tree.compute_dtype(x.dtype, y.dtype)
        out = out + jnp.real(jnp.vdot(x.astype(cd), y.astype(cd))).astype(rd)
    return out


def tree_axpy(x: Any, alpha: Any, y: Any) -> Any:
    """``x + alpha * y`` leaf by leaf, each result in its ``x`` leaf's dtype."""

    def leaf(xi, yi):
        cd = _tree.compute_dtype(xi.dtype, yi.dtype)
        return (xi.astype(cd) + _tree.hp(alpha, cd) * yi.astype(cd)).astype(xi.dtype)

    return jax.tree.map(leaf, x, y)


def tree_scale(alpha: Any, x: Any) -> Any:
    """``alpha * x`` leaf by leaf, each result in its leaf's dtype."""

    def leaf(xi):
        cd = _tree.compute_dtype(xi.dtype)
        return (_tree.hp(alpha, cd) * xi.astype(cd)).astype(xi.dtype)

    return jax.tree.map(leaf, x)


def value_dtype(tree: Any) -> jnp.dtype:
    """The real dtype scalars of a search over ``tree`` are kept in (float32 or wider)."""
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    return _tree.compute_dtype(*(_tree.real_dtype(jnp.result_type(x)) for x in leaves))


class _AtLeast:
    """A range ``[low, inf]`` that accepts inf (``curv_rtol=inf`` drops the curvature test)."""

    def __init__(self, low: float, *, low_open: bool = False):
        self.interval = _checks.Interval(low, low_open=low_open)

    def __call__(self, fn: str, name: str, value: Any) -> None:
        arr = _checks.concrete_values(value)
        if arr is not None and arr.ndim == 0 and float(arr) == float("inf"):
            return
        try:
            self.interval(fn, name, value)
        except _checks.HyperparameterError as err:
            raise _checks.HyperparameterError(str(err).replace(", inf)", ", inf]")) from None


def _where(cond: Any, a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.where(cond, x, y), a, b)


def _objective_args(where: str, extra: dict[str, Any]) -> tuple[Callable[..., Any], Any, Any, dict]:
    """``value_fn``, ``value``, ``grad`` and the keyword arguments ``value_fn`` takes."""
    missing = [k for k in ("value", "grad", "value_fn") if extra.get(k) is None]
    if missing:
        raise TypeError(
            f"{where}: a line search needs the objective: call update(updates, state, params, "
            f"value=loss, grad=grads, value_fn=loss_fn); missing {', '.join(missing)}."
        )
    value_fn = extra["value_fn"]
    rest = {k: v for k, v in extra.items() if k not in ("value", "grad", "value_fn")}
    try:
        params = inspect.signature(value_fn).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        params = {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return value_fn, extra["value"], extra["grad"], rest
    unused = sorted(k for k in rest if k not in params)
    if unused:
        raise TypeError(
            f"{where}: the extra arguments {unused} are not arguments of value_fn; pass only "
            f"the keyword arguments value_fn takes (besides value, grad and value_fn)."
        )
    return value_fn, extra["value"], extra["grad"], rest


# --------------------------------------------------------------------------------------------
# Zoom line search (Optax's scale_by_zoom_linesearch)


class ZoomLinesearchInfo(NamedTuple):
    num_linesearch_steps: jax.Array  # function evaluations of the last search (int32)
    decrease_error: jax.Array  # > 0: the last step does not decrease the value enough
    curvature_error: jax.Array  # > 0: the last step's slope is not small enough


class ScaleByZoomLinesearchState(NamedTuple):
    learning_rate: jax.Array  # eta, the step size of the last search
    value: jax.Array  # f(w + eta * u): reused by value_and_grad_from_state
    grad: Any  # grad f(w + eta * u): reused by value_and_grad_from_state
    info: ZoomLinesearchInfo


class ZoomLinesearchState(NamedTuple):
    """The loop state of one zoom search.

    ``params``, ``updates``, ``stepsize_guess``, ``value_init`` and ``slope_init`` are fixed
    during the search; ``stepsize``, ``value``, ``grad`` and ``slope`` describe the last trial
    step; ``low`` and ``high`` bracket a valid step once ``interval_found`` (``value_high >=
    value_low``); ``cubic_ref`` is the third point of the cubic interpolation; the ``safe_*``
    fields hold the best step with enough decrease, the fallback when the search fails.
    """

    count: jax.Array
    params: Any
    updates: Any
    stepsize_guess: jax.Array
    stepsize: jax.Array
    value: jax.Array
    grad: Any
    slope: jax.Array
    value_init: jax.Array
    slope_init: jax.Array
    decrease_error: jax.Array
    curvature_error: jax.Array
    error: jax.Array
    interval_found: jax.Array
    done: jax.Array
    failed: jax.Array
    low: jax.Array
    value_low: jax.Array
    slope_low: jax.Array
    high: jax.Array
    value_high: jax.Array
    slope_high: jax.Array
    cubic_ref: jax.Array
    value_cubic_ref: jax.Array
    safe_stepsize: jax.Array
    safe_value: jax.Array
    safe_grad: Any


def _cubicmin(a, fa, fpa, b, fb, c, fc):
    """The critical point of the cubic through (a, fa), (b, fb), (c, fc) with slope fpa at a.

    ``p(x) = A (x - a)^3 + B (x - a)^2 + fpa (x - a) + fa``; NaN when it has none.
    """
    db, dc = b - a, c - a
    denom = (db * dc) ** 2 * (db - dc)
    rb = fb - fa - fpa * db
    rc = fc - fa - fpa * dc
    big_a = (dc**2 * rb - db**2 * rc) / denom
    big_b = (-(dc**3) * rb + db**3 * rc) / denom
    radical = big_b * big_b - 3.0 * big_a * fpa
    return a + (-big_b + jnp.sqrt(radical)) / (3.0 * big_a)


def _quadmin(a, fa, fpa, b, fb):
    """The critical point of the quadratic through (a, fa), (b, fb) with slope fpa at a."""
    db = b - a
    big_b = (fb - fa - fpa * db) / db**2
    return a - fpa / (2.0 * big_b)


@pytree_dataclass
class ScaleByZoomLinesearch(Transform):
    """Scales the update direction ``u`` by a step ``eta`` meeting the strong Wolfe conditions::

        decrease:   f(w + eta u) <= f(w) + slope_rtol * eta * <u, grad f(w)> + tol
        curvature:  |<u, grad f(w + eta u)>| <= curv_rtol * |<u, grad f(w)>| + tol
        (approximate decrease, Hager and Zhang, where f(w + eta u) <= f(w) + approx_dec_rtol |f(w)|:
                    <u, grad f(w + eta u)> <= (2 slope_rtol - 1) <u, grad f(w)>)
        u <- eta * u

    Phase 1 grows ``eta`` by ``increase_factor`` from its first guess until an interval holding
    a valid step is found; phase 2 shrinks that interval (cubic, then quadratic interpolation,
    then bisection) until both conditions hold. When ``max_linesearch_steps`` evaluations do not
    find one, the best step that decreases the value enough is taken (or, failing that, the last
    one tried). Optax's ``scale_by_zoom_linesearch``, step for step.
    """

    fn_name = "scale_by_zoom_linesearch"
    elementwise = True  # inner products over every element only

    max_linesearch_steps: int = static_field(20, check=_checks.COUNT)
    max_learning_rate: Any = field(None, check=_checks.POSITIVE)
    tol: Any = field(0.0, check=_checks.NONNEGATIVE)
    increase_factor: Any = field(2.0, check=_AtLeast(1.0))
    slope_rtol: Any = field(1e-4, check=_checks.UNIT)
    curv_rtol: Any = field(0.9, check=_AtLeast(0.0, low_open=True))
    approx_dec_rtol: Any = field(1e-6, check=_checks.NONNEGATIVE)
    stepsize_precision: Any = field(1e-5, check=_checks.NONNEGATIVE)
    initial_guess_strategy: str = static_field("keep", choices=("keep", "one"))
    verbose: bool = static_field(False)

    def _init(self, params):
        vd = value_dtype(params)
        inf = jnp.asarray(jnp.inf, vd)
        return ScaleByZoomLinesearchState(
            jnp.ones((), vd),
            inf,
            _tree.tree_zeros_like(params),
            ZoomLinesearchInfo(jnp.zeros((), jnp.int32), inf, inf),
        )

    def _search_init(self, updates, params, value, grad, guess) -> ZoomLinesearchState:
        """The state before the first trial step of a search from ``params`` along ``updates``."""
        vd = value_dtype(params)
        zero, inf = jnp.zeros((), vd), jnp.asarray(jnp.inf, vd)
        value0 = jnp.asarray(value).astype(vd)
        slope0 = tree_vdot(updates, grad).astype(vd)
        no = jnp.asarray(False)
        return ZoomLinesearchState(
            jnp.zeros((), jnp.int32), params, updates, jnp.asarray(guess).astype(vd),
            zero, value0, grad, slope0, value0, slope0, inf, inf, inf, no, no, no,
            zero, value0, slope0, zero, value0, slope0, zero, value0, zero, value0, grad,
        )  # fmt: skip

    def _search_step(self, z: ZoomLinesearchState, value_and_grad_fn, fn_kwargs):
        """One trial step: phase 1 (interval search) or phase 2 (zoom), then the fallback."""
        vd = z.value_init.dtype
        h = lambda x: _tree.hp(x, vd)
        slope_rtol, curv_rtol, tol = h(self.slope_rtol), h(self.curv_rtol), h(self.tol)
        zero, inf = jnp.zeros((), vd), jnp.asarray(jnp.inf, vd)
        value0, slope0 = z.value_init, z.slope_init
        threshold = h(self.stepsize_precision)

        def on_line(eta):
            v, g = value_and_grad_fn(tree_axpy(z.params, eta, z.updates), **fn_kwargs)
            g = _tree.tree_cast_like(g, z.grad)
            return jnp.asarray(v).astype(vd), g, tree_vdot(g, z.updates).astype(vd)

        def decrease_error(eta, v, s):
            err = v - value0 - slope_rtol * eta * slope0
            if self.approx_dec_rtol is not None:
                approx = s - (2 * slope_rtol - 1.0) * slope0
                gap = v - value0 - h(self.approx_dec_rtol) * jnp.abs(value0)
                err = jnp.minimum(jnp.maximum(approx, gap), err)
            err = jnp.maximum(err, zero)
            return jnp.where(jnp.isnan(err), inf, err)

        def curvature_error(s):
            err = jnp.maximum(jnp.abs(s) - curv_rtol * jnp.abs(slope0), zero)
            return jnp.where(jnp.isnan(err), inf, err)

        last = z.count + 1 >= self.max_linesearch_steps
        # Phase 1: the next trial step of the interval search.
        grown = jnp.where(z.count == 0, z.stepsize_guess, h(self.increase_factor) * z.stepsize)
        if self.max_learning_rate is None:
            reached = jnp.asarray(False)
        else:
            cap = h(self.max_learning_rate)
            reached = grown >= cap
            grown = jnp.minimum(grown, cap)
        # Phase 2: a point inside the bracket [low, high].
        delta = jnp.abs(z.high - z.low)
        left, right = jnp.minimum(z.high, z.low), jnp.maximum(z.high, z.low)
        cubic = _cubicmin(
            z.low, z.value_low, z.slope_low, z.high, z.value_high, z.cubic_ref,
            z.value_cubic_ref,
        )  # fmt: skip
        use_cubic = (cubic > left + 0.2 * delta) & (cubic < right - 0.2 * delta)
        quad = _quadmin(z.low, z.value_low, z.slope_low, z.high, z.value_high)
        use_quad = ~use_cubic & (quad > left + 0.1 * delta) & (quad < right - 0.1 * delta)
        middle = jnp.where(use_cubic, cubic, jnp.where(use_quad, quad, (z.low + z.high) / 2.0))

        zooming = z.interval_found
        eta = jnp.where(zooming, middle, grown)
        v, g, s = on_line(eta)
        dec, curv = decrease_error(eta, v, s), curvature_error(s)
        ok = jnp.maximum(dec, curv) <= tol
        decreases = dec <= tol

        # Phase 1 bookkeeping.
        high_is_new = (dec > 0.0) | ((v >= z.value) & (z.count > 0))
        low_is_new = (s >= 0.0) & ~high_is_new
        prev, new = (z.stepsize, z.value, z.slope), (eta, v, s)
        s_low = _where(low_is_new, new, prev)
        s_high = _where(low_is_new, prev, new)
        s_found = high_is_new | low_is_new | ok
        s_done = ok | (reached & ~s_found)
        s_safe = _where(decreases, (eta, v, g), (z.safe_stepsize, z.safe_value, z.safe_grad))
        s_failed = last & ~s_done

        # Phase 2 bookkeeping.
        high_to_middle = (dec > 0.0) | (v >= z.value_low)
        high_to_low = (s * (z.high - z.low) >= 0.0) & ~high_to_middle
        low_b, high_b = (z.low, z.value_low, z.slope_low), (z.high, z.value_high, z.slope_high)
        z_high = _where(high_to_middle, new, _where(high_to_low, low_b, high_b))
        z_low = _where(high_to_middle, low_b, new)
        z_ref = _where(high_to_middle | high_to_low, high_b[:2], low_b[:2])
        better = decreases & (v < z.safe_value)
        z_safe = _where(better, (eta, v, g), (z.safe_stepsize, z.safe_value, z.safe_grad))
        too_small = delta <= threshold
        z_failed = (last | (too_small & (z_safe[0] > 0.0))) & ~ok

        low = _where(zooming, z_low, s_low)
        high = _where(zooming, z_high, s_high)
        ref = _where(zooming, z_ref, s_low[:2])
        safe = _where(zooming, z_safe, s_safe)
        out = ZoomLinesearchState(
            _tree.safe_increment(z.count), z.params, z.updates, z.stepsize_guess, eta, v, g, s,
            value0, slope0, dec, curv, jnp.maximum(dec, curv),
            jnp.where(zooming, z.interval_found, s_found),
            jnp.where(zooming, ok, s_done),
            jnp.where(zooming, z_failed, s_failed),
            *low, *high, *ref, *safe,
        )  # fmt: skip
        # On failure: the best step with enough decrease, if any (or when even this step gave
        # inf/NaN, the safe fallback of step 0).
        fallback = (out.safe_stepsize > 0.0) | jnp.isinf(out.decrease_error)
        use_safe = out.failed & fallback
        eta, v, g = _where(
            use_safe, (out.safe_stepsize, out.safe_value, out.safe_grad), (eta, v, g)
        )
        return out._replace(stepsize=eta, value=v, grad=g)

    def _update(self, updates, state, params, **extra):
        value_fn, value, grad, kwargs = _objective_args(self.where(), extra)
        vd = value_dtype(params)
        if self.initial_guess_strategy == "one":
            guess = jnp.ones((), vd)
        else:
            guess = jnp.asarray(state.learning_rate).astype(vd)
        z0 = self._search_init(updates, params, value, grad, guess)
        value_and_grad = jax.value_and_grad(value_fn)
        z = jax.lax.while_loop(
            lambda z: ~(z.done | z.failed),
            lambda z: self._search_step(z, value_and_grad, kwargs),
            z0,
        )
        if self.verbose:
            jax.debug.print(
                "gradtx.scale_by_zoom_linesearch: step {eta} after {n} evaluations; decrease "
                "error {dec}, curvature error {curv} (0 = condition met)",
                eta=z.stepsize, n=z.count, dec=z.decrease_error, curv=z.curvature_error,
            )  # fmt: skip
        info = ZoomLinesearchInfo(z.count, z.decrease_error, z.curvature_error)
        new_state = ScaleByZoomLinesearchState(
            z.stepsize.astype(state.learning_rate.dtype),
            z.value.astype(state.value.dtype),
            _tree.tree_cast_like(z.grad, state.grad),
            info,
        )
        return tree_scale(z.stepsize, updates), new_state


def scale_by_zoom_linesearch(
    max_linesearch_steps: int,
    max_learning_rate: Any = None,
    tol: Any = 0.0,
    increase_factor: Any = 2.0,
    slope_rtol: Any = 1e-4,
    curv_rtol: Any = 0.9,
    approx_dec_rtol: Any = 1e-6,
    stepsize_precision: Any = 1e-5,
    initial_guess_strategy: str = "keep",
    verbose: bool = False,
) -> ScaleByZoomLinesearch:
    """A line search for a step meeting the strong Wolfe conditions (Optax's signature).

    Update rule (``u`` is the incoming direction, ``w`` the params)::

        find eta with   f(w + eta u) <= f(w) + slope_rtol * eta * <u, grad f(w)> + tol
                  and   |<u, grad f(w + eta u)>| <= curv_rtol * |<u, grad f(w)>| + tol
        u <- eta * u

    ``update`` needs ``value=``, ``grad=`` and ``value_fn=`` (see the module docstring);
    ``value_and_grad_from_state(value_fn)`` reuses the value and gradient the search computed
    at the accepted step.

    Args:
      max_linesearch_steps: the most function evaluations per search, an integer >= 1.
      max_learning_rate: the largest step, > 0, or None (default) for no bound.
      tol: slack on both conditions, >= 0 (default 0).
      increase_factor: growth of the trial step while no interval is found, in [1, inf]
        (default 2).
      slope_rtol: the sufficient-decrease constant c1, in [0, 1) (default 1e-4).
      curv_rtol: the curvature constant c2, in (0, inf] (default 0.9; inf drops the
        condition).
      approx_dec_rtol: relative value change below which Hager and Zhang's approximate
        decrease condition is accepted too, >= 0, or None to use only the decrease condition
        (default 1e-6).
      stepsize_precision: once the bracket is shorter than this (>= 0, default 1e-5) a step
        with enough decrease is accepted without the curvature condition.
      initial_guess_strategy: ``"keep"`` (default: start from the last accepted step, for
        first-order directions) or ``"one"`` (start from 1, for quasi-Newton directions).
      verbose: print the accepted step and the errors after each search.

    References:
      Nocedal, Wright, "Numerical Optimization", Springer, 2nd ed. 2006, algorithms 3.5 and 3.6.
      doi:10.1007/978-0-387-40065-5
      Hager, Zhang, "Algorithm 851: CG_DESCENT, a conjugate gradient method with guaranteed
      descent", ACM Transactions on Mathematical Software, 2006. doi:10.1145/1132973.1132979
    """
    return ScaleByZoomLinesearch(
        max_linesearch_steps, max_learning_rate, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, stepsize_precision, initial_guess_strategy, verbose,
    )  # fmt: skip


def zoom_linesearch(
    max_linesearch_steps: int,
    max_stepsize: Any = None,
    tol: Any = 0.0,
    increase_factor: Any = 2.0,
    slope_rtol: Any = 1e-4,
    curv_rtol: Any = 0.9,
    approx_dec_rtol: Any = 1e-6,
    interval_threshold: Any = 1e-5,
    verbose: bool = False,
) -> tuple[Callable[..., ZoomLinesearchState], Callable[..., ZoomLinesearchState], Callable]:
    """The zoom line search as three functions, for writing one's own loop around it.

    The search looks for a step ``eta`` along ``u`` from ``w`` meeting the strong Wolfe
    conditions (see ``scale_by_zoom_linesearch``, which runs this search inside a transform)::

        f(w + eta u) <= f(w) + slope_rtol * eta * <u, grad f(w)> + tol
        |<u, grad f(w + eta u)>| <= curv_rtol * |<u, grad f(w)>| + tol

    Args:
      max_linesearch_steps: the most function evaluations, an integer >= 1.
      max_stepsize: the largest step, > 0, or None for no bound.
      tol: slack on both conditions, >= 0.
      increase_factor: growth of the trial step while no interval is found, in [1, inf].
      slope_rtol: the sufficient-decrease constant c1, in [0, 1).
      curv_rtol: the curvature constant c2, in (0, inf].
      approx_dec_rtol: Hager and Zhang's approximate decrease tolerance, >= 0, or None.
      interval_threshold: once the bracket is shorter than this (>= 0), a step with enough
        decrease is accepted.
      verbose: unused by the functions (kept for Optax's signature).

    Returns:
      ``(init_fn, step_fn, cond_step_fn)``:

      - ``init_fn(updates, params, *, value, grad, prev_stepsize=1.0,
        initial_guess_strategy="one") -> ZoomLinesearchState``: the state before the search;
        the first trial step is 1 (``"one"``) or ``prev_stepsize`` (``"keep"``);
      - ``step_fn(state, *, value_and_grad_fn, fn_kwargs) -> ZoomLinesearchState``: one trial
        step, where ``value_and_grad_fn(params, **fn_kwargs) -> (value, grad)``;
      - ``cond_step_fn(state) -> bool``: whether the search goes on.

      The accepted step is ``state.stepsize``, with ``state.value`` and ``state.grad`` there.

    Conventions:
      ``optax.zoom_linesearch``: same signature, state fields and numbers.

    References:
      Nocedal, Wright, "Numerical Optimization", Springer, 2nd ed. 2006, algorithms 3.5 and 3.6.
      doi:10.1007/978-0-387-40065-5
      Hager, Zhang, "Algorithm 851: CG_DESCENT, a conjugate gradient method with guaranteed
      descent", ACM Transactions on Mathematical Software, 2006. doi:10.1145/1132973.1132979
    """
    fn = "zoom_linesearch"
    _checks.COUNT(fn, "max_linesearch_steps", max_linesearch_steps)
    _checks.POSITIVE(fn, "max_stepsize", max_stepsize)
    _checks.NONNEGATIVE(fn, "tol", tol)
    _AtLeast(1.0)(fn, "increase_factor", increase_factor)
    _checks.UNIT(fn, "slope_rtol", slope_rtol)
    _AtLeast(0.0, low_open=True)(fn, "curv_rtol", curv_rtol)
    _checks.NONNEGATIVE(fn, "approx_dec_rtol", approx_dec_rtol)
    _checks.NONNEGATIVE(fn, "interval_threshold", interval_threshold)
    search = ScaleByZoomLinesearch(
        max_linesearch_steps, max_stepsize, tol, increase_factor, slope_rtol, curv_rtol,
        approx_dec_rtol, interval_threshold, "one", verbose,
    )  # fmt: skip

    def init_fn(
        updates: Any,
        params: Any,
        *,
        value: Any,
        grad: Any,
        prev_stepsize: Any = 1.0,
        initial_guess_strategy: str = "one",
    ) -> ZoomLinesearchState:
        _checks.check_choice(
            "zoom_linesearch", "initial_guess_strategy", initial_guess_strategy, ("one", "keep")
        )
        guess = 1.0 if initial_guess_strategy == "one" else prev_stepsize
        return search._search_init(updates, params, value, grad, guess)

    def step_fn(
        state: ZoomLinesearchState, *, value_and_grad_fn: Callable[..., Any], fn_kwargs: Any
    ) -> ZoomLinesearchState:
        return search._search_step(state, value_and_grad_fn, fn_kwargs or {})

    def cond_step_fn(state: ZoomLinesearchState) -> jax.Array:
        return ~(state.done | state.failed)

    return init_fn, step_fn, cond_step_fn


# --------------------------------------------------------------------------------------------
# Backtracking line search (Optax's scale_by_backtracking_linesearch)


class BacktrackingLinesearchInfo(NamedTuple):
    num_linesearch_steps: jax.Array  # function evaluations of the last search (int32)
    decrease_error: jax.Array  # > atol: the accepted step does not decrease enough


class ScaleByBacktrackingLinesearchState(NamedTuple):
    learning_rate: jax.Array  # eta, the step size of the last search
    value: jax.Array  # f(w + eta * u): reused by value_and_grad_from_state
    grad: Any  # grad f(w + eta * u) with store_grad=True, else None
    info: BacktrackingLinesearchInfo


@pytree_dataclass
class ScaleByBacktrackingLinesearch(Transform):
    """Shrinks the step ``eta`` until the decrease (Armijo) condition holds::

        eta_0 = min(increase_factor * eta_prev, max_learning_rate)
        eta_j = decrease_factor^j * eta_0,  first j with
            f(w + eta_j u) <= (1 + rtol) f(w) + eta_j * slope_rtol * <u, grad f(w)> + atol
        u <- eta_j * u       (eta = 0 when every trial gave inf or NaN)

    Optax's ``scale_by_backtracking_linesearch``, step for step.
    """

    fn_name = "scale_by_backtracking_linesearch"
    elementwise = True  # inner products over every element only

    max_backtracking_steps: int = static_field(15, check=_checks.Interval(0, integer=True))
    slope_rtol: Any = field(1e-4, check=_checks.UNIT)
    decrease_factor: Any = field(
        0.8, check=_checks.Interval(0.0, 1.0, low_open=True, high_open=True)
    )
    increase_factor: Any = field(1.5, check=_AtLeast(1.0))
    max_learning_rate: Any = field(1.0, check=_checks.POSITIVE)
    atol: Any = field(0.0, check=_checks.NONNEGATIVE)
    rtol: Any = field(0.0, check=_checks.NONNEGATIVE)
    store_grad: bool = static_field(False)
    verbose: bool = static_field(False)

    def _init(self, params):
        vd = value_dtype(params)
        inf = jnp.asarray(jnp.inf, vd)
        grad = _tree.tree_zeros_like(params) if self.store_grad else None
        info = BacktrackingLinesearchInfo(jnp.zeros((), jnp.int32), inf)
        return ScaleByBacktrackingLinesearchState(jnp.ones((), vd), inf, grad, info)

    def _update(self, updates, state, params, **extra):
        value_fn, value, grad, kwargs = _objective_args(self.where(), extra)
        fn = lambda p: value_fn(p, **kwargs)
        vd = value_dtype(params)
        h = lambda x: _tree.hp(x, vd)
        zero, inf = jnp.zeros((), vd), jnp.asarray(jnp.inf, vd)
        value0 = jnp.asarray(value).astype(vd)
        slope = tree_vdot(grad, updates).astype(vd)
        atol, n_max = h(self.atol), self.max_backtracking_steps

        def decrease_error(eta, v):
            err = v - (1.0 + h(self.rtol)) * value0 - eta * h(self.slope_rtol) * slope
            err = jnp.where(jnp.isnan(err), inf, err)
            return jnp.maximum(err, zero)

        def body(c):
            eta, _, g, _, j = c
            eta = jnp.where(j > 0, h(self.decrease_factor) * eta, eta)
            trial = tree_axpy(params, eta, updates)
            if self.store_grad:
                out, vjp = jax.vjp(fn, trial)
                v = jnp.asarray(out).astype(vd)
                err = decrease_error(eta, v)
                g = jax.lax.cond(
                    (err <= atol) | (j == n_max),
                    lambda: _tree.tree_cast_like(vjp(jnp.ones_like(out))[0], g),
                    lambda: g,
                )
            else:
                v = jnp.asarray(fn(trial)).astype(vd)
                err = decrease_error(eta, v)
            return eta, v, g, err, j + 1

        eta0 = jnp.minimum(h(self.increase_factor) * state.learning_rate, h(self.max_learning_rate))
        g0 = _tree.tree_zeros_like(params) if self.store_grad else None
        c0 = (eta0, value0, g0, inf, jnp.zeros((), jnp.int32))
        eta, v, g, err, n = jax.lax.while_loop(
            lambda c: ~(c[3] <= atol) & (c[4] <= n_max), body, c0
        )
        eta = jnp.where(jnp.isinf(err), zero, eta)
        if self.verbose:
            jax.debug.print(
                "gradtx.scale_by_backtracking_linesearch: step {eta} after {n} evaluations; "
                "decrease error {err} (<= atol: condition met)", eta=eta, n=n, err=err,
            )  # fmt: skip
        new_state = ScaleByBacktrackingLinesearchState(
            eta.astype(state.learning_rate.dtype),
            v.astype(state.value.dtype),
            g,
            BacktrackingLinesearchInfo(n, err.astype(state.info.decrease_error.dtype)),
        )
        return tree_scale(eta, updates), new_state


def scale_by_backtracking_linesearch(
    max_backtracking_steps: int,
    slope_rtol: Any = 1e-4,
    decrease_factor: Any = 0.8,
    increase_factor: Any = 1.5,
    max_learning_rate: Any = 1.0,
    atol: Any = 0.0,
    rtol: Any = 0.0,
    store_grad: bool = False,
    verbose: bool = False,
) -> ScaleByBacktrackingLinesearch:
    """A backtracking line search for sufficient decrease (Optax's signature).

    Update rule (``u`` is the incoming direction, ``w`` the params, ``j = 0, 1, ...``)::

        eta_j = decrease_factor^j * min(increase_factor * eta_prev, max_learning_rate)
        accept the first eta_j with
            f(w + eta_j u) <= (1 + rtol) f(w) + eta_j * slope_rtol * <u, grad f(w)> + atol
        u <- eta_j * u

    ``update`` needs ``value=``, ``grad=`` and ``value_fn=`` (see the module docstring).

    Args:
      max_backtracking_steps: the most shrinking steps per search, an integer >= 0 (one more
        evaluation than this at most).
      slope_rtol: the sufficient-decrease constant, in [0, 1) (default 1e-4).
      decrease_factor: the shrink factor, in (0, 1) (default 0.8).
      increase_factor: growth of the first guess over the last accepted step, in [1, inf]
        (default 1.5; inf starts every search at ``max_learning_rate``).
      max_learning_rate: the largest step, > 0 (default 1).
      atol: absolute slack on the condition, >= 0 (default 0).
      rtol: relative slack on the value, >= 0 (default 0).
      store_grad: also keep the gradient at the accepted step in the state, for
        ``value_and_grad_from_state`` (default False).
      verbose: print the accepted step and the decrease error after each search.

    References:
      Armijo, "Minimization of functions having Lipschitz continuous first partial
      derivatives", Pacific Journal of Mathematics, 1966. doi:10.2140/pjm.1966.16.1
      Vaswani, Mishkin, Laradji, Schmidt, Gidel, Lacoste-Julien, "Painless Stochastic Gradient:
      Interpolation, Line-Search, and Convergence Rates", NeurIPS 2019. arXiv:1905.09997
    """
    return ScaleByBacktrackingLinesearch(
        max_backtracking_steps, slope_rtol, decrease_factor, increase_factor,
        max_learning_rate, atol, rtol, store_grad, verbose,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reusing the search's last evaluation


def value_and_grad_from_state(
    value_fn: Callable[..., Any],
) -> Callable[..., tuple[Any, Any]]:
    """``jax.value_and_grad(value_fn)`` that reuses the value and gradient a line search stored.

    The returned function is called as ``value_and_grad(params, *args, state=opt_state,
    **kwargs)``. When the state holds a finite ``value`` (and its ``grad``), left there by the
    line search at the params it returned, those are returned without evaluating ``value_fn``;
    otherwise (the first step, or after inf/NaN) ``jax.value_and_grad(value_fn)`` runs. Use it
    only for deterministic objectives: the stored value belongs to the last batch.

    Args:
      value_fn: the objective, ``value_fn(params, *args, **kwargs) -> scalar``.

    Returns:
      ``value_and_grad(params, *args, state, **kwargs) -> (value, grad)``.
    """

    def value_and_grad(params: Any, *args: Any, state: Any, **kwargs: Any) -> tuple[Any, Any]:
        values, grads = _tree.find_fields(state, "value"), _tree.find_fields(state, "grad")
        if len(values) != 1 or len(grads) != 1 or grads[0] is None:
            raise ValueError(
                "gradtx.value_and_grad_from_state: the state must hold exactly one line search "
                "that stores its value and gradient (scale_by_zoom_linesearch, or "
                f"scale_by_backtracking_linesearch with store_grad=True); found {len(values)} "
                f"'value' and {len([g for g in grads if g is not None])} 'grad' fields."
            )
        value, grad = values[0], grads[0]

        def evaluate(p, a, kw):
            v, g = jax.value_and_grad(value_fn)(p, *a, **kw)
            return jnp.asarray(v).astype(value.dtype), _tree.tree_cast_like(g, grad)

        return jax.lax.cond(
            jnp.isfinite(value),
            lambda p, a, kw: (value, grad),
            evaluate,
            params,
            args,
            kwargs,
        )

    return value_and_grad


# --------------------------------------------------------------------------------------------
# torch.optim.LBFGS's strong Wolfe search (cubic interpolation)


def _torch_cubic(x1, f1, g1, x2, f2, g2, lo=None, hi=None):
    """The minimizer of the cubic through (x1, f1, g1) and (x2, f2, g2), clipped to [lo, hi]
    (default: the interval between x1 and x2); its midpoint when the cubic has no minimum."""
    if lo is None:
        lo, hi = jnp.minimum(x1, x2), jnp.maximum(x1, x2)
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1**2 - g1 * g2
    d2 = jnp.sqrt(jnp.maximum(d2_square, 0.0))
    forward = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    backward = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    min_pos = jnp.where(x1 <= x2, forward, backward)
    return jnp.where(d2_square >= 0, jnp.minimum(jnp.maximum(min_pos, lo), hi), (lo + hi) / 2.0)


def _tree_max_abs(tree: Any, dtype: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(tree) if x is not None]
    out = jnp.zeros((), dtype)
    for x in leaves:
        out = jnp.maximum(out, jnp.max(jnp.abs(x)).astype(dtype))
    return out


def _pair(a: Any, b: Any) -> Any:
    return jax.tree.map(lambda x, y: jnp.stack([x, y]), a, b)


def _pick(pair: Any, i: Any) -> Any:
    return jax.tree.map(lambda x: x[i], pair)


def _put(pair: Any, i: Any, value: Any) -> Any:
    return jax.tree.map(lambda x, v: x.at[i].set(v), pair, value)


def torch_strong_wolfe(
    value_and_grad: Callable[[Any], tuple[jax.Array, Any]],
    x: Any,
    t: jax.Array,
    d: Any,
    f: jax.Array,
    g: Any,
    gtd: jax.Array,
    max_ls: Any,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
    """torch.optim.LBFGS's strong Wolfe line search along ``d`` from ``x``.

    Phase 1 tries ``t``, then cubic extrapolations inside ``[t + 0.01 (t - t_prev), 10 t]``,
    until a step meets both conditions or a bracket is found::

        f(x + t d) <= f + c1 * t * gtd,     |<grad f(x + t d), d>| <= -c2 * gtd

    Phase 2 shrinks the bracket by safeguarded cubic interpolation until a step meets both, the
    bracket is shorter than ``tolerance_change / max|d|``, or ``max_ls`` evaluations are spent.

    Returns:
      ``(f_new, g_new, t, evaluations)`` at the accepted step (the bracket end with the lowest
      value).
    """
    vd = jnp.result_type(f)
    d_norm = _tree_max_abs(d, vd)
    zero_i = jnp.zeros((), jnp.int32)

    def on_line(step):
        v, gn = value_and_grad(tree_axpy(x, step, d))
        return jnp.asarray(v).astype(vd), gn, tree_vdot(gn, d).astype(vd)

    def armijo(c):
        ls_iter, step, _, f_prev, _, _, f_new, _, _ = c
        return (f_new > (f + c1 * step * gtd)) | ((ls_iter > 1) & (f_new >= f_prev))

    def flags(c):
        gtd_new = c[8]
        return armijo(c), jnp.abs(gtd_new) <= -c2 * gtd, gtd_new >= 0

    def bracket_cond(c):
        a, curv, pos = flags(c)
        return (c[0] < max_ls) & ~(a | curv | pos)

    def bracket_body(c):
        ls_iter, step, t_prev, f_prev, _g_prev, gtd_prev, f_new, g_new, gtd_new = c
        lo, hi = step + 0.01 * (step - t_prev), step * 10
        new_t = _torch_cubic(t_prev, f_prev, gtd_prev, step, f_new, gtd_new, lo, hi)
        f_n, g_n, gtd_n = on_line(new_t)
        return (ls_iter + 1, new_t, step, f_new, g_new, gtd_new, f_n, g_n, gtd_n)

    f_new, g_new, gtd_new = on_line(t)
    c0 = (zero_i, jnp.asarray(t).astype(vd), jnp.zeros((), vd), f, g, gtd, f_new, g_new, gtd_new)
    c = jax.lax.while_loop(bracket_cond, bracket_body, c0)
    ls_iter, step, t_prev, f_prev, g_prev, gtd_prev, f_new, g_new, gtd_new = c
    a, curv, _pos = flags(c)
    hit_max = ls_iter == max_ls
    done = ~hit_max & ~a & curv
    # The bracket: [0, t] after max_ls trials, [t, t] when t is already good, else [t_prev, t].
    first = (
        jnp.where(hit_max, 0.0, jnp.where(done, step, t_prev)),
        jnp.where(hit_max, f, jnp.where(done, f_new, f_prev)),
        _where(hit_max, g, _where(done, g_new, g_prev)),
        jnp.where(hit_max, gtd, jnp.where(done, gtd_new, gtd_prev)),
    )
    bt = jnp.stack([first[0].astype(vd), step])
    bf = jnp.stack([first[1], f_new])
    bg = _pair(first[2], g_new)
    bgtd = jnp.stack([first[3], gtd_new])
    low = jnp.where(bf[0] <= bf[1], 0, 1).astype(jnp.int32)

    def zoom_cond(z):
        ls_iter, bt, _, _, _, _, _, done = z
        return ~done & (ls_iter < max_ls) & ~(jnp.abs(bt[1] - bt[0]) * d_norm < tolerance_change)

    def zoom_body(z):
        ls_iter, bt, bf, bg, bgtd, low, insuf, done = z
        high = 1 - low
        step = _torch_cubic(bt[0], bf[0], bgtd[0], bt[1], bf[1], bgtd[1])
        b_max, b_min = jnp.max(bt), jnp.min(bt)
        eps = 0.1 * (b_max - b_min)
        near = jnp.minimum(b_max - step, step - b_min) < eps
        outside = insuf | (step >= b_max) | (step <= b_min)
        moved = jnp.where(jnp.abs(step - b_max) < jnp.abs(step - b_min), b_max - eps, b_min + eps)
        step = jnp.where(near & outside, moved, step)
        insuf = near & ~outside
        f_n, g_n, gtd_n = on_line(step)
        new = (step, f_n, g_n, gtd_n)
        worse = (f_n > (f + c1 * step * gtd)) | (f_n >= bf[low])
        good = jnp.abs(gtd_n) <= -c2 * gtd
        # Not worse: the new point becomes the low end; the old low end becomes the high end
        # when the slope there points back across the bracket.
        flip = ~worse & ~good & (gtd_n * (bt[high] - bt[low]) >= 0)
        old_low = (bt[low], bf[low], _pick(bg, low), bgtd[low])
        arrays = (bt, bf, bg, bgtd)
        at_high = _where(worse, new, _where(flip, old_low, _pick4(arrays, high)))
        at_low = _where(worse, _pick4(arrays, low), new)
        arrays = tuple(_put(arr, high, v) for arr, v in zip(arrays, at_high))
        arrays = tuple(_put(arr, low, v) for arr, v in zip(arrays, at_low))
        bt, bf, bg, bgtd = arrays
        low = jnp.where(worse, jnp.where(bf[0] <= bf[1], 0, 1).astype(jnp.int32), low)
        return (ls_iter + 1, bt, bf, bg, bgtd, low, insuf, done | (~worse & good))

    z0 = (ls_iter, bt, bf, bg, bgtd, low, jnp.asarray(False), done)
    z = jax.lax.while_loop(zoom_cond, zoom_body, z0)
    ls_end, bt, bf, bg, _, low, _, _ = z
    evals = 1 + ls_end  # one evaluation per trial after the first
    return bf[low], _pick(bg, low), bt[low], evals


def _pick4(arrays: tuple[Any, ...], i: Any) -> tuple[Any, ...]:
    return tuple(_pick(a, i) for a in arrays)
