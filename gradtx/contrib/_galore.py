"""GaLore: a base optimizer run on gradients projected onto a low-rank subspace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._transform import (
    Transform,
    as_transform,
    field,
    pytree_dataclass,
    static_field,
)
from ..optimizers.adam import scale_by_adam
from ._common import ARGS_MASK, decay, with_learning_rate
from ._dims import DimSpec, from_matrices, matrix_axes, to_matrices


class GaLoreDimensionNumbers(NamedTuple):
    """Which axes of a leaf form GaLore's ``(reduction, output)`` matrix.

    Every axis must be one or the other (an attention weight ``(embed, heads, head_dim)`` is
    ``GaLoreDimensionNumbers(reduction_axis=0, output_axis=(1, 2))``).
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class GaLoreState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    base_optimizer_state: Any  # the base optimizer's state, on the projected gradients
    projector: Any  # P per projected leaf ((m, r) or (n, r)); None at the other leaves


def _mm(p: jax.Array, q: jax.Array) -> jax.Array:
    return jnp.matmul(p, q, precision=jax.lax.Precision.HIGHEST)


def _base_optimizer(fn: str, name: str, value: Any) -> Transform:
    """The converter of ``base_optimizer``: ``scale_by_adam()`` when ``None``."""
    return scale_by_adam() if value is None else as_transform(value, fn, name)


def _galore_dims(fn: str, name: str, value: Any) -> DimSpec:
    return DimSpec.of(fn, name, value, GaLoreDimensionNumbers)


@pytree_dataclass
class ScaleByGaLore(Transform):
    """GaLore's projection around a base optimizer (see ``scale_by_galore``)."""

    fn_name = "contrib.scale_by_galore"

    base_optimizer: Any = field(None, converter=_base_optimizer)
    update_proj_gap: Any = field(200, check=_checks.COUNT)
    scale: Any = field(1.0)
    rank: int = static_field(128)
    weight_dimension_numbers: Any = static_field(None, converter=_galore_dims)
    fn: str = static_field("contrib.scale_by_galore")

    def __check_init__(self):
        fn = self.fn
        rank = self.rank
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: rank must be an integer in [1, inf), got {rank!r}"
            )

    def _dims(self, tree: Any) -> list[Any]:
        spec = self.weight_dimension_numbers
        if spec.kind == "one":  # one spec for every leaf with 2 axes or more
            resolved = jax.tree.map(lambda p: spec.value if jnp.ndim(p) >= 2 else None, tree)
        else:
            resolved = spec.resolve(
                tree, lambda p: GaLoreDimensionNumbers() if jnp.ndim(p) == 2 else None
            )
        return jax.tree.structure(tree).flatten_up_to(resolved)

    def _layout(self, shape: tuple[int, ...], dims: Any) -> tuple[Any, int, int, int, bool]:
        """``(perm, m, n, r, left)``: the matrix is ``(m, n)``; P is ``(m, r)`` when ``left``
        (m >= n), else ``(n, r)``."""
        perm, _, m, n = matrix_axes(self.fn, shape, dims, batch=False)
        return perm, m, n, min(self.rank, m, n), m >= n

    def _init(self, params):
        leaves, treedef = jax.tree.flatten(params)
        projectors, proxies = [], []
        for p, d in zip(leaves, self._dims(params)):
            if d is None:
                projectors.append(None)
                proxies.append(_tree.zeros_like(p))
                continue
            _, m, n, r, left = self._layout(p.shape, d)
            projectors.append(jnp.zeros((m, r) if left else (n, r), p.dtype))
            proxies.append(jnp.zeros((r, n) if left else (m, r), p.dtype))
        base = self.base_optimizer._init(treedef.unflatten(proxies))
        return GaLoreState(jnp.zeros((), jnp.int32), base, treedef.unflatten(projectors))

    def _update(self, updates, state, params, **extra):
        leaves, treedef = jax.tree.flatten(updates)
        dims = self._dims(updates)
        old = treedef.flatten_up_to(state.projector)
        gap = jnp.asarray(self.update_proj_gap).astype(jnp.int32)
        refresh = state.count % gap == 0
        low, projectors, layouts = [], [], []
        for g, d, proj in zip(leaves, dims, old):
            if d is None:
                low.append(g)
                projectors.append(None)
                layouts.append(None)
                continue
            perm, m, n, r, left = self._layout(g.shape, d)
            cd = _tree.compute_dtype(g.dtype)
            g2 = to_matrices(g.astype(cd), perm, 1, m, n)[0]

            def fresh(g2=g2, r=r, left=left, dt=proj.dtype):
                u, _, vh = jnp.linalg.svd(g2, full_matrices=False)
                return (u[:, :r] if left else jnp.swapaxes(vh[:r, :], 0, 1)).astype(dt)

            p_new = jax.lax.cond(refresh, fresh, lambda proj=proj: proj)
            pc = p_new.astype(cd)
            lr_g = _mm(jnp.swapaxes(pc, 0, 1), g2) if left else _mm(g2, pc)
            low.append(lr_g.astype(g.dtype))
            projectors.append(p_new)
            layouts.append((perm, left, cd))
        low_u, base = self.base_optimizer._update(
            treedef.unflatten(low), state.base_optimizer_state, None, **extra
        )
        out = []
        for g, u, pn, lay in zip(leaves, treedef.flatten_up_to(low_u), projectors, layouts):
            if lay is None:  # not projected: the base optimizer's update as it is
                out.append(u)
                continue
            perm, left, cd = lay
            pc, uc = pn.astype(cd), u.astype(cd)
            full = _mm(pc, uc) if left else _mm(uc, jnp.swapaxes(pc, 0, 1))
            full = from_matrices(full, g.shape, perm) * _tree.hp(self.scale, cd)
            out.append(full.astype(g.dtype))
        count = _tree.safe_increment(state.count)
        return treedef.unflatten(out), GaLoreState(count, base, treedef.unflatten(projectors))

    def _children(self, state):
        return (("base_optimizer", self.base_optimizer, state.base_optimizer_state),)


def scale_by_galore(
    rank: int = 128,
    update_proj_gap: Any = 200,
    scale: Any = 1.0,
    base_optimizer: Any = None,
    weight_dimension_numbers: Any = None,
) -> ScaleByGaLore:
    """GaLore's low-rank projection around ``base_optimizer`` (no learning rate).

    For a matrix leaf G (m x n), r = min(rank, m, n), every ``update_proj_gap`` steps from
    the first (t - 1 = 0, gap, 2 gap, ...) the projector is refreshed from the SVD
    ``G = U S V^T``::

        P = U[:, :r]   (m >= n: R = P^T G, r x n)    or    P = V[:, :r]   (m < n: R = G P, m x r)
        R' = base_optimizer(R)                       (its state lives on the r-sized shapes)
        u  = scale * P R'                            or    scale * R' P^T

    Leaves that are not projected go through ``base_optimizer`` whole (without ``scale``).

    Args:
      rank: the projection's rank, an integer >= 1 (static); default 128.
      update_proj_gap: refresh P every this many steps, an integer >= 1; default 200.
      scale: the factor of the projected-back updates (float or array); default 1.
      base_optimizer: a transform that does not read params (it sees the projected shapes),
        such as ``scale_by_adam()`` (the default) or ``scale_by_lion()``.
      weight_dimension_numbers: None (the 2-D leaves are projected, as ``(in, out)``), a
        ``GaLoreDimensionNumbers`` for every leaf with 2 axes or more, a pytree of them (None
        for leaves not to project), or a function of the updates returning one.

    Conventions: Optax's ``contrib.scale_by_galore``. The SVD runs in the leaf's precision,
    at least float32 (Optax's always runs in float32, so float64 results differ by about
    1e-7).

    References:
      Zhao, Zhang, Chen, Wang, Anandkumar, Tian, "GaLore: Memory-Efficient LLM Training by
      Gradient Low-Rank Projection", ICML 2024. arXiv:2403.03507
    """
    return ScaleByGaLore(base_optimizer, update_proj_gap, scale, rank, weight_dimension_numbers)


def galore(
    learning_rate: Any,
    rank: int = 128,
    update_proj_gap: Any = 200,
    scale: Any = 1.0,
    base_optimizer: Any = None,
    weight_decay: Any = 0.0,
    mask: Any = None,
    weight_dimension_numbers: Any = None,
) -> Transform:
    """GaLore: ``scale_by_galore``, decoupled weight decay in the full space, then the rate.

    Update rule (``u_t`` is ``scale_by_galore``'s update; lr = learning_rate(t - 1))::

        p_t = p_{t-1} - lr * (u_t + weight_decay * p_{t-1})

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax. With a
        base optimizer that has its own rate, pass 1.
      rank: the projection's rank, an integer >= 1; default 128.
      update_proj_gap: refresh the projectors every this many steps, >= 1; default 200.
      scale: the factor of the projected-back updates; default 1.
      base_optimizer: the transform run in the low-rank space; None is ``scale_by_adam()``.
      weight_decay: decoupled decay >= 0, scaled by the learning rate; default 0.
      {mask}
      weight_dimension_numbers: as in ``scale_by_galore``.

    Conventions: Optax's ``contrib.galore``.

    References:
      Zhao, Zhang, Chen, Wang, Anandkumar, Tian, "GaLore: Memory-Efficient LLM Training by
      Gradient Low-Rank Projection", ICML 2024. arXiv:2403.03507
    """
    fn = "contrib.galore"
    inner = ScaleByGaLore(base_optimizer, update_proj_gap, scale, rank, weight_dimension_numbers,
                          fn)  # fmt: skip
    return with_learning_rate(fn, learning_rate, inner, decay(fn, weight_decay, mask))


galore.__doc__ = (galore.__doc__ or "").replace("{mask}", ARGS_MASK)
