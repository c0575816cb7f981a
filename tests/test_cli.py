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


# --- bad arguments: one line naming the option, the value and the valid range; exit status 2;
# --- nothing loaded, compiled or written.

BAD_PROBLEM = textwrap.dedent(
    """
    import jax.numpy as jnp

    def make():
        return (lambda w, batch: jnp.sum(w ** 2)), jnp.ones(2), None
    """
)

SEED_MAX = 2**32 - 1

# (arguments after `sweep`, the whole expected message after "gradtx sweep: error: ", or the
# parts it must contain).
BAD_SWEEP_ARGS = [
    (["--steps", "-5"], "argument --steps: must be an integer in [1, inf), got -5"),
    (["--steps", "0"], "argument --steps: must be an integer in [1, inf), got 0"),
    (["--steps", "ten"], "argument --steps: must be an integer in [1, inf), got 'ten'"),
    (["--batch-size", "-1"], "argument --batch-size: must be an integer in [0, inf), got -1"),
    (["--batch-size", "1.5"], "argument --batch-size: must be an integer in [0, inf), got '1.5'"),
    (["--seed", "-1"], f"argument --seed: must be an integer in [0, {SEED_MAX}], got -1"),
    (
        ["--seed", str(SEED_MAX + 1)],
        f"argument --seed: must be an integer in [0, {SEED_MAX}], got {SEED_MAX + 1}",
    ),
    (["--chunk-size", "0"], "argument --chunk-size: must be an integer in [1, inf), got 0"),
    (["--keep-best", "0"], "argument --keep-best: must be an integer in [1, inf), got 0"),
    (["--top", "0"], "argument --top: must be an integer in [1, inf), got 0"),
    (
        ["--lr", "-1e-3:1:3:lin"],
        "argument --learning-rate: adam with learning_rate=-0.001: gradtx.adam: learning_rate must be in [0, inf), got -0.001",
    ),
    (["--max-loss", "nan"], "argument --max-loss: must be a number (not NaN), got nan"),
    (["--max-loss", "big"], "argument --max-loss: must be a number (not NaN), got 'big'"),
    (
        ["--learning-rate", "abc"],
        "argument --learning-rate: grid spec 'abc': 'abc' is not a number; a grid spec is "
        "lo:hi:n (n log-spaced values), lo:hi:n:lin, lo:hi:n:int or a,b,c",
    ),
    (
        ["--learning-rate", "1e-3:1:0"],
        "argument --learning-rate: grid spec '1e-3:1:0': n must be an integer in [1, inf), got '0'",
    ),
    (
        ["--learning-rate", "0:1:3"],
        "argument --learning-rate: log-spaced grid '0:1:3' needs lo, hi > 0 (both in (0, inf)); "
        "use 0:1:3:lin for a linear range",
    ),
    (
        ["--learning-rate", "1e-2,-0.1"],
        "argument --learning-rate: adam with learning_rate=-0.1: gradtx.adam: learning_rate must "
        "be in [0, inf), got -0.1",
    ),
    (
        ["--b1", "0.5,1.5"],
        "argument --b1: adam with b1=1.5: gradtx.adam: b1 must be in [0, 1), got 1.5",
    ),
    (
        ["--b2", "0.9,1.5"],
        "argument --b2: adam with b2=1.5: gradtx.adam: b2 must be in [0, 1), got 1.5",
    ),
    (
        ["--eps", "-1e-8"],
        "argument --eps: adam with eps=-1e-08: gradtx.adam: eps must be in [0, inf), got -1e-08",
    ),
    (
        ["--weight-decay", "0,-1"],
        "argument --weight-decay: adam with weight_decay=-1: gradtx.adam: weight_decay must be in "
        "[0, inf), got -1",
    ),
    (
        ["--optimizer", "sgd", "--momentum", "0.5,2"],
        "argument --momentum: sgd with momentum=2: gradtx.sgd: momentum must be in [0, 1], got 2",
    ),
    (
        ["--optimizer", "rmsprop", "--decay", "1.5"],
        "argument --decay: rmsprop with decay=1.5: gradtx.rmsprop: decay must be in [0, 1], "
        "got 1.5",
    ),
    (
        ["--grid", "b1=0.9,2"],
        "argument --grid b1: adam with b1=2: gradtx.adam: b1 must be in [0, 1), got 2",
    ),
    (["--grid", "b1"], "argument --grid: takes NAME=SPEC, got 'b1'"),
    (["--grid", "b1=x"], ["argument --grid b1: grid spec 'x': 'x' is not a number"]),
    (
        ["--set", "b1=2"],
        "argument --set b1: adam with b1=2: gradtx.adam: b1 must be in [0, 1), got 2",
    ),
    (
        ["--set", "weight_decy=0.1"],
        [
            "argument --set weight_decy: no optimizer here (adam) takes 'weight_decy'; did you mean "
            "'weight_decay'"
        ],
    ),
    (
        ["--grid", "momentun=0.5,0.9", "--optimizer", "sgd"],
        [
            "argument --grid momentun: no optimizer here (sgd) takes 'momentun'; did you mean "
            "'momentum'"
        ],
    ),
    (
        ["--optimizer", "sgd(momentun=0.9)"],
        [
            "argument --optimizer: optimizer 'sgd(momentun=0.9)': sgd has no keyword 'momentun'; "
            "did you mean 'momentum'",
            "(sgd's keywords: learning_rate, momentum, ",
        ],
    ),
    (
        ["--optimizer", "sgd(momentum=1.5)"],
        "argument --optimizer: sgd(momentum=1.5): gradtx.sgd: momentum must be in [0, 1], got 1.5",
    ),
    (
        ["--optimizer", "adam,adamx"],
        "argument --optimizer: unknown optimizer 'adamx'; did you mean 'adamax' or 'adam' or "
        "'adamaxw'?",
    ),
    (["--optimizer", ","], "argument --optimizer: an empty optimizer name in ','"),
    (
        ["--optimizer", "sgd", "--momentum", "0.5,0.9", "--set", "momentum=0.9"],
        "argument --set momentum: momentum is also swept by --momentum; give one or the other",
    ),
    (
        ["--set", "learning_rate=abc"],
        ["argument --set learning_rate: adam with learning_rate='abc'"],
    ),
    (["--optimizer", "zzzz"], ["argument --optimizer: unknown optimizer 'zzzz'; known: ", "sgd"]),
    (
        ["--problem", "digts-mlp"],
        ["argument --problem: unknown problem 'digts-mlp'; did you mean 'digits-mlp'?"],
    ),
    (
        ["--problem", "no/such/file.py:make"],
        ["argument --problem: 'no/such/file.py' does not exist; --problem takes "],
    ),
    (
        ["--problem", "{tmp}/bad_problem.py:nake"],
        ["argument --problem: '{tmp}/bad_problem.py' has no function 'nake'; did you mean 'make'?"],
    ),
    (
        ["--problem", "{tmp}/bad_problem.py"],
        ["argument --problem: '{tmp}/bad_problem.py' has no function 'make_problem'"],
    ),
    (
        ["--schedule", "cosine_decai_schedule"],
        [
            "argument --schedule: unknown schedule 'cosine_decai_schedule'; did you mean "
            "'cosine_decay_schedule'"
        ],
    ),
    (
        ["--grid", "learning_rate.init_value=0.1,0.2"],
        [
            "argument --grid learning_rate.init_value: 'learning_rate.init_value' sets a field of a "
            "learning-rate schedule, so it needs learning_rate.FIELD and --schedule NAME"
        ],
    ),
    (
        ["--schedule", "cosine_decay_schedule", "--grid", "learning_rate.init_valu=0.1,0.2"],
        [
            "argument --grid learning_rate.init_valu: gradtx.cosine_decay_schedule has no "
            "argument 'init_valu'; did you mean 'init_value'"
        ],
    ),
    (
        ["--out", "{tmp}/bad_problem.py/out"],
        "argument --out: cannot create '{tmp}/bad_problem.py/out': '{tmp}/bad_problem.py' is a "
        "file, not a directory; --out takes a writable directory or a path where one can be "
        "created",
    ),
]


@pytest.fixture
def nothing_runs(monkeypatch):
    """Fails the test if a problem is built (data loaded) or a sweep or LR test starts."""
    from gradtx._sweep import _cli
    from gradtx._sweep._problems import ProblemSource

    def fail(*args, **kwargs):
        pytest.fail("a bad argument reached the problem loader or the sweep")

    monkeypatch.setattr(ProblemSource, "load", fail)
    monkeypatch.setattr(_cli, "sweep", fail)
    monkeypatch.setattr(_cli, "lr_finder", fail)


@pytest.mark.parametrize("argv,expected", BAD_SWEEP_ARGS, ids=[" ".join(a) for a, _ in BAD_SWEEP_ARGS])  # fmt: skip
def test_bad_sweep_argument_is_one_line_before_anything_runs(
    argv, expected, tmp_path, capsys, nothing_runs
):
    (tmp_path / "bad_problem.py").write_text(BAD_PROBLEM)
    out = tmp_path / "out"
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = main(["sweep", "--problem", "linear-regression", "--out", str(out), *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    prefix = "gradtx sweep: error: "
    assert lines[0].startswith(prefix)
    if isinstance(expected, str):
        assert lines[0] == prefix + expected.replace("{tmp}", str(tmp_path))
    else:
        for part in expected:
            assert part.replace("{tmp}", str(tmp_path)) in lines[0]
    assert not out.exists()


BAD_LR_FIND_ARGS = [
    (["--lr-min", "0"], "argument --lr-min: must be a finite number in (0, inf), got 0.0"),
    (["--lr-max", "inf"], "argument --lr-max: must be a finite number in (0, inf), got inf"),
    (
        ["--lr-min", "1", "--lr-max", "0.1"],
        "argument --lr-max: must be greater than --lr-min (1), got 0.1",
    ),
    (["--steps", "1"], "argument --steps: must be an integer in [2, inf), got 1"),
    (["--repeats", "0"], "argument --repeats: must be an integer in [1, inf), got 0"),
    (
        ["--optimizer", "adamx"],
        "argument --optimizer: unknown optimizer 'adamx'; did you mean 'adamax' or 'adam' or "
        "'adamaxw'?",
    ),
    (
        ["--optimizer", "adam", "--set", "b1=1.5"],
        "argument --set: adam: gradtx.adam: b1 must be in [0, 1), got 1.5",
    ),
    (
        ["--optimizer", "adam", "--set", "eps_roott=0"],
        "argument --set: adam has no keyword 'eps_roott'; did you mean 'eps_root'? (adam's keywords: "
        "learning_rate, b1, b2, eps, eps_root, mu_dtype, nesterov, weight_decay, "
        "weight_decay_mask, decoupled_weight_decay, amsgrad, amsgrad_max, maximize, nu_dtype, "
        "complex_convention)",
    ),
]


@pytest.mark.parametrize("argv,expected", BAD_LR_FIND_ARGS, ids=[" ".join(a) for a, _ in BAD_LR_FIND_ARGS])  # fmt: skip
def test_bad_lr_find_argument_is_one_line_before_anything_runs(
    argv, expected, tmp_path, capsys, nothing_runs
):
    out = tmp_path / "out"
    code = main(["lr-find", "--problem", "linear-regression", "--out", str(out), *argv])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err == f"gradtx lr-find: error: {expected}\n"
    assert not out.exists()


def test_bad_argument_exit_status_in_a_subprocess(tmp_path):
    """As a user runs it: exit status 2 and one line on stderr, no traceback, nothing written."""
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "gradtx", "sweep", "--optimizer", "sgd(momentun=0.9)"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith(
        "gradtx sweep: error: argument --optimizer: optimizer 'sgd(momentun=0.9)': sgd has no "
        "keyword 'momentun'; did you mean 'momentum'"
    )
    assert proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_help_exits_0(capsys):
    assert main(["sweep", "--help"]) == 0
    text = capsys.readouterr().out
    assert "path/to/file.py:function" in text and "[0, 4294967295]" in text


# --- problems from files, the real batch size, edge-of-grid warnings, the final-loss plot


def test_problem_from_a_file_path(tmp_path, capsys):
    folder = tmp_path / "problems"
    folder.mkdir()
    # The file imports a helper next to it, as a script run from its folder could.
    (folder / "cli_file_problem_helper.py").write_text("START = [1.0, -1.0]\n")
    (folder / "cli_file_problem.py").write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp
            from cli_file_problem_helper import START

            def make():
                return (lambda w, batch: jnp.sum(w ** 2)), jnp.array(START), None

            def make_problem():
                return make()
            """
        )
    )
    path = str(folder / "cli_file_problem.py")
    # Gradient descent on |w|^2: w_T = (1 - 2 lr)^T w_0, so the loss is 2 (1 - 2 lr)^(2T).
    lrs, steps = np.array([0.1, 0.2]), 3
    expected = np.sort(2 * (1 - 2 * lrs) ** (2 * steps))
    for spec in (path + ":make", path):
        out = tmp_path / ("out" + str(len(spec)))
        argv = ["sweep", "--problem", spec, "--optimizer", "sgd", "--lr", "0.1,0.2", "--steps",
                str(steps), "--out", str(out), "--no-plot", "--quiet"]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        payload = json.loads((out / "sweep.json").read_text())
        assert payload["problem"] == spec
        finals = [r["final_loss"] for r in payload["results"]]
        np.testing.assert_allclose(finals, expected, rtol=1e-6)


def test_header_and_json_report_the_real_batch_size_and_an_edge_warning(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--problem", "linear-regression", "--optimizer", "sgd", "--lr",
            "1e-3,1e-2,1e-1", "--steps", "3", "--batch-size", "64", "--out", str(out),
            "--no-plot"]  # fmt: skip
    assert main(argv) == 0
    text = capsys.readouterr().out
    header = text.splitlines()[0]
    # The problem's default is 32; the run used 64.
    assert "minibatch 64" in header and "minibatch 32" not in text
    payload = json.loads((out / "sweep.json").read_text())
    assert payload["batch_size"] == 64
    assert payload["description"].endswith("; minibatch 64")
    # Three steps of SGD on least squares with stable step sizes: the largest lr goes furthest.
    best = payload["results"][0]
    assert best["learning_rate"] == 0.1
    message = (
        "sgd's best setting has learning_rate=0.1, the highest of 3 values in [0.001, 0.1]: "
        "extend --learning-rate above 0.1"
    )
    assert payload["warnings"] == [
        {
            "optimizer": "sgd",
            "axis": "learning_rate",
            "value": 0.1,
            "edge": "highest",
            "message": message,
        }
    ]
    assert "warning: " + message in text

    out = tmp_path / "full"
    argv[argv.index("64")] = "0"
    argv[argv.index(str(tmp_path / "out"))] = str(out)
    assert main(argv) == 0
    assert "full batch" in capsys.readouterr().out.splitlines()[0]
    payload = json.loads((out / "sweep.json").read_text())
    assert payload["batch_size"] is None and payload["description"].endswith("; full batch")


def _result(label, names, values, final, diverged=None):
    """A SweepResult over the Cartesian product of ``values`` (one list per name)."""
    import itertools

    from gradtx._sweep._sweep import SweepResult

    settings = [dict(zip(names, combo)) for combo in itertools.product(*values)]
    n = len(settings)
    div = np.zeros(n, bool) if diverged is None else np.asarray(diverged, bool)
    final = np.where(div, np.nan, np.asarray(final, np.float64))
    return SweepResult(
        settings=settings,
        losses=np.zeros((n, 1)),
        final_loss=final,
        diverged=div,
        diverged_at=np.where(div, 0, -1),
        params=None,
        params_index=np.arange(n),
        keys=np.zeros((n, 2), np.uint32),
        compile_seconds=0.0,
        run_seconds=0.0,
        label=label,
        names=tuple(names),
    )


def test_edge_warnings():
    from gradtx._sweep._cli import edge_warnings

    lrs, wds = [1e-3, 1e-2, 1e-1], [0.0, 1e-4]
    # Settings in product order (lr major): the best (0.5) at lr 1e-2, wd 1e-4.
    inside = _result("adam", ["learning_rate", "weight_decay"], [lrs, wds], [3, 2, 1, 0.5, 4, 5])
    # With 2 values every setting sits at an edge of weight_decay: no warning for it.
    assert edge_warnings([(inside, None)]) == []
    low = _result("sgd", ["learning_rate", "b1"], [lrs, [0.8, 0.9, 0.99]],
                  [9, 8, 0.1, 7, 6, 5, 4, 3, 2])  # fmt: skip
    (w1, w2) = edge_warnings([(low, None)], {"learning_rate": "--lr", "b1": "--grid b1"})
    assert (w1["axis"], w1["value"], w1["edge"]) == ("learning_rate", 1e-3, "lowest")
    assert w1["message"].endswith("extend --lr below 0.001")
    assert (w2["axis"], w2["value"], w2["edge"]) == ("b1", 0.99, "highest")
    assert w2["message"].endswith("extend --grid b1 above 0.99")
    # A diverged setting is never the best; when all diverged there is no best to warn about.
    top = _result("sgd", ["learning_rate"], [lrs], [1, 2, 0.1], diverged=[0, 0, 1])
    assert edge_warnings([(top, None)])[0]["value"] == 1e-3
    gone = _result("sgd", ["learning_rate"], [lrs], [1, 1, 1], diverged=[1, 1, 1])
    assert edge_warnings([(gone, None)]) == []


def test_final_loss_plot_has_one_line_per_value_of_the_second_axis():
    from gradtx._sweep._cli import final_loss_lines

    lrs, wds, b1s = [1e-3, 1e-2], [0.0, 1e-4, 1e-3], [0.9, 0.99]
    rng = np.random.default_rng(0)
    final = rng.uniform(0.1, 1.0, 12)
    final[5] = np.nan
    diverged = np.isnan(final)
    res = _result("adam", ["weight_decay", "learning_rate", "b1"], [wds, lrs, b1s], final, diverged)
    xname, lines, title = final_loss_lines([(res, None)])
    assert xname == "learning_rate"
    assert title == (
        "final loss against learning_rate, one line per value of weight_decay (best over b1)"
    )
    assert [line["label"] for line in lines] == [
        "adam, weight_decay=0",
        "adam, weight_decay=1.00e-04",
        "adam, weight_decay=0.001",
    ]
    cube = final.reshape(3, 2, 2)  # weight_decay, learning_rate, b1
    for i, line in enumerate(lines):
        np.testing.assert_array_equal(line["x"], lrs)
        np.testing.assert_array_equal(line["y"], np.nanmin(cube[i], axis=1))
        assert not line["diverged"].any()  # one of two b1 values diverged at one point
    # One axis: one line per optimizer, and the title says nothing more.
    one = _result("sgd", ["learning_rate"], [lrs], [0.5, 0.25])
    xname, lines, title = final_loss_lines([(one, None)])
    assert title == "final loss against learning_rate"
    assert [line["label"] for line in lines] == ["sgd"]
    np.testing.assert_array_equal(lines[0]["y"], [0.5, 0.25])
