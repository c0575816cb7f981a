"""Test settings: 8 host devices, quicker CPU compiles, strict dtype promotion, deterministic
keys."""

import gc
import os
import subprocess
import sys

# Importing gradtx imports jax, but XLA reads XLA_FLAGS only when its CPU backend starts, at the
# first computation: the flags set below still apply, here and in the workers and subprocesses
# that inherit them.
from gradtx._fusion import with_backend_option

# Compiling takes most of this suite's time (thousands of small programs, each run a few
# times), so XLA:CPU compiles for speed of compiling:
# - LLVM runs at optimisation level 0 instead of 2 (XLA's compile time over the suite is about
#   40% below level 1's), on one thread per program (two test workers already share the two
#   cores);
# - fusions go through XLA:CPU's LLVM IR emitters instead of its newer MLIR fusion emitters
#   (a fresh MLIR context and pass pipeline per fusion), without LLVM's loop unrolling and SLP
#   vectorizer.
# The HLO programs and their fusion are unchanged. The comparisons against NumPy, Optax and
# torch, and the bit-for-bit ones between sharded, stacked, packed and plain runs, pass with
# these settings and with XLA's defaults. Tests marked ``xla_defaults`` compare numbers that
# the LLVM IR emitters round differently: here they are skipped, and
# tests/test_xla_defaults.py runs them in a process with XLA's default emitters
# (GRADTX_TEST_XLA_DEFAULTS=1). A jaxlib without these options (checked once, in a
# subprocess) runs every test with its default emitters. The README, benchmark and
# multi-output fusion tests run their subprocesses with XLA's default emitters. A level or
# split count set in XLA_FLAGS yourself is kept.
XLA_DEFAULTS = os.environ.get("GRADTX_TEST_XLA_DEFAULTS") == "1"
QUICK_COMPILE_OPTIONS = (
    "xla_cpu_disable_new_fusion_emitters",
    "xla_cpu_disable_loop_unrolling",
    "xla_cpu_disable_slp_vectorizer",
)
_flags = os.environ.get("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
for _flag, _value in (
    ("--xla_backend_optimization_level", "0"),
    ("--xla_cpu_parallel_codegen_split_count", "1"),
):
    if _flag not in _flags:
        _flags += f" {_flag}={_value}"


def _with_quick_options(flags: str) -> str:
    for option in QUICK_COMPILE_OPTIONS:
        flags = with_backend_option(flags, option)
    return flags


def _cpu_backend_starts(flags: str) -> bool:
    """Whether this jaxlib starts its CPU backend with ``flags`` (an option it does not know
    stops the process)."""
    code = "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}
    return (
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0
    )


# Probed once per run, by its first process; xdist workers and subprocesses inherit the answer.
if "GRADTX_TEST_QUICK_COMPILE" not in os.environ:
    _ok = _cpu_backend_starts(_with_quick_options(_flags))
    os.environ["GRADTX_TEST_QUICK_COMPILE"] = "1" if _ok else "0"
QUICK_COMPILE = os.environ["GRADTX_TEST_QUICK_COMPILE"] == "1" and not XLA_DEFAULTS
if QUICK_COMPILE:
    _flags = _with_quick_options(_flags)
os.environ["XLA_FLAGS"] = _flags  # before the first computation

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_dtype_promotion", "strict")


def _memory_maps() -> int:
    """How many memory mappings this process has (0 where /proc is missing)."""
    try:
        with open("/proc/self/maps") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _map_budget() -> int:
    try:
        with open("/proc/sys/vm/max_map_count") as f:
            return int(f.read()) // 2
    except (OSError, ValueError):
        return 0


MAP_BUDGET = _map_budget()


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Frees JAX's compiled programs after a test module once this process holds more than half
    of the kernel's memory mappings (vm.max_map_count).

    Each compiled XLA:CPU kernel keeps a few mappings until JAX's caches drop it, and a worker
    of this suite compiles thousands of programs; past the limit the next compile crashes.
    """
    yield
    if MAP_BUDGET and _memory_maps() > MAP_BUDGET:
        jax.clear_caches()
        gc.collect()


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


#: The ``xla_defaults`` tests this process collected (and skips).
XLA_DEFAULTS_TESTS: list[str] = []


def pytest_collection_modifyitems(config, items):
    """With XLA's default emitters only the ``xla_defaults`` tests run; under the quick-compile
    options they are skipped here (tests/test_xla_defaults.py runs them). Tests marked ``slow``
    go first."""
    if XLA_DEFAULTS:
        keep = [item for item in items if item.get_closest_marker("xla_defaults")]
        config.hook.pytest_deselected(items=[item for item in items if item not in keep])
        items[:] = keep
        return
    # Slow tests first, so that the two workers start them early and end together.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    if not QUICK_COMPILE:  # this jaxlib lacks the options: every test runs here
        return
    skip = pytest.mark.skip(reason="run by tests/test_xla_defaults.py with XLA's default emitters")
    for item in items:
        if item.get_closest_marker("xla_defaults"):
            item.add_marker(skip)
            XLA_DEFAULTS_TESTS.append(item.nodeid)
