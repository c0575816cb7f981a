"""Every notebook runs top to bottom (its own assertions check the numbers behind its figures).

The committed notebooks carry no outputs; figures are written to ``GRADTX_FIGURES`` (a temporary
folder here; ``notebooks/figures/`` when run by hand with ``make notebooks FIGURES=...``).
"""

from __future__ import annotations

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, (
                f"{path.name} is committed with outputs; clear them"
            )
    figures = pathlib.Path(os.environ.get("GRADTX_NOTEBOOK_FIGURES", tmp_path))
    monkeypatch.setenv("GRADTX_FIGURES", str(figures))
    # One CPU device is plenty inside a notebook; the suite's compile settings (conftest.py).
    flags = os.environ.get("XLA_FLAGS", "").split()
    monkeypatch.setenv("XLA_FLAGS", " ".join(f for f in flags if "device_count" not in f))
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    stem = path.stem
    assert any(p.name.startswith(stem) for p in figures.glob("*.png")), f"{stem} saved no figure"
