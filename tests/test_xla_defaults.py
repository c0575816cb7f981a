"""The tests marked ``xla_defaults``, in a process with XLA:CPU's default fusion emitters.

The suite compiles with XLA:CPU's LLVM IR emitters for speed (tests/conftest.py). A few
comparisons hold to their tolerance only with the default emitters, which round some batched
reductions differently; this test runs the marked tests this process collected in a pytest
process of its own (GRADTX_TEST_XLA_DEFAULTS=1), while the rest of the suite goes on.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import QUICK_COMPILE, XLA_DEFAULTS_TESTS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(not QUICK_COMPILE, reason="the marked tests ran in this process already")
def test_marked_tests_pass_with_xla_default_emitters():
    flags = os.environ.get("XLA_FLAGS", "").split()
    env = {
        **os.environ,
        "GRADTX_TEST_XLA_DEFAULTS": "1",
        "XLA_FLAGS": " ".join(f for f in flags if not f.startswith("--xla_backend_extra_options")),
    }
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider"]
    if not XLA_DEFAULTS_TESTS:
        pytest.skip("this run collected no test marked xla_defaults")
    proc = subprocess.run(
        [*cmd, *XLA_DEFAULTS_TESTS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert f"{len(XLA_DEFAULTS_TESTS)} passed" in out and " skipped" not in out, out[-3000:]
