"""Every ```python block of README.md runs as written, alone, in a fresh interpreter.

Each block is a complete program (it defines its own data and loss), so a reader can paste any
one of them into a file and run it. The blocks run concurrently, each in its own process with a
timeout; a failure shows the block's first line and the process's output.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
TIMEOUT_S = 240


def python_blocks(text: str) -> list[str]:
    """The contents of the ```python fenced blocks of a markdown text, in order."""
    return BLOCK.findall(text)


def test_blocks_are_found():
    blocks = python_blocks("a\n```python\nx = 1\n```\n```bash\nls\n```\n```python\ny = 2\n```\n")
    assert blocks == ["x = 1\n", "y = 2\n"]


def test_readme_is_a_front_page():
    text = README.read_text()
    assert len(text.splitlines()) <= 400
    assert "../" not in text, "the README links outside the repository"
    assert len(python_blocks(text)) >= 5


@pytest.mark.slow
def test_every_python_block_runs(tmp_path):
    blocks = python_blocks(README.read_text())
    env = {**os.environ, "XLA_FLAGS": "", "JAX_PLATFORMS": "cpu", "PYTHONWARNINGS": "error"}
    procs = []
    for i, code in enumerate(blocks):
        script = tmp_path / f"block_{i}.py"
        script.write_text(code)
        out = (tmp_path / f"block_{i}.out").open("w+")
        proc = subprocess.Popen(
            [sys.executable, str(script)], cwd=tmp_path, env=env, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append((code, proc, out))
    failures = []
    for code, proc, out in procs:
        try:
            rc = proc.wait(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = f"timeout after {TIMEOUT_S} s"
        out.seek(0)
        if rc != 0:
            first = code.strip().splitlines()[0]
            failures.append(f"block starting {first!r}: exit {rc}\n{out.read()[-3000:]}")
        out.close()
    assert not failures, "\n\n".join(failures)
