"""Namespaces that repeat top-level names under Optax's module names (``gradtx.schedules``,
``gradtx.transforms``)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any


def top_level_names(module: str, names: tuple[str, ...]) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for the package ``module``, whose public ``names`` are
    the objects ``gradtx.<name>``, read on first use.

    Read lazily because the private modules of such a package import one another and the rest of
    gradtx: the namespace cannot be filled while they load.
    """

    def __getattr__(name: str) -> Any:
        if name in names:
            import gradtx

            value = getattr(gradtx, name)
            setattr(sys.modules[module], name, value)
            return value
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module]), *names})

    return __getattr__, __dir__
