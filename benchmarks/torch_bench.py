"""torch.optim (foreach) on the benchmark trees; prints one JSON line. Run by run.py.

Needs only torch and NumPy (no JAX), so it can run from a separate virtual environment.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _trees import make_tree

LR, WD = 1e-3, 1e-4


def _leaves(tree):
    if isinstance(tree, dict):
        for k in sorted(tree):
            yield from _leaves(tree[k])
    else:
        yield tree


def _make(name, params):
    o = torch.optim
    if name == "adam":
        return o.Adam(params, lr=LR, foreach=True)
    if name == "adamw":
        return o.AdamW(params, lr=LR, weight_decay=WD, foreach=True)
    if name == "sgd_momentum":
        return o.SGD(params, lr=LR, momentum=0.9, foreach=True)
    if name == "rmsprop":
        return o.RMSprop(params, lr=LR, alpha=0.99, foreach=True)
    if name == "adafactor" and hasattr(o, "Adafactor"):
        return o.Adafactor(params, lr=LR, foreach=True)
    if name == "clip+adamw":
        return o.AdamW(params, lr=LR, weight_decay=WD, foreach=True)
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--opts", default="adam")
    ap.add_argument("--trees", default="1x16M")
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    args = ap.parse_args()
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = {
        "_version": torch.__version__,
        "_threads": torch.get_num_threads(),
        "_device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
    }
    for tree in args.trees.split(","):
        p_np = list(_leaves(make_tree(tree, args.quick, seed=0)))
        g_np = list(_leaves(make_tree(tree, args.quick, seed=1, scale=1e-3)))
        for name in args.opts.split(","):
            params = [torch.nn.Parameter(torch.from_numpy(x.copy()).to(dev)) for x in p_np]
            for p, g in zip(params, g_np):
                p.grad = torch.from_numpy(g.copy()).to(dev)
            opt = _make(name, params)
            if opt is None:
                continue
            clip = name.startswith("clip+")

            def step():
                if clip:
                    torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
                opt.step()
                sync()  # CUDA kernels run asynchronously: time the finished step

            step()
            ts = []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                step()
                ts.append(time.perf_counter() - t0)
            a = np.asarray(ts) * 1e3
            out[f"{name}/{tree}"] = {
                "median_ms": float(np.median(a)),
                "p10_ms": float(np.percentile(a, 10)),
                "p90_ms": float(np.percentile(a, 90)),
                "n": len(ts),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
