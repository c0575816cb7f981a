"""Regenerates the committed torch.optim fixtures (torch is needed only here, never by the tests).

    python tests/torch_fixtures.py [family ...]

For each family (default: every module in tests/torch_cases/), imports
``tests/torch_cases/<family>.py``, calls its ``generate() -> dict[str, np.ndarray]`` and saves the
result as ``tests/fixtures/torch_<family>.npz`` (``np.savez_compressed``). The default dtype is
float64 and the seeds are fixed before each family, so a family's output does not depend on which
other families run. Only torch 2.13.0 is accepted: the fixtures pin its semantics.
"""

from __future__ import annotations

import importlib.util
import pathlib
import random
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CASES_DIR = HERE / "torch_cases"
FIXTURES_DIR = HERE / "fixtures"
TORCH_VERSION = "2.13.0"
SEED = 0


def families() -> list[str]:
    """Every case module in tests/torch_cases/, sorted."""
    return sorted(p.stem for p in CASES_DIR.glob("*.py") if not p.stem.startswith("_"))


def load(family: str):
    path = CASES_DIR / f"{family}.py"
    if not path.is_file():
        raise SystemExit(f"torch_fixtures: no case module {path} (known: {', '.join(families())})")
    spec = importlib.util.spec_from_file_location(f"torch_cases_{family}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    import torch

    if not torch.__version__.startswith(TORCH_VERSION):
        print(
            f"torch_fixtures: needs torch=={TORCH_VERSION}, found {torch.__version__}; "
            f"install it with `pip install torch=={TORCH_VERSION}` (`make fixtures` does).",
            file=sys.stderr,
        )
        return 1
    torch.set_default_dtype(torch.float64)
    FIXTURES_DIR.mkdir(exist_ok=True)
    for family in argv or families():
        module = load(family)
        torch.manual_seed(SEED)
        np.random.seed(SEED)
        random.seed(SEED)
        arrays = module.generate()
        out = FIXTURES_DIR / f"torch_{family}.npz"
        np.savez_compressed(out, **arrays)
        print(f"{out.relative_to(HERE.parent)}: {len(arrays)} arrays, {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
