"""End to end: ``python -m gradtx sweep`` writes the table, JSON, CSV and PNG plots."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from gradtx._sweep._cli import main, split_optimizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_split_optimizers():
    assert split_optimizers(["adam,sgd(momentum=0.9,nesterov=true)", "rmsprop"]) == [
        "adam",
        "sgd(momentum=0.9,nesterov=true)",
        "rmsprop",
    ]


def test_cli_sweep_end_to_end(tmp_path):
    """A subprocess, as a user runs it: two optimizers, a 3 x 2 grid, 3 steps."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [
        sys.executable, "-m", "gradtx", "sweep", "--problem", "linear-regression",
        "--optimizer", "adam,sgd(momentum=0.9)", "--learning-rate", "1e-3:1e-1:3",
        "--weight-decay", "0,1e-4", "--steps", "3", "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "best first" in text and "final loss" in text
    assert "adam" in text and "sgd(momentum=0.9)" in text
    for name in (
        "sweep.json",
        "curves.csv",
        "results.csv",
        "final_loss_vs_lr.png",
        "best_curves.png",
    ):
        assert (out / name).stat().st_size > 0, name
    with open(out / "final_loss_vs_lr.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((out / "sweep.json").read_text())
    assert payload["problem"] == "linear-regression" and payload["steps"] == 3
    assert len(payload["results"]) == 12 and len(payload["curves"]) == 12
    finals = [r["final_loss"] for r in payload["results"]]
    assert finals == sorted(finals)  # best first
    assert all(len(c["loss"]) == 3 for c in payload["curves"])
    with open(out / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 * 3
    assert set(rows[0]) == {"optimizer", "index", "learning_rate", "weight_decay", "step", "loss"}
    # The CSV's curves are the JSON's.
    first = [float(r["loss"]) for r in rows[:3]]
    np.testing.assert_allclose(first, payload["curves"][0]["loss"], rtol=1e-6)


def test_cli_digits_table_has_held_out_accuracy(tmp_path, capsys):
    code = main(
        ["sweep", "--problem", "digits-mlp", "--optimizer", "adam", "--learning-rate", "1e-2,1e-1",
         "--steps", "2", "--out", str(tmp_path), "--no-plot"]
    )  # fmt: skip
    assert code == 0
    text = capsys.readouterr().out
    assert "held-out acc" in text and "%" in text
    payload = json.loads((tmp_path / "sweep.json").read_text())
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in payload["results"])


def test_cli_user_problem_and_divergence(tmp_path, monkeypatch, capsys):
    (tmp_path / "myproblem.py").write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp

            def make():
                def loss(w, batch):
                    return jnp.sum(w ** 2)
                return loss, jnp.array([1.0, -1.0]), None
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "o"
    code = main(
        [
            "sweep",
            "--problem",
            "myproblem:make",
            "--optimizer",
            "sgd",
            "--learning-rate",
            "0.1,0.5,200",
            "--steps",
            "30",
            "--out",
            str(out),
            "--no-plot",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "1 diverged" in text and "at step" in text
    payload = json.loads((out / "sweep.json").read_text())
    last = payload["results"][-1]
    assert last["learning_rate"] == 200 and last["diverged"] and last["final_loss"] is None
    assert not (out / "final_loss_vs_lr.png").exists()


def test_cli_errors(capsys):
    assert main(["sweep", "--problem", "nope", "--steps", "1", "--no-plot", "--quiet"]) == 2
    assert "unknown problem" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_lr_find(tmp_path, capsys):
    code = main(
        [
            "lr-find",
            "--problem",
            "linear-regression",
            "--optimizer",
            "sgd",
            "--steps",
            "40",
            "--repeats",
            "2",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert "suggested learning rate" in capsys.readouterr().out
    assert (tmp_path / "lr_finder.png").exists() and (tmp_path / "lr_finder.json").exists()


def test_core_imports_without_the_cli_extras():
    code = textwrap.dedent(
        """
        import sys
        for name in ("rich", "matplotlib", "sklearn"):
            sys.modules[name] = None  # any import of them fails
        import jax.numpy as jnp
        import gradtx
        res = gradtx.sweep(lambda w, b: jnp.sum(w ** 2), jnp.ones(2), None, "sgd",
                           {"learning_rate": [0.1, 0.2]}, 2)
        print(res.final_loss.shape)
        """
    )
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(2,)"
