"""The benchmark pytrees: shapes only, filled deterministically (float32)."""

from __future__ import annotations

import math

import numpy as np


def _resnet_shapes(width: int, blocks=(3, 4, 6, 3), classes: int = 1000) -> dict:
    """A ResNet-50-like bottleneck layout: conv kernels plus BN scale and bias (161 leaves)."""
    shapes: dict = {"stem": {"conv": (7, 7, 3, width), "bn_scale": (width,), "bn_bias": (width,)}}
    cin = width
    for s, n in enumerate(blocks):
        mid = width * 2**s
        out = mid * 4
        for b in range(n):
            blk = {}
            for j, (kh, ci, co) in enumerate(((1, cin, mid), (3, mid, mid), (1, mid, out))):
                blk[f"conv{j}"] = (kh, kh, ci, co)
                blk[f"bn{j}_scale"] = (co,)
                blk[f"bn{j}_bias"] = (co,)
            if b == 0:
                blk["proj"] = (1, 1, cin, out)
                blk["proj_bn_scale"] = (out,)
                blk["proj_bn_bias"] = (out,)
            shapes[f"stage{s}_block{b}"] = blk
            cin = out
    shapes["head"] = {"kernel": (cin, classes), "bias": (classes,)}
    return shapes


def _transformer_shapes(d: int, layers: int, vocab: int) -> dict:
    """16 leaves per layer (separate q/k/v/o with biases, two LayerNorms, an MLP of 4d)."""
    shapes: dict = {"embed": (vocab, d)}
    for i in range(layers):
        layer = {"ln1_scale": (d,), "ln1_bias": (d,), "ln2_scale": (d,), "ln2_bias": (d,)}
        for name in ("q", "k", "v", "o"):
            layer[f"{name}_kernel"] = (d, d)
            layer[f"{name}_bias"] = (d,)
        layer["mlp_in_kernel"] = (d, 4 * d)
        layer["mlp_in_bias"] = (4 * d,)
        layer["mlp_out_kernel"] = (4 * d, d)
        layer["mlp_out_bias"] = (d,)
        shapes[f"layer{i:03d}"] = layer
    shapes["final_ln"] = {"scale": (d,), "bias": (d,)}
    return shapes


def tree_shapes(name: str, quick: bool = False) -> dict:
    """Nested dict of shapes for a benchmark tree."""
    if name == "1x16M":
        return {"w": (1024, 1024)} if quick else {"w": (4096, 4096)}
    if name == "1x64M":
        return {"w": (2048, 2048)} if quick else {"w": (8192, 8192)}
    if name == "resnet":
        return _resnet_shapes(16 if quick else 42)
    if name == "transformer":
        return _transformer_shapes(64, 15, 1024) if quick else _transformer_shapes(176, 62, 8192)
    if name == "tiny":
        n = 1000 if quick else 5000
        return {f"p{i:04d}": (16,) for i in range(n)}
    raise KeyError(name)


TREES = ("1x16M", "1x64M", "resnet", "transformer", "tiny")


def _is_shape(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(d, int) for d in x)


def _map_shapes(fn, shapes, path=()):
    if _is_shape(shapes):
        return fn(path, shapes)
    return {k: _map_shapes(fn, v, (*path, k)) for k, v in shapes.items()}


def make_tree(name: str, quick: bool = False, seed: int = 0, scale: float = 1.0):
    """NumPy float32 arrays shaped like ``tree_shapes(name)``."""
    rng = np.random.default_rng(seed)

    def fill(path, shape):
        return (scale * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32)

    return _map_shapes(fill, tree_shapes(name, quick))


def count(name: str, quick: bool = False) -> tuple[int, int]:
    """(leaves, parameters) of a tree."""
    leaves = []
    _map_shapes(lambda p, s: leaves.append(math.prod(s)), tree_shapes(name, quick))
    return len(leaves), sum(leaves)


if __name__ == "__main__":
    for t in TREES:
        print(t, count(t), count(t, quick=True))
