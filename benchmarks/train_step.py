"""A whole training step (loss, gradients, Adam update) on a many-leaf model: gradtx vs Optax.

    python benchmarks/train_step.py [--layers 100] [--width 128] [--batch 64] [--reps 15]

The optimizer benchmarks (``run.py``) time the update alone, on gradients that already exist.
This one times what a training loop pays: a deep MLP with a per-layer scale and shift (4 leaves
per layer; 400 leaves by default, since the unrolled model alone takes minutes to compile beyond
that), the loss and its gradient, then Adam, as one jitted step with the params and optimizer
state donated. Three ways, alternating in the same process:

- ``optax``: ``optax.adam`` on the params tree;
- ``gradtx``: ``gradtx.adam`` on the params tree;
- ``gradtx.pack``: params kept packed across steps (``gradtx.pack(params, tx)``: Adam is
  elementwise, so the leaves are raveled into 1-D buffers of up to 8 MiB); the model reads its
  leaves with ``gradtx.unpack``, so ``jax.grad`` returns packed gradients (the backward pass
  concatenates the per-leaf gradients: that cost is inside the timed step).

Earlier versions also timed ``gradtx.grouped`` (a multi-tensor wrapper that packed the state and
the gradients inside every step); it was removed from gradtx and has no counterpart here. Their
``gradtx.flatten`` row (``gradtx.flatten(params)``, read through ``flat.unflatten()``) is the
``gradtx.pack`` row.

It prints the median step time (10th-90th percentile), the compile time of each step, and the
largest difference of the final params from Optax's after the timed steps (all three run the same
number of steps from the same start).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gradtx

LR = 1e-3


def init_params(layers: int, width: int) -> dict:
    key = jax.random.PRNGKey(0)
    params = {}
    for i in range(layers):
        key, sub = jax.random.split(key)
        params[f"layer{i:04d}"] = {
            "kernel": jax.random.normal(sub, (width, width), jnp.float32) / np.sqrt(width),
            "bias": jnp.zeros((width,), jnp.float32),
            "scale": jnp.ones((width,), jnp.float32),
            "shift": jnp.zeros((width,), jnp.float32),
        }
    return params


def loss_fn(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    h = x
    for name in sorted(params):
        layer = params[name]
        z = h @ layer["kernel"] + layer["bias"]
        h = h + layer["scale"] * jnp.tanh(z) + layer["shift"]  # residual, stays well scaled
    return jnp.mean((h - y) ** 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=100)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()

    params = init_params(args.layers, args.width)
    n_leaves = len(jax.tree.leaves(params))
    n_params = sum(x.size for x in jax.tree.leaves(params))
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.normal(kx, (args.batch, args.width), jnp.float32)
    y = jax.random.normal(ky, (args.batch, args.width), jnp.float32)
    print(
        f"jax {jax.__version__}, optax {optax.__version__}, backend {jax.default_backend()}; "
        f"MLP {args.layers} layers x width {args.width}: {n_leaves} leaves, {n_params} params, "
        f"batch {args.batch}",
        flush=True,
    )

    otx = optax.adam(LR)

    def o_step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = otx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    def g_step(tx, p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        u, s = tx._update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    def p_step(tx, p, s, x, y):
        loss, g = jax.value_and_grad(lambda q: loss_fn(gradtx.unpack(q), x, y))(p)
        u, s = tx._update(g, s, p)
        return gradtx.apply_updates(p, u), s, loss

    copy = lambda t: jax.tree.map(jnp.copy, t)
    gtx = gradtx.adam(LR)
    packed = gradtx.pack(params, gtx)  # new buffers: params stays intact
    impls = {
        "optax": (jax.jit(o_step, donate_argnums=(0, 1)), (), copy(params), otx.init(params)),
        "gradtx": (jax.jit(g_step, donate_argnums=(1, 2)), (gtx,), copy(params), gtx.init(params)),
        "gradtx.pack": (
            jax.jit(p_step, donate_argnums=(1, 2)),
            (gtx,),
            packed,
            gtx.init(packed),
        ),
    }
    compiled, compile_s, state = {}, {}, {}
    for name, (fn, pre, p, s) in impls.items():
        t0 = time.perf_counter()
        compiled[name] = fn.lower(*pre, p, s, x, y).compile()
        compile_s[name] = time.perf_counter() - t0
        state[name] = (pre, p, s)
        print(f"compiled {name:15s} in {compile_s[name]:6.2f} s", flush=True)

    times = {name: [] for name in impls}
    for _ in range(2 + args.reps):  # two warm-up rounds, then timed rounds, alternating
        for name in impls:
            pre, p, s = state[name]
            t0 = time.perf_counter()
            p, s, loss = compiled[name](*pre, p, s, x, y)
            jax.block_until_ready((p, s, loss))
            times[name].append(time.perf_counter() - t0)
            state[name] = (pre, p, s)
    ref = state["optax"][1]
    base = np.median(times["optax"][2:])
    print()
    print(
        "| implementation | step ms (p10-p90) | step / optax | compile s | compile / optax | "
        "max abs diff from optax |"
    )
    print("|---|---|---|---|---|---|")
    for name in impls:
        t = np.asarray(times[name][2:]) * 1e3
        p = state[name][1]
        if name == "gradtx.pack":
            p = gradtx.unpack(p)
        diff = max(
            float(jnp.max(jnp.abs(a - b))) for a, b in zip(jax.tree.leaves(p), jax.tree.leaves(ref))
        )
        print(
            f"| {name} | {np.median(t):.2f} ({np.percentile(t, 10):.2f}-{np.percentile(t, 90):.2f})"
            f" | {np.median(t) / (base * 1e3):.2f}x | {compile_s[name]:.2f} | "
            f"{compile_s[name] / compile_s['optax']:.2f}x | {diff:.2g} |"
        )


if __name__ == "__main__":
    main()
