"""Accessors that read an optimizer's state from inside a chain's (nested) state."""

from __future__ import annotations

from typing import Any

from .asgd import ASGDState


def _find_asgd_state(state: Any) -> ASGDState | None:
    if isinstance(state, ASGDState):
        return state
    if isinstance(state, (tuple, list)):
        for s in state:
            found = _find_asgd_state(s)
            if found is not None:
                return found
    return None


def asgd_averaged_params(state: Any) -> Any:
    """The averaged parameters ``ax`` held in an ``asgd`` state (torch's ``state['ax']``).

    ``state`` is the state of ``asgd(...)`` or of any chain that contains ``scale_by_asgd``.
    """
    found = _find_asgd_state(state)
    if found is None:
        raise TypeError(
            "gradtx.asgd_averaged_params: no ASGDState in this state; pass the state returned by "
            "an asgd optimizer's init or update."
        )
    return found.ax
