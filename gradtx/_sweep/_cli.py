"""``python -m gradtx``: sweeps, the LR range test and the seed problems from the command line.

rich (progress bar, tables), matplotlib (plots) and scikit-learn (the digits data) are optional:
without rich the output is plain text, without matplotlib no PNG is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from ._grid import accepts, format_setting, parse_values, resolve_optimizer
from ._lr_finder import lr_finder
from ._problems import PROBLEMS, SEED_PROBLEMS, Problem, load_problem
from ._sweep import SweepResult, sweep

DEMO_OPTIMIZERS = ("adam", "sgd(momentum=0.9)", "rmsprop", "adamw")
SEED_OPTIMIZERS = ("sgd", "sgd(momentum=0.9)", "adagrad", "rmsprop", "adam", "adamw")
NAMED_GRID = ("learning_rate", "b1", "b2", "eps", "momentum", "weight_decay", "decay")


# ---------------------------------------------------------------------------------------------
# Output helpers (rich when installed)


class _Out:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet
        try:
            from rich.console import Console

            # A wide table even when the output is a pipe or a CI log.
            width = None if sys.stdout.isatty() else 160
            self.console: Any = Console(highlight=False, width=width)
        except ImportError:  # pragma: no cover - optional dependency
            self.console = None

    def print(self, *text: Any) -> None:
        if self.quiet:
            return
        if self.console is not None:
            self.console.print(*text)
        else:  # pragma: no cover
            print(*text)

    def table(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        if self.quiet:
            return
        if self.console is not None:
            from rich.table import Table

            t = Table(title=title)
            for i, c in enumerate(columns):
                t.add_column(c, justify="left" if i < 3 else "right")
            for r in rows:
                t.add_row(*(str(x) for x in r))
            self.console.print(t)
            return
        widths = [  # pragma: no cover
            max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)
        ]
        print(title)  # pragma: no cover
        print("  ".join(str(c).ljust(w) for c, w in zip(columns, widths)))  # pragma: no cover
        for r in rows:  # pragma: no cover
            print("  ".join(str(x).ljust(w) for x, w in zip(r, widths)))

    def progress(self):
        if self.console is None or self.quiet:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )


def _fmt(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.4g}"


def _fmt_params(p: Any) -> str:
    leaves = [np.asarray(x).ravel() for x in jax.tree.leaves(p)]
    vals = np.concatenate(leaves) if leaves else np.zeros(0)
    text = ", ".join(f"{v:.4g}" for v in vals[:6])
    return f"[{text}{', ...' if vals.size > 6 else ''}]"


def split_optimizers(values: Sequence[str]) -> list[str]:
    """Splits ``adam,sgd(momentum=0.9)`` on commas outside brackets."""
    out: list[str] = []
    for v in values:
        depth, cur = 0, ""
        for ch in v:
            depth += ch in "(["
            depth -= ch in ")]"
            if ch == "," and depth == 0:
                out.append(cur.strip())
                cur = ""
            else:
                cur += ch
        if cur.strip():
            out.append(cur.strip())
    return out


# ---------------------------------------------------------------------------------------------
# sweep


def _grid_from_args(args: argparse.Namespace) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for name in NAMED_GRID:
        spec = getattr(args, name, None)
        if spec:
            grid[name] = parse_values(spec)
    for item in args.grid or []:
        name, sep, spec = item.partition("=")
        if not sep:
            raise SystemExit(f"gradtx sweep: --grid takes NAME=SPEC, got {item!r}")
        grid[name.strip().replace("-", "_")] = parse_values(spec)
    if not grid:
        grid["learning_rate"] = parse_values("1e-4:1e-1:8")
    return grid


def _fixed_from_args(args: argparse.Namespace) -> dict[str, Any]:
    from ._grid import _literal

    fixed: dict[str, Any] = {}
    for item in args.set or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"gradtx sweep: --set takes NAME=VALUE, got {item!r}")
        fixed[name.strip().replace("-", "_")] = _literal(value)
    return fixed


def _schedule_hparams(
    schedule: str | None, grid: dict[str, list[Any]], fixed: dict[str, Any]
) -> dict[str, Any]:
    """Builds ``learning_rate`` as ``gradtx.<schedule>(...)`` from --set/--grid learning_rate.X."""
    out = {k: v for k, v in fixed.items() if "." not in k}
    if schedule is None:
        return out
    import gradtx

    factory = getattr(gradtx, schedule, None)
    if not callable(factory):
        raise SystemExit(f"gradtx sweep: unknown schedule {schedule!r} (a gradtx.* function)")
    kwargs = {k.split(".", 1)[1]: v for k, v in fixed.items() if k.startswith("learning_rate.")}
    for k, v in grid.items():
        if k.startswith("learning_rate."):
            kwargs[k.split(".", 1)[1]] = v[0]
    out["learning_rate"] = factory(**kwargs)
    return out


def _accuracies(problem: Problem, res: SweepResult) -> np.ndarray | None:
    data = problem.eval_data if problem.eval_data is not None else problem.data
    if problem.accuracy_fn is None or data is None or callable(data):
        return None
    acc = jax.jit(jax.vmap(problem.accuracy_fn, in_axes=(0, None)))(res.params, data)
    out = np.full(res.size, np.nan)
    out[res.params_index] = np.asarray(acc)
    return out


def run_sweeps(
    problem: Problem,
    optimizers: Sequence[str],
    grid: dict[str, list[Any]],
    fixed: dict[str, Any],
    steps: int,
    *,
    batch_size: int | None,
    seed: int = 0,
    chunk_size: int | None = None,
    keep_best: int | None = None,
    max_loss: float | None = None,
    schedule: str | None = None,
    out: _Out,
) -> list[tuple[SweepResult, np.ndarray | None]]:
    results = []
    bar = out.progress()
    if bar is not None:
        bar.start()
    try:
        for name in optimizers:
            label, factory, _ = resolve_optimizer(name)
            g = {k: v for k, v in grid.items() if factory is None or accepts(factory, k)}
            skipped = sorted(set(grid) - set(g))
            hp = _schedule_hparams(schedule, g, fixed)
            hp = {k: v for k, v in hp.items() if factory is None or accepts(factory, k)}
            n = math.prod(len(v) for v in g.values()) if g else 1
            task = None
            if bar is not None:
                task = bar.add_task(f"{label} ({n} settings, compiling)", total=1.0)

            def progress(frac: float, task=task, label=label, n=n) -> None:
                if bar is not None:
                    bar.update(task, completed=frac, description=f"{label} ({n} settings, running)")

            res = sweep(
                problem.loss_fn,
                problem.params,
                problem.data,
                name,
                g,
                steps,
                hparams=hp,
                key=seed,
                batch_size=batch_size,
                chunk_size=chunk_size,
                keep_best=keep_best,
                max_loss=max_loss,
                progress=progress,
            )
            if bar is not None:
                bar.update(
                    task,
                    completed=1.0,
                    description=f"{label} ({n} settings: compile {res.compile_seconds:.1f} s, "
                    f"run {res.run_seconds:.1f} s)",
                )
            else:
                out.print(
                    f"{label}: {n} settings, compile {res.compile_seconds:.1f} s, "
                    f"run {res.run_seconds:.1f} s"
                )
            if skipped:
                out.print(f"  ({label} takes no {', '.join(skipped)}: not swept)")
            results.append((res, _accuracies(problem, res)))
    finally:
        if bar is not None:
            bar.stop()
    return results


def _all_rows(results: list[tuple[SweepResult, np.ndarray | None]]) -> list[dict[str, Any]]:
    rows = []
    for res, acc in results:
        for r in res.rows():
            if acc is not None:
                r["accuracy"] = float(acc[r["index"]])
            r["setting"] = format_setting(res.settings[r["index"]])
            rows.append(r)
    rows.sort(key=lambda r: (r["diverged"] or not math.isfinite(r["final_loss"]), r["final_loss"]))
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def print_table(
    rows: list[dict[str, Any]], out: _Out, title: str, top: int, acc_label: str = "accuracy"
) -> None:
    has_acc = any("accuracy" in r for r in rows)
    cols = ["#", "optimizer", "hyperparameters", "final loss", "min loss"]
    cols += [acc_label] if has_acc else []
    cols += ["diverged"]
    table = []
    for r in rows[:top]:
        line = [r["rank"], r["optimizer"], r["setting"], _fmt(r["final_loss"]), _fmt(r["min_loss"])]
        if has_acc:
            a = r.get("accuracy", math.nan)
            line.append("-" if not math.isfinite(a) else f"{100 * a:.1f}%")
        line.append(f"at step {r['diverged_at']}" if r["diverged"] else "no")
        table.append(line)
    more = len(rows) - len(table)
    out.table(title + (f" (best {len(table)} of {len(rows)})" if more > 0 else ""), cols, table)


def write_outputs(
    results: list[tuple[SweepResult, np.ndarray | None]],
    rows: list[dict[str, Any]],
    out_dir: str,
    meta: dict[str, Any],
    plot: bool = True,
) -> dict[str, str]:
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    # JSON: metadata, the ranked table and every curve.
    payload = {
        **meta,
        "results": [{k: v for k, v in r.items()} for r in rows],
        "curves": [
            {
                "optimizer": res.label,
                "index": i,
                "setting": res.settings[i],
                "diverged": bool(res.diverged[i]),
                "loss": [None if not math.isfinite(x) else float(x) for x in res.losses[i]],
            }
            for res, _ in results
            for i in range(res.size)
        ],
        "timing": [
            {"optimizer": res.label, "compile_s": res.compile_seconds, "run_s": res.run_seconds}
            for res, _ in results
        ],
    }
    for r in payload["results"]:
        for k, v in r.items():
            if isinstance(v, float) and not math.isfinite(v):
                r[k] = None
    path = os.path.join(out_dir, "sweep.json")
    with open(path, "w") as f:
        json.dump(payload, f, indent=1)
    files["json"] = path
    # CSV: the ranked summary, and the curves in long form.
    names = sorted({k for res, _ in results for k in res.names})
    path = os.path.join(out_dir, "results.csv")
    keys = ["rank", "optimizer", *names, "final_loss", "min_loss", "accuracy", "diverged",
            "diverged_at"]  # fmt: skip
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    files["results_csv"] = path
    path = os.path.join(out_dir, "curves.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["optimizer", "index", *names, "step", "loss"])
        for res, _ in results:
            for i in range(res.size):
                hp = [res.settings[i].get(n, "") for n in names]
                for step, loss in enumerate(res.losses[i]):
                    w.writerow([res.label, i, *hp, step, f"{loss:.7g}"])
    files["csv"] = path
    if plot:
        files.update(_plots(results, out_dir))
    return files


def _ema(x: np.ndarray, beta: float) -> np.ndarray:
    out, avg = np.empty(len(x)), 0.0
    for t, v in enumerate(x):
        avg = beta * avg + (1 - beta) * v
        out[t] = avg / (1 - beta ** (t + 1))
    return out


def _plots(results: list[tuple[SweepResult, np.ndarray | None]], out_dir: str) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        return {}
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xname = "learning_rate"
    if not any(xname in res.names for res, _ in results):
        xname = next((n for res, _ in results for n in res.names), None)
    for res, _ in results:
        if xname is None or xname not in res.names:
            x = np.arange(res.size, dtype=float)
        else:
            x = np.array([float(s[xname]) for s in res.settings])
        y = res.final_loss.astype(float)
        # Other grid axes: the best value over them at each x.
        xs = np.unique(x)
        best = np.array([np.nanmin(np.where(x == v, y, np.nan)) if np.any(np.isfinite(y[x == v])) else np.nan for v in xs])  # fmt: skip
        (line,) = ax.plot(xs, best, marker="o", ms=3, label=res.label)
        div = np.array([bool(np.all(res.diverged[x == v])) for v in xs])
        if div.any():
            top = np.nanmax(best) if np.isfinite(best).any() else 1.0
            ax.plot(xs[div], np.full(div.sum(), top), "x", color=line.get_color())
    if xname is not None:
        ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xname or "setting")
    ax.set_ylabel("final loss (x: diverged)")
    ax.set_title("final loss against " + (xname or "setting"))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out_dir, "final_loss_vs_lr.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files["plot_final_loss"] = path

    fig, ax = plt.subplots(figsize=(7, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, (res, _) in enumerate(results):
        for j, i in enumerate(res.best(3)):
            if res.diverged[i]:
                continue
            ax.plot(
                _ema(res.losses[i], 0.9),
                color=colors[c % len(colors)],
                lw=1.4 if j == 0 else 0.8,
                alpha=1.0 if j == 0 else 0.35,
                label=f"{res.label} {format_setting(res.settings[i])}" if j == 0 else None,
            )
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (EMA 0.9)")
    ax.set_title("loss curves of the best settings (best 3 per optimizer, best bold)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = os.path.join(out_dir, "best_curves.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    files["plot_curves"] = path
    return files


def cmd_sweep(args: argparse.Namespace, out: _Out | None = None) -> int:
    out = out or _Out(args.quiet)
    problem = load_problem(args.problem)
    optimizers = split_optimizers(args.optimizer or ["adam"])
    grid = _grid_from_args(args)
    fixed = _fixed_from_args(args)
    steps = args.steps or problem.steps
    batch_size = problem.batch_size if args.batch_size is None else (args.batch_size or None)
    out.print(
        f"[bold]gradtx sweep[/bold]: {problem.name} ({problem.description}); "
        f"{steps} steps; optimizers {', '.join(optimizers)}; grid "
        + "; ".join(f"{k} = {len(v)} values in [{_fmt(min(v))}, {_fmt(max(v))}]" for k, v in grid.items())
    )  # fmt: skip
    t0 = time.perf_counter()
    results = run_sweeps(
        problem,
        optimizers,
        grid,
        fixed,
        steps,
        batch_size=batch_size,
        seed=args.seed,
        chunk_size=args.chunk_size,
        keep_best=args.keep_best,
        max_loss=args.max_loss,
        schedule=args.schedule,
        out=out,
    )
    rows = _all_rows(results)
    acc_label = "held-out acc" if problem.eval_data is not None else "accuracy"
    print_table(rows, out, f"{problem.name}: {steps} steps, best first", args.top, acc_label)
    meta = {
        "problem": problem.name,
        "description": problem.description,
        "steps": steps,
        "batch_size": batch_size,
        "seed": args.seed,
        "optimizers": optimizers,
        "grid": grid,
        "fixed": {k: repr(v) for k, v in fixed.items()},
        "schedule": args.schedule,
        "seconds": time.perf_counter() - t0,
    }
    files = write_outputs(results, rows, args.out, meta, plot=not args.no_plot)
    n_div = sum(r["diverged"] for r in rows)
    out.print(
        f"{len(rows)} settings, {n_div} diverged, {time.perf_counter() - t0:.1f} s. "
        f"Wrote {files['json']}, {files['csv']}, {files['results_csv']}"
    )
    if "plot_final_loss" in files:
        out.print(f"Plots: {files['plot_final_loss']} and {files['plot_curves']}")
    elif not args.no_plot:
        out.print("(matplotlib is not installed: no plots; pip install 'gradtx[cli]')")
    return 0


# ---------------------------------------------------------------------------------------------
# lr-find


def cmd_lr_find(args: argparse.Namespace) -> int:
    out = _Out(args.quiet)
    problem = load_problem(args.problem)
    batch_size = problem.batch_size if args.batch_size is None else (args.batch_size or None)
    out.print(
        f"[bold]gradtx lr-find[/bold]: {args.optimizer} on {problem.name}, lr {args.lr_min:g} -> "
        f"{args.lr_max:g} over {args.steps} steps, {args.repeats} repeat(s)"
    )
    res = lr_finder(
        problem.loss_fn,
        problem.params,
        problem.data,
        args.optimizer,
        lr_min=args.lr_min,
        lr_max=args.lr_max,
        steps=args.steps,
        repeats=args.repeats,
        hparams=_fixed_from_args(args),
        key=args.seed,
        batch_size=batch_size,
    )
    out.print(
        f"suggested learning rate (steepest descent): [bold]{res.suggestion:.3g}[/bold]; "
        f"lowest loss at {res.min_loss_lr:.3g} (rule of thumb: {res.min_loss_lr / 10:.3g}); "
        f"curve read up to step {res.stop_index}"
    )
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "lr_finder.json")
    with open(path, "w") as f:
        json.dump(
            {
                "learning_rates": res.learning_rates.tolist(),
                "loss": [None if not math.isfinite(x) else x for x in res.losses.tolist()],
                "smoothed": [None if not math.isfinite(x) else x for x in res.smoothed.tolist()],
                "suggestion": res.suggestion,
                "min_loss_lr": res.min_loss_lr,
                "stop_index": res.stop_index,
            },
            f,
            indent=1,
        )
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover
        out.print(f"Wrote {path}")
        return 0
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(res.learning_rates, res.losses, alpha=0.3, label="loss")
    ax.plot(res.learning_rates, res.smoothed, label="smoothed")
    ax.axvline(res.suggestion, color="red", ls="--", label=f"suggestion {res.suggestion:.2g}")
    ax.set_xscale("log")
    finite = res.smoothed[: res.stop_index]
    finite = finite[np.isfinite(finite)]
    if finite.size:
        ax.set_ylim(finite.min() * 0.9, finite.max() * 1.5)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss")
    ax.set_title(f"LR range test: {args.optimizer} on {problem.name}")
    ax.legend()
    fig.tight_layout()
    png = os.path.join(args.out, "lr_finder.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    out.print(f"Wrote {path} and {png}")
    return 0


# ---------------------------------------------------------------------------------------------
# seeds


def cmd_seeds(args: argparse.Namespace) -> int:
    """Trains each seed problem with each optimizer at the tutorial's learning rate and steps,
    and in the same program a sweep of 13 other rates, and prints one table."""
    out = _Out(args.quiet)
    optimizers = split_optimizers(args.optimizer or list(SEED_OPTIMIZERS))
    rows = []
    t0 = time.perf_counter()
    for pname in SEED_PROBLEMS:
        problem = PROBLEMS[pname]()
        steps = problem.steps
        for name in optimizers:
            lrs = [problem.learning_rate, *parse_values("1e-3:3:13")]
            res = sweep(
                problem.loss_fn,
                problem.params,
                problem.data,
                name,
                {"learning_rate": lrs},
                steps,
                key=args.seed,
                batch_size=problem.batch_size,
            )
            best = res.best(1)[0]
            rows.append(
                [
                    pname,
                    name,
                    steps,
                    _fmt(problem.learning_rate),
                    _fmt(float(res.final_loss[0])) + (" (diverged)" if res.diverged[0] else ""),
                    _fmt_params(res.params_of(0)),
                    _fmt(float(lrs[best])),
                    _fmt(float(res.final_loss[best])),
                ]
            )
    out.table(
        "The seed problems: each optimizer at the tutorial's learning rate, and the best of 14",
        [
            "problem",
            "optimizer",
            "steps",
            "lr",
            "final loss",
            "final params",
            "best lr",
            "best loss",
        ],
        rows,
    )
    out.print(f"({len(rows)} sweeps of 14 learning rates, {time.perf_counter() - t0:.1f} s)")
    return 0


# ---------------------------------------------------------------------------------------------
# demo and the parser


def cmd_demo(args: argparse.Namespace) -> int:
    out = _Out(False)
    out.print("[bold]gradtx demo[/bold]: 1) the seed problems, 2) a sweep on digits\n")
    cmd_seeds(argparse.Namespace(optimizer=None, seed=0, quiet=False))
    sweep_args = build_parser().parse_args(
        [
            "sweep",
            "--problem",
            "digits-mlp",
            "--optimizer",
            ",".join(DEMO_OPTIMIZERS),
            "--learning-rate",
            "1e-4:1:16",
            "--steps",
            "300",
            "--out",
            args.out if getattr(args, "out", None) else "sweep-out",
        ]
    )
    out.print()
    return cmd_sweep(sweep_args, out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m gradtx",
        description="gradtx: hyperparameter sweeps in one compiled program. With no command, "
        "runs the demo (the seed problems, then a digits sweep comparing optimizers).",
    )
    sub = p.add_subparsers(dest="command")

    s = sub.add_parser(
        "sweep",
        help="train a grid of hyperparameter settings in one compiled program per optimizer",
        description="Example: python -m gradtx sweep --optimizer adam --learning-rate "
        "1e-4:1e-1:32 --steps 500 --problem digits-mlp. Grid specs: lo:hi:n (log-spaced), "
        "lo:hi:n:lin, lo:hi:n:int, or a,b,c. Several hyperparameters make a Cartesian grid.",
    )
    s.add_argument(
        "--optimizer",
        action="append",
        help="optimizer(s): a registry name, name(k=v,...) or a list a,b (repeatable)",
    )
    s.add_argument("--learning-rate", "--lr", dest="learning_rate", help="grid spec")
    for name in NAMED_GRID[1:]:
        s.add_argument("--" + name.replace("_", "-"), dest=name, help="grid spec")
    s.add_argument(
        "--grid",
        action="append",
        metavar="NAME=SPEC",
        help="any numeric hyperparameter, including a schedule's (learning_rate.peak_value=...)",
    )
    s.add_argument("--set", action="append", metavar="NAME=VALUE", help="fixed hyperparameter")
    s.add_argument(
        "--schedule",
        help="make learning_rate gradtx.<SCHEDULE>(...) from --set/--grid learning_rate.X",
    )
    s.add_argument("--steps", type=int, help="steps per setting (default: the problem's)")
    s.add_argument(
        "--problem",
        default="digits-mlp",
        help=f"built-in ({', '.join(PROBLEMS)}) or module:function",
    )
    s.add_argument("--batch-size", type=int, help="minibatch size (0: full batch)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--chunk-size", type=int, help="settings run at once (lax.map batch size)")
    s.add_argument("--keep-best", type=int, help="keep only the best k settings' params")
    s.add_argument("--max-loss", type=float, help="a loss above this counts as divergence")
    s.add_argument("--out", default="sweep-out", help="output folder (default ./sweep-out)")
    s.add_argument("--top", type=int, default=15, help="rows of the table")
    s.add_argument("--no-plot", action="store_true")
    s.add_argument("--quiet", action="store_true")

    f = sub.add_parser("lr-find", help="the LR range test (Smith's learning-rate finder)")
    f.add_argument("--optimizer", default="adam")
    f.add_argument("--problem", default="digits-mlp")
    f.add_argument("--lr-min", type=float, default=1e-6)
    f.add_argument("--lr-max", type=float, default=10.0)
    f.add_argument("--steps", type=int, default=200)
    f.add_argument("--repeats", type=int, default=4)
    f.add_argument("--batch-size", type=int)
    f.add_argument("--set", action="append", metavar="NAME=VALUE")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default="sweep-out")
    f.add_argument("--quiet", action="store_true")

    e = sub.add_parser("seeds", help="train the seed problems with each optimizer")
    e.add_argument("--optimizer", action="append")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--quiet", action="store_true")

    d = sub.add_parser("demo", help="the default demo (what `python -m gradtx` runs)")
    d.add_argument("--out", default="sweep-out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sweep":
            return cmd_sweep(args)
        if args.command == "lr-find":
            return cmd_lr_find(args)
        if args.command == "seeds":
            return cmd_seeds(args)
        return cmd_demo(args)
    except (ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
