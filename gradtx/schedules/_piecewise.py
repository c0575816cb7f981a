"""Piecewise interpolation between scaled values."""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from .._transform import Schedule, _repr_value, pytree_dataclass, static_field
from ._util import ANNEAL, add_formula, f, knots, since, sorted_items, t


@pytree_dataclass
class PiecewiseInterpolate(Schedule):
    """Interpolates between the values ``v_0 = init_value``, ``v_i = v_{i-1} * scale_i``::

    b_0 = 0;  for b_i <= count < b_{i+1}:
        pct = (count - b_i) / max(b_{i+1} - b_i, 1)
        eta = v_i + (v_{i+1} - v_i) * pct                        (linear)
        eta = v_{i+1} + (v_i - v_{i+1}) / 2 * (cos(pi pct) + 1)  (cosine)
    eta = v_last past the last boundary
    """

    fn_name = "piecewise_interpolate"

    init_value: Any
    boundaries: tuple[Any, ...] = ()
    scales: tuple[Any, ...] = ()
    interpolation: str = static_field("linear", choices=("linear", "cosine"))

    def __call__(self, count):
        x = t(count)
        values = [f(self.init_value)]
        for s in self.scales:
            values.append(values[-1] * f(s))
        xs = [0, *self.boundaries]
        out = knots(
            count, xs, values, ANNEAL[self.interpolation], closed=False, min_width=1.0, sub=since
        )
        return jnp.where(x >= 0, out, 0.0)

    def __repr__(self) -> str:
        pairs = ", ".join(
            f"{_repr_value(b)}: {_repr_value(s)}" for b, s in zip(self.boundaries, self.scales)
        )
        return (
            f"PiecewiseInterpolate(init_value={_repr_value(self.init_value)}, {{{pairs}}}, "
            f"interpolation={self.interpolation!r})"
        )


def piecewise_interpolate(
    init_value: Any,
    boundaries_and_scales: dict[Any, Any] | None = None,
    interpolation: str = "linear",
) -> PiecewiseInterpolate:
    """Interpolates (``"linear"`` or ``"cosine"``) between values scaled at the boundaries.

    Each boundary's scale multiplies the value reached at the previous boundary; the schedule
    moves from one value to the next over the interval between boundaries (see
    ``PiecewiseInterpolate``). Optax ``piecewise_interpolate_schedule(kind, init, b_and_s)`` is
    ``piecewise_interpolate(init, b_and_s, kind)``.
    """
    items = sorted_items("piecewise_interpolate", boundaries_and_scales)
    return PiecewiseInterpolate(
        init_value, tuple(b for b, _ in items), tuple(s for _, s in items), interpolation
    )


add_formula(piecewise_interpolate, PiecewiseInterpolate)
