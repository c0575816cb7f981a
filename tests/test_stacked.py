"""gradtx.pack for transforms with per-leaf statistics: equal-shaped leaves stacked along a
leading axis.

Every per-leaf optimizer (``Spec.stack_aware``: Adafactor, Muon, SOAP, LAMB, LARS, NovoGrad,
SM3, Fromage, MARS, noisy SGD) and the per-leaf transforms (block-RMS and unit-wise clipping,
the trust ratio, centralization) are stackable (``Transform.is_stackable``), so ``gradtx.pack``
stacks for them; they run leaf by leaf on the stacks and must give the tree's numbers.
Elementwise optimizers run on stacks as on any layout.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.optimizers.soap import SOAPState
from gradtx.registry import OPTIMIZERS

from ._packed import assert_close_packed, max_abs, mesh8_shardings
from .test_adafactor_layout import _numpy_run, _vhat_min

# SOAP's update on a rank-deficient leaf follows the last bits of its statistics (on
# mixed_params a 1-ulp change of the gradients moves its (7, 130) leaves by 0.5 in three steps),
# so it is compared on full-rank square leaves instead (test_soap_stacked_equals_tree).
ILL_POSED_ON_MIXED = {"soap"}
STACK_AWARE = [k for k, s in OPTIMIZERS.items() if s.stack_aware]
SOAP = [k for k in STACK_AWARE if OPTIMIZERS[k].name in ILL_POSED_ON_MIXED]
F32_EPS = float(np.finfo(np.float32).eps)


def mixed_params():
    """Leaves that stack: matrices of two shapes (factored), 3x3 kernels (batch axes), vectors,
    scalars, a (1, rows, cols) leaf pair, and a lone matrix (a stack of one). Leaves sharing a
    stack have scales 100x apart, so a statistic taken over the whole stack instead of per leaf
    changes the result."""
    rng = np.random.default_rng(0)
    shapes = {
        "a": ((7, 130), 0.01),
        "b": ((7, 130), 1.0),
        "c": ((7, 130), 3.0),
        "conv1": ((3, 3, 4, 130), 0.05),
        "conv2": ((3, 3, 4, 130), 2.0),
        "lone": ((130, 140), 1.0),
        "u1": ((1, 130, 129), 0.1),
        "u2": ((1, 130, 129), 5.0),
        "bias1": ((5,), 0.02),
        "bias2": ((5,), 4.0),
        "odd": ((9,), 1.0),
        "s1": ((), 0.5),
        "s2": ((), -2.0),
    }
    return {
        k: jnp.asarray(scale * rng.standard_normal(s), jnp.float32)
        for k, (s, scale) in shapes.items()
    }


def mixed_grads(params, k):
    g = jax.tree.map(lambda p: jnp.cos(3.0 * p + k) * (1.0 + jnp.abs(p)), params)
    # unused embedding rows and columns: a zero row in one leaf of a stack, a zero column in
    # another
    if "c" in g:
        g["b"] = g["b"].at[2].set(0.0)
        g["c"] = g["c"].at[:, 5].set(0.0)
    return g


def _assert_leaves_close(got, ref, ulps):
    """Leaf by leaf, equal to ``ulps`` float32 ulps of the leaf's scale (at least 1)."""
    for name in ref:
        scale = max(1.0, float(jnp.max(jnp.abs(ref[name]))))
        np.testing.assert_allclose(
            got[name], ref[name], rtol=0, atol=ulps * F32_EPS * scale, err_msg=name
        )


def _run(tx, params, grads_fn, steps, stack, layout_tx=None):
    """``steps`` eager updates; on ``gradtx.pack(params, layout_tx or tx)`` when ``stack``."""
    p = gradtx.pack(params, layout_tx or tx) if stack else params
    s = tx.init(p)
    for k in range(steps):
        g = grads_fn(gradtx.unpack(p) if stack else p, float(k))
        if stack:
            g = gradtx.pack_like(p, g)
        u, s = tx.update(g, s, p)
        p = gradtx.apply_updates(p, u)
    return gradtx.unpack(p) if stack else p, s


def test_stack_layout_round_trips_and_describes():
    params = mixed_params()
    packed = gradtx.pack(params, gradtx.adafactor())
    shapes = sorted(tuple(b.shape) for b in packed.buffers)
    # a shape that only one leaf has stays that leaf (the lone matrix, the odd vector)
    assert shapes == sorted(
        [(3, 7, 130), (2, 3, 3, 4, 130), (130, 140), (2, 1, 130, 129), (2, 5), (9,), (2,)]
    )
    assert "3 leaves stacked" in repr(packed)
    back = gradtx.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(params)
    jax.tree.map(np.testing.assert_array_equal, back, params)
    # the gradient of a loss of gradtx.unpack(packed) comes back stacked
    loss = lambda p: sum(jnp.sum(x**2) for x in jax.tree.leaves(gradtx.unpack(p)))
    g = jax.grad(loss)(packed)
    assert isinstance(g, gradtx.Packed) and g.layout == packed.layout
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, 2 * b), gradtx.unpack(g), params)


def test_stack_layout_caps_buffers_and_keeps_order():
    params = {f"w{i:02d}": jnp.full((4, 8), float(i), jnp.float32) for i in range(10)}
    packed = gradtx.pack(params, gradtx.adafactor(), max_buffer_bytes=3 * 4 * 8 * 4)
    assert [b.shape for b in packed.buffers] == [(3, 4, 8)] * 3 + [(4, 8)]
    np.testing.assert_array_equal(packed.buffers[1][:, 0, 0], [3.0, 4.0, 5.0])


@pytest.mark.parametrize("key", [k for k in STACK_AWARE if k not in SOAP])
def test_stack_aware_equals_tree(key):
    """Every stack-aware registry entry. LAMB and LARS take one trust ratio per stacked leaf
    (scales 100x apart inside a stack), NovoGrad one second moment per leaf, Fromage one norm
    ratio, MARS one clipping norm. Muon orthogonalises each matrix of a
    stack (its (1, 130, 129) leaves are stacks of one matrix, which a Muon that ignored the
    stacking axis would read as convolution kernels); vectors and scalars go to its AdamW
    fallback."""
    tx = OPTIMIZERS[key].make(learning_rate=0.05)
    params = mixed_params()
    ref, _ = _run(tx, params, mixed_grads, 3, stack=False)
    got, state = _run(tx, params, mixed_grads, 3, stack=True)
    _assert_leaves_close(got, ref, ulps=8)
    # the state is stacked too: one statistics buffer per stack (where it has per-leaf buffers)
    tree_state = jax.tree.leaves(tx.init(params))
    if len(tree_state) >= len(params):
        assert len(jax.tree.leaves(state)) < len(tree_state)


@pytest.mark.parametrize("key", SOAP)
def test_soap_stacked_equals_tree(key):
    """SOAP on full-rank square leaves (so its eigenbases are well determined): stacks of 5x5
    and 6x6 matrices 100x apart in scale, a lone 7x7 matrix (a stack of one), a 3-D leaf and
    vectors (its Adam path). Each stacked matrix keeps its own statistics and bases."""
    rng = np.random.default_rng(3)
    shapes = {"a": (5, 5), "b": (5, 5), "c": (6, 6), "d": (6, 6), "lone": (7, 7),
              "k": (2, 3, 4), "v1": (4,), "v2": (4,)}  # fmt: skip
    params = {
        k: jnp.asarray((100.0 if k in ("b", "d") else 1.0) * rng.standard_normal(s), jnp.float32)
        for k, s in shapes.items()
    }
    tx = OPTIMIZERS[key].make(learning_rate=0.05)
    ref, _ = _run(tx, params, _cos_grads, 4, stack=False)
    got, state = _run(tx, params, _cos_grads, 4, stack=True)
    _assert_leaves_close(got, ref, ulps=8)
    # one left statistic per stacked matrix
    soap_state = [x for x in jax.tree.leaves(state, is_leaf=_is_soap) if _is_soap(x)]
    shapes = sorted(x.shape for x in jax.tree.leaves(soap_state[0].L))
    assert shapes == [(2, 5, 5), (2, 6, 6), (7, 7)], shapes


def _cos_grads(params, k):
    return jax.tree.map(lambda x: jnp.cos(3.0 * x + k) * (1.0 + jnp.abs(x)), params)


def _is_soap(x):
    return isinstance(x, SOAPState)


def test_adafactor_stacked_clamp_fallback_matches_numpy(x64):
    """torch's max(Vhat, eps1^2) binds for one leaf of a stack (a row of tiny gradients): the
    exact clamped reductions (the lax.cond branch) run per leaf on the stacked buffers and match
    the numpy reference, as the tree does in tests/test_adafactor_layout.py."""
    rng = np.random.default_rng(0)
    eps1 = 1e-3
    base = {k: rng.standard_normal((6, 5)) for k in ("w1", "w2", "w3")}
    scale = np.ones((6, 5))
    scale[2, :] = 1e-4
    grads = {
        "w1": lambda t: base["w1"] * scale * (1 + 0.1 * t),
        "w2": lambda t: base["w2"] * (1 - 0.1 * t),
        "w3": lambda t: 10.0 * base["w3"],
        "b": lambda t: np.full(5, 0.3 * t),
    }
    p0 = {"w1": rng.standard_normal((6, 5)), "w2": 0.01 * rng.standard_normal((6, 5)),
          "w3": rng.standard_normal((6, 5)), "b": rng.standard_normal(5)}  # fmt: skip
    assert _vhat_min(grads["w1"], (6, 5), 4, eps1) < eps1 * eps1  # the clamp does bind
    want = _numpy_run(grads, p0, 4, lr=0.05, eps1=eps1)
    tx = gradtx.adafactor(0.05, eps=eps1, convention="torch")
    packed = gradtx.pack({k: jnp.asarray(v, jnp.float64) for k, v in p0.items()}, tx)
    assert sorted(b.shape for b in packed.buffers) == [(3, 6, 5), (5,)]
    s = tx.init(packed)
    for t in range(1, 5):
        g = gradtx.pack_like(packed, {k: jnp.asarray(grads[k](t)) for k in p0})
        u, s = tx.update(g, s, packed)
        packed = gradtx.apply_updates(packed, u)
    got = gradtx.unpack(packed)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-12, err_msg=k)


def test_adafactor_stacked_under_jit_vmap_and_step():
    params = {k: v for k, v in mixed_params().items() if k in ("a", "b", "bias1", "bias2")}
    flat = gradtx.pack(params, gradtx.adafactor())
    grads = gradtx.pack_like(flat, mixed_grads(params, 0.0))

    def run(lr):
        tx = gradtx.adafactor(lr, convention="optax")
        u, _ = tx.update(grads, tx.init(flat), flat)
        return gradtx.apply_updates(flat, u)

    lrs = jnp.array([0.01, 0.1])
    batched = jax.jit(jax.vmap(run))(lrs)
    for i, lr in enumerate(lrs):
        one = run(float(lr))
        jax.tree.map(
            lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-6), batched, one
        )
    # vmapped buffers unpack with their population axis in front
    leaf = gradtx.unpack(batched)["a"]
    assert leaf.shape == (2, 7, 130)
    tx = gradtx.adafactor(0.05)
    state = tx.init(flat)
    new_p, new_s = gradtx.step(tx, grads, state, jax.tree.map(jnp.copy, flat))
    u, s2 = tx.update(grads, tx.init(flat), flat)
    assert_close_packed(new_p, gradtx.apply_updates(flat, u), scale=max_abs(flat))
    assert_close_packed(new_s, s2, scale=max(max_abs(s2), 1.0))


@pytest.mark.parametrize(
    "tx",
    [
        gradtx.clip_by_block_rms(0.05),
        gradtx.adaptive_grad_clip(0.02, eps=1e-2),
        gradtx.chain(
            gradtx.scale_by_trust_ratio(min_norm=1e-3, trust_coefficient=0.5), gradtx.scale(-0.1)
        ),
        gradtx.centralize(),
    ],
    ids=["clip_by_block_rms", "adaptive_grad_clip", "scale_by_trust_ratio", "centralize"],
)
def test_per_leaf_transforms_equal_tree_on_stacks(tx):
    """Each statistic per stacked leaf: the leaves of a stack are 100x apart in scale, so one
    taken over the whole stack moves every leaf's result. The test checks that it binds: the
    transform changes the updates on the tree."""
    params = mixed_params()
    grads = mixed_grads(params, 0.0)
    ref, _ = tx.update(grads, tx.init(params), params)
    packed = gradtx.pack(params, tx)
    assert any(kind == "stack" for kind, _, _ in packed.layout.entries)
    got, _ = tx.update(gradtx.pack_like(packed, grads), tx.init(packed), packed)
    got = gradtx.unpack(got)
    _assert_leaves_close(got, ref, ulps=4)
    changed = sum(not np.allclose(ref[name], grads[name]) for name in ref)
    assert changed >= 3, changed


@pytest.mark.parametrize("key", ["adam", "sgd[momentum=0.9]", "lion"])
def test_elementwise_optimizers_run_on_stacks(key):
    tx = OPTIMIZERS[key].make(learning_rate=0.05)
    params = mixed_params()
    ref, _ = _run(tx, params, mixed_grads, 3, stack=False)
    got, _ = _run(tx, params, mixed_grads, 3, stack=True, layout_tx=gradtx.adafactor())
    assert_close_packed(got, ref, scale=max_abs(ref))


def test_adafactor_refuses_raveled_buffers_and_says_what_to_do():
    packed = gradtx.pack(mixed_params(), gradtx.adam(0.1))
    with pytest.raises(TypeError, match=r"raveled together.*gradtx\.pack\(params, tx\)"):
        gradtx.adafactor().init(packed)


def test_adafactor_stacked_with_a_sharded_leaf_on_8_devices(tmp_path):
    """A leaf sharded over 8 devices is never stacked (its own buffer, its own sharding, treated
    as a plain leaf); the stacks and the state save and load like any tree."""
    sharded, replicated = mesh8_shardings()
    rng = np.random.default_rng(1)
    params = {
        "w1": jax.device_put(jnp.asarray(rng.standard_normal((6, 5)), jnp.float32), replicated),
        "w2": jax.device_put(jnp.asarray(rng.standard_normal((6, 5)), jnp.float32), replicated),
        "big": jax.device_put(jnp.asarray(rng.standard_normal((8, 132)), jnp.float32), sharded),
    }
    tx = gradtx.adafactor(0.05)
    flat = gradtx.pack(params, tx)
    assert [(k, m) for k, m, _ in flat.layout.entries] == [("leaf", (0,)), ("stack", (1, 2))]
    ref, _ = _run(tx, params, mixed_grads, 2, stack=False)
    got, state = _run(tx, params, mixed_grads, 2, stack=True)
    assert got["big"].sharding.is_equivalent_to(sharded, 2)
    assert_close_packed(got, ref, scale=max_abs(ref))
    gradtx.save_npz(tmp_path / "s.npz", state)
    back = gradtx.load_npz(tmp_path / "s.npz", tx.init(flat))
    jax.tree.map(np.testing.assert_array_equal, back, state)
