"""Searches compared in one run on the digits MLP (or a least-squares problem with --small):

1. successive halving against the full grid: steps trained and best final loss;
2. PBT against the best static setting of the same population, at equal compute (the same
   members and steps);
3. Optuna (TPE) with trials trained in batches (one compiled program per round) against one
   Optuna trial per process (a fresh Python process, its own compile), for a handful of trials.

Usage: python benchmarks/sweep_search.py [--small] [--trials 4]
Prints ratios measured in this run; absolute times depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import gradtx  # noqa: E402
from gradtx._sweep._problems import PROBLEMS  # noqa: E402

ONE_TRIAL = """
import json, sys
sys.path.insert(0, {root!r})
import gradtx
from gradtx._sweep._problems import PROBLEMS
p = PROBLEMS[{problem!r}]()
res = gradtx.sweep(p.loss_fn, p.params, p.data, "adam", {{"learning_rate": [{lr!r}]}}, {steps},
                   batch_size={batch!r})
print(json.dumps(float(res.final_loss[0])))
"""


def _problem(small: bool):
    name = "linear-regression" if small else "digits-mlp"
    p = PROBLEMS[name]()
    batch = None if small else p.batch_size
    return name, p, batch


def halving_vs_grid(p, batch, steps: int) -> list[dict]:
    """The full grid once, then halving with a first rung of steps // 27 (one setting left for
    the last rung) and of steps // 9 (successive_halving's default: three left)."""
    grid = {"learning_rate": np.geomspace(1e-4, 1.0, 27)}
    t0 = time.perf_counter()
    full = gradtx.sweep(p.loss_fn, p.params, p.data, "adam", grid, steps, batch_size=batch)
    t_full = time.perf_counter() - t0
    best = full.best(1)[0]
    rows = []
    for min_steps in (max(1, steps // 27), max(1, steps // 9)):
        t0 = time.perf_counter()
        h = gradtx.successive_halving(
            p.loss_fn, p.params, p.data, "adam", grid, steps, eta=3, min_steps=min_steps,
            batch_size=batch,
        )  # fmt: skip
        rows.append({
            "min_steps": h.rungs[0].steps,
            "grid_steps": full.size * steps,
            "halving_steps": h.steps_used,
            "steps_ratio": h.steps_used / (full.size * steps),
            "grid_best_loss": float(full.final_loss[best]),
            "halving_best_loss": h.best_loss,
            "grid_seconds": t_full,
            "halving_seconds": time.perf_counter() - t0,
            "rungs": [(len(r.members), r.steps) for r in h.rungs],
        })  # fmt: skip
    return rows


def pbt_vs_static(p, batch, steps: int) -> dict:
    grid = {"learning_rate": np.geomspace(1e-4, 1.0, 16)}
    static = gradtx.sweep(p.loss_fn, p.params, p.data, "adam", grid, steps, batch_size=batch)
    interval = max(1, steps // 9)
    res = gradtx.pbt(
        p.loss_fn, p.params, p.data, "adam", grid, interval * (steps // interval),
        interval=interval, batch_size=batch, bounds={"learning_rate": (1e-5, 1.0)}, key=0,
    )  # fmt: skip
    b = static.best(1)[0]
    return {
        "members": 16,
        "steps_each": steps,
        "static_best_loss": float(static.final_loss[b]),
        "static_best": static.settings[b],
        "pbt_best_loss": float(res.final_loss[res.best]),
        "pbt_final_lr": res.best_hparams["learning_rate"],
    }


def optuna_batched_vs_per_process(name, p, batch, steps: int, trials: int) -> dict:
    import optuna

    import gradtx.optuna as gopt

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = {"learning_rate": gradtx.log_uniform(1e-4, 1.0)}
    # No pruner: every trial trains all its steps on both sides, so the work is the same.
    study = optuna.create_study(
        sampler=optuna.samplers.TPESampler(seed=0), pruner=optuna.pruners.NopPruner()
    )
    t0 = time.perf_counter()
    gopt.optimize(
        study, p.loss_fn, p.params, p.data, "adam", space, steps, batch=trials, rounds=1,
        batch_size=batch,
    )  # fmt: skip
    t_batched = time.perf_counter() - t0
    # One trial per process: the same learning rates, each in a fresh interpreter.
    lrs = [t.params["learning_rate"] for t in study.trials]
    t0 = time.perf_counter()
    losses = []
    with tempfile.TemporaryDirectory():
        for lr in lrs:
            code = ONE_TRIAL.format(root=ROOT, problem=name, lr=lr, steps=steps, batch=batch)
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            )
            losses.append(json.loads(out.stdout.strip().splitlines()[-1]))
    t_proc = time.perf_counter() - t0
    return {
        "trials": trials,
        "batched_seconds": t_batched,
        "per_process_seconds": t_proc,
        "speedup": t_proc / t_batched,
        "batched_best": float(study.best_value),
        "per_process_best": float(np.nanmin(losses)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="least squares instead of digits")
    ap.add_argument("--steps", type=int, default=None, help="steps (default 270, small 54)")
    ap.add_argument("--trials", type=int, default=4, help="Optuna trials (default 4)")
    ap.add_argument("--label", default=None, help="also write benchmarks/results/<label>.md")
    args = ap.parse_args()
    lines = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"machine load before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    name, p, batch = _problem(args.small)
    steps = args.steps or (54 if args.small else 270)
    say(f"problem {name}, {steps} steps, Adam")
    for h in halving_vs_grid(p, batch, steps):
        say(
            f"halving (eta 3, first rung {h['min_steps']} steps) vs grid (27 rates): "
            f"{h['halving_steps']}/{h['grid_steps']} steps ({h['steps_ratio']:.0%}); best loss "
            f"{h['halving_best_loss']:.4g} vs {h['grid_best_loss']:.4g} "
            f"({h['halving_best_loss'] / h['grid_best_loss']:.2f}x); time "
            f"{h['halving_seconds']:.1f} s vs {h['grid_seconds']:.1f} s; rungs {h['rungs']}"
        )
    q = pbt_vs_static(p, batch, steps)
    say(
        f"PBT vs best static (16 members x {steps} steps each): final loss "
        f"{q['pbt_best_loss']:.4g} vs {q['static_best_loss']:.4g} "
        f"(static best {q['static_best']}, PBT's last lr {q['pbt_final_lr']:.3g})"
    )
    try:
        import optuna  # noqa: F401
    except ImportError:
        say("optuna not installed: skipping the Optuna comparison (pip install 'gradtx[optuna]')")
    else:
        o = optuna_batched_vs_per_process(name, p, batch, steps, args.trials)
        say(
            f"Optuna (TPE, no pruner), {o['trials']} trials: one batched program "
            f"{o['batched_seconds']:.1f} s vs one process per trial "
            f"{o['per_process_seconds']:.1f} s ({o['speedup']:.1f}x); best "
            f"{o['batched_best']:.4g} vs {o['per_process_best']:.4g}"
        )
    say(f"machine load after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min)")
    if args.label:
        path = os.path.join(ROOT, "benchmarks", "results", f"{args.label}.md")
        with open(path, "w") as f:
            f.write("# Searches against the full grid (benchmarks/sweep_search.py)\n\n")
            f.write(f"Machine: {os.cpu_count()} CPUs ({jax.default_backend()}), jax "
                    f"{jax.__version__}, {time.strftime('%Y-%m-%d')}.\n\n")  # fmt: skip
            f.write(f"`python benchmarks/sweep_search.py {' '.join(sys.argv[1:])}`\n\n")
            f.write("## Summary\n\n```\n" + "\n".join(lines) + "\n```\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
