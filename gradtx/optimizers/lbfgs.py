"""L-BFGS: Optax's transform (one step per update, any line search after it) and
torch.optim.LBFGS's step (up to max_iter inner iterations per update)."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import (
    Chain,
    Transform,
    as_transform,
    field,
    pytree_dataclass,
    scale_by_learning_rate,
    static_field,
    value_at,
)
from ..transforms import _linesearch as ls
from ..transforms._scaling import negate
from ..transforms._weight_decay import add_decayed_weights


def _stacked_zeros(params: Any, m: int) -> Any:
    return jax.tree.map(lambda p: jnp.zeros((m, *jnp.shape(p)), jnp.result_type(p)), params)


def _slot(tree: Any, i: Any) -> Any:
    return jax.tree.map(lambda x: x[i], tree)


def _set_slot(tree: Any, i: Any, value: Any, keep: Any) -> Any:
    """``tree[i] = value`` where ``keep`` is False (one slot written, the rest untouched)."""
    return jax.tree.map(
        lambda x, v: x.at[i].set(jnp.where(keep, x[i], v.astype(x.dtype))), tree, value
    )


def two_loop(q: Any, s: Any, y: Any, rho: jax.Array, head: Any, gamma: Any) -> Any:
    """``H q`` for the L-BFGS inverse-Hessian estimate (Nocedal and Wright, algorithm 7.4).

    ``s``, ``y`` hold the pairs with a leading memory axis, the newest at slot ``head - 1`` (a
    ring buffer); empty slots have ``rho = 0`` and leave ``q`` unchanged::

        for i newest -> oldest:  a_i = rho_i <s_i, q>,  q <- q - a_i y_i
        r = gamma q
        for i oldest -> newest:  b_i = rho_i <y_i, r>,  r <- r + (a_i - b_i) s_i
    """
    m = rho.shape[0]
    slots = (jnp.asarray(head, jnp.int32) - 1 - jnp.arange(m, dtype=jnp.int32)) % m  # newest first

    def backward(q, i):
        a = ls.tree_vdot(_slot(s, i), q) * rho[i]
        return ls.tree_axpy(q, -a, _slot(y, i)), a

    q, alphas = jax.lax.scan(backward, q, slots)
    r = ls.tree_scale(gamma, q)

    def forward(r, ia):
        i, a = ia
        b = ls.tree_vdot(_slot(y, i), r) * rho[i]
        return ls.tree_axpy(r, a - b, _slot(s, i)), None

    r, _ = jax.lax.scan(forward, r, (slots, alphas), reverse=True)
    return r


# --------------------------------------------------------------------------------------------
# Optax's L-BFGS


class ScaleByLBFGSState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    w: Any  # w_{k-1}, the params of the last update
    u: Any  # u_{k-1}, the updates (gradients) of the last update
    s: Any  # s_j = w_{j+1} - w_j, the last memory_size of them (leading axis: memory slot)
    y: Any  # y_j = u_{j+1} - u_j, same slots
    rho: jax.Array  # rho_j = 1 / <y_j, s_j> (0 where <y_j, s_j> = 0 or the slot is empty)


@pytree_dataclass
class ScaleByLBFGS(Transform):
    """The L-BFGS direction ``P_k u_k`` (no sign flip, no step size)::

        s_{k-1} = w_k - w_{k-1},   y_{k-1} = u_k - u_{k-1},   rho_{k-1} = 1 / <y_{k-1}, s_{k-1}>
        gamma_k = <s_{k-1}, y_{k-1}> / <y_{k-1}, y_{k-1}>   (scale_init_precond; else 1)
        gamma_0 = min(1, 1 / ||u_0||)
        P_k u_k = the two-loop recursion over the last memory_size (s, y, rho), from gamma_k I

    Optax's ``scale_by_lbfgs``: the memory is updated with the params and updates this call
    receives, then the direction is computed, so a line search after it sees the new pair.
    """

    fn_name = "lbfgs"
    elementwise = True  # inner products over every element only

    memory_size: int = static_field(10, check=_checks.COUNT)
    scale_init_precond: bool = static_field(True)

    def _init(self, params):
        m = self.memory_size
        vd = ls.value_dtype(params)
        return ScaleByLBFGSState(
            jnp.zeros((), jnp.int32),
            _tree.tree_zeros_like(params),
            _tree.tree_zeros_like(params),
            _stacked_zeros(params, m),
            _stacked_zeros(params, m),
            jnp.zeros((m,), vd),
        )

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise TypeError(
                f"{self.where()}: L-BFGS needs the params: update(grads, state, params)"
            )
        m = self.memory_size
        vd = state.rho.dtype
        first = state.count == 0
        prev = (state.count - 1) % m
        s = jax.tree.map(lambda a, b: jnp.where(first, 0, a - b.astype(a.dtype)), params, state.w)
        y = jax.tree.map(lambda a, b: jnp.where(first, 0, a - b.astype(a.dtype)), updates, state.u)
        sy = ls.tree_vdot(y, s).astype(vd)
        rho = jnp.where(first | (sy == 0.0), 0.0, 1.0 / jnp.where(sy == 0.0, 1.0, sy))
        s_mem = _set_slot(state.s, prev, s, False)
        y_mem = _set_slot(state.y, prev, y, False)
        rho_mem = state.rho.at[prev].set(rho.astype(vd))
        if self.scale_init_precond:
            yy = _tree.tree_sum_squares(y).astype(vd)
            gamma = jnp.where(yy > 0.0, sy / jnp.where(yy > 0.0, yy, 1.0), 1.0)
            norm = _tree.tree_norm(jax.lax.stop_gradient(updates)).astype(vd)
            gamma = jnp.where(first, jnp.minimum(1.0, 1.0 / norm), gamma)
        else:
            gamma = jnp.ones((), vd)
        direction = two_loop(updates, s_mem, y_mem, rho_mem, state.count % m, gamma)
        new_state = ScaleByLBFGSState(
            _tree.safe_increment(state.count),
            _tree.tree_cast_like(params, state.w),
            _tree.tree_cast_like(updates, state.u),
            s_mem,
            y_mem,
            rho_mem,
        )
        return _tree.tree_cast_like(direction, updates), new_state


def scale_by_lbfgs(memory_size: int = 10, scale_init_precond: bool = True) -> ScaleByLBFGS:
    """The L-BFGS direction without sign flip or step size (see ``ScaleByLBFGS``).

    Args:
      memory_size: how many (s, y) pairs are kept, an integer >= 1 (default 10).
      scale_init_precond: start the recursion from ``gamma_k I`` with
        ``gamma_k = <s, y> / <y, y>`` of the newest pair (default True), else from ``I``.
    """
    return ScaleByLBFGS(memory_size, scale_init_precond)


class _DefaultLinesearch:
    """Optax's default line search, built when ``lbfgs`` is called (not at import, which would
    start JAX's backend before the user could configure it)."""

    def __repr__(self) -> str:
        return "scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy='one')"

    def build(self) -> Any:
        return ls.scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")


_DEFAULT_LINESEARCH = _DefaultLinesearch()


def lbfgs(
    learning_rate: Any = None,
    memory_size: int = 10,
    scale_init_precond: bool = True,
    linesearch: Any = _DEFAULT_LINESEARCH,
    *,
    weight_decay: Any = None,
    weight_decay_mask: Any = None,
) -> Chain:
    """L-BFGS, Optax's ``lbfgs``: the quasi-Newton direction, then a line search.

    Update rule (t = 0, 1, ...; u_t the gradient at w_t)::

        s_{t-1} = w_t - w_{t-1},  y_{t-1} = u_t - u_{t-1},  rho_{t-1} = 1 / <y_{t-1}, s_{t-1}>
        d_t = -P_t u_t       (two-loop recursion over the last memory_size pairs, from gamma_t I,
                              gamma_t = <s_{t-1}, y_{t-1}> / <y_{t-1}, y_{t-1}>,
                              gamma_0 = min(1, 1 / ||u_0||))
        w_{t+1} = w_t + eta_t * learning_rate * d_t     (eta_t from the line search)

    With the default zoom line search ``update`` needs ``value=``, ``grad=`` and
    ``value_fn=``; ``value_and_grad_from_state(value_fn)`` reuses the value and gradient the
    search computed::

        value_and_grad = gradtx.value_and_grad_from_state(f)
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(grad, state, params, value=value, grad=grad, value_fn=f)

    Args:
      learning_rate: a step size >= 0 (float, array or schedule) multiplying the direction
        before the line search, or None (default) for 1, as in Optax.
      memory_size: how many (s, y) pairs are kept, an integer >= 1 (default 10).
      scale_init_precond: start the recursion from ``gamma_k I`` (default True) rather than
        ``I``.
      linesearch: a line search transform placed last (default
        ``scale_by_zoom_linesearch(max_linesearch_steps=20, initial_guess_strategy="one")``),
        ``scale_by_backtracking_linesearch(...)``, any transform, or None for none (then no
        extra arguments are needed and ``learning_rate`` is the step).
      weight_decay: L2 coefficient >= 0 (float, array or schedule) added to the gradient before
        the direction (``u <- u + weight_decay * w``); a gradtx extra, Optax has none. A line
        search still reads ``value_fn`` as given: put the L2 term in ``value_fn`` too.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.

    Conventions: Optax's; ``gradtx.torch.lbfgs`` is torch.optim.LBFGS (inner iterations in one
    call, its own strong Wolfe search).

    References:
      Liu, Nocedal, "On the limited memory BFGS method for large scale optimization",
      Mathematical Programming, 1989. doi:10.1007/BF01589116
      Nocedal, Wright, "Numerical Optimization", Springer, 2nd ed. 2006, algorithms 7.4 and 7.5.
      doi:10.1007/978-0-387-40065-5
    """
    _checks.check_nonnegative("lbfgs", "learning_rate", learning_rate)
    _checks.check_nonnegative("lbfgs", "weight_decay", weight_decay)
    parts: list[Transform] = []
    if weight_decay is not None:
        parts.append(add_decayed_weights(weight_decay, weight_decay_mask))
    parts.append(scale_by_lbfgs(memory_size, scale_init_precond))
    parts.append(negate() if learning_rate is None else scale_by_learning_rate(learning_rate))
    if isinstance(linesearch, _DefaultLinesearch):
        linesearch = linesearch.build()
    if linesearch is not None:
        parts.append(as_transform(linesearch, "lbfgs", "linesearch"))
    return Chain(tuple(parts))


# --------------------------------------------------------------------------------------------
# torch.optim.LBFGS


class TorchLBFGSState(NamedTuple):
    count: jax.Array  # update calls so far (int32, saturating; the schedule's count)
    n_iter: jax.Array  # inner iterations over all calls (torch's state["n_iter"])
    func_evals: jax.Array  # objective evaluations over all calls (torch's state["func_evals"])
    d: Any  # d, the last search direction
    t: jax.Array  # t, the last step along d
    g_prev: Any  # the gradient at the start of the last inner iteration
    f_prev: jax.Array  # the loss there
    s: Any  # s_j = t_j d_j, the last history_size accepted steps (leading axis: slot)
    y: Any  # y_j, the gradient changes over those steps
    rho: jax.Array  # rho_j = 1 / <y_j, s_j> (0 in empty slots)
    head: jax.Array  # the slot the next pair goes to
    h_diag: jax.Array  # H_diag = <y, s> / <y, y> of the newest pair


class _Iter(NamedTuple):
    """The loop state of one ``step`` (torch's locals)."""

    x: Any
    f: jax.Array
    g: Any
    opt: jax.Array  # max|g| <= tolerance_grad
    n: jax.Array  # inner iterations in this call
    evals: jax.Array  # evaluations in this call
    stop: jax.Array
    state: TorchLBFGSState


@pytree_dataclass
class TorchLBFGS(Transform):
    """torch.optim.LBFGS's ``step(closure)`` as one ``update`` (see ``gradtx.torch.lbfgs``)."""

    fn_name = "torch.lbfgs"

    lr: Any = field(1.0, check=_checks.NONNEGATIVE)
    max_iter: int = static_field(20, check=_checks.COUNT)
    max_eval: int = static_field(25, check=_checks.COUNT)
    tolerance_grad: Any = field(1e-7, check=_checks.NONNEGATIVE)
    tolerance_change: Any = field(1e-9, check=_checks.NONNEGATIVE)
    history_size: int = static_field(100, check=_checks.COUNT)
    line_search_fn: Any = static_field(None, choices=(None, "strong_wolfe"))

    def _init(self, params):
        m = self.history_size
        vd = ls.value_dtype(params)
        zi = jnp.zeros((), jnp.int32)
        zf = jnp.zeros((), vd)
        zeros = _tree.tree_zeros_like(params)
        return TorchLBFGSState(
            zi, zi, zi, zeros, zf, zeros, zf, _stacked_zeros(params, m),
            _stacked_zeros(params, m), jnp.zeros((m,), vd), zi, jnp.ones((), vd),
        )  # fmt: skip

    def _update(self, updates, state, params, **extra):
        value_fn = extra.get("value_fn")
        if value_fn is None or params is None:
            raise TypeError(
                "gradtx.torch.lbfgs.update: needs the params and the objective (torch's "
                "closure): update(grads, state, params, value=loss, value_fn=loss_fn)."
            )
        vd = state.rho.dtype
        m = self.history_size
        value_and_grad = jax.value_and_grad(value_fn)

        def evaluate(x):
            v, g = value_and_grad(x)
            return jnp.asarray(v).astype(vd), _tree.tree_cast_like(g, updates)

        loss = extra.get("value")
        loss = value_fn(params) if loss is None else loss
        loss = jnp.asarray(loss).astype(vd)
        lr = _tree.hp(value_at(self.lr, state.count), vd)
        tol_grad = _tree.hp(self.tolerance_grad, vd)
        tol_change = _tree.hp(self.tolerance_change, vd)
        max_abs = lambda tree: ls._tree_max_abs(tree, vd)

        def body(it: _Iter) -> _Iter:
            st = it.state
            n, n_iter = it.n + 1, st.n_iter + 1
            first = n_iter == 1
            # The new (s, y) pair, kept when its curvature <y, s> exceeds 1e-10.
            y = jax.tree.map(lambda a, b: a - b, it.g, st.g_prev)
            s = ls.tree_scale(st.t, st.d)
            ys = ls.tree_vdot(y, s)
            push = ~first & (ys > 1e-10)
            s_mem = _set_slot(st.s, st.head, s, ~push)
            y_mem = _set_slot(st.y, st.head, y, ~push)
            rho = st.rho.at[st.head].set(jnp.where(push, 1.0 / ys, st.rho[st.head]))
            head = jnp.where(push, (st.head + 1) % m, st.head)
            h_diag = jnp.where(push, ys / ls.tree_vdot(y, y), st.h_diag)
            minus_g = jax.tree.map(jnp.negative, it.g)
            d = two_loop(minus_g, s_mem, y_mem, rho, head, h_diag)
            d = ls._where(first, minus_g, d)
            h_diag = jnp.where(first, 1.0, h_diag)
            l1 = sum(jnp.sum(jnp.abs(x)).astype(vd) for x in jax.tree.leaves(it.g))
            t = jnp.where(first, jnp.minimum(1.0, 1.0 / l1) * lr, lr)
            gtd = ls.tree_vdot(it.g, d)
            st = st._replace(
                n_iter=n_iter, d=d, t=t, g_prev=it.g, f_prev=it.f, s=s_mem, y=y_mem, rho=rho,
                head=head, h_diag=h_diag,
            )  # fmt: skip

            def no_step(_):
                return it.x, it.f, it.g, it.opt, t, jnp.zeros((), jnp.int32)

            def take_step(_):
                if self.line_search_fn == "strong_wolfe":
                    f_new, g_new, t_new, ev = ls.torch_strong_wolfe(
                        evaluate, it.x, t, d, it.f, it.g, gtd, self.max_eval - it.evals
                    )
                    x_new = ls.tree_axpy(it.x, t_new, d)
                    return x_new, f_new, g_new, max_abs(g_new) <= tol_grad, t_new, ev
                x_new = ls.tree_axpy(it.x, t, d)

                def reevaluate(_):
                    f_new, g_new = evaluate(x_new)
                    return f_new, g_new, max_abs(g_new) <= tol_grad, jnp.ones((), jnp.int32)

                def stale(_):
                    return it.f, it.g, it.opt, jnp.zeros((), jnp.int32)

                f_new, g_new, opt, ev = jax.lax.cond(n != self.max_iter, reevaluate, stale, None)
                return x_new, f_new, g_new, opt, t, ev

            descent = gtd <= -tol_change
            x, f, g, opt, t, ev = jax.lax.cond(descent, take_step, no_step, None)
            evals = it.evals + ev
            stop = (
                ~descent
                | (n == self.max_iter)
                | (evals >= self.max_eval)
                | opt
                | (max_abs(ls.tree_scale(t, d)) <= tol_change)
                | (jnp.abs(f - it.f) < tol_change)
            )
            st = st._replace(t=t, func_evals=st.func_evals + ev)
            return _Iter(x, f, g, opt, n, evals, stop, st)

        g0 = _tree.tree_cast_like(updates, updates)
        opt0 = max_abs(g0) <= tol_grad
        one = jnp.ones((), jnp.int32)
        it0 = _Iter(
            params, loss, g0, opt0, jnp.zeros((), jnp.int32), one, opt0,
            state._replace(func_evals=state.func_evals + 1),
        )  # fmt: skip
        it = jax.lax.while_loop(lambda it: ~it.stop, body, it0)
        new_state = it.state._replace(count=_tree.safe_increment(state.count))
        new_state = jax.tree.map(
            lambda a, b: jnp.asarray(a).astype(jnp.result_type(b)), new_state, state
        )
        delta = jax.tree.map(lambda a, b: (a - b).astype(jnp.result_type(b)), it.x, params)
        return _tree.tree_cast_like(delta, updates), new_state
