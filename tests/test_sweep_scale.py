"""Sweeps at scale: settings split over a mesh (one process and two), successive halving, PBT,
sampled ranges, Optuna rounds and resuming from checkpoints.

Oracles: the unsharded sweep (the mesh runs the same per-device program), the plain training
loop every Optax user writes (value_and_grad, update, apply_updates) for PBT's copied members,
the full grid's recorded curves for halving's rungs, and NumPy for the samplers.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest
from jax.sharding import Mesh

import gradtx
from gradtx._sweep._grid import sample_grid
from gradtx._sweep._halving import rung_schedule
from tests._sweep_problems import LRS32, PARAMS, lsq_data, lsq_loss

DATA = lsq_data()
# Populations of different widths (vmap over 27, 9 or 1 settings) round their batched dots and
# sums differently: a few float32 ulp (1.2e-7) per step, accumulated over the steps below.
WIDTH_RTOL = 1e-5
needs8 = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8"
)


def _mesh(shape=(8,), names=("d",)):
    return Mesh(np.array(jax.devices()[: int(np.prod(shape))]).reshape(shape), names)


def _tree_equal(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_array_equal(np.asarray(x), np.asarray(y)), a, b)


@jax.jit
def _oracle_step(tx, p, s):
    loss, g = jax.value_and_grad(lsq_loss)(p, DATA)
    u, s = tx.update(g, s, p)
    return loss, gradtx.apply_updates(p, u), s


def _oracle(tx, steps, p=PARAMS, s=None):
    """The plain loop: returns the losses before each step, the params and the state."""
    s = tx.init(p) if s is None else s
    losses = []
    for _ in range(steps):
        loss, p, s = _oracle_step(tx, p, s)
        losses.append(float(loss))
    return np.array(losses, np.float32), p, s


# --- sharded populations ----------------------------------------------------------------------


@needs8
def test_mesh_sweep_equals_unsharded_and_params_stay_on_8_devices():
    grid = {"learning_rate": LRS32}
    sharded = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", grid, 12, mesh=_mesh())
    # Each device runs a vmap over its 4 settings: the unsharded sweep in chunks of 4 is the
    # same program, bit for bit.
    same_width = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", grid, 12, chunk_size=4)
    np.testing.assert_array_equal(sharded.losses, same_width.losses)
    np.testing.assert_array_equal(sharded.final_loss, same_width.final_loss)
    _tree_equal(sharded.params, same_width.params)
    # One vmap over all 32: another width, whose batched dots and sums XLA vectorises
    # differently, so the last bits differ (a few float32 ulp per step, over 12 steps).
    full = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", grid, 12)
    np.testing.assert_allclose(sharded.losses, full.losses, rtol=WIDTH_RTOL, atol=0)
    assert sharded.best(3) == full.best(3)
    w = sharded.params["w"]
    assert w.shape == (32, 8) and len(w.sharding.device_set) == 8
    assert {s.data.shape[0] for s in w.addressable_shards} == {4}
    b = full.best(1)[0]
    _tree_equal(sharded.params_of(b), same_width.params_of(b))


@needs8
def test_mesh_axis_padding_chunks_and_keep_best():
    grid = {"learning_rate": LRS32[:30]}  # 30 settings: padded to 32 over the 4-way axis
    mesh = _mesh((4, 2), ("x", "y"))
    sharded = gradtx.sweep(
        lsq_loss, PARAMS, DATA, "sgd", grid, 8, mesh=mesh, mesh_axis="x", chunk_size=4
    )
    ref = gradtx.sweep(lsq_loss, PARAMS, DATA, "sgd", grid, 8, chunk_size=4)
    np.testing.assert_array_equal(sharded.losses, ref.losses)
    assert sharded.params_index.tolist() == [*range(30), -1, -1]
    _tree_equal(jax.tree.map(lambda x: np.asarray(x)[:30], sharded.params), ref.params)
    kept = gradtx.sweep(
        lsq_loss, PARAMS, DATA, "sgd", grid, 8, mesh=mesh, mesh_axis="x", chunk_size=4,
        keep_best=3,
    )  # fmt: skip
    assert kept.params_index.tolist() == ref.best(3)
    for i in ref.best(3):
        _tree_equal(kept.params_of(i), ref.params_of(i))
    with pytest.raises(ValueError, match="mesh_axis 'z' is not an axis of the mesh"):
        gradtx.sweep(lsq_loss, PARAMS, DATA, "sgd", grid, 2, mesh=mesh, mesh_axis="z")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs8
@pytest.mark.slow
def test_two_processes_under_jax_distributed_give_the_one_process_results(tmp_path):
    port = _free_port()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root, "JAX_PLATFORMS": "cpu"}
    outs = [tmp_path / f"p{i}.npz" for i in range(2)]
    worker = os.path.join(root, "tests", "_sweep_worker.py")
    procs = [
        subprocess.Popen(
            [sys.executable, worker, str(port), str(i), str(outs[i])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=240)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    one = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", {"learning_rate": LRS32}, 12, mesh=_mesh())
    best = one.best(1)[0]
    for out in outs:
        got = np.load(out)
        np.testing.assert_array_equal(got["losses"], one.losses)
        np.testing.assert_array_equal(got["final_loss"], one.final_loss)
        assert int(got["best"]) == best
        np.testing.assert_array_equal(got["best_w"], np.asarray(one.params_of(best)["w"]))
        # Params split over all 8 devices; each process holds 4 shards of 4 settings.
        assert int(got["devices"]) == 8
        assert int(got["local_shards"]) == 4 and int(got["local_rows"]) == 16


# --- successive halving -------------------------------------------------------------------------


def test_rung_schedule():
    # the default first rung leaves about eta settings for the last one: 54 // 3**2 steps
    assert rung_schedule(27, 54, 3, None) == [(27, 6), (9, 18), (3, 54)]
    assert rung_schedule(27, 54, 3, 2) == [(27, 2), (9, 6), (3, 18), (1, 54)]
    assert rung_schedule(5, 90, 3, None) == [(5, 30), (1, 90)]  # k = 1: steps // 3
    assert rung_schedule(10, 100, 2, 30) == [(10, 30), (5, 60), (2, 100)]
    assert rung_schedule(1, 7, 3, None) == [(1, 7)]


def test_successive_halving_on_27_rates():
    lrs = np.geomspace(1e-4, 3.0, 27)
    steps = 54
    full = gradtx.sweep(lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": lrs}, steps)
    res = gradtx.successive_halving(
        lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": lrs}, steps, eta=3
    )
    assert res.full_steps == 27 * steps
    # 27 * 6 + 9 * 12 + 3 * 36 steps: nothing is retrained.
    assert res.steps_used == 27 * 6 + 9 * 12 + 3 * 36 <= 0.4 * res.full_steps
    full_best = float(full.final_loss[full.best(1)[0]])
    assert res.best_loss <= 1.05 * full_best
    # Each rung keeps the best third by the loss at its end; with full-batch data that loss is
    # the full grid's recorded loss before the step at the rung's end (or its final loss).
    members = np.arange(27)
    assert len(res.rungs) == 3
    for rung, (count, budget) in zip(res.rungs, [(27, 6), (9, 18), (3, 54)]):
        assert rung.steps == budget and rung.members.tolist() == members.tolist()
        at_end = full.losses[members, budget] if budget < steps else full.final_loss[members]
        np.testing.assert_allclose(rung.final_loss, at_end, rtol=WIDTH_RTOL)
        keep = max(1, count // 3)
        order = np.argsort(at_end, kind="stable")
        cut_gap = at_end[order[keep]] - at_end[order[keep - 1]] if keep < count else np.inf
        if cut_gap > WIDTH_RTOL * abs(at_end[order[keep - 1]]):
            assert rung.kept.tolist() == members[order[:keep]].tolist()
        else:  # settings tied at the cut (the same minimum, to rounding): either may go on
            kept_loss = (
                full.final_loss[rung.kept] if budget == steps else full.losses[rung.kept, budget]
            )
            np.testing.assert_allclose(kept_loss, at_end[order[:keep]], rtol=WIDTH_RTOL)
        members = rung.kept
    # The survivor's curve is the full grid's curve for its setting, run on from its state.
    np.testing.assert_allclose(res.losses[res.best], full.losses[res.best], rtol=WIDTH_RTOL)
    dropped = res.rungs[0].members[~np.isin(res.rungs[0].members, res.rungs[1].members)]
    assert np.isnan(res.losses[dropped, 6:]).all() and np.isfinite(res.losses[dropped, :6]).all()
    np.testing.assert_allclose(
        res.params_of(res.best)["w"], full.params_of(res.best)["w"], rtol=1e-5, atol=1e-7
    )


# --- population based training ------------------------------------------------------------------


def test_pbt_history_shapes_and_exploit_copies_params_state_and_hparams():
    lrs = [0.003, 0.01, 0.03, 0.1]
    moms = [0.0, 0.9]
    interval, m = 5, 8
    res = gradtx.pbt(
        lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": lrs, "momentum": moms}, 2 * interval,
        interval=interval, fraction=0.25, key=3,
        bounds={"learning_rate": (1e-4, 1.0), "momentum": (0.0, 0.99)},
    )  # fmt: skip
    for name in ("learning_rate", "momentum"):
        assert res.hparams_history[name].shape == (2, m)
    assert res.lineage.shape == (2, m)
    np.testing.assert_array_equal(res.lineage[0], np.arange(m))
    initial = [(lr, mo) for lr in lrs for mo in moms]
    np.testing.assert_allclose(res.hparams_history["learning_rate"][0], [s[0] for s in initial])
    # Independent first interval: the plain loop for each member.
    first = [_oracle(gradtx.sgd(lr, momentum=mo), interval) for lr, mo in initial]
    end_loss = np.array([float(lsq_loss(p, DATA)) for _, p, _ in first], np.float32)
    np.testing.assert_allclose(res.scores[0], end_loss, rtol=1e-6)
    order = np.argsort(end_loss, kind="stable")
    worst, best = set(order[-2:].tolist()), set(order[:2].tolist())
    parents = res.lineage[1]
    replaced = {j for j in range(m) if parents[j] != j}
    assert replaced == worst and {int(parents[j]) for j in replaced} <= best
    for j in range(m):
        lr1 = res.hparams_history["learning_rate"][1, j]
        mo1 = res.hparams_history["momentum"][1, j]
        i = int(parents[j])
        if j in replaced:  # perturbed: the parent's value times 0.8 or 1.2, clipped to bounds
            ratio = lr1 / initial[i][0]
            assert min(abs(ratio - 0.8), abs(ratio - 1.2)) < 1e-6
            expect_mo = [min(0.99, initial[i][1] * f) for f in (0.8, 1.2)]
            assert min(abs(mo1 - e) for e in expect_mo) < 1e-6
        else:
            assert (lr1, mo1) == pytest.approx(initial[j], rel=1e-6)
        # Second interval: from the parent's params and state, with the new hyperparameters.
        _, p, s = first[i]
        losses, p, _ = _oracle(gradtx.sgd(float(lr1), momentum=float(mo1)), interval, p, s)
        np.testing.assert_allclose(res.losses[j, interval:], losses, rtol=1e-6)
        got = jax.tree.map(lambda x, j=j: np.asarray(x)[j], res.params)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), got, p)
    assert res.best == int(np.argmin(res.final_loss))
    _tree_equal(res.best_params, jax.tree.map(lambda x: np.asarray(x)[res.best], res.params))
    assert res.ancestry(res.best)[-1] == res.best


def test_pbt_resample_stays_in_range_and_errors():
    space = {"learning_rate": gradtx.log_uniform(1e-3, 0.3)}
    res = gradtx.pbt(
        lsq_loss, PARAMS, DATA, "sgd", space, 12, interval=3, explore="resample", samples=8,
        key=1,
    )  # fmt: skip
    h = res.hparams_history["learning_rate"]
    assert h.shape == (4, 8) and ((h >= 1e-3 * (1 - 1e-6)) & (h <= 0.3 * (1 + 1e-6))).all()
    kept = res.lineage == np.arange(8)
    np.testing.assert_array_equal(h[1:][kept[1:]], h[:-1][kept[1:]])
    with pytest.raises(ValueError, match=r"gradtx.pbt: steps must be a positive multiple of "):
        gradtx.pbt(lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": [0.1, 0.2]}, 7, interval=3)
    with pytest.raises(ValueError, match=r"gradtx.pbt: fraction must be in \(0, 0.5\], got 0.7"):
        gradtx.pbt(lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": [0.1, 0.2]}, 6, interval=3,
                   fraction=0.7)  # fmt: skip


# --- sampling -----------------------------------------------------------------------------------


def test_ranges_sample_inside_and_sobol_stratifies():
    space = {
        "learning_rate": gradtx.log_uniform(1e-4, 1e-1),
        "b1": gradtx.uniform(0.8, 0.99),
        "warmup": gradtx.int_uniform(1, 4),
        "nesterov_like": gradtx.choice([0.0, 0.5]),
    }
    for sampler in ("random", "sobol"):
        g = sample_grid(space, 16, sampler, seed=7)
        assert g == sample_grid(space, 16, sampler, seed=7)
        assert g != sample_grid(space, 16, sampler, seed=8)
        lr = np.array(g["learning_rate"])
        assert ((lr >= 1e-4) & (lr < 1e-1)).all()
        assert all(0.8 <= v < 0.99 for v in g["b1"])
        assert set(g["warmup"]) <= {1, 2, 3, 4} and set(g["nesterov_like"]) <= {0.0, 0.5}
    # 16 Sobol points: each 1/16 of the log range holds exactly one learning rate.
    g = sample_grid(space, 16, "sobol", seed=7)
    u = (np.log(g["learning_rate"]) - math.log(1e-4)) / (math.log(1e-1) - math.log(1e-4))
    assert sorted(np.floor(u * 16).astype(int).tolist()) == list(range(16))
    assert sorted(g["warmup"]) == [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4


def test_sweep_samples_equal_the_explicit_grid():
    space = {"learning_rate": gradtx.log_uniform(1e-3, 1e-1), "b1": [0.8, 0.9]}
    res = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", space, 4, samples=6, sampler="sobol", key=2)
    g = sample_grid(space, 6, "sobol", seed=2)
    ref = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", g, 4, product=False, key=2)
    assert res.settings == ref.settings and len(res.settings) == 6
    np.testing.assert_array_equal(res.losses, ref.losses)
    with pytest.raises(ValueError, match="pass samples=N"):
        gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", space, 4)


def test_range_errors_name_function_argument_value_and_range():
    with pytest.raises(ValueError, match=r"gradtx.log_uniform: low must be in \(0, inf\), got 0"):
        gradtx.log_uniform(0, 1)
    with pytest.raises(ValueError, match=r"gradtx.uniform: low must be < high, got low=2, high=1"):
        gradtx.uniform(2, 1)
    with pytest.raises(ValueError, match=r"gradtx.int_uniform: low must be an int, got 0\.5"):
        gradtx.int_uniform(0.5, 3)
    with pytest.raises(ValueError, match=r"gradtx.sweep: sampler must be one of"):
        sample_grid({"a": gradtx.uniform(0, 1)}, 4, "grid")


# --- Optuna -------------------------------------------------------------------------------------


def test_optuna_rounds_of_batches_land_in_the_study():
    optuna = pytest.importorskip("optuna")
    import gradtx.optuna as gopt

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2),
    )
    space = {"learning_rate": gradtx.log_uniform(1e-3, 3.0)}
    out = gopt.optimize(
        study, lsq_loss, PARAMS, DATA, "sgd", space, 10, batch=16, rounds=3, max_loss=100.0
    )
    assert len(study.trials) == 48
    states = [t.state.name for t in study.trials]
    assert states == [s for r in out.states for s in r]
    assert "FAIL" in states and "COMPLETE" in states  # sgd diverges for the largest rates
    for r, res in enumerate(out.results):
        for i, number in enumerate(out.trial_numbers[r]):
            trial = study.trials[number]
            assert trial.params["learning_rate"] == res.settings[i]["learning_rate"]
            if trial.state.name == "COMPLETE":
                assert trial.value == float(res.final_loss[i])
            if trial.state.name == "FAIL":
                assert res.diverged[i]
    # One completed trial against the plain loop.
    done = next(t for t in study.trials if t.state.name == "COMPLETE")
    _, p, _ = _oracle(gradtx.sgd(done.params["learning_rate"]), 10)
    assert done.value == pytest.approx(float(lsq_loss(p, DATA)), rel=1e-6)
    assert out.best_value == min(t.value for t in study.trials if t.state.name == "COMPLETE")


def test_optuna_module_without_optuna_names_the_extra(monkeypatch):
    import gradtx.optuna as gopt

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'gradtx\[optuna\]'"):
        gopt.optimize(None, lsq_loss, PARAMS, DATA, "sgd", {"learning_rate": [0.1]}, 2)


# --- resuming -----------------------------------------------------------------------------------


class _Killed(Exception):
    pass


def _kill_at(fraction):
    def progress(done):
        if done >= fraction:
            raise _Killed

    return progress


@needs8
def test_killed_sweep_resumes_bit_identical(tmp_path):
    pytest.importorskip("orbax.checkpoint")
    grid = {"learning_rate": LRS32[::2]}
    kw = {"batch_size": 16, "mesh": _mesh(), "checkpoint_every": 4}
    whole = gradtx.sweep(
        lsq_loss, PARAMS, DATA, "adam", grid, 12, checkpoint_dir=tmp_path / "a", **kw
    )
    with pytest.raises(_Killed):
        gradtx.sweep(
            lsq_loss, PARAMS, DATA, "adam", grid, 12, checkpoint_dir=tmp_path / "b",
            progress=_kill_at(0.5), **kw,
        )  # fmt: skip
    assert sorted(os.listdir(tmp_path / "b")) == ["4", "8"]
    resumed = gradtx.sweep(
        lsq_loss, PARAMS, DATA, "adam", grid, 12, checkpoint_dir=tmp_path / "b", **kw
    )
    np.testing.assert_array_equal(resumed.losses, whole.losses)
    np.testing.assert_array_equal(resumed.final_loss, whole.final_loss)
    _tree_equal(resumed.params, whole.params)
    assert len(resumed.params["w"].sharding.device_set) == 8
    # Segments run the same steps as one program.
    plain = gradtx.sweep(lsq_loss, PARAMS, DATA, "adam", grid, 12, batch_size=16, mesh=_mesh())
    np.testing.assert_array_equal(plain.losses, whole.losses)
    _tree_equal(plain.params, whole.params)
    with pytest.raises(ValueError, match="holds the checkpoints of another sweep"):
        gradtx.sweep(
            lsq_loss, PARAMS, DATA, "adam", {"learning_rate": LRS32[1::2]}, 12,
            checkpoint_dir=tmp_path / "b", **kw,
        )  # fmt: skip
