"""Searches beyond the full grid for the command line: successive halving, PBT, random (or Sobol)
sampling and Optuna, with a progress bar (rich, optional) and plots (matplotlib, optional).

``run_search`` is what ``python -m gradtx sweep --search KIND`` runs; the plots are
``plot_halving`` (each rung's curves), ``plot_pbt`` (each member's hyperparameters over time) and
``plot_optuna`` (each trial's value and the best so far).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from ._grid import Range, format_setting, log_uniform

SEARCHES = ("grid", "halving", "pbt", "random", "optuna")


@contextlib.contextmanager
def progress_bar(description: str, quiet: bool = False) -> Iterator[Callable[[float], None]]:
    """A ``progress(fraction)`` callback drawing a rich progress bar (a no-op without rich or
    when ``quiet``)."""
    bar = None
    if not quiet:
        try:
            from rich.progress import Progress
        except ImportError:  # pragma: no cover - optional dependency
            bar = None
        else:
            bar = Progress(transient=False)
    if bar is None:
        yield lambda _fraction: None
        return
    task = bar.add_task(description, total=1.0)
    bar.start()
    try:
        yield lambda fraction: bar.update(task, completed=float(fraction))
    finally:
        bar.update(task, completed=1.0)
        bar.stop()


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        return None
    return plt


def plot_halving(res: Any, path: str) -> str | None:
    """Each setting's training loss, coloured by the last rung it reached, with the rungs' ends
    as vertical lines. Returns the path, or None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("viridis")
    reached = np.zeros(len(res.settings), int)
    for r, rung in enumerate(res.rungs):
        reached[rung.members] = r
    last = max(1, len(res.rungs) - 1)
    for i in range(len(res.settings)):
        curve = res.losses[i]
        ax.plot(np.arange(curve.size), curve, color=cmap(reached[i] / last), lw=0.8, alpha=0.8)
    for rung in res.rungs:
        ax.axvline(rung.steps, color="grey", ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss")
    ax.set_title(
        f"successive halving: {len(res.rungs)} rungs, {res.steps_used}/{res.full_steps} steps; "
        f"best {format_setting(res.settings[res.best])}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_pbt(res: Any, path: str) -> str | None:
    """Each member's hyperparameters over the intervals (one panel per swept name), the best
    member's lineage drawn thick."""
    plt = _pyplot()
    if plt is None:
        return None
    names = list(res.hparams_history)
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.8 * len(names)), squeeze=False)
    chain = res.ancestry(res.best)
    t = np.arange(res.lineage.shape[0]) * res.interval
    for ax, name in zip(axes[:, 0], names):
        h = res.hparams_history[name]
        for m in range(h.shape[1]):
            ax.step(t, h[:, m], where="post", color="grey", lw=0.6, alpha=0.6)
        best = [h[k, chain[k]] for k in range(len(chain))]
        ax.step(t, best, where="post", color="C3", lw=2, label=f"best member ({res.best})")
        if np.all(h > 0):
            ax.set_yscale("log")
        ax.set_ylabel(name)
        ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    axes[0, 0].set_title(
        f"PBT: {res.lineage.shape[1]} members, interval {res.interval}; "
        f"final loss {res.final_loss[res.best]:.4g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_optuna(study: Any, path: str, batch: int | None = None) -> str | None:
    """Each completed trial's value against its number (rounds of ``batch`` shaded), pruned and
    failed trials marked, and the best value so far."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    nums, vals, best, cur = [], [], [], math.inf
    for t in study.trials:
        if t.state.name == "COMPLETE":
            nums.append(t.number)
            vals.append(t.value)
            cur = min(cur, t.value)
        best.append(cur)
    ax.scatter(nums, vals, s=12, label="complete")
    for state, marker in (("PRUNED", "x"), ("FAIL", "v")):
        xs = [t.number for t in study.trials if t.state.name == state]
        if xs:
            ax.scatter(xs, [np.nan] * len(xs), marker=marker, label=state.lower())
            for x in xs:
                ax.axvline(x, color="grey", lw=0.3, alpha=0.4)
    ax.plot(np.arange(len(best)), best, color="C3", label="best so far")
    if batch:
        for start in range(0, len(study.trials), 2 * batch):
            ax.axvspan(start - 0.5, start + batch - 0.5, color="grey", alpha=0.08)
    if vals and min(vals) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("trial")
    ax.set_ylabel("final loss")
    ax.set_title("Optuna study, trials trained in batches (one program per round)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _as_space(grid: Mapping[str, Any]) -> dict[str, Range]:
    """Grid lists as ranges: a log range over their span when positive floats, else a choice."""
    space = {}
    for name, values in grid.items():
        if isinstance(values, Range):
            space[name] = values
            continue
        vals = [float(v) for v in values]
        floats = any(not float(v).is_integer() for v in vals)
        if len(vals) > 1 and floats and min(vals) > 0:
            space[name] = log_uniform(min(vals), max(vals))
        else:
            from ._grid import choice

            space[name] = choice(values)
    return space


def run_search(
    search: str,
    problem: Any,
    optimizer: str,
    grid: Mapping[str, Any],
    steps: int,
    *,
    hparams: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    max_loss: float | None = None,
    samples: int | None = None,
    eta: int = 3,
    interval: int | None = None,
    rounds: int = 3,
    out_dir: str | None = None,
    plot: bool = True,
    quiet: bool = False,
    print_fn: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Runs one search on ``problem`` (a ``Problem`` of the CLI: ``loss_fn``, ``params``,
    ``data``) and returns a summary (also written to ``out_dir/search.json`` with plots).

    ``grid`` gives the values (``halving``, ``pbt``: the population) or their span
    (``random``, ``optuna``: a log-uniform range over a list's span of positive floats, else a
    choice of its values). ``samples`` is the population for ``random`` and the batch per round
    for ``optuna``.
    """
    from ._halving import successive_halving
    from ._pbt import pbt
    from ._sweep import sweep

    if search not in SEARCHES:
        raise ValueError(f"gradtx sweep: --search must be one of {SEARCHES}, got {search!r}")
    common = {"hparams": hparams, "batch_size": batch_size, "max_loss": max_loss}
    summary: dict[str, Any] = {"search": search, "optimizer": optimizer, "steps": steps}
    files: dict[str, str] = {}
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    args = (problem.loss_fn, problem.params, problem.data, optimizer)
    with progress_bar(f"{search}: {optimizer}", quiet) as progress:
        if search == "grid":
            res = sweep(*args, dict(grid), steps, key=seed, progress=progress, **common)
            b = res.best(1)[0]
            summary.update(
                best=res.settings[b],
                best_loss=float(res.final_loss[b]),
                steps_used=res.size * steps,
            )
        elif search == "random":
            n = samples or 16
            res = sweep(
                *args, _as_space(grid), steps, key=seed, samples=n, progress=progress, **common
            )
            b = res.best(1)[0]
            summary.update(
                best=res.settings[b], best_loss=float(res.final_loss[b]), steps_used=n * steps
            )
        elif search == "halving":
            res = successive_halving(
                *args, dict(grid), steps, eta=eta, key=seed, progress=progress, **common
            )
            summary.update(
                best=res.settings[res.best],
                best_loss=res.best_loss,
                steps_used=res.steps_used,
                full_steps=res.full_steps,
                rungs=[{"steps": r.steps, "members": len(r.members)} for r in res.rungs],
            )
            if plot and out_dir is not None:
                files["plot_halving"] = plot_halving(res, os.path.join(out_dir, "halving.png"))
        elif search == "pbt":
            k = interval or max(1, steps // 10)
            res = pbt(
                *args,
                dict(grid),
                steps - steps % k,
                interval=k,
                key=seed,
                bounds={n: _as_space(grid)[n].bounds for n in grid},
                **common,
            )
            summary.update(
                best=res.best_hparams,
                best_loss=float(res.final_loss[res.best]),
                steps_used=res.lineage.shape[1] * (steps - steps % k),
                hparams_history={n: v.tolist() for n, v in res.hparams_history.items()},
                lineage=res.lineage.tolist(),
            )
            if plot and out_dir is not None:
                files["plot_pbt"] = plot_pbt(res, os.path.join(out_dir, "pbt.png"))
        else:
            import optuna

            from .. import optuna as gopt

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
            batch = samples or 16
            res = gopt.optimize(
                study,
                *args,
                _as_space(grid),
                steps,
                batch,
                rounds,
                key=seed,
                callback=lambda r, _: progress((r + 1) / rounds),
                **common,
            )
            summary.update(
                best=res.best_params,
                best_loss=res.best_value,
                steps_used=batch * rounds * steps,
                trials=len(study.trials),
            )
            if plot and out_dir is not None:
                files["plot_optuna"] = plot_optuna(
                    study, os.path.join(out_dir, "optuna.png"), batch
                )
    summary["files"] = {k: v for k, v in files.items() if v}
    if out_dir is not None:
        path = os.path.join(out_dir, "search.json")
        with open(path, "w") as f:
            json.dump(summary, f, indent=2, default=float)
        summary["files"]["json"] = path
    print_fn(
        f"{search}: best {format_setting(summary['best'])} final_loss={summary['best_loss']:.4g} "
        f"({summary['steps_used']} steps trained)"
    )
    return summary
