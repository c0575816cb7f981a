"""Muon (momentum orthogonalised by Newton-Schulz), torch.optim.Muon's semantics and defaults."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf, leaf_ranks
from .._transform import (
    Chain,
    Transform,
    as_transform,
    field,
    pytree_dataclass,
    static_field,
    value_at,
)
from ..transforms._scaling import negate
from ._common import COMMON_DOCS, fill_doc, optimizer_chain


class MuonState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    b: Any  # momentum buffer of the matrix leaves (None at the fallback's leaves)


class MuonSplitState(NamedTuple):
    muon: Any  # the state of the Muon chain (matrix leaves)
    fallback: Any  # the state of the fallback optimizer (0-D and 1-D leaves)


def matrix_view(
    shape: tuple[int, ...], conv_layout: str = "oihw", batch_dims: int | None = None
) -> tuple[tuple[int, ...], int, int]:
    """How Muon sees a leaf: ``(batch shape, rows, cols)``.

    2-D leaves are matrices. With ``batch_dims=None``: a 3-D leaf is a stack of matrices (one
    leading batch axis: stacked or scanned layers); a 4-D leaf is a convolution kernel, reshaped
    to ``(out, in * kh * kw)`` for ``conv_layout="oihw"`` (torch) or ``(kh * kw * in, out)`` for
    ``"hwio"`` (Flax, lax.conv); a leaf with n >= 5 axes is a stack (n - 4 leading axes) of
    convolution kernels. An integer ``batch_dims`` fixes the number of leading batch axes; the
    rest must then be 2-D (a matrix) or 4-D (a kernel).
    """
    nd = len(shape)
    nb = batch_dims if batch_dims is not None else (1 if nd == 3 else max(nd - 4, 0))
    core = tuple(shape[nb:])
    if len(core) == 2:
        return tuple(shape[:nb]), core[0], core[1]
    if len(core) == 4:
        if conv_layout == "oihw":
            return tuple(shape[:nb]), core[0], math.prod(core[1:])
        return tuple(shape[:nb]), math.prod(core[:3]), core[3]
    raise ValueError(
        f"gradtx.muon: cannot view a leaf of shape {shape} as matrices with batch_dims="
        f"{batch_dims}: after the batch axes it must have 2 axes (a matrix) or 4 (a kernel)."
    )


def newton_schulz(
    x: jax.Array, a: Any, b: Any, c: Any, steps: int, eps: Any, dtype: Any
) -> jax.Array:
    """Orthogonalises the trailing 2-D matrices of ``x`` with a quintic Newton-Schulz iteration.

    ``X = x / max(||x||_F, eps)`` (transposed when rows > cols), then ``steps`` times
    ``A = X X^H;  X = a X + (b A + c A A) X``. Storage is ``dtype`` (torch: bfloat16); each of
    torch's fused operations (the norm, the division, ``X X^H`` and the two ``addmm``) is computed
    in at least float32 and rounded to ``dtype`` once, as torch's CPU kernels do.

    Complex matrices follow Optax: ``X^H`` is the conjugate transpose, ``||x||_F^2`` sums
    ``|x|^2``, and the real and imaginary parts are each rounded to ``dtype``; the result is
    complex.
    """
    is_complex = jnp.iscomplexobj(x)
    acc = _tree.compute_dtype(dtype)
    if is_complex:
        acc = _tree.promote(acc, x.dtype)
    real_acc = _tree.real_dtype(acc)
    hi = jax.lax.Precision.HIGHEST

    def rnd(z):
        if is_complex:
            re = jnp.real(z).astype(dtype).astype(real_acc)
            im = jnp.imag(z).astype(dtype).astype(real_acc)
            return jax.lax.complex(re, im)
        return z.astype(dtype).astype(acc)

    def mm(p, q):
        return jnp.matmul(p, q, precision=hi)

    def adjoint(z):
        z = jnp.swapaxes(z, -1, -2)
        return jnp.conj(z) if is_complex else z

    rows, cols = x.shape[-2], x.shape[-1]
    y = rnd(x)
    if rows > cols:
        y = jnp.swapaxes(y, -1, -2)
    sq = _tree.abs_sq(y).astype(real_acc)
    norm = jnp.sqrt(jnp.sum(sq, axis=(-2, -1), keepdims=True))
    norm = jnp.real(rnd(norm.astype(acc))) if is_complex else rnd(norm)
    floor = jnp.maximum(norm, jnp.real(rnd(jnp.asarray(eps, real_acc).astype(acc))))
    y = rnd(y / floor.astype(acc))
    a_, b_, c_ = (_tree.hp(v, acc) for v in (a, b, c))
    for _ in range(steps):
        gram = rnd(mm(y, adjoint(y)))
        upd = rnd(b_ * gram + c_ * mm(gram, gram))
        y = rnd(a_ * y + mm(upd, y))
    if rows > cols:
        y = jnp.swapaxes(y, -1, -2)
    return y if is_complex else y.astype(dtype)


@pytree_dataclass
class ScaleByMuon(PerLeaf):
    """Muon's preconditioner for matrix leaves (no learning rate)::

    B_t = momentum * B_{t-1} + (1 - momentum) * g_t                (B_0 = 0)
    U_t = (1 - momentum) * g_t + momentum * B_t   if nesterov   else   B_t
    O_t = NewtonSchulz(U_t)                      (per matrix; see ``matrix_view``)
    out = s * O_t,  s = sqrt(max(1, rows / cols))          (adjust_lr_fn None / "original")
                    s = 0.2 * sqrt(max(rows, cols))         ("match_rms_adamw")
    """

    fn_name = "muon"
    state_type = MuonState
    leaf_statistic = "per-matrix orthogonalization"

    momentum: Any = field(0.95, check=_checks.UNIT)
    ns_a: Any = 3.4445
    ns_b: Any = -4.7750
    ns_c: Any = 2.0315
    eps: Any = field(1e-7, check=_checks.NONNEGATIVE)
    nesterov: bool = static_field(True)
    ns_steps: int = static_field(5, check=_checks.Interval(0, 99))
    adjust_lr_fn: Any = static_field(None, choices=(None, "original", "match_rms_adamw"))
    conv_layout: str = static_field("oihw", choices=("oihw", "hwio"))
    batch_dims: Any = static_field(None)
    ns_dtype: Any = static_field(jnp.bfloat16)

    def _init_leaf(self, p):
        return (_tree.zeros_like(p),)

    def _scalars(self, count, t):
        return {"momentum": value_at(self.momentum, count)}

    def _leaf(self, s, g, b):
        cd = _tree.compute_dtype(g.dtype, b.dtype)
        gc, m = g.astype(cd), _tree.hp(s.momentum, cd)
        b_new = m * b.astype(cd) + (1 - m) * gc
        u = (1 - m) * gc + m * b_new if self.nesterov else b_new
        batch, rows, cols = matrix_view(g.shape, self.conv_layout, self.batch_dims)
        # Under Explicit mesh axes each matrix is gathered (its batch axes stay sharded).
        x = _tree.gather_explicit(u, len(batch)).reshape(*batch, rows, cols)
        o = newton_schulz(
            x, self.ns_a, self.ns_b, self.ns_c, self.ns_steps, self.eps, self.ns_dtype
        )
        if self.adjust_lr_fn == "match_rms_adamw":
            sc = 0.2 * math.sqrt(max(rows, cols))
        else:
            sc = math.sqrt(max(1.0, rows / cols))
        out = o.astype(cd).reshape(g.shape) * jnp.asarray(sc, cd)
        out = _tree.like_sharding(out, g)
        return out.astype(g.dtype), b_new.astype(b.dtype)


def _select(tree: Any, keep_matrices: bool, ranks: list[int]) -> Any:
    """``tree`` with None at the leaves that are (not) matrices; ``ranks`` from ``leaf_ranks``."""
    leaves, treedef = jax.tree.flatten(tree)
    keep = [r >= 2 for r in ranks]
    return treedef.unflatten([x if k == keep_matrices else None for x, k in zip(leaves, keep)])


def _merge(matrices: Any, others: Any) -> Any:
    return jax.tree.map(
        lambda a, b: a if a is not None else b, matrices, others, is_leaf=lambda x: x is None
    )


@pytree_dataclass
class MuonSplit(Transform):
    """Sends leaves with >= 2 axes to ``muon`` and 0-D and 1-D leaves to ``fallback``.

    Each inner transform sees the full tree with ``None`` at the other's leaves.
    """

    stackable = True  # the split reads the rank of each (stacked) leaf

    muon: Transform
    fallback: Transform

    def _init(self, params):
        ranks = leaf_ranks("gradtx.muon", params, "splitting matrices from vectors by shape")
        return MuonSplitState(
            self.muon._init(_select(params, True, ranks)),
            self.fallback._init(_select(params, False, ranks)),
        )

    def _update(self, updates, state, params, **extra):
        ranks = leaf_ranks("gradtx.muon", updates, "splitting matrices from vectors by shape")
        p_m = None if params is None else _select(params, True, ranks)
        p_o = None if params is None else _select(params, False, ranks)
        u_m, s_m = self.muon._update(_select(updates, True, ranks), state.muon, p_m, **extra)
        u_o, s_o = self.fallback._update(
            _select(updates, False, ranks), state.fallback, p_o, **extra
        )
        return _merge(u_m, u_o), MuonSplitState(s_m, s_o)


def scale_by_muon(
    momentum: Any = 0.95,
    nesterov: bool = True,
    ns_a: Any = 3.4445,
    ns_b: Any = -4.7750,
    ns_c: Any = 2.0315,
    eps: Any = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    conv_layout: str = "oihw",
    batch_dims: int | None = None,
    ns_dtype: Any = jnp.bfloat16,
) -> ScaleByMuon:
    """Muon's preconditioner for matrix leaves, without the learning rate (see ``ScaleByMuon``)."""
    return ScaleByMuon(
        momentum, ns_a, ns_b, ns_c, eps, nesterov, ns_steps, adjust_lr_fn, conv_layout,
        batch_dims, ns_dtype,
    )  # fmt: skip


def muon(
    learning_rate: Any = 1e-3,
    weight_decay: Any = 0.1,
    momentum: Any = 0.95,
    nesterov: bool = True,
    ns_a: Any = 3.4445,
    ns_b: Any = -4.7750,
    ns_c: Any = 2.0315,
    eps: Any = 1e-7,
    ns_steps: int = 5,
    adjust_lr_fn: str | None = None,
    *,
    fallback: Any = None,
    conv_layout: str = "oihw",
    batch_dims: int | None = None,
    ns_dtype: Any = jnp.bfloat16,
    maximize: bool = False,
    weight_decay_mask: Any = None,
):
    """Muon, torch.optim.Muon's semantics and defaults, for every leaf shape.

    torch's ``ns_coefficients=(a, b, c)`` is split into ``ns_a, ns_b, ns_c``. Update rule for a
    matrix leaf (t = 1, 2, ...)::

        B_t = momentum * B_{t-1} + (1 - momentum) * g_t             (B_0 = 0)
        U_t = (1 - momentum) * g_t + momentum * B_t  (nesterov)   or   B_t
        X   = U_t / max(||U_t||_F, eps)       (in ns_dtype; transposed when rows > cols)
        repeat ns_steps:  A = X X^T;  X = ns_a X + (ns_b A + ns_c A A) X
        p_t = p_{t-1} * (1 - lr * weight_decay) - lr * s * X
        s   = sqrt(max(1, rows / cols))  (adjust_lr_fn None or "original")
            = 0.2 * sqrt(max(rows, cols))  ("match_rms_adamw")

    Leaves that are not matrices (torch accepts only 2-D parameters):
      - 3-D leaves are stacks of matrices (stacked or scanned layers): each matrix is
        orthogonalised on its own; s uses the matrix's shape.
      - 4-D leaves are convolution kernels, flattened to ``(out, in * kh * kw)``
        (``conv_layout="oihw"``, torch) or ``(kh * kw * in, out)`` (``"hwio"``, Flax).
      - leaves with n >= 5 axes are stacks (n - 4 leading axes) of kernels; ``batch_dims``
        overrides the number of leading batch axes for every leaf with >= 3 axes.
      - 0-D and 1-D leaves (biases, norms' scales) go to ``fallback``.

    Args:
      {learning_rate}
      weight_decay: decoupled decay coefficient >= 0 (float, array or schedule), multiplied by
        the unadjusted learning rate (torch default 0.1); also given to the default fallback.
      weight_decay_mask: a pytree of bools (True = decay that leaf) or a function from params to
        one. None decays every leaf.
      momentum: momentum in [0, 1) (float, array or schedule).
      nesterov: use the Nesterov form of the momentum (torch default True).
      ns_a, ns_b, ns_c: the Newton-Schulz coefficients (torch's defaults).
      eps: floor of the Frobenius norm before the iteration (torch 1e-7).
      ns_steps: number of Newton-Schulz iterations (static, 0 to 99).
      adjust_lr_fn: None or ``"original"`` (Keller Jordan's ``sqrt(max(1, rows/cols))``) or
        ``"match_rms_adamw"`` (Moonshot's ``0.2 * sqrt(max(rows, cols))``).
      fallback: the optimizer for 0-D and 1-D leaves, a complete optimizer (its own learning
        rate included; a gradtx or Optax transform). None: ``gradtx.adamw(learning_rate,
        weight_decay=weight_decay, mask=weight_decay_mask)``.
      conv_layout: ``"oihw"`` or ``"hwio"``, the layout of 4-D kernels.
      batch_dims: None (the rules above) or the number of leading batch axes.
      ns_dtype: dtype of the Newton-Schulz iteration (torch: bfloat16; float32 is more exact).
      {maximize} It applies to the fallback's leaves too (torch's Muon has no maximize).

    Conventions: torch orthogonalises in bfloat16, and so does gradtx by default; bfloat16
    rounding makes trajectories agree to about 1e-2 relative, not to float64 precision.
    ``optax.contrib.muon`` uses a bias-corrected momentum and a different default scale.

    References:
      Jordan, Jin, Boza, You, Cesista, Newhouse, Bernstein, "Muon: An optimizer for hidden layers
      in neural networks", 2024. https://kellerjordan.github.io/posts/muon/
      Liu et al., "Muon is Scalable for LLM Training", 2025. arXiv:2502.16982
    """
    pre = scale_by_muon(
        momentum, nesterov, ns_a, ns_b, ns_c, eps, ns_steps, adjust_lr_fn,
        conv_layout=conv_layout, batch_dims=batch_dims, ns_dtype=ns_dtype,
    )  # fmt: skip
    matrices = optimizer_chain(
        "muon",
        pre,
        learning_rate,
        weight_decay=weight_decay,
        weight_decay_mask=weight_decay_mask,
        decoupled_weight_decay=True,
    )
    if fallback is None:
        from .adam import adamw

        fallback = adamw(learning_rate, weight_decay=weight_decay, mask=weight_decay_mask)
    split = MuonSplit(matrices, as_transform(fallback, "muon", "fallback"))
    return Chain((negate(), split)) if maximize else Chain((split,))


fill_doc(muon, **COMMON_DOCS)
