"""``python -m gradtx sweep --search ...``: each search runs end to end from the command line and
writes its summary and plot; the summary's numbers are the library functions' results."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradtx
from gradtx._sweep._cli import main
from gradtx._sweep._problems import PROBLEMS

ARGS = ["--problem", "linear-regression", "--learning-rate", "1e-3:1:9", "--steps", "12",
        "--batch-size", "0", "--quiet"]  # fmt: skip


@pytest.mark.parametrize(
    ("search", "plot"), [("halving", "halving.png"), ("pbt", "pbt.png"), ("optuna", "optuna.png")]
)
def test_cli_search_writes_summary_and_plot(tmp_path, search, plot):
    if search == "optuna":
        pytest.importorskip("optuna")
    extra = ["--interval", "4"] if search == "pbt" else ["--samples", "4", "--rounds", "2"]
    assert main(["sweep", "--search", search, *ARGS, *extra, "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "adam" / "search.json").read_text())
    assert (tmp_path / "adam" / plot).stat().st_size > 0
    p = PROBLEMS["linear-regression"]()
    lrs = np.geomspace(1e-3, 1.0, 9)
    if search == "halving":
        ref = gradtx.successive_halving(p.loss_fn, p.params, p.data, "adam",
                                        {"learning_rate": lrs}, 12)  # fmt: skip
        assert summary["steps_used"] == ref.steps_used and summary["full_steps"] == 9 * 12
        assert summary["best_loss"] == pytest.approx(ref.best_loss, rel=1e-6)
        assert [r["members"] for r in summary["rungs"]] == [len(r.members) for r in ref.rungs]
    elif search == "pbt":
        assert np.asarray(summary["hparams_history"]["learning_rate"]).shape == (3, 9)
        assert np.asarray(summary["lineage"]).shape == (3, 9)
    else:
        assert summary["trials"] == 8 and summary["steps_used"] == 8 * 12
