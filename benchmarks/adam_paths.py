"""Adam's donated ``jax.jit`` step, gradtx against Optax (and torch's fused Adam), in one run.

    python benchmarks/adam_paths.py --optimizer sgd_momentum   # the same for SGD with momentum 0.9

    python benchmarks/adam_paths.py                            # all three trees, prints the report
    python benchmarks/adam_paths.py --label cpu-adam-paths     # and writes results/<label>.md
    python benchmarks/adam_paths.py --quick                    # smaller trees, fewer repetitions

Two gradtx paths on each tree, both against ``optax.adam`` on the same tree in the same process:
- **default**: the user's own params tree, ``tx.update`` + ``apply_updates`` in the user's
  ``jax.jit`` with params and state donated (what a user writes without reading any docs);
- **packed**: the same step on ``gradtx.pack(params, tx)`` (params, gradients and state packed
  into a few flat buffers that persist across steps).

Every variant is measured the same way. The step is the same function for all three (the
transform closed over, ``optax.apply_updates``, params and state donated, float32 everywhere).
**Compile** is ``trace + lower + compile`` of a fresh transform and a fresh ``jax.jit``, measured
twice each round: **cold**, right after ``jax.clear_caches()`` (every trace JAX and the libraries
keep is dropped, as in a new process), and **repeat**, right after that (the caches a process
keeps between programs hold: gradtx reuses its trace of the update, Optax and jnp theirs). Each
is repeated ``--compile-reps`` times with the variants' order changed each round, after a
warm-up compile that starts XLA for everyone; the report gives the median and the range. **Step** is the wall time of one compiled call up to ``block_until_ready``, the
variants interleaved call by call, the first calls dropped as warm-up; the rounds go through
every order of the variants in turn, so each one runs right after each other one equally often
(a short call before a long one warms the machine differently from a long one);
the report gives the median and the interquartile range. Ratios are medians over medians. The
machine's load (``uptime``) before and after is written into the report, since other processes
on a small machine move the absolute numbers.

**Against torch.optim.Adam(fused=True)** (it needs torch installed; on the GPU when JAX runs on
one) both sides are timed the same way: torch's fused step, gradtx's default step and gradtx's
packed step each run in a process of their own on the same shapes, as a block of consecutive
calls (the first 3 dropped), and the three processes alternate for ``--torch-rounds`` rounds
(the order rotated each round). The ratio is the median over rounds of gradtx's per-process
median over the median of torch's. (Timed interleaved with the other variants, as in the Optax
columns, a step pays a few percent for the caches and the memory the other calls disturb.)
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gradtx  # noqa: E402

sys.path.insert(0, str(HERE))
from _trees import _transformer_shapes  # noqa: E402

LR = 1e-3

#: --optimizer: (Optax's, gradtx's, torch.optim's constructor and keyword arguments).
OPTIMIZERS = {
    "adam": (lambda: optax.adam(LR), lambda: gradtx.adam(LR), "Adam", {}),
    "sgd_momentum": (
        lambda: optax.sgd(LR, momentum=0.9),
        lambda: gradtx.sgd(LR, momentum=0.9),
        "SGD",
        {"momentum": 0.9},
    ),
}
WARMUP_CALLS = 3


def shapes(name: str, quick: bool) -> dict:
    if name == "1x16M":
        return {"w": (1024, 1024) if quick else (4096, 4096)}
    if name == "transformer":
        return _transformer_shapes(64, 15, 1024) if quick else _transformer_shapes(176, 62, 8192)
    if name == "2000x16":
        return {f"p{i:04d}": (16,) for i in range(500 if quick else 2000)}
    raise KeyError(name)


def fill(tree: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)

    def go(t):
        if isinstance(t, dict):
            return {k: go(v) for k, v in t.items()}
        return jnp.asarray(rng.standard_normal(t, dtype=np.float32))

    return go(tree)


def donated_step(tx):
    """The user's step: a fresh function (so ``jax.jit`` caches nothing across rounds)."""

    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def load() -> str:
    """The 1, 5 and 15 minute load averages and the number of CPUs."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} CPUs"


def warm_up() -> None:
    """One small compile and call per library, so that starting XLA is billed to no variant."""
    params = {"a": jnp.ones((8,)), "b": jnp.ones((4, 4))}
    for tx in (optax.adam(LR), gradtx.adam(LR)):
        state = tx.init(params)
        p = jax.tree.map(jnp.copy, params)
        jax.block_until_ready(donated_step(tx)(p, state, params))


def ordered(names: list[str], k: int) -> list[str]:
    """Round ``k``'s order: the permutations of ``names`` in turn."""
    orders = list(itertools.permutations(names))
    return list(orders[k % len(orders)])


def measure(variants: dict, reps: int, compile_reps: int) -> tuple[dict, dict]:
    """variants: name -> (make_tx, params, grads). Returns (name -> {"cold": [s], "compile": [s],
    "step": [s]}, name -> the last compiled step)."""
    names = list(variants)
    out = {n: {"cold": [], "compile": [], "step": []} for n in names}
    compiled, carry = {}, {}
    for r in range(compile_reps):
        for name in ordered(names, r):
            make_tx, params, grads = variants[name]
            for kind in ("cold", "compile"):
                tx = make_tx()
                p = jax.tree.map(jnp.copy, params)
                s = jax.block_until_ready(tx.init(p))
                if kind == "cold":
                    jax.clear_caches()
                t0 = time.perf_counter()
                compiled[name] = donated_step(tx).lower(p, s, grads).compile()
                out[name][kind].append(time.perf_counter() - t0)
            carry[name] = (p, s)
    for r in range(reps + WARMUP_CALLS):
        for name in ordered(names, r - WARMUP_CALLS):
            grads = variants[name][2]
            p, s = carry[name]
            t0 = time.perf_counter()
            p, s = compiled[name](p, s, grads)
            jax.block_until_ready((p, s))
            if r >= WARMUP_CALLS:
                out[name]["step"].append(time.perf_counter() - t0)
            carry[name] = (p, s)
    return out, compiled


_OPCODE = re.compile(r" = .*? ([a-z][a-z0-9-]*)\(")


def opcodes(compiled) -> collections.Counter:
    """How many instructions of each opcode the optimized program has (fusions' bodies included)."""
    return collections.Counter(_OPCODE.findall(compiled.as_text()))


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = np.percentile(np.asarray(xs), [25, 50, 75])
    return float(q1), float(q2), float(q3)


TORCH = textwrap.dedent(
    """
    import json, sys, time, statistics, torch
    shapes = json.loads(sys.argv[1]); reps = int(sys.argv[2]); device = sys.argv[3]
    torch.manual_seed(0)
    params = [torch.randn(s, device=device, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, device=device) * 0.01
    name, kwargs = sys.argv[4], json.loads(sys.argv[5])
    opt = getattr(torch.optim, name)(params, lr=1e-3, fused=True, **kwargs)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    times = []
    for _ in range(reps):
        sync(); t0 = time.perf_counter(); opt.step(); sync(); times.append(time.perf_counter() - t0)
    print(json.dumps({"ms": 1e3 * statistics.median(times[3:]), "torch": torch.__version__}))
    """
)


def _last_json(argv: list[str]) -> dict | None:
    """Run ``argv`` and parse the JSON object on its last line of output (None if it failed)."""
    try:
        res = subprocess.run(argv, capture_output=True, text=True, timeout=1200)
    except subprocess.TimeoutExpired:
        return None
    if res.returncode != 0:
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def torch_fused(tree: dict, reps: int, name: str, kwargs: dict) -> dict | None:
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    device = "cuda" if jax.default_backend() == "gpu" else "cpu"
    shapes_arg = json.dumps([list(s) for s in leaves])
    return _last_json(
        [sys.executable, "-c", TORCH, shapes_arg, str(reps + 3), device, name, json.dumps(kwargs)]
    )


def gradtx_alone(tree_name: str, path: str, args: argparse.Namespace, reps: int) -> dict | None:
    """gradtx's ``path`` step timed as torch's is: in a process of its own, a block of calls."""
    argv = [sys.executable, __file__, "--alone", path, "--trees", tree_name, "--reps", str(reps)]
    argv += ["--optimizer", args.optimizer] + ["--quick"] * args.quick
    return _last_json(argv)


def time_alone(tree_name: str, path: str, args: argparse.Namespace, reps: int) -> None:
    """Print (as JSON) the median time of ``reps`` consecutive calls of one step, after 3."""
    shp = shapes(tree_name, args.quick)
    params, grads = fill(shp, 0), jax.tree.map(lambda x: 0.01 * x, fill(shp, 1))
    tx = OPTIMIZERS[args.optimizer][1]()
    if path == "packed":
        params = gradtx.pack(params, tx)
        grads = gradtx.pack_like(params, grads)
    state = tx.init(params)
    step = donated_step(tx).lower(params, state, grads).compile()
    times = []
    for _ in range(reps + WARMUP_CALLS):
        t0 = time.perf_counter()
        params, state = step(params, state, grads)
        jax.block_until_ready((params, state))
        times.append(time.perf_counter() - t0)
    print(json.dumps({"ms": 1e3 * statistics.median(times[WARMUP_CALLS:])}))


def against_torch(tree_name: str, args: argparse.Namespace, reps: int) -> dict | None:
    """Median over ``--torch-rounds`` rounds of each side's per-process median step, in ms."""
    _, _, torch_name, torch_kwargs = OPTIMIZERS[args.optimizer]
    runs = {
        "torch": lambda: torch_fused(shapes(tree_name, args.quick), reps, torch_name, torch_kwargs),
        "default": lambda: gradtx_alone(tree_name, "default", args, reps),
        "packed": lambda: gradtx_alone(tree_name, "packed", args, reps),
    }
    got = {name: [] for name in runs}
    for r in range(args.torch_rounds):
        for name in ordered(list(runs), r):
            res = runs[name]()
            if res is None:
                return None
            got[name].append(res["ms"])
    return {name: statistics.median(ms) for name, ms in got.items()} | {"rounds": got}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None, help="timed calls per variant")
    ap.add_argument("--compile-reps", type=int, default=None, help="compiles per variant")
    ap.add_argument("--trees", default="1x16M,transformer,2000x16")
    ap.add_argument("--label", default=None)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    ap.add_argument("--results-dir", default=str(HERE / "results"), help="where --label writes")
    ap.add_argument(
        "--torch-rounds", type=int, default=3, help="alternating rounds of the torch comparison"
    )
    ap.add_argument("--alone", choices=("default", "packed"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    reps = args.reps or (12 if args.quick else 36)  # whole cycles of the 6 orders
    if args.alone:
        time_alone(args.trees, args.alone, args, reps)
        return
    compile_reps = args.compile_reps or (2 if args.quick else 6)
    device = jax.devices()[0]
    load_before = load()
    warm_up()
    rows, rounds = [], []
    for name in args.trees.split(","):
        shp = shapes(name, args.quick)
        params, grads = fill(shp, 0), jax.tree.map(lambda x: 0.01 * x, fill(shp, 1))
        n_leaves = len(jax.tree.leaves(params))
        n_params = sum(x.size for x in jax.tree.leaves(params))
        make_optax, make_gradtx, _, _ = OPTIMIZERS[args.optimizer]
        packed = gradtx.pack(params, make_gradtx())
        packed_grads = gradtx.pack_like(packed, grads)
        res, compiled = measure(
            {
                "optax": (make_optax, params, grads),
                "default": (make_gradtx, params, grads),
                "packed": (make_gradtx, packed, packed_grads),
            },
            reps,
            compile_reps,
        )
        same = "yes" if opcodes(compiled["default"]) == opcodes(compiled["optax"]) else "no"
        torch_res = None if args.no_torch else against_torch(name, args, reps)
        if torch_res is not None:
            rounds.append(
                f"{name}: "
                + "; ".join(
                    f"{side} " + ", ".join(f"{ms:.2f}" for ms in per_round)
                    for side, per_round in torch_res["rounds"].items()
                )
            )
        o_step = statistics.median(res["optax"]["step"])
        for path in ("optax", "default", "packed"):
            q1, step, q3 = quartiles(res[path]["step"])
            compiles = []
            for kind in ("cold", "compile"):
                comps = res[path][kind]
                comp = statistics.median(comps)
                ratio = comp / statistics.median(res["optax"][kind])
                compiles.append(f"{comp:.3f} ({min(comps):.3f}-{max(comps):.3f}) | {ratio:.3f}x")
            vs_torch = ""
            if torch_res is not None and path != "optax":
                alone, ms = torch_res[path], torch_res["torch"]
                vs_torch = f"{alone / ms:.2f}x ({alone:.2f} / {ms:.2f} ms)"
            row = (
                f"| {name} | {n_leaves} | {n_params / 1e6:.2f}M | {path} | {1e3 * step:.2f} "
                f"({1e3 * q1:.2f}-{1e3 * q3:.2f}) | {step / o_step:.2f}x | "
                + " | ".join(compiles)
                + f" | {vs_torch} | {same if path == 'default' else ''} |"
            )
            rows.append(row)
            print(row, flush=True)
    load_after = load()
    title = {"adam": "Adam", "sgd_momentum": "SGD with momentum 0.9"}[args.optimizer]
    _, _, torch_name, torch_kwargs = OPTIMIZERS[args.optimizer]
    torch_call = (
        f"torch.optim.{torch_name}({', '.join(f'{k}={v}' for k, v in torch_kwargs.items())}"
    )
    torch_call += ", " * bool(torch_kwargs) + "fused=True)"
    flags = (" --quick" if args.quick else "") + (
        f" --optimizer {args.optimizer}" if args.optimizer != "adam" else ""
    )
    lines = [
        f"# {title}, donated jax.jit step: gradtx against Optax ({device.platform}: "
        f"{getattr(device, 'device_kind', '')})",
        "",
        f"`python benchmarks/adam_paths.py{flags}`; jax "
        f"{jax.__version__}, optax {optax.__version__}, {platform.machine()}; {reps} timed calls "
        f"per variant (interleaved, after {WARMUP_CALLS} warm-up calls), {compile_reps} cold and "
        f"{compile_reps} repeat compiles per variant (every order in turn, after a warm-up "
        "compile).",
        f"XLA_FLAGS (both libraries): `{os.environ.get('XLA_FLAGS', '') or '(none)'}`.",
        f"Machine load: {load_before} before, {load_after} after.",
        "Step: median ms (interquartile range); compile: trace + lower + compile, median s "
        "(range), cold (after jax.clear_caches(), as in a new process) and repeat (a new "
        "transform and a new jax.jit in the same process). Ratios are gradtx / Optax medians "
        f"(below 1.0x: gradtx is faster). vs torch fused: gradtx's step over {torch_call}'s, "
        "each timed alone in a process of its own as a block of calls (ms: gradtx / torch), "
        f"medians over {args.torch_rounds} alternating rounds. Same program: the optimized HLO of gradtx's default step has Optax's "
        "instructions, opcode for opcode (then the two step times differ only by the "
        "machine's noise).",
        "",
        "| tree | leaves | params | path | step ms | step vs Optax | cold compile s "
        "| cold vs Optax | repeat compile s | repeat vs Optax | vs torch fused | same program |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        *(["", "Per-process medians of the torch comparison, ms:", ""] if rounds else []),
        *(f"- {line}" for line in rounds),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.label:
        out = Path(args.results_dir) / f"{args.label}.md"
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
