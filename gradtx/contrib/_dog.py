"""DoG and DoWG: step sizes from the distance travelled over the gradients seen."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import Transform, field, pytree_dataclass, scale_tree, static_field
from ._common import ARGS_MASK, copy_tree, decay, scalar_dtype, with_learning_rate


class DoGState(NamedTuple):
    is_init_step: jax.Array  # True before the first update
    init_params: Any  # x_0
    max_dist: jax.Array  # rbar, the largest ||x_t - x_0|| so far (r_eps at init)
    sum_sq_norm_grads: jax.Array  # G, the sum of ||g||^2


@pytree_dataclass
class ScaleByDoG(Transform):
    """DoG's step size times the gradient (no learning rate)::

        rbar_t = max(rbar_{t-1}, ||x_t - x_0||)
        G_t = G_{t-1} + ||g_t||^2
        u_t = rbar_t / sqrt(G_t + eps) * g_t       (init_value itself on the first step
                                                    with init_type "learning_rate")

    ``rbar_0`` is ``init_value`` (``"distance"``), ``init_value * (1 + ||x_0||)``
    (``"heuristic"``) or 0 (``"learning_rate"``).
    """

    fn_name = "contrib.dog"

    init_value: Any = field(1e-6, check=_checks.POSITIVE)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    init_type: str = static_field("heuristic", choices=("distance", "learning_rate", "heuristic"))

    def _init(self, params):
        dt = scalar_dtype(params)
        v = jnp.asarray(self.init_value, dt)
        if self.init_type == "distance":
            r = v
        elif self.init_type == "heuristic":
            r = v * (1 + _tree.tree_norm(params).astype(dt))
        else:
            r = jnp.zeros((), dt)
        return DoGState(jnp.asarray(True), copy_tree(params), r, jnp.zeros((), dt))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: DoG needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        dt = state.max_dist.dtype
        diff = jax.tree.map(lambda a, b: a.astype(dt) - b.astype(dt), state.init_params, params)
        rbar = jnp.maximum(state.max_dist, _tree.tree_norm(diff).astype(dt))
        big_g = state.sum_sq_norm_grads + _tree.tree_sum_squares(updates).astype(dt)
        eta = rbar / jnp.sqrt(big_g + jnp.asarray(self.eps, dt))
        if self.init_type == "learning_rate":
            eta = jnp.where(state.is_init_step, jnp.asarray(self.init_value, dt), eta)
        new = DoGState(jnp.asarray(False), state.init_params, rbar, big_g)
        return scale_tree(updates, eta), new


def dog(
    learning_rate: Any = 1.0,
    init_step: tuple[str, Any] = ("heuristic", 1e-6),
    eps: Any = 1e-8,
    weight_decay: Any = None,
    mask: Any = None,
) -> Transform:
    """DoG, Distance over Gradients (Optax's ``contrib.dog``).

    Update rule (t = 0, 1, ...; x_0 the params at init)::

        rbar_t = max(rbar_{t-1}, ||x_t - x_0||)
        G_t = G_{t-1} + ||g_t||^2
        eta_t = rbar_t / sqrt(G_t + eps)
        x_{t+1} = x_t - learning_rate(t) * eta_t * (g_t + weight_decay * x_t)

    Norms are global over all leaves. ``rbar_{-1}`` is set by ``init_step``.

    Args:
      learning_rate: multiplier of the step, >= 0 (float, array or schedule); default 1.
      init_step: ``(tag, value)``: ``("distance", r)`` sets ``rbar_{-1} = r``;
        ``("heuristic", a)`` sets ``rbar_{-1} = a * (1 + ||x_0||)`` (the paper suggests
        a = 1e-6, or 1e-4 with batch normalisation); ``("learning_rate", eta)`` takes
        ``eta`` as the first step size. ``value`` > 0; default ``("heuristic", 1e-6)``.
      eps: added to G, >= 0; default 1e-8.
      weight_decay: L2 coefficient >= 0 added to the gradient, or None (none); default None.
      {mask}

    Conventions: Optax's ``contrib.dog``. With ``"heuristic"``, ``init`` must get the real
    params. The authors recommend averaging the iterates (``gradtx.ema_params``).

    References:
      Ivgi, Hinder, Carmon, "DoG is SGD's Best Friend: A Parameter-Free Dynamic Step Size
      Schedule", ICML 2023. arXiv:2302.12022
    """
    if not isinstance(init_step, (tuple, list)) or len(init_step) != 2:
        raise _checks.HyperparameterError(
            f"gradtx.contrib.dog: init_step must be a pair (tag, value), got {init_step!r}"
        )
    kind, value = init_step
    _checks.check_choice("contrib.dog", "init_step[0]", kind,
                         ("distance", "learning_rate", "heuristic"))  # fmt: skip
    _checks.POSITIVE("contrib.dog", "init_step[1]", value)
    pre = ScaleByDoG(value, eps, kind)
    return with_learning_rate("contrib.dog", learning_rate,
                              decay("contrib.dog", weight_decay, mask), pre)  # fmt: skip


class DoWGState(NamedTuple):
    init_params: Any  # x_0
    weighted_sq_norm_grads: jax.Array  # v, the sum of rbar^2 * ||g||^2
    estim_sq_dist: jax.Array  # rbar^2, the largest ||x_t - x_0||^2 so far


@pytree_dataclass
class ScaleByDoWG(Transform):
    """DoWG's step size times the gradient (no learning rate)::

    rbar2_t = max(rbar2_{t-1}, ||x_t - x_0||^2)
    v_t = v_{t-1} + rbar2_t * ||g_t||^2
    u_t = rbar2_t / (sqrt(v_t) + eps) * g_t
    """

    fn_name = "contrib.dowg"

    init_estim_sq_dist: Any = field(None, check=_checks.POSITIVE)
    eps: Any = field(1e-4, check=_checks.POSITIVE)

    def _init(self, params):
        dt = scalar_dtype(params)
        r2 = self.eps if self.init_estim_sq_dist is None else self.init_estim_sq_dist
        return DoWGState(copy_tree(params), jnp.zeros((), dt), jnp.asarray(r2, dt))

    def _update(self, updates, state, params, **extra):
        if params is None:
            raise ValueError(f"{self.where()}: DoWG needs params; pass them to update.")
        _checks.check_same_tree(self.where(), params, updates, "params", "updates")
        dt = state.estim_sq_dist.dtype
        diff = jax.tree.map(lambda a, b: a.astype(dt) - b.astype(dt), state.init_params, params)
        r2 = jnp.maximum(state.estim_sq_dist, _tree.tree_sum_squares(diff).astype(dt))
        v = r2 * _tree.tree_sum_squares(updates).astype(dt) + state.weighted_sq_norm_grads
        eta = r2 / (jnp.sqrt(v) + jnp.asarray(self.eps, dt))
        return scale_tree(updates, eta), DoWGState(state.init_params, v, r2)


def dowg(
    learning_rate: Any = 1.0,
    init_estim_sq_dist: Any = None,
    eps: Any = 1e-4,
    weight_decay: Any = None,
    mask: Any = None,
) -> Transform:
    """DoWG, Distance over Weighted Gradients (Optax's ``contrib.dowg``).

    Update rule (t = 0, 1, ...; x_0 the params at init)::

        rbar2_t = max(rbar2_{t-1}, ||x_t - x_0||^2)
        v_t = v_{t-1} + rbar2_t * ||g_t||^2
        eta_t = rbar2_t / (sqrt(v_t) + eps)
        x_{t+1} = x_t - learning_rate(t) * eta_t * (g_t + weight_decay * x_t)

    Norms are global over all leaves; ``rbar2_{-1} = init_estim_sq_dist`` (eps when None).

    Args:
      learning_rate: multiplier of the step, >= 0 (float, array or schedule); default 1.
      init_estim_sq_dist: initial guess of the squared distance to the solution, > 0, or None
        (use ``eps``); default None.
      eps: added to ``sqrt(v)``, > 0; default 1e-4.
      weight_decay: L2 coefficient >= 0 added to the gradient, or None (none); default None.
      {mask}

    Conventions: Optax's ``contrib.dowg`` (the paper's step size ``rbar^2 / sqrt(v)``).

    References:
      Khaled, Mishchenko, Jin, "DoWG Unleashed: An Efficient Universal Parameter-Free
      Gradient Descent Method", NeurIPS 2023. arXiv:2305.16284
    """
    pre = ScaleByDoWG(init_estim_sq_dist, eps)
    return with_learning_rate("contrib.dowg", learning_rate,
                              decay("contrib.dowg", weight_decay, mask), pre)  # fmt: skip


dog.__doc__ = (dog.__doc__ or "").replace("{mask}", ARGS_MASK)
dowg.__doc__ = (dowg.__doc__ or "").replace("{mask}", ARGS_MASK)
