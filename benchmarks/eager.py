"""An eager loop of ``tx.update`` calls (no outer jit) on a 1000-leaf tree: gradtx vs Optax.

    python benchmarks/eager.py            # transformer-like tree, 995 leaves, 24.6M params
    python benchmarks/eager.py --quick    # 243 leaves, 0.8M params

gradtx's ``update`` is a compiled program whatever the caller does, so an eager loop runs one
dispatch per step; Optax's ``update`` outside jit dispatches every jnp operation of every leaf.
Prints the median time per ``update`` and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _trees import count, make_tree  # noqa: E402

import gradtx  # noqa: E402


def loop(tx, params, grads, steps: int) -> list[float]:
    state = tx.init(params)
    updates, state = tx.update(grads, state, params)  # warm-up (gradtx compiles here)
    jax.block_until_ready(updates)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        updates, state = tx.update(grads, state, params)
        jax.block_until_ready((updates, state))
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tree", default="transformer")
    ap.add_argument("--steps", type=int, default=0)
    args = ap.parse_args(argv)
    steps = args.steps or (10 if args.quick else 8)
    leaves, nparams = count(args.tree, args.quick)
    params = jax.tree.map(jnp.asarray, make_tree(args.tree, args.quick, seed=0))
    grads = jax.tree.map(jnp.asarray, make_tree(args.tree, args.quick, seed=1, scale=1e-3))
    print(f"tree {args.tree}: {leaves} leaves, {nparams / 1e6:.2f}M params; {steps} eager updates")
    res = {}
    # Alternate rounds so that load on a shared machine hits every contender alike.
    contenders = {
        "gradtx.adam": gradtx.adam(1e-3),
        "gradtx.grouped(adam)": gradtx.grouped(gradtx.adam(1e-3)),
        "optax.adam": optax.adam(1e-3),
    }
    rounds = 2
    for _ in range(rounds):
        for name, tx in contenders.items():
            res.setdefault(name, []).extend(loop(tx, params, grads, steps // rounds or 1))
    med = {k: float(np.median(v)) * 1e3 for k, v in res.items()}
    for k, v in med.items():
        print(f"  {k:22s} {v:9.2f} ms per update")
    base = med["optax.adam"]
    print(
        f"eager speed-up over Optax: gradtx.adam {base / med['gradtx.adam']:.1f}x, "
        f"gradtx.grouped(adam) {base / med['gradtx.grouped(adam)']:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
