"""gradtx vs Optax (and torch.optim foreach where installed): step time, compile time, memory.

    python benchmarks/run.py                 # the full suite (long on a 2-core CPU)
    python benchmarks/run.py --quick         # smaller trees, fewer repetitions
    python benchmarks/run.py --optimizers adam,sgd_momentum --trees transformer,tiny
    python benchmarks/run.py --cpu-fusion off  # XLA:CPU's default flags (both libraries)

For every optimizer and tree it runs Optax and two gradtx paths in the same process, alternating
calls, and reports medians with the 10th-90th percentile spread:
- ``gradtx``: the transform on the params tree itself (the default path);
- ``packed``: the same step on ``gradtx.pack(params, tx)``, params, gradients and state kept
  packed across steps (``pack`` chooses the layout from the transform: leaves raveled into 1-D
  buffers for elementwise optimizers, equal shapes stacked for per-leaf statistics such as
  Adafactor, LAMB and NovoGrad), with gradients packed once by ``gradtx.pack_like`` (what a loss
  of ``gradtx.unpack(packed)`` differentiates to); and ``packed (tree grads)``, the same step fed
  tree-shaped gradients that it packs with ``pack_like`` inside the jit (one copy per step).
  Both run for every optimizer that ``pack`` can lay out (elementwise or stackable).
The reports of earlier versions had a ``grouped`` column (``gradtx.grouped``, the removed
multi-tensor wrapper): it has no counterpart now and is gone; their ``flat`` and ``stacked``
columns (``gradtx.flatten(params, stack=...)``) are the ``packed`` column.

What is measured, for each path:
- the jitted step (update + apply_updates) with the old params and state donated, and without;
- the eager ``update`` (no outer jit: gradtx runs its compiled update, Optax dispatches op by op);
- the compile time of the jitted donated step (lower + compile) and of its first call;
- the peak memory of the donated step from XLA's buffer assignment (arguments + outputs +
  temporaries - aliased donations);
- the roofline: the bandwidth of a jitted, donated ``x * a + b`` over 256 MB (bytes read + written),
  and each donated step's bandwidth as a fraction of it (for optimizers with a known byte count).
Results go to ``benchmarks/results/<label>.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _trees import TREES, count, make_tree  # noqa: E402

import gradtx  # noqa: E402

# XLA reads XLA_FLAGS when its CPU backend starts, so the choice is made here, before any JAX
# work: with multi-output fusion on (the default here, and what the README recommends on CPU),
# both libraries compile under the same flag.
_argv = " ".join(sys.argv[1:]).replace("--cpu-fusion=", "--cpu-fusion ")
CPU_FUSION = "--cpu-fusion off" not in _argv
if CPU_FUSION:
    gradtx.enable_cpu_multi_output_fusion()
from gradtx._step import _compiled_step, _step  # noqa: E402
from gradtx._transform import split_extra  # noqa: E402

_NO_EXTRA = split_extra({})


def _step_tree_grads(tx, grads, state, params, dynamic, static):
    """The packed step for tree-shaped gradients: pack them (one copy per step), then step."""
    return _step(tx, gradtx.pack_like(params, grads), state, params, dynamic, static)


_compiled_step_tree_grads = jax.jit(_step_tree_grads, donate_argnums=(2, 3), static_argnums=(5,))

LR = 1e-3
WD = 1e-4


@dataclasses.dataclass
class Opt:
    name: str
    gradtx: Any  # () -> transform, or None when gradtx lacks it
    optax: Any  # () -> optax transform
    floats: int | None  # floats moved per parameter by an ideal fused step
    note: str = ""
    default: bool = True  # in the default set; others only by --optimizers


def _optimizers() -> list[Opt]:
    has = lambda n: hasattr(gradtx, n)
    opts = [
        Opt("adam", lambda: gradtx.adam(LR), lambda: optax.adam(LR), 7),
        Opt(
            "adamw",
            lambda: gradtx.adamw(LR, weight_decay=WD),
            lambda: optax.adamw(LR, weight_decay=WD),
            7,
        ),
        Opt(
            "sgd_momentum",
            lambda: gradtx.sgd(LR, momentum=0.9),
            lambda: optax.sgd(LR, momentum=0.9),
            5,
        ),
        Opt(
            "lion",
            (lambda: gradtx.lion(LR)) if has("lion") else None,
            lambda: optax.lion(LR),
            5,
            note="" if has("lion") else "gradtx.lion not available in this build",
        ),
        Opt(
            "rmsprop",
            lambda: gradtx.rmsprop(LR, decay=0.99),
            lambda: optax.rmsprop(LR, decay=0.99),
            5,
        ),
        Opt(
            "adafactor",
            (lambda: gradtx.adafactor(LR)) if has("adafactor") else None,
            lambda: optax.adafactor(LR),
            None,
            note="" if has("adafactor") else "gradtx.adafactor not available in this build",
        ),
        Opt(
            "clip+adamw",
            (
                lambda: gradtx.chain(
                    gradtx.clip_by_global_norm(1.0), gradtx.adamw(LR, weight_decay=WD)
                )
            )
            if has("clip_by_global_norm")
            else None,
            lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(LR, weight_decay=WD)),
            8,
            note="" if has("clip_by_global_norm") else "gradtx.clip_by_global_norm not available",
        ),
        # Per-leaf optimizers outside the default set, by name only: LAMB (one trust ratio per
        # leaf), NovoGrad (one second moment per leaf) and Muon, Optax's formulas on both sides.
        Opt(
            "lamb",
            lambda: gradtx.lamb(LR, weight_decay=WD),
            lambda: optax.lamb(LR, weight_decay=WD),
            None,
            default=False,
        ),
        Opt(
            "novograd",
            lambda: gradtx.novograd(LR),
            lambda: optax.novograd(LR),
            None,
            default=False,
        ),
        # Muon with Optax's contrib signature (Newton-Schulz on matrices, AdamW elsewhere).
        Opt(
            "muon",
            lambda: gradtx.contrib.muon(LR),
            lambda: optax.contrib.muon(LR),
            None,
            default=False,
        ),
    ]
    return opts


# ---------------------------------------------------------------------------------------------
# timing helpers


def _block(x):
    jax.block_until_ready(x)
    return x


def _stats(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1e3
    return {
        "median_ms": float(np.median(a)),
        "p10_ms": float(np.percentile(a, 10)),
        "p90_ms": float(np.percentile(a, 90)),
        "n": len(ts),
    }


def _alternate(runners: dict[str, Any], reps: int, warmup: int = 1) -> dict[str, dict]:
    for _ in range(warmup):
        for f in runners.values():
            f()
    times: dict[str, list[float]] = {n: [] for n in runners}
    for _ in range(reps):
        for n, f in runners.items():
            t0 = time.perf_counter()
            f()
            times[n].append(time.perf_counter() - t0)
    return {n: _stats(t) for n, t in times.items()}


def _peak_bytes(compiled) -> int | None:
    try:
        m = compiled.memory_analysis()
        return int(
            m.argument_size_in_bytes
            + m.output_size_in_bytes
            - m.alias_size_in_bytes
            + m.temp_size_in_bytes
        )
    except Exception:
        return None


def roofline(reps: int) -> dict[str, float]:
    """GB/s of a jitted ``x * a + b`` over 256 MB float32, counting bytes read + written."""
    n = 64 * 1024 * 1024
    nbytes = 2 * 4 * n
    f_don = jax.jit(lambda x, a, b: x * a + b, donate_argnums=0)
    f_new = jax.jit(lambda x, a, b: x * a + b)
    a, b = jnp.float32(0.999), jnp.float32(1e-3)
    state = {"x": _block(jnp.ones((n,), jnp.float32)), "y": _block(jnp.ones((n,), jnp.float32))}

    def don():
        state["x"] = _block(f_don(state["x"], a, b))

    def new():
        _block(f_new(state["y"], a, b))

    res = _alternate({"donated": don, "fresh": new}, reps, warmup=2)
    return {
        "donated_gbps": nbytes / (res["donated"]["median_ms"] * 1e-3) / 1e9,
        "fresh_gbps": nbytes / (res["fresh"]["median_ms"] * 1e-3) / 1e9,
        "donated_ms": res["donated"]["median_ms"],
        "fresh_ms": res["fresh"]["median_ms"],
    }


# ---------------------------------------------------------------------------------------------
# implementations


class Impl:
    """One optimizer implementation bound to one tree: compiled steps plus its own buffers.

    ``layout`` is ``"tree"`` (params and grads as the tree), ``"packed"``
    (``gradtx.pack(params, tx)``, grads packed once with ``pack_like``: a model differentiated
    through ``gradtx.unpack``) or ``"packed_tree_grads"`` (packed params, tree grads packed
    inside every step).
    """

    def __init__(self, kind: str, tx: Any, params_np: Any, grads: Any, layout: str = "tree"):
        self.kind = kind
        self.tx = tx
        self.tree_grads = grads
        self.grads = grads
        self.params_np = params_np
        self.layout = layout
        self.p = None
        self.s = None

    def fresh(self):
        self.p = _block(jax.tree.map(jnp.asarray, self.params_np))
        if self.layout != "tree":
            self.p = _block(gradtx.pack(self.p, self.tx))
            if self.layout == "packed":
                self.grads = _block(gradtx.pack_like(self.p, self.tree_grads))
        self.s = _block(self.tx.init(self.p))

    def lower(self, donate: bool):
        g, s, p = self.grads, self.s, self.p
        if self.kind == "optax":
            opt = self.tx

            def ostep(g, s, p):
                # Outputs in the donated inputs' order, so each buffer aliases its own output.
                u, new_s = opt.update(g, s, p)
                return new_s, optax.apply_updates(p, u)

            fn = jax.jit(ostep, donate_argnums=(1, 2) if donate else ())
            t0 = time.perf_counter()
            compiled = fn.lower(g, s, p).compile()
            ct = time.perf_counter() - t0
            return (lambda g, s, p: compiled(g, s, p)[::-1]), compiled, ct
        if self.layout == "packed_tree_grads":
            fn = (
                _compiled_step_tree_grads
                if donate
                else jax.jit(_step_tree_grads, static_argnums=(5,))
            )
        else:
            fn = _compiled_step if donate else jax.jit(_step, static_argnums=(5,))
        # What gradtx.step passes (the hyperparameters are device scalars made at construction).
        tx = self.tx
        t0 = time.perf_counter()
        compiled = fn.lower(tx, g, s, p, *_NO_EXTRA).compile()
        ct = time.perf_counter() - t0
        return (lambda g, s, p: compiled(tx, g, s, p, _NO_EXTRA[0])[::-1]), compiled, ct

    def runner(self, call, donate: bool):
        if donate:

            def run():
                self.p, self.s = _block(call(self.grads, self.s, self.p))

        else:

            def run():
                _block(call(self.grads, self.s, self.p))

        return run

    def eager(self):
        tx = self.tx
        if self.layout == "packed_tree_grads":

            def run():
                _block(tx.update(gradtx.pack_like(self.p, self.grads), self.s, self.p))

        else:

            def run():
                _block(tx.update(self.grads, self.s, self.p))

        return run

    def release(self):
        self.p = self.s = None
        self.grads = self.tree_grads


def bench_one(opt: Opt, tree: str, args) -> dict[str, Any]:
    leaves, nparams = count(tree, args.quick)
    params_np = make_tree(tree, args.quick, seed=0)
    grads = _block(jax.tree.map(jnp.asarray, make_tree(tree, args.quick, seed=1, scale=1e-3)))
    impls: dict[str, Impl] = {}
    if opt.gradtx is not None:
        tx = opt.gradtx()
        # What gradtx.pack reads: anything else would keep every leaf as it is.
        packable = tx.is_elementwise() or tx.is_stackable()
        if not args.no_tree or not packable or args.no_packed:
            impls["gradtx"] = Impl("gradtx", tx, params_np, grads)
        if packable and not args.no_packed:
            impls["packed"] = Impl("gradtx", opt.gradtx(), params_np, grads, layout="packed")
            impls["packed_tree_grads"] = Impl(
                "gradtx", opt.gradtx(), params_np, grads, layout="packed_tree_grads"
            )
    impls["optax"] = Impl("optax", opt.optax(), params_np, grads)
    row: dict[str, Any] = {
        "optimizer": opt.name,
        "tree": tree,
        "leaves": leaves,
        "params": nparams,
        "impls": {k: {} for k in impls},
    }
    # 1. donated jit step, with compile time
    runners = {}
    for name, im in impls.items():
        im.fresh()
        call, compiled, ct = im.lower(donate=True)
        t0 = time.perf_counter()
        im.p, im.s = _block(call(im.grads, im.s, im.p))
        first = time.perf_counter() - t0
        r = row["impls"][name]
        r["compile_s"] = ct
        r["first_call_s"] = ct + first
        r["buffers"] = len(jax.tree.leaves(im.p))
        if isinstance(im.p, gradtx.Packed):
            r["layout"] = sorted({kind for kind, _, _ in im.p.layout.entries})
        r["peak_mb"] = (_peak_bytes(compiled) or 0) / 2**20
        runners[name] = im.runner(call, donate=True)
    for name, st in _alternate(runners, args.reps).items():
        row["impls"][name]["jit_donated"] = st
        if opt.floats:
            gbps = opt.floats * 4 * nparams / (st["median_ms"] * 1e-3) / 1e9
            row["impls"][name]["gbps"] = gbps
    # 2. jit step without donation
    if not args.no_plain:
        runners = {}
        for name, im in impls.items():
            call, compiled, ct = im.lower(donate=False)
            row["impls"][name]["peak_mb_no_donation"] = (_peak_bytes(compiled) or 0) / 2**20
            runners[name] = im.runner(call, donate=False)
        for name, st in _alternate(runners, args.reps).items():
            row["impls"][name]["jit_plain"] = st
    # 3. eager update (no outer jit)
    if not args.no_eager:
        runners = {name: im.eager() for name, im in impls.items()}
        for name, st in _alternate(runners, max(3, args.reps // 3)).items():
            row["impls"][name]["eager"] = st
    for im in impls.values():
        im.release()
    return row


# ---------------------------------------------------------------------------------------------
# torch


def torch_python(args) -> str | None:
    if args.no_torch:
        return None
    try:
        import torch  # noqa: F401

        return sys.executable
    except ImportError:
        pass
    for cand in (os.environ.get("GRADTX_TORCH_PYTHON"), "/work/torchvenv/bin/python"):
        if cand and Path(cand).exists():
            return cand
    return None


def run_torch(py: str, opts: list[str], trees: list[str], args) -> dict[str, Any]:
    cmd = [py, str(HERE / "torch_bench.py"), "--opts", ",".join(opts), "--trees", ",".join(trees)]
    cmd += ["--reps", str(args.reps)] + (["--quick"] if args.quick else [])
    if jax.devices()[0].platform == "gpu":
        cmd += ["--device", "cuda"]  # compare on the same accelerator
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600)
        return json.loads(out.stdout.strip().splitlines()[-1])
    except Exception as err:  # torch is optional: report and go on
        print(f"torch benchmark skipped: {err}", file=sys.stderr)
        return {}


# ---------------------------------------------------------------------------------------------
# report


def _fmt_ms(st: dict | None) -> str:
    if not st:
        return "-"
    return f"{st['median_ms']:.2f} ({st['p10_ms']:.2f}-{st['p90_ms']:.2f})"


def _ratio(a: dict | None, b: dict | None, key: str = "median_ms") -> str:
    if not a or not b:
        return "-"
    return f"{a[key] / b[key]:.2f}x"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = jax.devices()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "jax_device": f"{dev.platform}: {getattr(dev, 'device_kind', '')}",
        "jax": jax.__version__,
        "optax": optax.__version__,
        "gradtx": gradtx.__version__,
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "cpu_multi_output_fusion": gradtx.cpu_multi_output_fusion(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _load(avg: Any) -> str:
    return "/".join(f"{x:.2f}" for x in avg)


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    roof = result["roofline"]
    lines = [
        f"# gradtx benchmark ({'quick' if result['quick'] else 'full'})",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['jax_device']}; jax {m['jax']}, "
        f"optax {m['optax']}, gradtx {m['gradtx']}; {m['date']}."
        + (
            f" Load average (1/5/15 min) before {_load(m['load_before'])}, after "
            f"{_load(m['load_after'])}."
            if "load_before" in m and "load_after" in m
            else ""
        ),
        f"Command: `{result['command']}`",
        "",
        "XLA:CPU multi-output fusion (`gradtx.enable_cpu_multi_output_fusion`, the same flag for "
        f"both libraries): **{'on' if m.get('cpu_multi_output_fusion') else 'off'}**; "
        f"XLA_FLAGS=`{m.get('xla_flags', '')}`.",
        "",
        f"Roofline (jitted `x * a + b` over 256 MB, donated): **{roof['donated_gbps']:.1f} GB/s** "
        f"(without donation {roof['fresh_gbps']:.1f} GB/s)"
        + (
            " — the higher of two readings, at the start and at the end of the run: "
            + " and ".join(f"{x:.1f}" for x in roof["readings_gbps"])
            + " GB/s."
            if "readings_gbps" in roof
            else "."
        ),
        "",
        "Times are medians in ms (10th-90th percentile). The first two tables are gradtx on the "
        "params tree (`gradtx`, the default path) and Optax on the same tree; the packed path "
        "(`gradtx.pack`) has its own table, and the summary takes the faster of the two.",
        "",
        "## Jitted step (update + apply), old params and state donated",
        "",
        "| optimizer | tree | leaves | params | gradtx | optax | torch foreach | "
        "gradtx/optax | GB/s (roofline %) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        im = row["impls"]
        g, o = im.get("gradtx", {}), im.get("optax", {})
        t = row.get("torch")
        bw = "-"
        if g.get("gbps"):
            bw = f"{g['gbps']:.1f} ({100 * g['gbps'] / roof['donated_gbps']:.0f}%)"
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | {row['leaves']} | {row['params'] / 1e6:.2f}M | "
            f"{_fmt_ms(g.get('jit_donated'))} | {_fmt_ms(o.get('jit_donated'))} | {_fmt_ms(t)} | "
            f"{_ratio(g.get('jit_donated'), o.get('jit_donated'))} | {bw} |"
        )
    lines += [
        "",
        "## Compile time, jit without donation, eager update, peak memory",
        "",
        "Compile: lower + compile of the donated step, in seconds (first call in brackets). "
        "Eager: `tx.update` without an outer jit. Peak: XLA's buffer assignment for the "
        "donated step, MiB.",
        "",
        "| optimizer | tree | compile gradtx | compile optax | no-donation gradtx/optax | "
        "eager gradtx | eager optax | eager optax/gradtx | peak MiB gradtx / optax |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        im = row["impls"]
        g, o = im.get("gradtx", {}), im.get("optax", {})

        def ct(r):
            if "compile_s" not in r:
                return "-"
            return f"{r['compile_s']:.2f} ({r['first_call_s']:.2f})"

        def pk(r):
            return f"{r['peak_mb']:.0f}" if "peak_mb" in r else "-"

        lines.append(
            f"| {row['optimizer']} | {row['tree']} | {ct(g)} | {ct(o)} | "
            f"{_ratio(g.get('jit_plain'), o.get('jit_plain'))} | "
            f"{_fmt_ms(g.get('eager'))} | {_fmt_ms(o.get('eager'))} | "
            f"{_ratio(o.get('eager'), g.get('eager'))} | {pk(g)} / {pk(o)} |"
        )
    packed_rows = [r for r in result["rows"] if "packed" in r["impls"]]
    if packed_rows:
        lines += _section(
            "Packed params (`gradtx.pack`): params, grads and state packed across steps",
            "`packed`: the donated step on `gradtx.pack(params, tx)` with packed gradients (what "
            "a loss of `gradtx.unpack(packed)` differentiates to); `pack` ravels the leaves into "
            "1-D buffers for elementwise optimizers and stacks equal shapes for per-leaf "
            "statistics (layout: the kinds of buffer it made). `packed (tree grads)`: the same "
            "step fed tree-shaped gradients, packed by `gradtx.pack_like` inside the jit (one "
            "copy of the gradients per step). Ratios are over Optax's donated tree step in the "
            "same run; compile is lower + compile of the donated step, seconds.",
            "optimizer | tree | leaves | buffers (layout) | packed | packed/optax | "
            "packed (tree grads) | packed-tg/optax | compile packed / packed-tg / optax | "
            "compile packed/optax | eager packed / packed-tg / optax | "
            "peak MiB packed / packed-tg / optax | GB/s packed",
        )
        for row in packed_rows:
            im = row["impls"]
            f, ft, o = im["packed"], im.get("packed_tree_grads", {}), im.get("optax", {})

            def c(r):
                return f"{r['compile_s']:.2f}" if "compile_s" in r else "-"

            def e(r):
                return f"{r['eager']['median_ms']:.2f}" if r.get("eager") else "-"

            def pk(r):
                return f"{r['peak_mb']:.0f}" if "peak_mb" in r else "-"

            cratio = (
                f"{f['compile_s'] / o['compile_s']:.3f}x"
                if "compile_s" in f and o.get("compile_s")
                else "-"
            )
            bw = "-"
            if f.get("gbps"):
                bw = f"{f['gbps']:.1f} ({100 * f['gbps'] / roof['donated_gbps']:.0f}%)"
            lines.append(
                f"| {row['optimizer']} | {row['tree']} | {row['leaves']} | "
                f"{f.get('buffers', '-')} ({'+'.join(f.get('layout', [])) or '-'}) | "
                f"{_fmt_ms(f.get('jit_donated'))} | "
                f"{_ratio(f.get('jit_donated'), o.get('jit_donated'))} | "
                f"{_fmt_ms(ft.get('jit_donated'))} | "
                f"{_ratio(ft.get('jit_donated'), o.get('jit_donated'))} | "
                f"{c(f)} / {c(ft)} / {c(o)} | {cratio} | {e(f)} / {e(ft)} / {e(o)} ms | "
                f"{pk(f)} / {pk(ft)} / {pk(o)} | {bw} |"
            )
    lines += summary(result)
    if result["skipped"]:
        lines += ["", "Skipped: " + "; ".join(result["skipped"]) + "."]
    if result.get("torch_note"):
        lines += ["", result["torch_note"]]
    return "\n".join(lines) + "\n"


def _section(title: str, intro: str, columns: str) -> list[str]:
    """A report section's heading, introduction and table header (``columns``: "a | b | c")."""
    n = columns.count("|") + 1
    return ["", f"## {title}", "", intro, "", f"| {columns} |", "|" + "---|" * n]


_PATHS = ("gradtx", "packed")


def summary(result: dict[str, Any]) -> list[str]:
    """One row per optimizer and tree: gradtx's fastest path (tree or packed) vs Optax."""
    roof = result["roofline"]["donated_gbps"]
    lines = [
        "",
        "## Summary: gradtx's fastest path vs Optax",
        "",
        "`best` is the faster of gradtx's tree (`gradtx`) and `packed` donated steps; "
        "every ratio is "
        "gradtx over Optax in this run (below 1 is faster), except eager, which is Optax's eager "
        "`update` over gradtx's fastest eager `update` (above 1 is faster). Compile: the fastest "
        "gradtx path's lower + compile over Optax's.",
        "",
        "| optimizer | tree | leaves | best | step best / optax (ms) | step ratio | "
        "no-donation ratio | compile ratio | eager speed-up | GB/s best (roofline %) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["rows"]:
        im, o = row["impls"], row["impls"].get("optax", {})
        mine = {k: im[k] for k in _PATHS if im.get(k, {}).get("jit_donated")}
        if not mine or not o.get("jit_donated"):
            continue
        best = min(mine, key=lambda k: mine[k]["jit_donated"]["median_ms"])
        b, ob = mine[best]["jit_donated"]["median_ms"], o["jit_donated"]["median_ms"]

        def fastest(key, field):
            vals = [v[key][field] if field else v[key] for v in mine.values() if v.get(key)]
            return min(vals) if vals else None

        plain = fastest("jit_plain", "median_ms")
        comp = fastest("compile_s", None)
        eager = fastest("eager", "median_ms")
        cells = [
            f"{plain / o['jit_plain']['median_ms']:.2f}x" if plain and o.get("jit_plain") else "-",
            f"{comp / o['compile_s']:.3f}x" if comp and o.get("compile_s") else "-",
            f"{o['eager']['median_ms'] / eager:.1f}x" if eager and o.get("eager") else "-",
        ]
        g = mine[best].get("gbps")
        bw = f"{g:.1f} ({100 * g / roof:.0f}%)" if g else "-"
        lines.append(
            f"| {row['optimizer']} | {row['tree']} | {row['leaves']} | {best} | "
            f"{b:.2f} / {ob:.2f} | **{b / ob:.2f}x** | {' | '.join(cells)} | {bw} |"
        )
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller trees, fewer repetitions")
    ap.add_argument("--optimizers", default="", help="comma-separated subset of the optimizers")
    ap.add_argument("--trees", default="", help=f"comma-separated subset of {','.join(TREES)}")
    ap.add_argument("--reps", type=int, default=0, help="timed repetitions (default 15, quick 7)")
    ap.add_argument(
        "--no-packed",
        action="store_true",
        help="skip the gradtx.pack columns (packed and packed (tree grads))",
    )
    ap.add_argument(
        "--no-tree",
        action="store_true",
        help="skip gradtx's tree path where the packed path runs (it still runs for optimizers "
        "that gradtx.pack cannot lay out, and with --no-packed)",
    )
    ap.add_argument("--no-plain", action="store_true", help="skip the jit step without donation")
    ap.add_argument("--no-eager", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--label", default="", help="results file name (default cpu[-quick])")
    ap.add_argument(
        "--results-dir",
        default=str(HERE / "results"),
        help="where the .md and .json go (the .json is rewritten after every row)",
    )
    ap.add_argument(
        "--cpu-fusion",
        choices=("on", "off"),
        default="on",
        help="XLA:CPU multi-output fusion for both libraries (gradtx.enable_cpu_multi_output_fusion)",
    )
    ap.add_argument(
        "--render",
        action="store_true",
        help="only rewrite benchmarks/results/<label>.md from its .json (no measurement)",
    )
    args = ap.parse_args(argv)
    if args.render:
        path = Path(args.results_dir) / f"{args.label}.json"
        result = json.loads(path.read_text())
        removed = sorted(
            {k for row in result["rows"] for k in row["impls"]}
            & {"grouped", "flat", "flat_tree_grads", "stacked"}
        )
        if removed:
            ap.error(
                f"--render: {path} holds columns {removed} of an earlier run.py (gradtx.grouped "
                f"and gradtx.flatten, since removed), which this version does not draw; the .md "
                f"beside it is that run's report as printed"
            )
        md = markdown(result)
        path.with_suffix(".md").write_text(md)
        print(md)
        return 0
    args.reps = args.reps or (7 if args.quick else 15)
    opts = _optimizers()
    if args.optimizers:
        want = args.optimizers.split(",")
        unknown = set(want) - {o.name for o in opts}
        if unknown:
            ap.error(f"unknown optimizers {sorted(unknown)}; choose from {[o.name for o in opts]}")
        opts = [o for o in opts if o.name in want]
    else:
        opts = [o for o in opts if o.default]
    trees = args.trees.split(",") if args.trees else list(TREES)
    platform_name = jax.devices()[0].platform
    label = args.label or (platform_name + ("-quick" if args.quick else ""))
    result: dict[str, Any] = {
        "quick": args.quick,
        "command": "python benchmarks/run.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "rows": [],
        "skipped": [],
    }
    try:
        result["machine"]["load_before"] = os.getloadavg()
    except OSError:
        pass
    # torch.optim first (no compilation, so it is quick), so an interrupted run keeps it.
    tr: dict[str, Any] = {}
    py = torch_python(args)
    if py:
        names = [o.name for o in opts if o.gradtx is not None]
        tr = run_torch(py, names, trees, args)
        if tr:
            result["torch_note"] = (
                f"torch.optim ({tr.get('_version', '?')}, foreach=True, "
                f"{tr.get('_threads', '?')} threads, device {tr.get('_device', 'cpu')}) ran in a "
                "separate process on the same trees; its step is in place, like a donated jit "
                "step."
            )
    else:
        result["torch_note"] = "torch not installed: torch.optim columns are empty."
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    print(f"roofline ({platform_name}) ...", flush=True)
    result["roofline"] = roofline(max(5, args.reps))
    print(json.dumps(result["roofline"]), flush=True)
    for opt in opts:
        if opt.gradtx is None:
            result["skipped"].append(f"{opt.name}: {opt.note}")
            print(f"skip {opt.name}: {opt.note}", flush=True)
            continue
        for tree in trees:
            t0 = time.perf_counter()
            row = bench_one(opt, tree, args)
            row["torch"] = tr.get(f"{row['optimizer']}/{row['tree']}")
            result["rows"].append(row)
            (out / f"{label}.json").write_text(json.dumps(result, indent=1))
            im = row["impls"]
            summary = " ".join(
                f"{k}={v['jit_donated']['median_ms']:.2f}ms/c{v['compile_s']:.2f}s"
                for k, v in im.items()
            )
            print(
                f"{opt.name:13s} {tree:12s} {summary}  [{time.perf_counter() - t0:.0f}s]",
                flush=True,
            )
    # The machine's bandwidth drifts (a shared host): measure the roofline again at the end and
    # judge every step against the higher of the two readings.
    end = roofline(max(5, args.reps))
    print(json.dumps(end), flush=True)
    start = result["roofline"]
    result["roofline"] = {**(start if start["donated_gbps"] >= end["donated_gbps"] else end)}
    result["roofline"]["readings_gbps"] = [start["donated_gbps"], end["donated_gbps"]]
    try:
        result["machine"]["load_after"] = os.getloadavg()
    except OSError:
        pass
    (out / f"{label}.json").write_text(json.dumps(result, indent=1))
    md = markdown(result)
    (out / f"{label}.md").write_text(md)
    print(md)
    print(f"wrote {out / label}.md and .json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
