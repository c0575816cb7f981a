"""Which axes of a leaf form a matrix: the dimension numbers of Muon and GaLore, held static."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .. import _checks, _mask


def _axes(value: Any) -> tuple[int, ...]:
    return (int(value),) if isinstance(value, (int, np.integer)) else tuple(int(a) for a in value)


class _Refused:
    """A leaf that the default dimension numbers refuse (compared by shape and dtype)."""

    __slots__ = ("leaf",)

    def __init__(self, leaf: Any):
        self.leaf = leaf

    def _key(self) -> Any:
        return (tuple(self.leaf.shape), str(self.leaf.dtype))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Refused) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


class DimSpec:
    """A hashable form of a ``weight_dimension_numbers`` argument (a static field).

    ``kind`` is ``"none"`` (no argument), ``"one"`` (one spec for every leaf), ``"tree"`` (a
    pytree of specs and ``None``, possibly a prefix of the params) or ``"fn"`` (a function from
    params to such a pytree). Equal arguments give equal specs, so a transform rebuilt with the
    same dimension numbers reuses the compiled program.
    """

    __slots__ = ("kind", "spec_type", "value")

    def __init__(self, kind: str, value: Any, spec_type: type):
        self.kind, self.value, self.spec_type = kind, value, spec_type

    @classmethod
    def of(cls, fn: str, name: str, value: Any, spec_type: type) -> DimSpec:
        if isinstance(value, DimSpec):
            return value
        if value is None:
            return cls("none", None, spec_type)
        if isinstance(value, spec_type):
            return cls("one", cls._canonical(fn, name, value, spec_type), spec_type)
        if callable(value) and not isinstance(value, (dict, list, tuple)):
            return cls("fn", value, spec_type)
        leaves, treedef = jax.tree.flatten(
            value, is_leaf=lambda x: x is None or isinstance(x, spec_type)
        )
        bad = [x for x in leaves if x is not None and not isinstance(x, spec_type)]
        if bad:
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: {name} must be None, a {spec_type.__name__}, a pytree of them "
                f"(None for leaves that are not matrices) or a function of the params returning "
                f"one, got a pytree holding {bad[0]!r}"
            )
        canon = tuple(None if x is None else cls._canonical(fn, name, x, spec_type) for x in leaves)
        return cls("tree", (treedef, canon), spec_type)

    @staticmethod
    def _canonical(fn: str, name: str, spec: Any, spec_type: type) -> Any:
        try:
            red, out = _axes(spec.reduction_axis), _axes(spec.output_axis)
        except (TypeError, ValueError):
            raise _checks.HyperparameterError(
                f"gradtx.{fn}: {name}: the axes of {spec!r} must be integers or sequences of "
                "integers"
            ) from None
        return spec_type(red, out)

    def resolve(self, tree: Any, default: Callable[[Any], Any], where: str = "gradtx") -> Any:
        """A spec or None per leaf of ``tree`` (``None`` leaves of ``tree`` stay None).

        ``default(leaf)`` gives the spec of a leaf when no argument was given. On packed params
        (``gradtx.pack``) the specs are resolved on the user's params tree and give one spec per
        buffer: a stack of matrices gets its members' spec, which they must share.
        """

        def lenient(leaf: Any) -> Any:
            # Every leaf of the params tree is resolved, including those of buffers that another
            # transform updates: the default's error is kept for the buffers present here.
            try:
                return default(leaf)
            except ValueError:
                return _Refused(leaf)

        for hook in _mask.PACKED_RESOLVERS:
            per_buffer = hook(
                tree,
                lambda t: jax.tree.flatten(self._resolve(t, lenient), is_leaf=self._is_leaf)[0],
                where,
                "weight_dimension_numbers",
            )
            if per_buffer is not None:
                present = [v for v, b in zip(per_buffer.buffers, tree.buffers) if b is not None]
                for v in present:
                    if isinstance(v, _Refused):
                        default(v.leaf)  # raises the default's own error
                return jax.tree.unflatten(jax.tree.structure(tree), present)
        return self._resolve(tree, default)

    def _resolve(self, tree: Any, default: Callable[[Any], Any]) -> Any:
        if self.kind == "none":
            return jax.tree.map(default, tree)
        if self.kind == "one":
            return jax.tree.map(lambda _: self.value, tree)
        if self.kind == "fn":
            given = DimSpec.of("", "", self.value(tree), self.spec_type)
            if given.kind == "none":  # the function marks no leaf as a matrix
                return jax.tree.map(lambda _: None, tree)
            return given._resolve(tree, default)
        treedef, leaves = self.value
        given = jax.tree.unflatten(treedef, leaves)
        return jax.tree.map(
            lambda d, sub: jax.tree.map(lambda _: d, sub),
            given,
            tree,
            is_leaf=self._is_leaf,
        )

    def _is_leaf(self, x: Any) -> bool:
        """A resolved value: a spec, None, or a leaf the default refused."""
        return x is None or isinstance(x, (self.spec_type, _Refused))

    def _gradtx_leaf_signature(self, original: Any) -> list[Any]:
        """Per leaf of the params tree ``original``, its given spec (None where none is given):
        ``gradtx.pack`` stacks only leaves with equal specs. Without an argument, or with one
        spec for every leaf, the spec follows from the shape, which a stack shares."""
        if self.kind in ("none", "one"):
            return [None] * len(jax.tree.leaves(original))
        return jax.tree.flatten(self._resolve(original, lambda _: None), is_leaf=self._is_leaf)[0]

    def _key(self) -> Any:
        return (self.kind, id(self.value) if self.kind == "fn" else self.value, self.spec_type)

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimSpec) and self._key() == other._key()

    def __repr__(self) -> str:
        if self.kind == "tree":
            return repr(jax.tree.unflatten(*self.value))
        return repr(self.value)


def matrix_axes(
    fn: str, shape: tuple[int, ...], spec: Any, *, batch: bool
) -> tuple[tuple[int, ...], int, int, int]:
    """``(perm, batch size, fan_in, fan_out)``: ``x.transpose(perm)`` puts the batch axes first,
    then the reduction axes, then the output axes; ``batch=False`` forbids batch axes."""
    nd = len(shape)
    if nd < 2:
        raise ValueError(
            f"gradtx.{fn}: a leaf of shape {shape} cannot be viewed as a matrix (it needs at "
            "least 2 axes); give it None among the dimension numbers so that it is not one."
        )
    red = tuple(a % nd for a in _axes(spec.reduction_axis))
    out = tuple(a % nd for a in _axes(spec.output_axis))
    if set(red) & set(out):
        raise ValueError(
            f"gradtx.{fn}: the reduction axes {red} and output axes {out} of {spec!r} overlap "
            f"for a leaf of shape {shape}; they must be disjoint."
        )
    rest = tuple(a for a in range(nd) if a not in red and a not in out)
    if rest and not batch:
        raise ValueError(
            f"gradtx.{fn}: {spec!r} leaves the axes {rest} of a leaf of shape {shape} "
            "unassigned; every axis must be a reduction or an output axis."
        )
    size = lambda axes: math.prod(shape[a] for a in axes)
    return rest + red + out, size(rest), size(red), size(out)


def to_matrices(x: Any, perm: tuple[int, ...], b: int, m: int, n: int) -> Any:
    """``x`` as ``(b, m, n)`` matrices (see ``matrix_axes``)."""
    return x.transpose(perm).reshape(b, m, n)


def from_matrices(y: Any, shape: tuple[int, ...], perm: tuple[int, ...]) -> Any:
    """The inverse of ``to_matrices`` for a leaf of ``shape``."""
    return y.reshape(tuple(shape[a] for a in perm)).transpose(np.argsort(perm))
