"""``python -m gradtx``: sweeps, the LR range test and the seed problems from the command line.

rich (progress bar, tables), matplotlib (plots) and scikit-learn (the digits data) are optional:
without rich the output is plain text, without matplotlib no PNG is written.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import jax
import numpy as np

from ._grid import (
    _literal,
    accepts,
    did_you_mean,
    format_setting,
    is_finite_number,
    keywords,
    parse_values,
    population,
    required_arguments,
    resolve_optimizer,
)
from ._lr_finder import lr_finder
from ._problems import (
    PROBLEM_FORMS,
    PROBLEMS,
    SEED_PROBLEMS,
    Problem,
    ProblemError,
    ProblemSource,
    resolve_problem,
)
from ._sweep import SweepResult, sweep

DEMO_OPTIMIZERS = ("adam", "sgd(momentum=0.9)", "rmsprop", "adamw")
SEED_OPTIMIZERS = ("sgd", "sgd(momentum=0.9)", "adagrad", "rmsprop", "adam", "adamw")
DEFAULT_LR_GRID = "1e-4:1e-1:8"
"""The learning rates swept when no grid is given."""
DEFAULT_LR = 1e-3
"""The learning rate of a sweep whose grid sweeps other hyperparameters and sets none."""
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
# Command-line errors: one line, ``gradtx sweep: error: ...``, exit status 2, before any work.

SEED_RANGE = (0, 2**32 - 1)
"""Seeds map one-to-one to PRNG keys in this range (larger ones wrap around to the same keys)."""


class UsageError(Exception):
    """A bad command-line argument; ``main`` prints ``gradtx <command>: error: <message>``."""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``gradtx sweep: error: ...``, with exit status 2.

    A word starting with a minus and a digit (``-5``, ``-1e-8``, ``-1:1:3:lin``) is a value,
    never an option (no option starts with a digit), so ``--eps -1e-8`` reaches the range check.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = re.compile(r"^-\.?\d")

    def error(self, message: str) -> NoReturn:
        prog = self.prog.removeprefix("python -m ")
        self.exit(2, f"{prog}: error: {message}\n")


def _int_option(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in ``[low, high]`` (``high=None``: no upper bound)."""
    valid = f"[{low}, {high}]" if high is not None else f"[{low}, inf)"

    def parse(text: str) -> int:
        try:
            value = int(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer in {valid}, got {text!r}"
            ) from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be an integer in {valid}, got {value}")
        return value

    return parse


def _float_option(positive: bool) -> Callable[[str], float]:
    """An argparse type: a finite number in (0, inf) (``positive``), else any number but NaN."""
    valid = "a finite number in (0, inf)" if positive else "a number (not NaN)"

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {valid}, got {text!r}") from None
        if math.isnan(value) or (positive and not (0 < value < math.inf)):
            raise argparse.ArgumentTypeError(f"must be {valid}, got {value}")
        return value

    return parse


def _reason(e: BaseException) -> str:
    """An exception's message without the ``gradtx.sweep:`` prefix (the CLI names the option)."""
    return str(e).removeprefix("gradtx.sweep: ")


def _check_out_dir(path: str) -> None:
    """Fails unless ``path`` is a writable directory or one that can be created."""
    valid = "--out takes a writable directory or a path where one can be created"
    full = os.path.abspath(path)
    if os.path.exists(full):
        if not os.path.isdir(full):
            raise UsageError(f"argument --out: {path!r} is a file, not a directory; {valid}")
        if not os.access(full, os.W_OK | os.X_OK):
            raise UsageError(f"argument --out: {path!r} is not writable; {valid}")
        return
    parent = os.path.dirname(full)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UsageError(
            f"argument --out: cannot create {path!r}: {parent!r} is a file, not a directory; {valid}"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(
            f"argument --out: cannot create {path!r}: {parent!r} is not writable; {valid}"
        )


def _problem_source(spec: str) -> ProblemSource:
    try:
        return resolve_problem(spec)
    except ProblemError as e:
        raise UsageError(f"argument --problem: {e}") from None


def _load(source: ProblemSource) -> Problem:
    try:
        return source.load()
    except ProblemError as e:
        raise UsageError(f"argument --problem: {e}") from None


def _batch_size(problem: Problem, requested: int | None) -> int | None:
    """The minibatch size the sweep uses: ``--batch-size`` (0: full batch) or the problem's."""
    if requested is None:
        return problem.batch_size
    if requested and (problem.data is None or callable(problem.data)):
        has = "no data" if problem.data is None else "a data function"
        raise UsageError(
            f"argument --batch-size: {problem.name} has {has}, not arrays to draw minibatches "
            f"from, got --batch-size {requested}; omit it (or pass 0)"
        )
    return requested or None


def _batch_text(problem: Problem, batch_size: int | None) -> str:
    if problem.data is None:
        return "no data"
    if callable(problem.data):
        return "batches from its data function"
    return f"minibatch {batch_size}" if batch_size else "full batch"


@dataclasses.dataclass
class _Optimizer:
    spec: str
    label: str
    factory: Callable[..., Any]
    fixed: dict[str, Any]


def _optimizers(values: Sequence[str] | None, default: Sequence[str]) -> list[_Optimizer]:
    specs = split_optimizers(values) if values else list(default)
    if not specs or "" in specs:
        given = ", ".join(repr(v) for v in values or ())
        raise UsageError(f"argument --optimizer: an empty optimizer name in {given}")
    out = []
    for spec in specs:
        try:
            label, factory, fixed = resolve_optimizer(spec)
        except ValueError as e:
            raise UsageError(f"argument --optimizer: {_reason(e)}") from None
        assert factory is not None  # a string always resolves to a factory
        out.append(_Optimizer(spec, label, factory, fixed))
    return out


def _pairs(items: Sequence[str] | None, option: str, form: str) -> list[tuple[str, str]]:
    out = []
    for item in items or []:
        name, sep, value = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not all(part.isidentifier() for part in name.split(".")):
            raise UsageError(f"argument {option}: takes {form}, got {item!r}")
        out.append((name, value))
    return out


@dataclasses.dataclass
class _Plan:
    """A sweep's checked arguments: everything known before any data is loaded."""

    source: ProblemSource
    optimizers: list[_Optimizer]
    grid: dict[str, list[Any]]
    origin: dict[str, str]  # grid or --set name -> the option that gave it
    fixed: dict[str, Any]
    schedule: Callable[..., Any] | None


def _schedule_factory(name: str | None) -> Callable[..., Any] | None:
    if name is None:
        return None
    import gradtx
    from gradtx import registry

    factory = getattr(gradtx, name, None)
    if not callable(factory) or isinstance(factory, type):
        names = sorted({s.name for s in registry.SCHEDULES.values()})
        hint = did_you_mean(name, names)
        raise UsageError(
            f"argument --schedule: unknown schedule {name!r}{hint} (schedules: {', '.join(names)})"
        )
    return factory


def _check_names(plan: _Plan) -> None:
    """Every --set and grid name is a keyword of at least one optimizer (or of the schedule)."""
    known = sorted({k for o in plan.optimizers for k in keywords(o.factory)})
    for name in [*plan.grid, *plan.fixed]:
        option = plan.origin[name]
        root, _, field = name.partition(".")
        if not any(accepts(o.factory, root) for o in plan.optimizers):
            which = ", ".join(o.label for o in plan.optimizers)
            raise UsageError(
                f"argument {option}: no optimizer here ({which}) takes {root!r}"
                f"{did_you_mean(root, known)} (their keywords: {', '.join(known)})"
            )
        if not field:
            continue
        if root != "learning_rate" or plan.schedule is None:
            raise UsageError(
                f"argument {option}: {name!r} sets a field of a learning-rate schedule, so it "
                "needs learning_rate.FIELD and --schedule NAME (e.g. --schedule "
                "cosine_decay_schedule)"
            )
        fields = keywords(plan.schedule)
        if field not in fields:
            raise UsageError(
                f"argument {option}: gradtx.{plan.schedule.__name__} has no argument {field!r}"
                f"{did_you_mean(field, fields)} (its arguments: {', '.join(fields)})"
            )


def _try(option: str, what: str, build: Callable[[], Any]) -> Any:
    try:
        return build()
    except (ValueError, TypeError) as e:
        raise UsageError(f"argument {option}: {what}: {_reason(e)}") from None


def _check_values(plan: _Plan) -> None:
    """Builds each optimizer (and the schedule) with each grid value, one value at a time, so a
    value out of range fails here with the factory's own message, naming its option."""
    sched_kwargs = {k.split(".", 1)[1]: v for k, v in plan.fixed.items() if "." in k}
    sched_grid = {k.split(".", 1)[1]: k for k in plan.grid if "." in k}
    lr: Any = None
    if plan.schedule is not None:
        schedule = plan.schedule
        first = {f: plan.grid[k][0] for f, k in sched_grid.items()}
        lr = _try(
            "--schedule",
            f"gradtx.{schedule.__name__}({format_setting({**sched_kwargs, **first})})",
            lambda: schedule(**sched_kwargs, **first),
        )
        for f, k in sched_grid.items():
            for v in dict.fromkeys(plan.grid[k]):
                kw = {**sched_kwargs, **first, f: v}
                _try(plan.origin[k], f"{k}={v!r}", lambda kw=kw: schedule(**kw))
    for o in plan.optimizers:
        # The optimizer alone, at a valid learning rate: the grid's values are checked below.
        probe = dict(o.fixed)
        if "learning_rate" in required_arguments(o.factory, probe):
            probe["learning_rate"] = DEFAULT_LR
        _try("--optimizer", o.spec, lambda probe=probe: o.factory(**probe))
        base = dict(probe)
        for k, v in plan.fixed.items():
            if "." not in k and accepts(o.factory, k):
                base[k] = v
                _try(plan.origin[k], f"{o.label} with {k}={v!r}", lambda: o.factory(**base))
        if lr is not None and accepts(o.factory, "learning_rate"):
            base["learning_rate"] = lr
        for k, values in plan.grid.items():
            if "." in k or not accepts(o.factory, k):
                continue
            for v in dict.fromkeys(values):
                kw = {**base, k: v}
                _try(plan.origin[k], f"{o.label} with {k}={v!r}", lambda kw=kw: o.factory(**kw))
        g = {k: v for k, v in plan.grid.items() if accepts(o.factory, k)}
        _try("--optimizer", o.spec, lambda g=g, base=base: population(o.spec, g, base))


def plan_sweep(args: argparse.Namespace) -> _Plan:
    """Checks every argument of ``sweep`` without loading data or compiling anything.

    Raises:
      UsageError: naming the option, the value and what it accepts.
    """
    _check_out_dir(args.out)
    optimizers = _optimizers(args.optimizer, ("adam",))
    grid: dict[str, list[Any]] = {}
    origin: dict[str, str] = {}
    for name in NAMED_GRID:
        spec = getattr(args, name, None)
        if spec is not None:
            origin[name] = "--" + name.replace("_", "-")
            grid[name] = _grid_values(origin[name], spec)
    for name, spec in _pairs(args.grid, "--grid", "NAME=SPEC"):
        origin[name] = f"--grid {name}"
        grid[name] = _grid_values(origin[name], spec)
    fixed = {}
    for name, value in _pairs(args.set, "--set", "NAME=VALUE"):
        if name in grid:
            raise UsageError(
                f"argument --set {name}: {name} is also swept by {origin[name]}; give one or the "
                "other"
            )
        origin[name] = f"--set {name}"
        fixed[name] = _literal(value.strip())
    if not grid and "learning_rate" not in fixed:
        grid["learning_rate"] = parse_values(DEFAULT_LR_GRID)
        origin["learning_rate"] = "--learning-rate"
    elif "learning_rate" not in grid and "learning_rate" not in fixed and args.schedule is None:
        fixed["learning_rate"] = DEFAULT_LR
        origin["learning_rate"] = "--set learning_rate"
    plan = _Plan(
        _problem_source(args.problem),
        optimizers,
        grid,
        origin,
        fixed,
        _schedule_factory(args.schedule),
    )
    _check_names(plan)
    _check_values(plan)
    return plan


def _grid_values(option: str, spec: str) -> list[Any]:
    try:
        return parse_values(spec)
    except ValueError as e:
        raise UsageError(f"argument {option}: {_reason(e)}") from None


def _schedule_hparams(
    schedule: str | None, grid: dict[str, list[Any]], fixed: dict[str, Any]
) -> dict[str, Any]:
    """Builds ``learning_rate`` as ``gradtx.<schedule>(...)`` from --set/--grid learning_rate.X."""
    out = {k: v for k, v in fixed.items() if "." not in k}
    if schedule is None:
        return out
    factory = _schedule_factory(schedule)
    assert factory is not None
    kwargs = {k.split(".", 1)[1]: v for k, v in fixed.items() if k.startswith("learning_rate.")}
    for k, v in grid.items():
        if k.startswith("learning_rate."):
            kwargs[k.split(".", 1)[1]] = v[0]
    out["learning_rate"] = factory(**kwargs)
    return out


# ---------------------------------------------------------------------------------------------
# sweep


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


def _swept(res: SweepResult) -> list[str]:
    """The grid names along which ``res`` takes more than one value, in grid order."""
    return [n for n in res.names if len({repr(s[n]) for s in res.settings}) > 1]


def _x_scale(ax: Any, x: np.ndarray) -> None:
    positive = x[np.isfinite(x) & (x > 0)]
    if x.size and np.all(x[np.isfinite(x)] > 0):
        ax.set_xscale("log")
    elif positive.size:
        ax.set_xscale("symlog", linthresh=float(positive.min()))


def final_loss_lines(
    results: list[tuple[SweepResult, np.ndarray | None]],
) -> tuple[str | None, list[dict[str, Any]], str]:
    """The lines of the final-loss plot: ``(x axis name, lines, title)``.

    The x axis is ``learning_rate`` when swept, else the first swept name. With two or more
    swept names, each optimizer gets one line per value of the next swept name (the line
    axis); further names are reduced to their best (lowest) final loss at each point, and the
    title says which. Each line is a dict with ``label``, ``x``, ``y``, ``diverged`` (all
    settings at that x diverged) and ``group`` (the optimizer's index in ``results``).
    """
    swept = [_swept(res) for res, _ in results]
    names = [n for s in swept for n in s]
    xname = "learning_rate" if "learning_rate" in names else (names[0] if names else None)
    lines, by, best_over = [], [], []
    for k, ((res, _), axes) in enumerate(zip(results, swept)):
        if xname in axes:
            x = np.array([float(s[xname]) for s in res.settings])
        else:
            x = np.arange(res.size, dtype=float)
        rest = [n for n in axes if n != xname]
        zname = rest[0] if rest else None
        if zname is not None and zname not in by:
            by.append(zname)
        best_over += [n for n in rest[1:] if n not in best_over]
        y = np.where(res.diverged, np.nan, res.final_loss.astype(float))
        groups = [(None, np.ones(res.size, bool))]
        if zname is not None:
            zs = sorted({s[zname] for s in res.settings}, key=float)
            groups = [(z, np.array([s[zname] == z for s in res.settings])) for z in zs]
        for z, sel in groups:
            xs = np.unique(x[sel])
            at = [sel & (x == v) for v in xs]
            best = np.array([np.nanmin(y[m]) if np.isfinite(y[m]).any() else np.nan for m in at])
            label = res.label if z is None else f"{res.label}, {format_setting({zname: z})}"
            div = np.array([bool(np.all(res.diverged[m])) for m in at])
            lines.append({"label": label, "x": xs, "y": best, "diverged": div, "group": k})
    title = "final loss against " + (xname or "setting")
    if by:
        title += ", one line per value of " + " / ".join(by)
    if best_over:
        title += f" (best over {', '.join(best_over)})"
    return xname, lines, title


def _plots(results: list[tuple[SweepResult, np.ndarray | None]], out_dir: str) -> dict[str, str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        return {}
    files = {}
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xname, lines, title = final_loss_lines(results)
    finite = [v for line in lines for v in line["y"] if np.isfinite(v)]
    top = max(finite) if finite else 1.0
    for line in lines:
        style = ("-", "--", ":", "-.")[line["group"] % 4]
        (drawn,) = ax.plot(line["x"], line["y"], style, marker="o", ms=3, label=line["label"])
        if line["diverged"].any():
            n = int(line["diverged"].sum())
            ax.plot(line["x"][line["diverged"]], np.full(n, top), "x", color=drawn.get_color())
    if xname is not None:
        _x_scale(ax, np.concatenate([line["x"] for line in lines]))
    ax.set_yscale("log")
    ax.set_xlabel(xname or "setting")
    ax.set_ylabel("final loss (x: diverged)")
    ax.set_title(title, fontsize=9 if len(title) > 60 else None)
    ax.legend(fontsize=7 if len(lines) > 6 else None)
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


def edge_warnings(
    results: list[tuple[SweepResult, np.ndarray | None]], origin: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """A warning for each optimizer whose best setting sits at the edge of its grid.

    Only numeric axes with more than 2 values count (with 2 values every setting is at an
    edge). The best setting is the one with the lowest final loss among those that did not
    diverge; an optimizer whose settings all diverged gets no warning here.
    """
    out = []
    for res, _ in results:
        best = res.best(1)[0]
        if res.diverged[best] or not math.isfinite(float(res.final_loss[best])):
            continue
        for name in res.names:
            values = sorted({float(s[name]) for s in res.settings if is_finite_number(s[name])})
            if len(values) <= 2 or not is_finite_number(res.settings[best][name]):
                continue
            value = float(res.settings[best][name])
            if value == values[0]:
                edge, side = "lowest", "below"
            elif value == values[-1]:
                edge, side = "highest", "above"
            else:
                continue
            option = (origin or {}).get(name, name)
            out.append(
                {
                    "optimizer": res.label,
                    "axis": name,
                    "value": value,
                    "edge": edge,
                    "message": f"{res.label}'s best setting has {name}={_fmt(value)}, the "
                    f"{edge} of {len(values)} values in [{_fmt(values[0])}, "
                    f"{_fmt(values[-1])}]: extend {option} {side} {_fmt(value)}",
                }
            )
    return out


def cmd_sweep(args: argparse.Namespace, out: _Out | None = None) -> int:
    plan = plan_sweep(args)
    out = out or _Out(args.quiet)
    problem = _load(plan.source)
    steps = args.steps or problem.steps
    batch_size = _batch_size(problem, args.batch_size)
    description = "; ".join(x for x in (problem.description, _batch_text(problem, batch_size)) if x)
    optimizers = [o.spec for o in plan.optimizers]
    grid, fixed = plan.grid, plan.fixed
    out.print(
        f"[bold]gradtx sweep[/bold]: {problem.name} ({description}); "
        f"{steps} steps; optimizers {', '.join(optimizers)}; grid "
        + ("; ".join(f"{k} = {len(v)} values in [{_fmt(min(v))}, {_fmt(max(v))}]" for k, v in grid.items()) or "none (one setting)")
    )  # fmt: skip
    if args.search != "grid":
        from ._search import run_search

        for spec in optimizers:
            run_search(
                args.search, problem, spec, grid, steps,
                hparams=_schedule_hparams(args.schedule, grid, fixed),
                batch_size=batch_size, seed=args.seed, max_loss=args.max_loss,
                samples=args.samples, eta=args.eta, interval=args.interval, rounds=args.rounds,
                out_dir=os.path.join(args.out, spec), plot=not args.no_plot, quiet=args.quiet,
                print_fn=out.print,
            )  # fmt: skip
        return 0
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
    warnings = edge_warnings(results, plan.origin)
    for w in warnings:
        out.print(f"[yellow]warning[/yellow]: {w['message']}")
    meta = {
        "problem": problem.name,
        "description": description,
        "steps": steps,
        "batch_size": batch_size,
        "seed": args.seed,
        "optimizers": optimizers,
        "grid": grid,
        "fixed": {k: repr(v) for k, v in fixed.items()},
        "schedule": args.schedule,
        "warnings": warnings,
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
    _check_out_dir(args.out)
    if args.lr_max <= args.lr_min:
        raise UsageError(
            f"argument --lr-max: must be greater than --lr-min ({args.lr_min:g}), "
            f"got {args.lr_max:g}"
        )
    (opt,) = _optimizers([args.optimizer], ())
    if len(split_optimizers([args.optimizer])) != 1:
        raise UsageError(
            f"argument --optimizer: lr-find takes one optimizer, got {args.optimizer!r}"
        )
    if not accepts(opt.factory, "learning_rate"):
        raise UsageError(f"argument --optimizer: {opt.label} takes no learning_rate")
    fixed = {}
    for name, value in _pairs(args.set, "--set", "NAME=VALUE"):
        if not accepts(opt.factory, name):
            names = keywords(opt.factory)
            raise UsageError(
                f"argument --set: {opt.label} has no keyword {name!r}{did_you_mean(name, names)} "
                f"({opt.label}'s keywords: {', '.join(names)})"
            )
        fixed[name] = _literal(value.strip())
    for lr in (args.lr_min, args.lr_max):
        kw = {**opt.fixed, **fixed, "learning_rate": lr}
        _try("--set" if fixed else "--optimizer", opt.spec, lambda kw=kw: opt.factory(**kw))
    source = _problem_source(args.problem)
    out = _Out(args.quiet)
    problem = _load(source)
    batch_size = _batch_size(problem, args.batch_size)
    out.print(
        f"[bold]gradtx lr-find[/bold]: {args.optimizer} on {problem.name} "
        f"({_batch_text(problem, batch_size)}), lr {args.lr_min:g} -> "
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
        hparams=fixed,
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
    optimizers = [o.spec for o in _optimizers(args.optimizer, SEED_OPTIMIZERS)]
    out = _Out(args.quiet)
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
    _check_out_dir(args.out if getattr(args, "out", None) else "sweep-out")
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
    p = _Parser(
        prog="python -m gradtx",
        description="gradtx: hyperparameter sweeps in one compiled program. With no command, "
        "runs the demo (the seed problems, then a digits sweep comparing optimizers).",
    )
    sub = p.add_subparsers(dest="command")
    seed_help = f"PRNG seed, an integer in [{SEED_RANGE[0]}, {SEED_RANGE[1]}] (default 0)"
    seed_type = _int_option(*SEED_RANGE)

    s = sub.add_parser(
        "sweep",
        help="train a grid of hyperparameter settings in one compiled program per optimizer",
        description="Example: python -m gradtx sweep --optimizer adam --learning-rate "
        "1e-4:1e-1:32 --steps 500 --problem digits-mlp. Grid specs: lo:hi:n (log-spaced), "
        "lo:hi:n:lin, lo:hi:n:int, or a,b,c. Several hyperparameters make a Cartesian grid. "
        "Every argument is checked before any data is loaded.",
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
    s.add_argument(
        "--steps", type=_int_option(1), help="steps per setting, >= 1 (default: the problem's)"
    )
    s.add_argument(
        "--problem",
        default="digits-mlp",
        help=f"{PROBLEM_FORMS}; built-in: {', '.join(PROBLEMS)} (default digits-mlp)",
    )
    s.add_argument(
        "--batch-size",
        type=_int_option(0),
        help="minibatch size, >= 0 (0: full batch; default: the problem's)",
    )
    s.add_argument("--seed", type=seed_type, default=0, help=seed_help)
    s.add_argument(
        "--chunk-size", type=_int_option(1), help="settings run at once (lax.map batch size), >= 1"
    )
    s.add_argument(
        "--keep-best", type=_int_option(1), help="keep only the best k settings' params, k >= 1"
    )
    s.add_argument(
        "--max-loss",
        type=_float_option(positive=False),
        help="a loss above this counts as divergence",
    )
    s.add_argument(
        "--search",
        choices=("grid", "halving", "pbt", "random", "optuna"),
        default="grid",
        help="grid (every setting, default), halving (successive halving), pbt (population based "
        "training), random (--samples draws from the grid's span) or optuna (TPE, rounds of "
        "--samples trials)",
    )
    s.add_argument(
        "--samples", type=_int_option(1), help="settings for random; trials per optuna round, >= 1"
    )
    s.add_argument("--eta", type=_int_option(2), default=3, help="halving factor, >= 2 (default 3)")
    s.add_argument("--interval", type=_int_option(1), help="PBT steps between exploits, >= 1")
    s.add_argument("--rounds", type=_int_option(1), default=3, help="optuna rounds, >= 1")
    s.add_argument("--out", default="sweep-out", help="output folder (default ./sweep-out)")
    s.add_argument("--top", type=_int_option(1), default=15, help="rows of the table, >= 1")
    s.add_argument("--no-plot", action="store_true")
    s.add_argument("--quiet", action="store_true")

    f = sub.add_parser("lr-find", help="the LR range test (Smith's learning-rate finder)")
    f.add_argument("--optimizer", default="adam", help="one optimizer: a name or name(k=v,...)")
    f.add_argument("--problem", default="digits-mlp", help="as for sweep (default digits-mlp)")
    positive = _float_option(positive=True)
    f.add_argument("--lr-min", type=positive, default=1e-6, help="> 0 (default 1e-6)")
    f.add_argument("--lr-max", type=positive, default=10.0, help="> --lr-min (default 10)")
    f.add_argument("--steps", type=_int_option(2), default=200, help=">= 2 (default 200)")
    f.add_argument("--repeats", type=_int_option(1), default=4, help=">= 1 (default 4)")
    f.add_argument("--batch-size", type=_int_option(0), help=">= 0 (0: full batch)")
    f.add_argument("--set", action="append", metavar="NAME=VALUE")
    f.add_argument("--seed", type=seed_type, default=0, help=seed_help)
    f.add_argument("--out", default="sweep-out")
    f.add_argument("--quiet", action="store_true")

    e = sub.add_parser("seeds", help="train the seed problems with each optimizer")
    e.add_argument("--optimizer", action="append")
    e.add_argument("--seed", type=seed_type, default=0, help=seed_help)
    e.add_argument("--quiet", action="store_true")

    d = sub.add_parser("demo", help="the default demo (what `python -m gradtx` runs)")
    d.add_argument("--out", default="sweep-out")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs a command; returns the exit status (2 for a bad argument, after a one-line error)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help (0) or an argparse error (2), already printed
        return e.code if isinstance(e.code, int) else int(e.code is not None)
    command = args.command or "demo"
    try:
        if command == "sweep":
            return cmd_sweep(args)
        if command == "lr-find":
            return cmd_lr_find(args)
        if command == "seeds":
            return cmd_seeds(args)
        return cmd_demo(args)
    except (UsageError, ValueError, ImportError) as e:
        print(f"gradtx {command}: error: {e}", file=sys.stderr)
        return 2
