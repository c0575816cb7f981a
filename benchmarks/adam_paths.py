"""Adam's donated ``jax.jit`` step, gradtx against Optax (and torch's fused Adam), in one run.

    python benchmarks/adam_paths.py                  # all three trees, writes the report
    python benchmarks/adam_paths.py --quick          # smaller trees, fewer repetitions
    python benchmarks/adam_paths.py --label gpu-h200 # the report's file name

Two gradtx paths on each tree, both against ``optax.adam`` on the same tree in the same process:
- **default**: the user's own params tree, ``tx.update`` + ``apply_updates`` in the user's
  ``jax.jit`` with params and state donated (what a user writes without reading any docs);
- **packed**: the same step on ``gradtx.flatten(params)`` (params, gradients and state packed
  into a few flat buffers that persist across steps).
Step times are medians over interleaved calls (gradtx, Optax, gradtx, ...); compile time is
``lower + compile`` of the donated step. torch.optim.Adam(fused=True) runs in its own process
(it needs torch installed) on the same shapes and is reported beside the packed path. The
report goes to ``benchmarks/results/<label>.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
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
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return jax.jit(step, donate_argnums=(0, 1))


def measure(variants: dict, reps: int) -> dict:
    """variants: name -> (tx, params, grads). Returns name -> (compile s, step ms)."""
    compiled, carry, out = {}, {}, {}
    for name, (tx, params, grads) in variants.items():
        p = jax.tree.map(jnp.copy, params)
        s = tx.init(p)
        t0 = time.perf_counter()
        compiled[name] = donated_step(tx).lower(p, s, grads).compile()
        out[name] = [time.perf_counter() - t0, []]
        carry[name] = (p, s)
    for _ in range(reps):
        for name, (_, _, grads) in variants.items():
            p, s = carry[name]
            t0 = time.perf_counter()
            p, s = compiled[name](p, s, grads)
            jax.block_until_ready((p, s))
            out[name][1].append(time.perf_counter() - t0)
            carry[name] = (p, s)
    return {k: (c, 1e3 * statistics.median(t[min(2, reps - 1) :])) for k, (c, t) in out.items()}


TORCH = textwrap.dedent(
    """
    import json, sys, time, statistics, torch
    shapes = json.loads(sys.argv[1]); reps = int(sys.argv[2])
    torch.manual_seed(0)
    params = [torch.randn(s, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.randn(s := p.shape) * 0.01
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); opt.step(); times.append(time.perf_counter() - t0)
    print(json.dumps({"ms": 1e3 * statistics.median(times[2:]), "torch": torch.__version__}))
    """
)


def torch_fused(tree: dict, reps: int) -> dict | None:
    leaves = jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, tuple))
    try:
        res = subprocess.run(
            [sys.executable, "-c", TORCH, json.dumps([list(s) for s in leaves]), str(reps)],
            capture_output=True,
            text=True,
            timeout=1200,
        )
    except subprocess.TimeoutExpired:
        return None
    if res.returncode != 0:
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--trees", default="1x16M,transformer,2000x16")
    ap.add_argument("--label", default=None)
    ap.add_argument("--no-torch", action="store_true")
    args = ap.parse_args()
    reps = args.reps or (8 if args.quick else 20)
    device = jax.devices()[0]
    lines = [
        f"# Adam, donated jax.jit step: gradtx against Optax ({device.platform}: "
        f"{getattr(device, 'device_kind', '')})",
        "",
        f"`python benchmarks/adam_paths.py{' --quick' if args.quick else ''}`; jax {jax.__version__}, "
        f"optax {optax.__version__}, {platform.machine()}, {reps} interleaved calls per variant.",
        "Ratios are gradtx / Optax (below 1.0x: gradtx is faster); torch is "
        "torch.optim.Adam(fused=True) in its own process.",
        "",
        "| tree | leaves | params | path | step ms | step vs Optax | compile s | compile vs Optax "
        "| vs torch fused |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in args.trees.split(","):
        shp = shapes(name, args.quick)
        params, grads = fill(shp, 0), jax.tree.map(lambda x: 0.01 * x, fill(shp, 1))
        n_leaves = len(jax.tree.leaves(params))
        n_params = sum(x.size for x in jax.tree.leaves(params))
        flat = gradtx.flatten(params)
        flat_grads = gradtx.flatten_like(flat, grads)
        res = measure(
            {
                "optax": (optax.adam(LR), params, grads),
                "default": (gradtx.adam(LR), params, grads),
                "packed": (gradtx.adam(LR), flat, flat_grads),
            },
            reps,
        )
        torch_res = None if args.no_torch else torch_fused(shp, reps)
        oc, os_ = res["optax"]
        for path in ("optax", "default", "packed"):
            c, s = res[path]
            vs_torch = ""
            if torch_res is not None and path != "optax":
                vs_torch = f"{s / torch_res['ms']:.2f}x ({torch_res['ms']:.2f} ms)"
            row = (
                f"| {name} | {n_leaves} | {n_params / 1e6:.2f}M | {path} | {s:.2f} | "
                f"{s / os_:.2f}x | {c:.3f} | {c / oc:.3f}x | {vs_torch} |"
            )
            lines.append(row)
            print(row, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.label:
        out = HERE / "results" / f"{args.label}.md"
        out.write_text(text)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
