"""N hyperparameter settings: one vmapped gradtx.sweep vs N sequential runs (gradtx, Optax).

Three ways to train N Adam learning rates for S steps on the same problem:

- ``sweep``: ``gradtx.sweep``, the whole population vmapped in one scanned program (one compile).
- ``gradtx-seq``: one jitted training loop (``lax.scan``) taking the transform as a jit
  argument, so one compile serves all N rates; called N times.
- ``optax-seq``: Optax's closure style, ``optax.adam(lr)`` baked into a jitted training loop, so
  each rate compiles its own program; N compiles and N runs.

Every case runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its own;
the table shows it and its growth over the process's footprint before the case (imports and
data). Compile time is measured with ``jit(...).lower(...).compile()``; run time is the rest.
Problems: a tiny quadratic (2 parameters, 200 steps) and an MLP 64-32-10 on scikit-learn's
digits (minibatch 128, 100 steps). Then the headline: digits, 32 rates x 500 steps.

    python benchmarks/sweep.py               # the full table and the headline
    python benchmarks/sweep.py --quick       # N = 1, 8 only (a smoke test)

Optax runs beyond ``--optax-cap`` (quadratic, default 64) or ``--optax-cap-digits`` (default 16)
settings are extrapolated linearly from the runs made (each one compiles and runs the same
program shape, so the per-run cost is flat); the output says so on each such row. The headline
runs all 32 Optax runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _problem(name: str):
    import jax
    import jax.numpy as jnp

    from gradtx._sweep._problems import digits_mlp

    if name == "quadratic":

        def loss(p, _):
            return p[0] ** 2 + 2.0 * p[1] ** 2

        return loss, jnp.array([-5.0, -2.0], jnp.float32), None, None, 200
    prob = digits_mlp()
    _ = jax.block_until_ready(prob.data)
    return prob.loss_fn, prob.params, prob.data, prob.batch_size, 100


def _batch_fn(data, batch_size):
    import jax
    import jax.numpy as jnp

    def batch_at(key, step):
        if data is None:
            return None
        k = jax.random.fold_in(key, step)
        idx = jax.random.randint(k, (batch_size,), 0, jax.tree.leaves(data)[0].shape[0])
        return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)

    return batch_at


def _xla_temp_mib(compiled) -> float:
    try:
        m = compiled.memory_analysis()
        return (m.temp_size_in_bytes + m.output_size_in_bytes) / 2**20
    except Exception:  # pragma: no cover - backend without memory analysis
        return float("nan")


def run_case(problem: str, method: str, n: int, steps: int | None, cap: int) -> dict:
    """Runs one case in this process and returns its measurements."""
    import jax
    import numpy as np

    import gradtx

    loss_fn, params, data, batch_size, default_steps = _problem(problem)
    steps = steps or default_steps
    lrs = np.geomspace(1e-4, 1e-1, n).astype(np.float32)
    base_rss = _maxrss_mib()
    out = {"problem": problem, "method": method, "n": n, "steps": steps, "ran": n}
    keys = jax.random.split(jax.random.PRNGKey(0), n)
    t_all = time.perf_counter()
    if method == "sweep":
        res = gradtx.sweep(
            loss_fn, params, data, gradtx.adam, {"learning_rate": lrs}, steps,
            key=keys, batch_size=batch_size,
        )  # fmt: skip
        out["compile_s"], out["run_s"] = res.compile_seconds, res.run_seconds
        final = res.final_loss
        from gradtx._sweep._sweep import _COMPILED

        out["xla_mib"] = _xla_temp_mib(next(iter(_COMPILED.values())))
    else:
        batch_at = _batch_fn(data, batch_size)

        def make_train(get_tx):
            def train(tx_args, key):
                tx = get_tx(tx_args)
                vg = jax.value_and_grad(loss_fn)

                def body(carry, step):
                    p, s = carry
                    loss, g = vg(p, batch_at(key, step))
                    u, s = tx.update(g, s, p)
                    return (gradtx.apply_updates(p, u) if method == "gradtx-seq"
                            else optax.apply_updates(p, u), s), loss  # fmt: skip

                (p, _), losses = jax.lax.scan(
                    body, (params, tx.init(params)), jax.numpy.arange(steps)
                )
                return p, losses

            return train

        import optax

        compile_s = run_s = 0.0
        final = []
        ran = n if method == "gradtx-seq" else min(n, cap)
        if method == "gradtx-seq":
            train = jax.jit(make_train(lambda tx: tx))
            t0 = time.perf_counter()
            compiled = train.lower(gradtx.adam(float(lrs[0])), keys[0]).compile()
            compile_s = time.perf_counter() - t0
            out["xla_mib"] = _xla_temp_mib(compiled)
            t0 = time.perf_counter()
            for i in range(ran):
                _, losses = compiled(gradtx.adam(float(lrs[i])), keys[i])
                final.append(float(jax.block_until_ready(losses)[-1]))
            run_s = time.perf_counter() - t0
        else:
            for i in range(ran):
                opt = optax.adam(float(lrs[i]))
                train = jax.jit(make_train(lambda _, opt=opt: opt))
                t0 = time.perf_counter()
                compiled = train.lower(None, keys[i]).compile()
                compile_s += time.perf_counter() - t0
                t0 = time.perf_counter()
                _, losses = compiled(None, keys[i])
                final.append(float(jax.block_until_ready(losses)[-1]))
                run_s += time.perf_counter() - t0
            out["xla_mib"] = _xla_temp_mib(compiled)
        if ran < n:
            out["ran"] = ran
            compile_s *= n / ran
            run_s *= n / ran
        out["compile_s"], out["run_s"] = compile_s, run_s
        final = np.asarray(final)
    out["measured_wall_s"] = time.perf_counter() - t_all
    out["wall_s"] = out["compile_s"] + out["run_s"]
    out["rss_mib"] = _maxrss_mib()
    out["rss_growth_mib"] = out["rss_mib"] - base_rss
    out["best_final"] = float(np.nanmin(final))
    return out


def _subprocess_case(problem, method, n, steps, cap) -> dict:
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, os.path.abspath(__file__), "--case", problem, method, str(n),
           str(steps or 0), str(cap)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"case {problem} {method} {n} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _row(r: dict, ref: dict | None) -> str:
    ratio = r["wall_s"] / ref["wall_s"] if ref else float("nan")
    note = f"  (extrapolated from {r['ran']} runs)" if r["ran"] < r["n"] else ""
    return (
        f"{r['n']:>5} {r['method']:<11} {r['wall_s']:>9.2f} {r['compile_s']:>9.2f} "
        f"{r['run_s']:>9.3f} {r['rss_mib']:>8.0f} {r['rss_growth_mib']:>8.0f} "
        f"{r['xla_mib']:>8.2f} {ratio:>9.1f}x{note}"
    )


HEADER = (
    f"{'N':>5} {'method':<11} {'wall s':>9} {'compile s':>9} {'run s':>9} {'RSS MiB':>8} "
    f"{'+RSS MiB':>8} {'XLA MiB':>8} {'vs sweep':>10}"
)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", nargs=5)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--optax-cap", type=int, default=64, help="on the quadratic")
    ap.add_argument("--optax-cap-digits", type=int, default=16)
    ap.add_argument("--ns", default="1,8,64,256")
    ap.add_argument("--no-headline", action="store_true")
    args = ap.parse_args()
    if args.case:
        problem, method, n, steps, cap = args.case
        print(json.dumps(run_case(problem, method, int(n), int(steps) or None, int(cap))))
        return
    import jax

    ns = [1, 8] if args.quick else [int(x) for x in args.ns.split(",")]
    print(f"gradtx sweep benchmark: jax {jax.__version__}, {jax.devices()[0].platform}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")  # fmt: skip
    print("wall = compile + run; RSS = the case's peak resident memory (its own process), "
          "+RSS = growth over imports and data; XLA = the program's temp + output buffers; "
          "vs sweep = wall time / the sweep's wall time\n")  # fmt: skip
    summary = {}
    for problem in ("quadratic", "digits"):
        print(f"== {problem} (Adam, learning rates log-spaced in [1e-4, 1e-1]) ==")
        print(HEADER)
        for n in ns:
            ref = None
            for method in ("sweep", "gradtx-seq", "optax-seq"):
                cap = args.optax_cap if problem == "quadratic" else args.optax_cap_digits
                r = _subprocess_case(problem, method, n, None, cap)
                if method == "sweep":
                    ref = r
                summary[(problem, n, method)] = r
                print(_row(r, ref), flush=True)
        print()
    if args.no_headline or args.quick:
        return
    print("== headline: digits MLP, 32 learning rates x 500 steps ==")
    print(HEADER)
    ref = None
    for method in ("sweep", "gradtx-seq", "optax-seq"):
        r = _subprocess_case("digits", method, 32, 500, 10**9)
        ref = ref or r
        summary[("headline", method)] = r
        print(_row(r, ref), flush=True)
    s, o, g = (summary[("headline", m)] for m in ("sweep", "optax-seq", "gradtx-seq"))
    print(
        f"\nThe sweep compiled once ({s['compile_s']:.2f} s) and took {s['wall_s']:.2f} s in all; "
        f"32 sequential Optax runs compiled 32 times ({o['compile_s']:.2f} s) and took "
        f"{o['wall_s']:.2f} s: the sweep is {o['wall_s'] / s['wall_s']:.1f}x faster. 32 sequential "
        f"gradtx runs (one compile, the transform a jit argument) took {g['wall_s']:.2f} s "
        f"(sweep / gradtx-seq wall time: {s['wall_s'] / g['wall_s']:.2f}). Best final loss: "
        f"sweep {s['best_final']:.4f}, Optax {o['best_final']:.4f}."
    )
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
