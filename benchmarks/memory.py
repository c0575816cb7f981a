"""Optimizer-state memory and final loss: float32 Adam against ``gradtx.quantized`` Adam.

    PYTHONPATH=. python benchmarks/memory.py [--steps 400] [--lr 1e-2]

Prints, for float32 Adam, 8-bit and 4-bit quantised Adam (stochastic and nearest rounding):
the state bytes on a tree of a few large leaves (a 4096 x 1024 kernel, a 32000 x 512
embedding, a 1024 x 1024 kernel and a bias), their ratio to float32 Adam's, and the final
losses of 400 full-batch steps on least squares (64 x 128 weights) and on the digits MLP
(64-128-10, scikit-learn's digits; both weight matrices quantised), each as a ratio to float32
Adam's final loss. Everything is measured in this one run.

``--registry`` first prints the state bytes per parameter of every optimizer in
``gradtx.registry.OPTIMIZERS``, plain and under ``gradtx.quantized`` (8 and 4 bits), on a
transformer-block-like tree (from the shapes: nothing is allocated). ``--label NAME`` also
writes everything printed to ``benchmarks/results/NAME.md``.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

import gradtx


def big_tree():
    shapes = {"w_in": (4096, 1024), "emb": (32000, 512), "w_out": (1024, 1024), "b": (1024,)}
    return {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in shapes.items()}


def state_bytes(tx, params) -> int:
    """The bytes of ``tx.init(params)``, from its shapes (nothing is allocated)."""
    shapes = jax.eval_shape(tx.init, params)
    return int(sum(np.prod(x.shape, dtype=np.int64) * x.dtype.itemsize
                   for x in jax.tree.leaves(shapes)))  # fmt: skip


def block_tree():
    """A transformer block's shapes: attention and MLP kernels, a norm scale and biases."""
    shapes = {"qkv": (768, 2304), "proj": (768, 768), "up": (768, 3072), "down": (3072, 768),
              "b_up": (3072,), "scale": (768,)}  # fmt: skip
    return {k: jax.ShapeDtypeStruct(s, jnp.float32) for k, s in shapes.items()}


def registry_table(say) -> None:
    """State bytes per parameter of every registry entry: plain, 8-bit and 4-bit quantised."""
    from gradtx.registry import OPTIMIZERS

    params = block_tree()
    n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    say(f"State bytes per float32 parameter, {n / 1e6:.2f}M parameters in "
        f"{len(jax.tree.leaves(params))} leaves (a transformer block), quantized() with its "
        "defaults (block 256, leaves of 4096 elements or more):")  # fmt: skip
    say("")
    say("| optimizer | plain | 8-bit | 4-bit |")
    say("|---|---|---|---|")
    for key, spec in OPTIMIZERS.items():
        cells = []
        for bits in (None, 8, 4):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tx = spec.make()
                    if bits:
                        tx = gradtx.quantized(tx, bits)
                    cells.append(f"{state_bytes(tx, params) / n:.2f}")
            except Exception as err:  # reported, not hidden: the row says what failed
                cells.append(f"({type(err).__name__})")
        say(f"| `{key}` | " + " | ".join(cells) + " |")
    say("")


def least_squares():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(256, 64)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(64, 128)), jnp.float32)
    y = x @ w + 0.1 * jnp.asarray(rng.normal(size=(256, 128)), jnp.float32)
    loss = lambda p: jnp.mean((x @ p["w"] + p["b"] - y) ** 2)
    return loss, {"w": jnp.zeros((64, 128), jnp.float32), "b": jnp.zeros((128,), jnp.float32)}


def digits():
    from gradtx._sweep._problems import digits_mlp

    prob = digits_mlp(hidden=128)
    return (lambda p: prob.loss_fn(p, prob.data)), prob.params


def final_loss(tx, loss, p0, steps):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (gradtx.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=steps)
    return loss(p)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--registry", action="store_true", help="bytes per parameter, every entry")
    ap.add_argument("--label", default=None, help="also write benchmarks/results/<label>.md")
    args = ap.parse_args()
    lines = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    if args.registry:
        registry_table(say)

    configs = {
        "adam fp32": lambda: gradtx.adam(args.lr),
        "8-bit stochastic": lambda: gradtx.quantized(gradtx.adam(args.lr), 8, min_size=1024),
        "8-bit nearest": lambda: gradtx.quantized(
            gradtx.adam(args.lr), 8, min_size=1024, rounding="nearest"
        ),
        "4-bit stochastic": lambda: gradtx.quantized(gradtx.adam(args.lr), 4, min_size=1024),
        "4-bit nearest": lambda: gradtx.quantized(
            gradtx.adam(args.lr), 4, min_size=1024, rounding="nearest"
        ),
    }
    params = big_tree()
    n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))
    full = state_bytes(configs["adam fp32"](), params)
    problems = {"least squares": least_squares(), "digits MLP": digits()}
    base = {
        name: float(jax.jit(lambda: final_loss(configs["adam fp32"](), lo, p0, args.steps))())
        for name, (lo, p0) in problems.items()
    }
    say(f"state of Adam on {n / 1e6:.1f}M float32 parameters; {args.steps} steps, lr {args.lr}")
    header = f"{'optimizer':<18} {'state MiB':>10} {'x fp32':>7}"
    for name in problems:
        header += f" {name + ' loss':>20} {'x fp32':>7}"
    say("```")
    say(header)
    for label, make in configs.items():
        b = state_bytes(make(), params)
        row = f"{label:<18} {b / 2**20:>10.1f} {b / full:>7.3f}"
        for name, (lo, p0) in problems.items():
            v = float(jax.jit(lambda make=make, lo=lo, p0=p0: final_loss(make(), lo, p0,
                                                                        args.steps))())  # fmt: skip
            row += f" {v:>20.6g} {v / base[name]:>7.3f}"
        say(row)
    say("```")
    if args.label:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                            f"{args.label}.md")  # fmt: skip
        with open(path, "w") as f:
            f.write("# Optimizer state memory (benchmarks/memory.py)\n\n")
            f.write(f"Machine: {os.cpu_count()} CPUs ({jax.default_backend()}), jax "
                    f"{jax.__version__}, {time.strftime('%Y-%m-%d')}.\n\n")  # fmt: skip
            f.write("## Summary\n\n" + "\n".join(lines) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
