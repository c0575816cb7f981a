"""torch.optim.LBFGS's arguments and defaults over gradtx's L-BFGS."""

from __future__ import annotations

from typing import Any

from ..optimizers.lbfgs import TorchLBFGS


def lbfgs(
    lr: Any = 1,
    max_iter: int = 20,
    max_eval: int | None = None,
    tolerance_grad: Any = 1e-7,
    tolerance_change: Any = 1e-9,
    history_size: int = 100,
    line_search_fn: str | None = None,
) -> TorchLBFGS:
    """L-BFGS as torch.optim.LBFGS: one ``update`` is one ``optimizer.step(closure)``.

    Update rule (one call; g = grad f(x), up to max_iter inner iterations k)::

        stop at once if max|g| <= tolerance_grad
        s = t_{k-1} d_{k-1},  y = g_k - g_{k-1}         (kept when <y, s> > 1e-10, with
                                                         rho = 1 / <y, s>, H = <y, s> / <y, y>)
        d_k = -H_k g_k    (two-loop recursion over the last history_size pairs, from H I;
                           d = -g on the very first iteration)
        t_k = min(1, 1 / sum|g|) * lr on the very first iteration, else lr
        stop if <g_k, d_k> > -tolerance_change
        t_k <- strong Wolfe search from t_k        (line_search_fn="strong_wolfe")
        x <- x + t_k d_k
        stop after max_iter iterations or max_eval evaluations, when max|g| <= tolerance_grad,
        max|t_k d_k| <= tolerance_change or |f_k - f_{k-1}| < tolerance_change

    ``update(grads, state, params, value=loss, value_fn=loss_fn)``: ``grads`` and ``value`` are
    the gradient and the loss at ``params`` (torch's first closure call; without ``value`` it
    is evaluated), and ``value_fn(params) -> loss`` is the closure, evaluated with
    ``jax.value_and_grad`` for every further iteration and line-search trial. The returned
    updates move ``params`` to where torch's step leaves them. The inner loops are
    ``lax.while_loop``s: one compiled program for any ``lr`` or tolerance.

    Args:
      lr: the step size, >= 0 (float, array or schedule over update calls; default 1).
      max_iter: inner iterations per update, an integer >= 1 (default 20).
      max_eval: objective evaluations per update, an integer >= 1 (default
        ``max_iter * 5 // 4``).
      tolerance_grad: stop when max|g| is at most this, >= 0 (default 1e-7).
      tolerance_change: stop when the step or the loss change is below this, >= 0
        (default 1e-9).
      history_size: how many (s, y) pairs are kept, an integer >= 1 (default 100).
      line_search_fn: None (default: fixed steps) or ``"strong_wolfe"`` (torch's search:
        c1 = 1e-4, c2 = 0.9, cubic interpolation, at most the evaluations left in max_eval).

    Conventions: torch's. Optax's L-BFGS (one iteration per update, a zoom line search) is
    ``gradtx.lbfgs``.

    References:
      Liu, Nocedal, "On the limited memory BFGS method for large scale optimization",
      Mathematical Programming, 1989. doi:10.1007/BF01589116
      Nocedal, Wright, "Numerical Optimization", Springer, 2nd ed. 2006, algorithms 3.5, 3.6
      and 7.4. doi:10.1007/978-0-387-40065-5
    """
    if max_eval is None:
        max_eval = max_iter * 5 // 4
    return TorchLBFGS(
        lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size, line_search_fn
    )
