"""An eager loop of ``tx.update`` calls (no outer jit) on a 1000-leaf tree: gradtx vs Optax,
and the floor that any non-donating ``update`` meets on this machine.

    python benchmarks/eager.py                             # Adam, 995 leaves, 24.6M params
    python benchmarks/eager.py --optimizer sgd_momentum    # SGD, momentum 0.9
    python benchmarks/eager.py --quick                     # 243 leaves, 0.8M params

gradtx's ``update`` is a compiled program whatever the caller does, so an eager loop runs one
dispatch per step; Optax's ``update`` outside jit dispatches every jnp operation of every leaf.

``gradtx update (packed)`` runs the same update on ``gradtx.pack(params, tx)``: both optimizers
here are elementwise, so ``pack`` ravels the leaves into 1-D buffers of up to 8 MiB (12 for the
transformer-like tree); the report's first line gives the number. (Earlier reports call this row
``gradtx update (flat)``, from ``gradtx.flatten(params)``, the layout ``pack`` replaced.)

The floor rows run bare jitted kernels on those same packed buffers, with no gradtx code in
them:

- ``floor: the update's arithmetic``: exactly the optimizer's elementwise work, outputs
  ``(updates, state)`` in fresh buffers, as ``tx.update``'s contract requires (the caller's
  gradients and state stay valid, so nothing is donated). No implementation of ``update`` can
  be faster than this.
- ``floor: one fresh output``: one output array fewer than SGD momentum needs (as if the update
  and the momentum were one array). A bound for any change of the state's representation.
- ``donated``: the arithmetic with the state and gradients donated, so the outputs reuse their
  buffers (what ``gradtx.step`` does). Not a legal ``update``; it shows what the fresh buffers
  cost.

Fresh outputs cost more than their bytes: each written cache line is read first (the store
misses), and the allocator hands back memory the kernel has to page in. The minor page faults
per call are printed next to every row.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import gradtx  # noqa: E402

# The same XLA:CPU flag as benchmarks/run.py, for both libraries (before any JAX work).
if "--cpu-fusion off" not in " ".join(sys.argv[1:]).replace("--cpu-fusion=", "--cpu-fusion "):
    gradtx.enable_cpu_multi_output_fusion()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from _trees import count, make_tree  # noqa: E402
from run import machine  # noqa: E402

LR, MOMENTUM = 1e-2, 0.9

OPTIMIZERS = {
    "adam": (lambda: gradtx.adam(1e-3), lambda: optax.adam(1e-3)),
    "sgd_momentum": (lambda: gradtx.sgd(LR, momentum=MOMENTUM), lambda: optax.sgd(LR, MOMENTUM)),
}


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed(run, steps: int) -> tuple[list[float], float]:
    """Runs ``run`` once to warm up, then ``steps`` times; (seconds per call, faults per call)."""
    run()
    times = []
    f0 = _faults()
    for _ in range(steps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return times, (_faults() - f0) / steps


def eager_runner(tx, params, grads):
    state = tx.init(params)

    def run():
        jax.block_until_ready(tx.update(grads, state, params))

    return run


def floor_runners(name: str, packed_grads, packed_state) -> dict:
    """Bare jitted kernels over the packed buffers (see the module docstring)."""
    g = list(packed_grads.buffers)
    if name == "sgd_momentum":
        m = list(packed_state[0].trace.buffers)  # gradtx's momentum buffers, as they are

        def arith(g, m):
            m2 = [MOMENTUM * a + b for a, b in zip(m, g)]
            return [-LR * a for a in m2], m2

        def one(g, m):
            return [MOMENTUM * a + b for a, b in zip(m, g)]

        state = [m]
    else:  # adam: m, v; the count's bias corrections as two scalars
        m = [jnp.zeros_like(b) for b in g]
        v = [jnp.zeros_like(b) for b in g]

        def arith(g, m, v):
            m2 = [0.9 * a + 0.1 * b for a, b in zip(m, g)]
            v2 = [0.999 * a + 0.001 * b * b for a, b in zip(v, g)]
            u = [-1e-3 * (a / 0.1) / (jnp.sqrt(c / 0.001) + 1e-8) for a, c in zip(m2, v2)]
            return u, m2, v2

        one = None
        state = [m, v]
    if len(g) != len(state[0]):
        raise SystemExit(f"eager.py: {len(g)} gradient buffers but {len(state[0])} state buffers")
    out = {}
    fresh = jax.jit(arith)
    out["floor: the update's arithmetic"] = lambda: jax.block_until_ready(fresh(g, *state))
    if one is not None:
        f1 = jax.jit(one)
        out["floor: one fresh output"] = lambda: jax.block_until_ready(f1(g, *state))
    donated = jax.jit(arith, donate_argnums=tuple(range(len(state) + 1)))
    own = {"g": [b.copy() for b in g], "s": [[b.copy() for b in s] for s in state]}

    def run_donated():
        # The outputs alias the donated buffers; feed them back in (the values drift, the
        # memory traffic does not).
        res = jax.block_until_ready(donated(own["g"], *own["s"]))
        own["g"], own["s"] = res[0], list(res[1:])

    out["donated (gradients and state)"] = run_donated
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tree", default="transformer")
    ap.add_argument("--steps", type=int, default=0, help="timed calls per contender and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cpu-fusion", choices=("on", "off"), default="on")
    ap.add_argument("--label", help="also write the report to benchmarks/results/<label>.txt")
    args = ap.parse_args(argv)
    steps = args.steps or (10 if args.quick else 6)
    leaves, nparams = count(args.tree, args.quick)
    params = jax.tree.map(jnp.asarray, make_tree(args.tree, args.quick, seed=0))
    grads = jax.tree.map(jnp.asarray, make_tree(args.tree, args.quick, seed=1, scale=1e-3))
    make_g, make_o = OPTIMIZERS[args.optimizer]
    packed_params = gradtx.pack(params, make_g())
    packed_grads = gradtx.pack_like(packed_params, grads)
    load_before = os.getloadavg()
    lines = []
    lines.append(
        f"{args.optimizer} on tree {args.tree}: {leaves} leaves, {nparams / 1e6:.2f}M params, "
        f"{len(packed_params.buffers)} packed buffers; {args.rounds} rounds of {steps} eager updates "
        f"({jax.devices()[0].device_kind}, XLA:CPU multi-output fusion {args.cpu_fusion})"
    )
    contenders = {
        "gradtx update (tree)": eager_runner(make_g(), params, grads),
        "gradtx update (packed)": eager_runner(make_g(), packed_params, packed_grads),
        "optax update (tree)": eager_runner(make_o(), params, grads),
    }
    contenders.update(floor_runners(args.optimizer, packed_grads, make_g().init(packed_params)))
    times: dict[str, list[float]] = {}
    faults: dict[str, list[float]] = {}
    # Alternate rounds so that load on a shared machine hits every contender alike.
    for _ in range(args.rounds):
        for name, run in contenders.items():
            t, f = timed(run, steps)
            times.setdefault(name, []).extend(t)
            faults.setdefault(name, []).append(f)
    med = {k: float(np.median(v)) * 1e3 for k, v in times.items()}
    base = med["optax update (tree)"]
    m = machine()
    # allocator settings change the fresh-buffer cost, so the report names any that were set
    env = "".join(
        f"{k}={v} " for k, v in sorted(os.environ.items()) if k.startswith(("MALLOC_", "GLIBC_"))
    )
    lines.insert(
        0,
        f"$ {env}python benchmarks/eager.py {' '.join(argv if argv is not None else sys.argv[1:])}\n"
        f"{m['cpu']}, {m['cores']} cores; jax {m['jax']}, optax {m['optax']}; {m['date']}; "
        f"load average {'/'.join(f'{x:.2f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.2f}' for x in os.getloadavg())} after",
    )
    lines.append(
        f"  {'':34s} {'ms/call':>9s} {'p10-p90':>15s} {'optax/this':>10s} {'faults/call':>11s}"
    )
    for k, v in med.items():
        p10, p90 = (float(np.percentile(times[k], q)) * 1e3 for q in (10, 90))
        lines.append(
            f"  {k:34s} {v:9.2f} {p10:7.2f}-{p90:7.2f} {base / v:9.1f}x "
            f"{float(np.mean(faults[k])):11.0f}"
        )
    lines.append(f"a 10x faster eager update than Optax's would take {base / 10:.2f} ms")
    report = "\n".join(lines)
    print(report)
    if args.label:
        out = HERE / "results" / f"{args.label}.txt"
        out.write_text(report + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
