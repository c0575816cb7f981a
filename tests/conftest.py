"""Test settings: 8 host devices, strict dtype promotion, deterministic keys."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax
import pytest

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
