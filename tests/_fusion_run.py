"""Run every registry optimizer a few steps and save the results (for tests/test_cpu_fusion.py).

Run as ``python -m tests._fusion_run OUT.npz`` in a fresh process: XLA reads ``XLA_FLAGS`` once,
so the test starts this script twice, with and without XLA:CPU multi-output fusion, and compares
the two files bit for bit.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import _fusion
from gradtx._transform import split_extra
from gradtx.registry import OPTIMIZERS

from ._packed import small_grads, small_params

jax.config.update("jax_numpy_dtype_promotion", "strict")

STEPS = 3


def _special_grads(params, k):
    """small_grads with -0.0, a subnormal, a huge value and an inf mixed into the big leaf."""
    g = small_grads(params, k)
    tiny = float(np.finfo(np.float32).smallest_subnormal) * 3
    g["big"] = g["big"].at[0, :4].set(jnp.array([-0.0, tiny, 3e38, -1e-30], jnp.float32))
    return g


def _extra(spec):
    return {"loss": jnp.float32(1.0)} if spec.reads_loss else {}


def run_step(tx, extra):
    params = small_params()
    state = tx.init(params)
    for k in range(STEPS):
        params, state = gradtx.step(tx, _special_grads(params, float(k)), state, params, **extra)
    return params, state


def run_update(tx, extra):
    params = small_params()
    state = tx.init(params)
    for k in range(STEPS):
        u, state = tx.update(_special_grads(params, float(k)), state, params, **extra)
        params = gradtx.apply_updates(params, u)
    return params, state


def run_flat(tx, extra):
    flat = gradtx.flatten(small_params())
    state = tx.init(flat)
    for k in range(STEPS):
        g = gradtx.flatten_like(flat, _special_grads(flat.unflatten(), float(k)))
        flat, state = gradtx.step(tx, g, state, flat, **extra)
    return flat, state


def run_bf16():
    """AdamW with bf16 params and float32 moments (mixed compute dtypes)."""
    tx = gradtx.adamw(1e-2, weight_decay=0.1, mu_dtype=jnp.float32)
    params = jax.tree.map(lambda x: x.astype(jnp.bfloat16), small_params())
    state = tx.init(params)
    for k in range(STEPS):
        params, state = gradtx.step(tx, small_grads(params, float(k)), state, params)
    return params, state


def run_vmap_grad():
    """vmap over learning rates, and the gradient of the final loss with respect to lr."""
    x0 = jnp.linspace(-1.0, 1.0, 64, dtype=jnp.float32)

    def final_loss(lr):
        tx = gradtx.adam(lr)
        x, s = x0, tx.init(x0)
        for _ in range(STEPS):
            u, s = tx.update(jnp.sin(3.0 * x) + x, s, x)
            x = gradtx.apply_updates(x, u)
        return jnp.sum(x * x)

    lrs = jnp.array([1e-3, 1e-2, 1e-1], jnp.float32)
    return jax.jit(jax.vmap(final_loss))(lrs), jax.jit(jax.vmap(jax.grad(final_loss)))(lrs)


#: Chains whose optimizer reads a just-clipped gradient: the twin recomputes the clipped value
#: from the raw gradient (a recipe, gradtx/_fusion.py) instead of reading a materialized copy.
CLIPPED = {
    "clip+adamw": gradtx.chain(
        gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3, weight_decay=1e-2)
    ),
    "clip+sgd_momentum": gradtx.chain(
        gradtx.clip_by_global_norm(0.5), gradtx.sgd(1e-2, momentum=0.9)
    ),
    "clip+rmsprop": gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.rmsprop(1e-3)),
}


def loop_counts(n=1 << 16):
    """How many compiled loops of ``gradtx.step`` touch the parameter-sized arrays (one array)."""
    cases = {
        "adam": gradtx.adam(1e-3),
        "adamw": gradtx.adamw(1e-3, weight_decay=1e-2),
        "sgd_momentum": gradtx.sgd(1e-2, momentum=0.9),
        "rmsprop": gradtx.rmsprop(1e-3),
        "lion": gradtx.lion(1e-4),
        **CLIPPED,
    }
    shape = f"f32[{n}]"
    p = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
    counts = {}
    for name, tx in cases.items():
        text = step_hlo(tx, p, tx.init(p), p)
        counts[name] = sum(
            1 for line in text.splitlines() if " fusion(" in line and shape in line.split("=")[1]
        )
    return counts


def step_hlo(tx, grads, state, params):
    """The optimized HLO of ``gradtx.step``'s compiled program."""
    from gradtx import _step

    dynamic, static = split_extra({})
    return _step._compiled_step.lower(tx, grads, state, params, dynamic, static).compile().as_text()


def results(updates=("adam", "adamw", "sgd[momentum=0.9]", "rmsprop", "lion")):
    """Every elementwise registry entry through gradtx.step and the flat path (the optimizers the
    twin formulation and the packed paths concern); ``update`` then ``apply_updates`` for the
    entries named in ``updates``."""
    out = {}

    def save(name, tree):
        for i, leaf in enumerate(jax.tree.leaves(tree)):
            if jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
            elif leaf.dtype == jnp.bfloat16:
                leaf = leaf.astype(jnp.float32)  # exact; .npz has no bfloat16
            out[f"{name}/{i}"] = np.asarray(leaf)

    for key, spec in OPTIMIZERS.items():
        if not spec.elementwise:
            continue
        tx = spec.make(learning_rate=0.05)
        extra = _extra(spec)
        save(f"{key}/step", run_step(tx, extra))
        if key in updates:
            save(f"{key}/update", run_update(tx, extra))
        save(f"{key}/flat", run_flat(tx, extra))
    for key, tx in CLIPPED.items():
        save(f"{key}/step", run_step(tx, {}))
        save(f"{key}/update", run_update(tx, {}))
        save(f"{key}/flat", run_flat(tx, {}))
    save("bf16-adamw/step", run_bf16())
    save("adam/vmap-grad", run_vmap_grad())
    return out


def main(out):
    _fusion.Twin.min_size = 0  # the small test leaves take the twin path too
    res = results()
    res["active"] = np.array(_fusion.cpu_multi_output_fusion())
    for name, count in loop_counts().items():
        res[f"loops/{name}"] = np.array(count)
    np.savez(out, **res)


if __name__ == "__main__":
    if "--one-copy" in sys.argv:
        _fusion.Twin.enabled = False
    main(sys.argv[1])
