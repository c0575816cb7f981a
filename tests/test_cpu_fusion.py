"""XLA:CPU multi-output fusion (gradtx/_fusion.py): the switch, its probe, same numbers.

XLA reads XLA_FLAGS once per process, so turning the pass on is checked in a fresh subprocess,
and the fused configuration runs in a subprocess (``python -m tests._fusion_run``) whose results
are compared with this process, which runs with the default flags.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradtx
from gradtx import _fusion

from . import _fusion_run

ROOT = Path(__file__).resolve().parents[1]
FLAG_ON = "xla_cpu_use_multi_output_fusion" in os.environ.get("XLA_FLAGS", "")


def test_probe_matches_the_process_flags():
    assert _fusion.cpu_multi_output_fusion() is FLAG_ON


@pytest.mark.slow
def test_fused_process(tmp_path):
    """One process with the flag on (started once: it compiles every elementwise entry), run
    while this process computes the same results with its own flags."""
    out = tmp_path / "fused.npz"
    env = {
        **os.environ,
        # This process's flags (conftest.py) with XLA's default fusion emitters, which the pass
        # needs, as tests/test_xla_defaults.py starts its process.
        "XLA_FLAGS": " ".join(
            [
                *(f for f in os.environ.get("XLA_FLAGS", "").split() if "extra_options" not in f),
                _fusion.CPU_FUSION_FLAG,
            ]
        ),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._fusion_run", str(out)], cwd=ROOT, env=env
    )
    try:
        mine = _fusion_run.results()
    finally:
        assert proc.wait() == 0
    with np.load(out) as f:
        fused = {k: f[k] for k in f.files}
    assert bool(fused["active"]) is True
    _check_fewer_loops(fused)
    _check_same_numbers(mine, fused)


def _check_fewer_loops(fused):
    """With the flag, no counted step compiles to more loops over the parameter-sized arrays than
    without it, and Adam, AdamW, SGD with momentum, RMSprop and Lion to one loop (the parameter
    write and the state writes read the same inputs and share it): the reason the flag
    matters."""
    fused_loops = {k[len("loops/") :]: int(v) for k, v in fused.items() if k.startswith("loops/")}
    assert set(fused_loops) == set(_fusion_run.COUNTED)
    assert all(n >= 1 for n in fused_loops.values()), fused_loops
    one_loop = ("adam", "adamw", "sgd_momentum", "rmsprop", "lion")
    assert all(fused_loops[k] == 1 for k in one_loop), fused_loops
    if FLAG_ON:
        return  # this process is fused too: nothing to compare with
    default = _fusion_run.loop_counts()
    assert all(fused_loops[k] <= default[k] for k in default), (fused_loops, default)
    assert all(fused_loops[k] < default[k] for k in ("adam", "adamw", "lion")), (
        fused_loops,
        default,
    )


def _check_same_numbers(mine, fused):
    """Every elementwise registry entry (params tree and packed layout), ``gradtx.step`` on both
    layouts for the counted optimizers, bf16 AdamW, and vmap / grad over the learning rate: the
    fused process gives the same numbers as this one.

    Same operations on the same values; XLA may contract a multiply-add differently in a
    differently shaped loop (as between the tree and the packed layout), so the comparison allows
    a few float32 ulps of each case's scale. Non-finite entries must match exactly.
    """
    assert set(mine) == {k for k in fused if k != "active" and not k.startswith("loops/")}
    eps = float(np.finfo(np.float32).eps)
    by_case: dict[str, list[str]] = {}
    for key in mine:
        by_case.setdefault(key.rsplit("/", 1)[0], []).append(key)
    for case, keys in by_case.items():
        finite = [np.abs(mine[k][np.isfinite(mine[k])]) for k in keys if mine[k].dtype.kind == "f"]
        scale = max((float(x.max()) for x in finite if x.size), default=1.0)
        for k in keys:
            a, b = mine[k], fused[k]
            assert a.dtype == b.dtype and a.shape == b.shape, k
            if a.dtype.kind != "f":
                np.testing.assert_array_equal(a, b, err_msg=k)
                continue
            np.testing.assert_array_equal(np.isfinite(a), np.isfinite(b), err_msg=k)
            np.testing.assert_array_equal(a[~np.isfinite(a)], b[~np.isfinite(b)], err_msg=k)
            fin = np.isfinite(a)
            np.testing.assert_allclose(
                b[fin], a[fin], rtol=1e-6, atol=4 * eps * scale, err_msg=case
            )


@pytest.mark.skipif(FLAG_ON, reason="the flag is already on in this process")
def test_enable_after_the_backend_started_says_so(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    with pytest.raises(RuntimeError, match="enable_cpu_multi_output_fusion: XLA's CPU backend"):
        gradtx.enable_cpu_multi_output_fusion()
    _fusion._cpu_probe.cache_clear()  # the failed attempt left nothing behind
    assert _fusion.cpu_multi_output_fusion() is False


def test_enable_adds_to_an_existing_extra_options_list(monkeypatch):
    """XLA reads one --xla_backend_extra_options entry, so the option joins the list there."""
    monkeypatch.setenv("XLA_FLAGS", "--a=1 --xla_backend_extra_options=something_else --b=2")
    if not FLAG_ON:  # this process's backend started without the pass: enabling fails, but
        with pytest.raises(RuntimeError, match="XLA's CPU backend was already running"):
            gradtx.enable_cpu_multi_output_fusion()  # the variable is edited first
        _fusion._cpu_probe.cache_clear()
    else:
        gradtx.enable_cpu_multi_output_fusion()
    assert os.environ["XLA_FLAGS"] == (
        "--a=1 --xla_backend_extra_options=something_else,xla_cpu_use_multi_output_fusion --b=2"
    )


def test_with_backend_option_keeps_one_entry_and_one_copy():
    add = _fusion.with_backend_option
    assert add("", "x") == "--xla_backend_extra_options=x"
    assert add("--f=1", "x") == "--f=1 --xla_backend_extra_options=x"
    assert add("--xla_backend_extra_options=a,x", "x") == "--xla_backend_extra_options=a,x"
    assert add("--xla_backend_extra_options=a", "x") == "--xla_backend_extra_options=a,x"


def test_enable_in_a_fresh_process_turns_fusion_on():
    code = (
        "import gradtx; gradtx.enable_cpu_multi_output_fusion(); "
        "from gradtx import _fusion; print(_fusion.cpu_multi_output_fusion())"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    assert out.stdout.strip() == "True"
