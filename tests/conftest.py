"""Test settings: 8 host devices, quicker CPU compiles, strict dtype promotion, deterministic
keys."""

import os

# Compiling takes most of this suite's time (thousands of small programs, each run a few
# times), so XLA's CPU code generator runs LLVM at optimisation level 1 instead of 2: about 15%
# less CPU time. The HLO programs and their fusion are unchanged; the comparisons against
# NumPy, Optax and torch, and the bit-for-bit ones between sharded, stacked, packed, fused and
# plain runs, give the same outcomes at either level. Setting --xla_backend_optimization_level
# in XLA_FLAGS yourself overrides this.
_flags = os.environ.get("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
if "--xla_backend_optimization_level" not in _flags:
    _flags += " --xla_backend_optimization_level=1"
os.environ["XLA_FLAGS"] = _flags  # before jax is imported; workers and subprocesses inherit it

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


@pytest.fixture
def x64():
    """Runs the test with float64 enabled (reference comparisons in double precision)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture
def standard_promotion():
    """Standard dtype promotion, for tests that call Optax (it mixes int32 counts and floats)."""
    with jax.numpy_dtype_promotion("standard"):
        yield


def pytest_configure(config):
    # pytest-xdist registers this marker; registered here too so that runs without xdist
    # (``-p no:xdist``) accept it under --strict-markers.
    config.addinivalue_line("markers", "xdist_group(name): run these tests in one xdist worker")
