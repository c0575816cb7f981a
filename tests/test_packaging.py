"""The package builds (sdist and wheel, no deprecation warning) and works installed elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, **kwargs)


@pytest.mark.slow
def test_wheel_and_sdist_build_cleanly_and_install_into_a_fresh_venv(tmp_path):
    # The build reads a copy of the sources, so it writes nothing into the working tree.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "gradtx", src / "gradtx", ignore=ignore)
    dist = tmp_path / "dist"
    # --no-isolation: the test environment's setuptools and build (the test extra), offline.
    proc = _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    warned = [
        line for line in log.splitlines() if "DeprecationWarning" in line or "deprecated" in line
    ]
    assert warned == []

    (wheel,) = dist.glob("gradtx-*.whl")
    (sdist,) = dist.glob("gradtx-*.tar.gz")
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        (meta,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = z.read(meta).decode()
    assert "License-Expression: Apache-2.0" in metadata.splitlines()
    assert "License-File: LICENSE" in metadata.splitlines()
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "gradtx/py.typed" in names and "gradtx/_sweep/_cli.py" in names
    assert not any(n.startswith("tests/") for n in names)
    with tarfile.open(sdist) as t:
        members = {"/".join(Path(m).parts[1:]) for m in t.getnames()}
    assert {"LICENSE", "pyproject.toml", "gradtx/__init__.py", "gradtx/py.typed"} <= members

    # A fresh venv. --system-site-packages reaches the base interpreter's packages; this test
    # environment's own (jax, numpy) come from a .pth line, read after the new venv's
    # site-packages, so nothing is downloaded and the installed gradtx is the one found first.
    env_dir = tmp_path / "venv"
    proc = _run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(env_dir)]
    )
    assert proc.returncode == 0, proc.stderr
    python = env_dir / "bin" / "python"
    proc = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    site = Path(proc.stdout.strip())
    (site / "zz_test_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
         "--no-index", "--quiet", str(wheel)]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr

    # Imported from outside the source tree: the installed copy, and it works.
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    code = (
        "import gradtx, jax.numpy as jnp\n"
        "tx = gradtx.sgd(0.5)\n"
        "p = jnp.array([1.0, -2.0])\n"
        "u, _ = tx.update(p, tx.init(p), p)\n"
        "print(gradtx.__file__)\n"
        "print(*gradtx.apply_updates(p, u).tolist())\n"
    )
    proc = _run([str(python), "-c", code], cwd=outside)
    assert proc.returncode == 0, proc.stderr
    where, values = proc.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(env_dir.resolve()), where
    # One SGD step of lr 0.5 on f(p) = |p|^2 / 2 (gradient p): p - 0.5 p.
    assert [float(v) for v in values.split()] == [0.5, -1.0]

    # The console script is installed, and its errors are the CLI's.
    proc = _run([str(env_dir / "bin" / "gradtx"), "sweep", "--steps", "0"], cwd=outside)
    assert proc.returncode == 2
    assert (
        proc.stderr
        == "gradtx sweep: error: argument --steps: must be an integer in [1, inf), got 0\n"
    )
