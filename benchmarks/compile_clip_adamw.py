"""Compile time of ``clip_by_global_norm`` followed by masked AdamW on a many-leaf pytree.

gradtx and Optax, same pytree, same step (update + apply_updates, jitted), timed in one run:

    PYTHONPATH=. python benchmarks/compile_clip_adamw.py [--leaves 3000] [--size 64]

Prints the trace+lower and compile times of gradtx's chain on the params tree, of the same chain
on ``gradtx.pack(params, tx)`` (raveled buffers, split by the decay mask; the gradients packed
once, as a loss of ``gradtx.unpack`` would return them) and of Optax's chain, and the ratios
(Optax / gradtx). Each timing
is of a fresh ``jax.jit(...).lower(...).compile()`` (no compilation cache).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import gradtx


def make_tree(n_leaves: int, size: int):
    """Alternating (size, size) kernels and (size,) biases, like a deep MLP's parameters."""
    params = {}
    for i in range(n_leaves):
        shape = (size, size) if i % 2 == 0 else (size,)
        params[f"layer{i // 2:05d}/{'kernel' if i % 2 == 0 else 'bias'}"] = jnp.full(
            shape, 0.01 * (i % 7 + 1), jnp.float32
        )
    return params


def decay_mask(params):
    return {k: v.ndim > 1 for k, v in params.items()}


def time_compile(fn, *args):
    jax.clear_caches()
    t0 = time.perf_counter()
    lowered = jax.jit(fn).lower(*args)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    out = compiled(*args)
    jax.block_until_ready(out)
    times = []
    for _ in range(5):
        t3 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - t3)
    return t1 - t0, t2 - t1, out, sorted(times)[len(times) // 2]


def timed(name, fn, *args):
    """Times ``fn``'s compile and step, prints one line; returns (total s, new params, step s)."""
    lower, compile_, (new_params, _), run = time_compile(fn, *args)
    total = lower + compile_
    print(
        f"{name + ':':15s} trace+lower {lower:7.2f} s  compile {compile_:7.2f} s  total "
        f"{total:7.2f} s  step {run * 1e3:7.2f} ms",
        flush=True,
    )
    return total, new_params, run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leaves", type=int, default=3000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--skip-optax", action="store_true")
    args = ap.parse_args()

    params = make_tree(args.leaves, args.size)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    n = sum(x.size for x in jax.tree.leaves(params))
    print(f"jax {jax.__version__}, optax {optax.__version__}, backend {jax.default_backend()}")
    print(f"tree: {args.leaves} leaves, {n} parameters")

    gtx = gradtx.chain(
        gradtx.clip_by_global_norm(1.0),
        gradtx.adamw(1e-3, weight_decay=1e-2, mask=decay_mask),
    )
    gstate = gtx.init(params)

    def g_step(tx, params, state, grads):
        updates, state = tx._update(grads, state, params)
        return gradtx.apply_updates(params, updates), state

    # Then the same chain on the packed layout: leaves raveled into one buffer per dtype and
    # mask value (the decay mask splits kernels from biases), so the step compiles a few kernels.
    g_total, g_params, g_run = timed("gradtx", g_step, gtx, params, gstate, grads)
    packed = gradtx.pack(params, gtx)
    q_total, q_packed, q_run = timed(
        "gradtx.pack", g_step, gtx, packed, gtx.init(packed), gradtx.pack_like(packed, grads)
    )
    q_params = gradtx.unpack(q_packed)
    if args.skip_optax:
        return

    otx = optax.chain(
        optax.clip_by_global_norm(1.0),
        optax.adamw(1e-3, weight_decay=1e-2, mask=decay_mask),
    )
    ostate = otx.init(params)

    def o_step(params, state, grads):
        updates, state = otx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    o_total, o_params, o_run = timed("optax", o_step, params, ostate, grads)
    diff = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(g_params), jax.tree.leaves(o_params))
    )
    qdiff = max(
        float(jnp.max(jnp.abs(a - b)))
        for a, b in zip(jax.tree.leaves(q_params), jax.tree.leaves(o_params))
    )
    print(f"max |gradtx - optax| after one step: {diff:.3g} (packed: {qdiff:.3g})")
    print(f"compile-time ratio optax / gradtx: {o_total / g_total:.1f}x")
    print(f"compile-time ratio optax / gradtx.pack: {o_total / q_total:.1f}x")
    print(f"step-time ratio optax / gradtx: {o_run / g_run:.2f}x")
    print(f"step-time ratio optax / gradtx.pack: {o_run / q_run:.2f}x")


if __name__ == "__main__":
    main()
