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

    fn_name = "piecewise_interpolate_schedule"

    init_value: Any
    boundaries: tuple[Any, ...] = ()
    scales: tuple[Any, ...] = ()
    interpolate_type: str = static_field("linear", choices=("linear", "cosine"))

    def __call__(self, count):
        x = t(count)
        values = [f(self.init_value)]
        for s in self.scales:
            values.append(values[-1] * f(s))
        xs = [0, *self.boundaries]
        out = knots(
            count, xs, values, ANNEAL[self.interpolate_type], closed=False, min_width=1.0, sub=since
        )
        return jnp.where(x >= 0, out, 0.0)

    def __repr__(self) -> str:
        pairs = ", ".join(
            f"{_repr_value(b)}: {_repr_value(s)}" for b, s in zip(self.boundaries, self.scales)
        )
        return (
            f"PiecewiseInterpolate(init_value={_repr_value(self.init_value)}, {{{pairs}}}, "
            f"interpolate_type={self.interpolate_type!r})"
        )


def piecewise_interpolate_schedule(
    interpolate_type: str,
    init_value: Any,
    boundaries_and_scales: dict[Any, Any] | None = None,
) -> PiecewiseInterpolate:
    """Interpolates (``"linear"`` or ``"cosine"``) between values scaled at the boundaries.

    Each boundary's scale multiplies the value reached at the previous boundary; the schedule
    moves from one value to the next over the interval between boundaries (formula: see
    ``PiecewiseInterpolate``).

    Args:
      interpolate_type: ``"linear"`` or ``"cosine"``.
      init_value: the value at count 0.
      boundaries_and_scales: ``{boundary: scale}``, boundaries >= 0 and scales >= 0; None: a
        constant schedule. Default None.

    Conventions: Optax's ``piecewise_interpolate_schedule`` (0 before count 0, as Optax).
    """
    items = sorted_items("piecewise_interpolate_schedule", boundaries_and_scales)
    return PiecewiseInterpolate(
        init_value, tuple(b for b, _ in items), tuple(s for _, s in items), interpolate_type
    )


add_formula(piecewise_interpolate_schedule, PiecewiseInterpolate)
