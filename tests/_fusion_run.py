"""Run every elementwise registry optimizer a few steps and save the results (for
tests/test_cpu_fusion.py).

Run as ``python -m tests._fusion_run OUT.npz`` in a fresh process: XLA reads ``XLA_FLAGS`` once, so
the test starts this script with XLA:CPU multi-output fusion on and compares its file with the
results of its own process (default flags).

Each entry is one compiled program (the params tree and its packed layout, a few steps each), so
the run costs about one compile per entry; ``gradtx.step`` (donated buffers) runs for the
optimizers whose loops are counted.
"""

import sys

import jax
import jax.numpy as jnp
import numpy as np

import gradtx
from gradtx import _fusion, _step
from gradtx._transform import split_extra
from gradtx.registry import OPTIMIZERS

from ._packed import small_grads, small_params

jax.config.update("jax_numpy_dtype_promotion", "strict")

STEPS = 3


def _special_grads(params, k):
    """small_grads with -0.0, a subnormal, a huge value and a tiny one in the big leaf."""
    g = small_grads(params, k)
    tiny = float(np.finfo(np.float32).smallest_subnormal) * 3
    g["big"] = g["big"].at[0, :4].set(jnp.array([-0.0, tiny, 3e38, -1e-30], jnp.float32))
    return g


def _extra(spec):
    return {"loss": jnp.float32(1.0)} if spec.reads_loss else {}


def fusion_params():
    """Three leaves (a matrix, a vector, a scalar) and a None: few leaves keep the compile short."""
    p = small_params()
    return {"big": p["big"], "bias": p["bias"], "scalar": p["scalar"], "skip": None}


@jax.jit
def _tree_and_packed(tx, params, packed, extra):
    """``STEPS`` updates of ``tx`` on the params tree and on their packed layout (a loop, so
    the step is compiled once per layout)."""
    out = []
    for p0 in (params, packed):

        def body(k, carry):
            p, s = carry
            kf = k.astype(jnp.float32)
            if isinstance(p, gradtx.Packed):
                g = gradtx.pack_like(p, _special_grads(gradtx.unpack(p), kf))
            else:
                g = _special_grads(p, kf)
            u, s = tx.update(g, s, p, **extra)
            return gradtx.apply_updates(p, u), s

        out.append(jax.lax.fori_loop(0, STEPS, body, (p0, tx.init(p0))))
    return out


def run_step(tx, packed):
    """``STEPS`` calls of ``gradtx.step`` (donated buffers) on the tree or its packed layout."""
    params = gradtx.pack(small_params(), tx) if packed else small_params()
    state = tx.init(params)
    for k in range(STEPS):
        if packed:
            g = gradtx.pack_like(params, _special_grads(gradtx.unpack(params), float(k)))
        else:
            g = _special_grads(params, float(k))
        params, state = gradtx.step(tx, g, state, params)
    return params, state


def run_bf16():
    """AdamW with bf16 params and float32 moments (mixed compute dtypes), through step."""
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


#: The optimizers whose ``gradtx.step`` loops are counted, with and without the flag.
COUNTED = {
    "adam": lambda: gradtx.adam(1e-3),
    "adamw": lambda: gradtx.adamw(1e-3, weight_decay=1e-2),
    "sgd_momentum": lambda: gradtx.sgd(1e-2, momentum=0.9),
    "rmsprop": lambda: gradtx.rmsprop(1e-3),
    "lion": lambda: gradtx.lion(1e-4),
    "clip+adamw": lambda: gradtx.chain(
        gradtx.clip_by_global_norm(1.0), gradtx.adamw(1e-3, weight_decay=1e-2)
    ),
}


def loop_counts(n=1 << 16):
    """How many compiled loops of ``gradtx.step`` write parameter-sized arrays (one array)."""
    shape = f"f32[{n}]"
    p = jnp.linspace(-1.0, 1.0, n, dtype=jnp.float32)
    dynamic, static = split_extra({})
    counts = {}
    for name, make in COUNTED.items():
        tx = make()
        lowered = _step._compiled_step.lower(tx, p, tx.init(p), p, dynamic, static)
        text = lowered.compile().as_text()
        counts[name] = sum(
            1 for line in text.splitlines() if " fusion(" in line and shape in line.split("=")[1]
        )
    return counts


def results():
    """Every elementwise registry entry on the tree and packed (one program each); the counted
    optimizers through ``gradtx.step`` on both layouts; bf16 AdamW; vmap and grad over lr."""
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
        packed = gradtx.pack(fusion_params(), tx)
        tree_out, packed_out = _tree_and_packed(tx, fusion_params(), packed, _extra(spec))
        save(f"{key}/tree", tree_out)
        save(f"{key}/packed", packed_out)
    for key, make in COUNTED.items():
        save(f"{key}/step", run_step(make(), packed=False))
        save(f"{key}/step-packed", run_step(make(), packed=True))
    save("bf16-adamw/step", run_bf16())
    save("adam/vmap-grad", run_vmap_grad())
    return out


def main(out):
    # Every leaf takes its update from the second copy when the pass is on (not only leaves of
    # 65,536 elements or more), so every entry's numbers below come from it.
    _fusion.Siblings.min_size = 1
    res = results()
    res["active"] = np.array(_fusion.cpu_multi_output_fusion())
    for name, count in loop_counts().items():
        res[f"loops/{name}"] = np.array(count)
    np.savez(out, **res)


if __name__ == "__main__":
    main(sys.argv[1])
