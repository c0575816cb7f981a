"""XLA:CPU multi-output fusion (gradtx/_fusion.py): one loop per step, same numbers.

XLA reads XLA_FLAGS once per process, so the fused configuration runs in a subprocess
(``python -m tests._fusion_run``) and its results are compared with this process, which runs with
the default flags.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import gradtx
from gradtx import _fusion

from . import _fusion_run

ROOT = Path(__file__).resolve().parents[1]
FLAG_ON = "xla_cpu_use_multi_output_fusion" in os.environ.get("XLA_FLAGS", "")


def _run_fused(tmp_path):
    """The runner's results from a process started with multi-output fusion on."""
    out = tmp_path / "fused.npz"
    env = {
        **os.environ,
        "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} {_fusion.CPU_FUSION_FLAG}",
    }
    subprocess.run(
        [sys.executable, "-m", "tests._fusion_run", str(out)], cwd=ROOT, env=env, check=True
    )
    with np.load(out) as f:
        return {k: f[k] for k in f.files}


def test_probe_matches_the_process_flags():
    assert _fusion.cpu_multi_output_fusion() is FLAG_ON
    assert _fusion.Twin().active is FLAG_ON


def test_fused_process(tmp_path):
    """One process with the flag on (started once: it compiles every elementwise entry)."""
    fused = _run_fused(tmp_path)
    assert bool(fused["active"]) is True
    _check_one_loop(fused)
    _check_same_numbers(fused)


def _check_one_loop(fused):
    """With the flag, Adam, AdamW, SGD momentum, RMSprop and Lion compile gradtx.step to one
    loop over the parameter-sized arrays (7, 7, 5, 5 and 5 floats moved per parameter), and so
    do AdamW, SGD momentum and RMSprop after clip_by_global_norm (plus the norm's reduction,
    which writes a scalar): the clipped gradient is recomputed in the loop, never stored."""
    fused_loops = {k[len("loops/") :]: int(v) for k, v in fused.items() if k.startswith("loops/")}
    assert fused_loops == dict.fromkeys(
        ["adam", "adamw", "sgd_momentum", "rmsprop", "lion", *_fusion_run.CLIPPED], 1
    )
    if not FLAG_ON:  # and without it, two or three: the reason the flag matters
        default = _fusion_run.loop_counts()
        assert default == {
            **{"adam": 3, "adamw": 3, "sgd_momentum": 2, "rmsprop": 2, "lion": 2},
            **{"clip+adamw": 3, "clip+sgd_momentum": 2, "clip+rmsprop": 2},
        }


def _check_same_numbers(fused):
    """Every elementwise registry entry (step, flat path, update + apply), bf16 AdamW, and vmap /
    grad over the learning rate: the fused process gives the same numbers as this one.

    Same operations on the same values; XLA may contract a multiply-add differently in a
    differently shaped loop (as between the tree and flat paths), so the comparison allows a few
    float32 ulps of each case's scale. Non-finite entries must match exactly.
    """
    mine = _fusion_run.results()
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


def test_twin_is_off_without_the_flag_or_when_disabled(monkeypatch):
    p = jax.numpy.ones(8)
    if not FLAG_ON:
        assert _fusion.Twin()(p) is None
    monkeypatch.setattr(_fusion.Twin, "enabled", False)
    assert _fusion.Twin()(p) is None


def test_twin_skips_small_leaves(monkeypatch):
    twin = _fusion.Twin()
    twin.active = True
    assert twin(jax.numpy.ones(_fusion.Twin.min_size - 1)) is None
    assert twin(jax.numpy.ones(_fusion.Twin.min_size)) is not None


def test_twin_skips_complex_and_keeps_values(monkeypatch):
    monkeypatch.setattr(_fusion.Twin, "min_size", 0)
    twin = _fusion.Twin()
    twin.active = True  # the formulation itself, whatever this process's flags
    # (No subnormals: XLA:CPU flushes them to zero in every arithmetic op, in both copies.)
    x = jax.numpy.array([-0.0, 1.5, np.inf, -np.inf, np.nan, 3e38], jax.numpy.float32)
    (y,) = twin(x)
    np.testing.assert_array_equal(np.asarray(y).view(np.uint32), np.asarray(x).view(np.uint32))
    assert twin(x.astype(jax.numpy.complex64)) is None


@pytest.mark.skipif(FLAG_ON, reason="the flag is already on in this process")
def test_enable_after_the_backend_started_says_so(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    with pytest.raises(RuntimeError, match="enable_cpu_multi_output_fusion: XLA's CPU backend"):
        gradtx.enable_cpu_multi_output_fusion()
    _fusion._cpu_probe.cache_clear()  # the failed attempt left nothing behind
    assert _fusion.cpu_multi_output_fusion() is False


def test_enable_refuses_to_edit_an_existing_extra_options_list(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_extra_options=something_else")
    with pytest.raises(RuntimeError, match="already sets --xla_backend_extra_options"):
        gradtx.enable_cpu_multi_output_fusion()


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
