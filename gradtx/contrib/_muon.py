"""Optax's contrib Muon: bias-corrected momentum orthogonalised by Newton-Schulz iterations.

``gradtx.muon`` is torch's Muon (no bias correction, Frobenius floor ``max(||x||, eps)``, the
iteration rounded to bfloat16, torch's shape scale); this module is Optax's formula, computed in
at least float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import _checks, _tree
from .._kernel import PerLeaf
from .._transform import EmptyState, Transform, field, pytree_dataclass, static_field, value_at
from ..optimizers.adam import adamw
from ..transforms._partition import _TreeLabelFn, partition
from ._common import decay, with_learning_rate
from ._dims import DimSpec, from_matrices, matrix_axes, to_matrices

PRECONDITIONINGS = ("frobenius", "spectral", "aol", "schatten")
DEFAULT_NS_COEFFS = (3.4445, -4.7750, 2.0315)
# Per-iteration coefficients of Ahn et al.'s Dion (one row per Newton-Schulz step).
DION_NS_COEFFS = (
    (4.0848, -6.8946, 2.9270),
    (3.9505, -6.3029, 2.6377),
    (3.7418, -5.5913, 2.3037),
    (2.8769, -3.1427, 1.2046),
    (2.8366, -3.0525, 1.2012),
)
NS_COEFFS_PRESETS = {"standard": DEFAULT_NS_COEFFS, "dion": DION_NS_COEFFS}
_GRAM_FLOOR = 1e-8  # the floor of the AOL row sums and of the Schatten-4 norm (Optax's)


class MuonDimensionNumbers(NamedTuple):
    """Which axes of a leaf form Muon's matrix ``x W = y``.

    The reduction (input) axes are flattened into the rows and the output axes into the
    columns; every other axis is a batch axis, and each slice along them is orthogonalised on
    its own. The default is a 2-D ``(in, out)`` weight.
    """

    reduction_axis: Sequence[int] | int = 0
    output_axis: Sequence[int] | int = 1


class MuonState(NamedTuple):
    count: jax.Array  # updates applied so far (int32, saturating)
    mu: Any  # m, the EMA of the gradients


def _coefficients(fn: str, value: Any, ns_steps: int) -> Any:
    """``ns_coeffs`` as a float array of shape (3,) or (n, 3), n <= ns_steps (presets by name)."""
    if isinstance(value, str):
        if value not in NS_COEFFS_PRESETS:
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: ns_coeffs must be (a, b, c), a tuple of such rows or one of "
                f"{sorted(NS_COEFFS_PRESETS)}, got {value!r}"
            )
        value = NS_COEFFS_PRESETS[value]
    if isinstance(value, jax.core.Tracer):
        return value
    arr = jnp.asarray(value, _tree.float_dtype())
    if arr.ndim not in (1, 2) or arr.shape[-1] != 3:
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: ns_coeffs must have shape (3,) or (n, 3), got shape {arr.shape}"
        )
    if arr.ndim == 2 and arr.shape[0] > ns_steps:
        raise _checks.HyperparameterError(
            f"gradtx.{fn}: ns_coeffs has {arr.shape[0]} rows (one per Newton-Schulz step), "
            f"more than ns_steps={ns_steps}; pass ns_steps >= {arr.shape[0]}"
        )
    return arr


def _mm(p: jax.Array, q: jax.Array) -> jax.Array:
    return jnp.matmul(p, q, precision=jax.lax.Precision.HIGHEST)


def _adjoint(z: jax.Array) -> jax.Array:
    z = jnp.swapaxes(z, -1, -2)
    return jnp.conj(z) if jnp.iscomplexobj(z) else z


def orthogonalize(
    x: jax.Array, coeffs: jax.Array, ns_steps: int, preconditioning: str, eps: Any
) -> jax.Array:
    """Newton-Schulz orthogonalisation of a stack of matrices ``x`` (shape ``(b, m, n)``).

    Wide matrices are iterated as they are and tall ones transposed. Before the iteration,
    ``"frobenius"`` divides by ``||X||_F + eps`` and ``"spectral"`` by ``||X||_2 + eps``; then
    each step (coefficients ``(a, b, c)``: one row for every step, or row k for step k) is::

        A = X X^H;  X = a X + (b A + c A A) X

    ``"aol"`` and ``"schatten"`` do not divide first: in the first step they rescale ``X`` and
    ``A`` before the polynomial, by ``D = diag(1 / sqrt(max(sum_j |A_ij|, 1e-8)))``
    (``X <- D X``, ``A <- D A D``) and by ``s = 1 / sqrt(max(||A||_F, 1e-8))`` (``X <- s X``,
    ``A <- s^2 A``) respectively.
    """
    cd = x.dtype
    rd = _tree.real_dtype(cd)
    tall = x.shape[-2] > x.shape[-1]
    if tall:
        x = jnp.swapaxes(x, -1, -2)
    e = jnp.asarray(eps).astype(rd)
    if preconditioning == "frobenius":
        norm = jnp.sqrt(jnp.sum(_tree.abs_sq(x), axis=(-2, -1), keepdims=True)).astype(rd)
        x = x / (norm + e).astype(cd)
    elif preconditioning == "spectral":
        norm = jnp.linalg.norm(x, ord=2, axis=(-2, -1), keepdims=True).astype(rd)
        x = x / (norm + e).astype(cd)
    rows = coeffs if coeffs.ndim == 2 else jnp.broadcast_to(coeffs, (ns_steps, *coeffs.shape))

    def iteration(x, abc, first=False):
        a, b, c = (abc[j].astype(rd).astype(cd) for j in range(3))
        gram = _mm(x, _adjoint(x))
        if first and preconditioning == "aol":
            rowsum = jnp.sum(jnp.abs(gram), axis=-1, keepdims=True)
            d = jax.lax.rsqrt(jnp.maximum(rowsum, _GRAM_FLOOR)).astype(cd)
            x, gram = x * d, gram * d * jnp.swapaxes(d, -1, -2)
        elif first and preconditioning == "schatten":
            fro = jnp.sqrt(jnp.sum(_tree.abs_sq(gram), axis=(-2, -1), keepdims=True))
            s = jax.lax.rsqrt(jnp.maximum(fro, _GRAM_FLOOR)).astype(cd)
            x, gram = x * s, gram * (s * s)
        return a * x + _mm(b * gram + c * _mm(gram, gram), x)

    if rows.shape[0]:
        # The first step (which may rescale) written out, the others one compiled loop body.
        x = iteration(x, rows[0], first=True)
        x, _ = jax.lax.scan(lambda x, abc: (iteration(x, abc), None), x, rows[1:])
    return jnp.swapaxes(x, -1, -2) if tall else x


def _only_matrices(fn: str):
    def default(p: Any) -> MuonDimensionNumbers:
        if jnp.ndim(p) != 2:
            raise ValueError(
                f"gradtx.{fn}: a leaf of shape {jnp.shape(p)} is not a matrix; pass "
                "weight_dimension_numbers (a MuonDimensionNumbers per leaf) to say which axes "
                "form its matrix, or use gradtx.contrib.muon, which sends such leaves to AdamW."
            )
        return MuonDimensionNumbers()

    return default


def _muon_dims(fn: str, name: str, value: Any) -> DimSpec:
    return DimSpec.of(fn, name, value, MuonDimensionNumbers)


@pytree_dataclass
class ScaleByMuon(PerLeaf):
    """Optax's contrib Muon direction (see ``scale_by_muon``)."""

    fn_name = "contrib.scale_by_muon"
    state_type = MuonState
    leaf_statistic = "per-matrix orthogonalization"

    ns_coeffs: Any = field(DEFAULT_NS_COEFFS)
    beta: Any = field(0.95, check=_checks.UNIT)
    eps: Any = field(1e-8, check=_checks.NONNEGATIVE)
    ns_steps: int = static_field(5, check=_checks.Interval(0, 1000, integer=True))
    mu_dtype: Any = static_field(None)
    nesterov: bool = static_field(True)
    adaptive: bool = static_field(False)
    preconditioning: str = static_field("frobenius", choices=PRECONDITIONINGS)
    weight_dimension_numbers: Any = static_field(None, converter=_muon_dims)
    fn: str = static_field("contrib.scale_by_muon")

    def __check_init__(self):
        # The coefficients' shape depends on ns_steps: checked across the two fields.
        coeffs = _coefficients(self.fn, self.ns_coeffs, self.ns_steps)
        object.__setattr__(self, "ns_coeffs", coeffs)

    def _init_leaf(self, p):
        return (_tree.zeros_like(p, self.mu_dtype),)

    def _scalars(self, count, t):
        return {"beta": value_at(self.beta, count), "t": t}

    def _statics(self, updates, params):
        dims = self.weight_dimension_numbers.resolve(updates, _only_matrices(self.fn), self.where())
        return {"dims": dims}

    def _leaf(self, s, g, mu, dims):
        cd = _tree.compute_dtype(g.dtype, mu.dtype)
        rd = _tree.real_dtype(cd)
        b = _tree.hp(s.beta, cd)
        gc = g.astype(cd)
        m = b * mu.astype(cd) + (1 - b) * gc
        t = s.t.astype(rd)

        def unbiased(x, k):
            return x / _tree.bias_correction(s.beta, k, rd).astype(cd)

        m_hat = (
            b * unbiased(m, t + 1) + (1 - b) * unbiased(gc, t) if self.nesterov else unbiased(m, t)
        )
        perm, nb, fan_in, fan_out = matrix_axes(self.fn, g.shape, dims, batch=True)
        x = to_matrices(m_hat, perm, nb, fan_in, fan_out)
        o = orthogonalize(x, self.ns_coeffs, self.ns_steps, self.preconditioning, self.eps)
        o = from_matrices(o, g.shape, perm)
        if self.adaptive:  # scaled by the dual norm <m_hat, O> (Bernstein, Newhouse)
            o = jnp.sum(jnp.conj(m_hat) * o) * o
        return o.astype(g.dtype), m.astype(mu.dtype)


@pytree_dataclass
class ScaleByShape(PerLeaf):
    """Muon's scale per matrix: ``sqrt(max(1, fan_out / fan_in))``, or
    ``consistent_rms * sqrt(max(fan_in, fan_out))`` when ``consistent_rms`` is set."""

    fn_name = "contrib.muon"
    state_type = EmptyState

    consistent_rms: Any = field(None, check=_checks.NONNEGATIVE)
    weight_dimension_numbers: Any = static_field(None)

    def _scalars(self, count, t):
        return {"rms": self.consistent_rms}

    def _statics(self, updates, params):
        return {
            "dims": self.weight_dimension_numbers.resolve(
                updates, _only_matrices(self.fn_name), self.where()
            )
        }

    def _leaf(self, s, g, dims):
        _, _, fan_in, fan_out = matrix_axes(self.fn_name, g.shape, dims, batch=True)
        cd = _tree.compute_dtype(g.dtype)
        if s.rms is None:
            sc = _tree.hp(math.sqrt(max(1.0, fan_out / fan_in)), cd)
        else:
            sc = _tree.hp(math.sqrt(max(fan_in, fan_out)), cd) * _tree.hp(s.rms, cd)
        return ((sc * g.astype(cd)).astype(g.dtype),)


class _MuonLabels(_TreeLabelFn):
    """``"muon"`` for the leaves with dimension numbers (by default the 2-D ones), else
    ``"adam"``; equal for equal dimension numbers, so rebuilding ``muon`` does not recompile."""

    __slots__ = ()

    def __call__(self, params: Any) -> Any:
        dims = self.fn.resolve(
            params, lambda p: MuonDimensionNumbers() if jnp.ndim(p) == 2 else None
        )
        return jax.tree.map(
            lambda d: "adam" if d is None else "muon",
            dims,
            is_leaf=lambda x: x is None or isinstance(x, MuonDimensionNumbers),
        )

    def __hash__(self) -> int:
        return hash(("_MuonLabels", self.fn))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _MuonLabels) and other.fn == self.fn

    def __repr__(self) -> str:
        return f"muon_labels({self.fn!r})"


def scale_by_muon(
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: Any = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    weight_dimension_numbers: Any = None,
) -> ScaleByMuon:
    """Optax's contrib Muon direction for matrix leaves (no shape scale, no learning rate).

    Update rule (t = 1, 2, ...; ``c_k = 1 - beta^k``)::

        m_t   = beta * m_{t-1} + (1 - beta) * g_t                      (m_0 = 0)
        mhat  = beta * m_t / c_{t+1} + (1 - beta) * g_t / c_t   (nesterov)   or   m_t / c_t
        O_t   = NewtonSchulz(mhat)          (per matrix; see ``orthogonalize``)
        u_t   = O_t,   or   <mhat, O_t> * O_t   (adaptive)

    Args:
      ns_coeffs: the Newton-Schulz coefficients ``(a, b, c)``, a tuple of such rows (one per
        step; at most ``ns_steps`` rows, and then ``ns_steps`` is ignored), or a preset name
        (``"standard"``, ``"dion"``); default ``(3.4445, -4.7750, 2.0315)``.
      ns_steps: Newton-Schulz iterations, an integer >= 0 (static); default 5.
      beta: momentum decay, in [0, 1) (float, array or schedule); default 0.95.
      eps: added to the norm that divides the matrix first, >= 0; default 1e-8.
      mu_dtype: dtype of m (default: each parameter's dtype).
      nesterov: use the Nesterov form of the momentum (default True).
      adaptive: scale each orthogonalised leaf by ``<mhat, O>`` (default False).
      preconditioning: ``"frobenius"`` (default), ``"spectral"``, ``"aol"`` or ``"schatten"``:
        how the matrix is scaled before or in the first iteration (see ``orthogonalize``).
      weight_dimension_numbers: None (every leaf is a 2-D ``(in, out)`` matrix), a
        ``MuonDimensionNumbers`` for every leaf, a pytree of them, or a function of the updates
        returning one.

    Conventions: Optax's ``contrib.scale_by_muon``, computed in at least float32. torch's Muon
    (no bias correction) is ``gradtx.scale_by_muon``.

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
      https://kellerjordan.github.io/posts/muon/
      Bernstein, Newhouse, "Old Optimizer, New Norm: An Anthology", 2024. arXiv:2409.20325
      Boissin et al., "Turbo-Muon: Accelerating Orthogonality-Based Optimization with
      Pre-Conditioning", 2025. arXiv:2512.04632
      Grishina et al., "Accelerating Newton-Schulz Iteration for Orthogonalization via
      Chebyshev-type Polynomials", 2025. arXiv:2506.10935
      Ahn et al., "Dion: Distributed Orthonormalized Updates", 2025. arXiv:2504.05295
    """
    return ScaleByMuon(ns_coeffs, beta, eps, ns_steps, mu_dtype, nesterov, adaptive,
                       preconditioning, weight_dimension_numbers)  # fmt: skip


def muon(
    learning_rate: Any,
    ns_coeffs: Any = DEFAULT_NS_COEFFS,
    ns_steps: Any = 5,
    beta: Any = 0.95,
    eps: Any = 1e-8,
    weight_decay: Any = 0.0,
    weight_decay_mask: Any = None,
    mu_dtype: Any = None,
    *,
    nesterov: bool = True,
    adaptive: bool = False,
    preconditioning: str = "frobenius",
    adam_b1: Any = 0.9,
    adam_b2: Any = 0.999,
    adam_eps_root: Any = 0.0,
    adam_weight_decay: Any = 0.0,
    adam_learning_rate: Any = None,
    muon_weight_dimension_numbers: Any = None,
    consistent_rms: Any = None,
) -> Transform:
    """Muon with Optax's contrib arguments: matrices by Muon, every other leaf by AdamW.

    Update rule for a matrix leaf (``u_t`` is ``scale_by_muon``'s, fan_in and fan_out the
    sizes of the reduction and output axes; lr = learning_rate(t - 1))::

        s   = sqrt(max(1, fan_out / fan_in))    or    consistent_rms * sqrt(max(fan_in, fan_out))
        p_t = p_{t-1} - lr * (s * u_t + weight_decay * p_{t-1})

    The other leaves get ``adamw(adam_learning_rate, adam_b1, adam_b2, eps, adam_eps_root,
    mu_dtype, adam_weight_decay, nesterov=nesterov)``.

    Args:
      learning_rate: step size >= 0 (float, array or schedule); required, as in Optax.
      ns_coeffs: as in ``scale_by_muon`` (rows, or ``"standard"`` or ``"dion"``).
      ns_steps: Newton-Schulz iterations, an integer >= 0; default 5.
      beta: momentum decay, in [0, 1); default 0.95.
      eps: Muon's norm offset and AdamW's eps, >= 0; default 1e-8.
      weight_decay: decoupled decay >= 0 of the matrices, scaled by the learning rate;
        default 0.
      weight_decay_mask: a pytree of bools or a function from params to one; default None.
      mu_dtype: dtype of both optimizers' first moments (default: each parameter's dtype).
      nesterov: Nesterov momentum in both optimizers (default True).
      adaptive: scale by ``<mhat, O>`` (see ``scale_by_muon``; default False).
      preconditioning: ``"frobenius"`` (default), ``"spectral"``, ``"aol"`` or ``"schatten"``.
      adam_b1: AdamW's first-moment decay, in [0, 1); default 0.9.
      adam_b2: AdamW's second-moment decay, in [0, 1); default 0.999.
      adam_eps_root: AdamW's eps inside the square root, >= 0; default 0.
      adam_weight_decay: AdamW's decoupled decay >= 0; default 0.
      adam_learning_rate: AdamW's step size >= 0; None (default) uses ``learning_rate``.
      muon_weight_dimension_numbers: None (the 2-D leaves are Muon's), a
        ``MuonDimensionNumbers``, a pytree of them with None at the leaves for AdamW (a prefix
        of the params is enough), or a function of the params returning one.
      consistent_rms: None (the width scale above) or a number >= 0 (0.2 matches AdamW's
        update RMS, Liu et al.).

    Conventions: Optax's ``contrib.muon`` (a ``partition`` with groups ``"muon"`` and
    ``"adam"``). torch's Muon is ``gradtx.muon``: no bias correction and the scale
    ``sqrt(max(1, rows / cols))`` of a torch ``(out, in)`` weight.

    References:
      Jordan et al., "Muon: An optimizer for hidden layers in neural networks", 2024.
      https://kellerjordan.github.io/posts/muon/
      Liu et al., "Muon is Scalable for LLM Training", 2025. arXiv:2502.16982
    """
    fn = "contrib.muon"
    for name, value in (("adam_b1", adam_b1), ("adam_b2", adam_b2)):
        _checks.check_unit_interval(fn, name, value)
    for name, value in (("adam_eps_root", adam_eps_root), ("adam_weight_decay", adam_weight_decay),
                        ("adam_learning_rate", adam_learning_rate)):  # fmt: skip
        if value is not None:
            _checks.check_nonnegative(fn, name, value)
    dims = DimSpec.of(fn, "muon_weight_dimension_numbers", muon_weight_dimension_numbers,
                      MuonDimensionNumbers)  # fmt: skip
    direction = ScaleByMuon(ns_coeffs, beta, eps, ns_steps, mu_dtype, nesterov, adaptive,
                            preconditioning, dims, fn)  # fmt: skip
    shape = ScaleByShape(consistent_rms, dims)
    matrices = with_learning_rate(
        fn, learning_rate, direction, shape, decay(fn, weight_decay, weight_decay_mask)
    )
    others = adamw(
        learning_rate if adam_learning_rate is None else adam_learning_rate,
        adam_b1, adam_b2, eps, adam_eps_root, mu_dtype, adam_weight_decay, nesterov=nesterov,
    )  # fmt: skip
    return partition({"muon": matrices, "adam": others}, _MuonLabels(dims))
