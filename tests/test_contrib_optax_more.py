"""gradtx.contrib's muon, galore, split_real_and_imaginary and reduce_on_plateau against Optax.

Every reference trajectory is Optax's own contrib transform run on the same tree and loss; the
plateau schedule is also checked against values worked out by hand from Optax's rule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib as oc
import pytest

import gradtx
import gradtx.contrib as gc


def _params(dtype=jnp.float32):
    # A full-rank matrix: Newton-Schulz magnifies rounding along a zero singular value, which
    # would make two float32 programs of the same formula drift apart.
    w = jax.random.normal(jax.random.key(1), (3, 4), jnp.float32) * 0.5
    return {"w": w.astype(dtype), "b": jnp.array([0.3, -0.2, 0.1, 0.4], dtype)}


def _loss(p):
    return (
        jnp.sum(p["w"] ** 2)
        + jnp.sum(jnp.sin(p["w"] @ p["b"]))
        + 0.5 * jnp.sum((p["b"] - 1.0) ** 2)
    )


def _run(tx, apply, params, loss=_loss, steps=10, conj=False):
    """``steps`` updates from ``params`` in one compiled ``lax.scan``."""

    def body(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        if conj:  # a descent direction for complex leaves under JAX's convention
            g = jax.tree.map(jnp.conj, g)
        u, s = tx.update(g, s, p)
        return (apply(p, u), s), None

    def run():
        return jax.lax.scan(body, (params, tx.init(params)), None, length=steps)[0][0]

    return jax.jit(run)()


def _compare(build, params, loss=_loss, rtol=1e-5, atol=1e-5, conj=False):
    with jax.numpy_dtype_promotion("standard"):
        ref = _run(build(oc, optax), optax.apply_updates, params, loss, conj=conj)
    got = _run(build(gc, gradtx), gradtx.apply_updates, params, loss, conj=conj)
    moved = max(float(np.max(np.abs(ref[k] - params[k]))) for k in ref)
    assert moved > 1e-2, moved  # the comparison below is not of two unchanged trees
    for k in ref:
        assert got[k].dtype == params[k].dtype, (k, got[k].dtype)
        np.testing.assert_allclose(got[k], ref[k], rtol=rtol, atol=atol, err_msg=k)


# (id, builder taking (contrib module, its library))
CASES32 = [
    ("muon", lambda m, L: m.muon(0.05)),
    ("muon-spectral", lambda m, L: m.muon(0.05, preconditioning="spectral")),
    ("muon-aol", lambda m, L: m.muon(0.05, preconditioning="aol")),
    ("muon-schatten", lambda m, L: m.muon(0.05, preconditioning="schatten")),
    ("muon-adaptive", lambda m, L: m.muon(0.05, adaptive=True, nesterov=False)),
    ("muon-rms-decay", lambda m, L: m.muon(0.05, weight_decay=0.1, consistent_rms=0.2)),
    ("muon-adam-options", lambda m, L: m.muon(0.05, adam_b1=0.8, adam_b2=0.99,
                                              adam_weight_decay=0.1, adam_learning_rate=0.02)),
    ("galore-rank2", lambda m, L: m.galore(0.05, rank=2, update_proj_gap=3)),
    ("galore-default", lambda m, L: m.galore(0.05)),
    ("galore-rank1-decay", lambda m, L: m.galore(0.05, rank=1, scale=0.5, weight_decay=0.1,
                                                 base_optimizer=L.scale_by_lion())),
]  # fmt: skip


@pytest.mark.parametrize("build", [c[1] for c in CASES32], ids=[c[0] for c in CASES32])
def test_matches_optax_over_ten_steps_float32(build):
    """To 1e-5 (relative and absolute). Not to 1e-6 absolute: float32 rounding alone moves
    these trajectories by that much (Optax's float32 muon with the spectral, AOL and Schatten
    preconditionings ends 2e-6 to 4e-6 from its float64 result, and its float32 AdamW about
    3e-6); the float64 test below checks the same formulas to 1e-10."""
    _compare(build, _params())


def _dims_params(dtype):
    k = jax.random.normal(jax.random.key(3), (2, 3, 5), jnp.float32) * 0.5
    return {**_params(dtype), "k": k.astype(dtype)}


def _dims_loss(p):
    if "b" not in p:
        return jnp.sum(p["w"] ** 2) + jnp.sum(jnp.cos(p["k"])) + jnp.sum(p["k"][0] * p["k"][1] ** 2)
    return _loss(p) + jnp.sum(jnp.cos(p["k"])) + jnp.sum(p["k"][0] * p["k"][1] ** 2)


def _muon_dims(m):
    # "k" is a stack of two (3, 5) matrices (axis 0 is a batch axis); "b" goes to AdamW.
    return {"w": m.MuonDimensionNumbers(), "k": m.MuonDimensionNumbers(1, 2), "b": None}


CASES64 = [
    ("muon", lambda m, L: m.muon(0.05)),
    ("muon-spectral", lambda m, L: m.muon(0.05, preconditioning="spectral")),
    ("muon-aol", lambda m, L: m.muon(0.05, preconditioning="aol")),
    ("muon-schatten", lambda m, L: m.muon(0.05, preconditioning="schatten")),
    ("muon-dion", lambda m, L: m.muon(0.05, ns_coeffs="dion")),
    ("muon-rows", lambda m, L: m.muon(0.05, ns_coeffs=((3.0, -3.2, 1.2), (2.0, -1.5, 0.5)),
                                      ns_steps=4, preconditioning="aol")),
    ("muon-dims", lambda m, L: m.muon(0.05, muon_weight_dimension_numbers=_muon_dims(m))),
    ("muon-dims-fn", lambda m, L: m.muon(
        0.05, muon_weight_dimension_numbers=lambda p: _muon_dims(m), consistent_rms=0.2)),
]  # fmt: skip


@pytest.mark.parametrize("build", [c[1] for c in CASES64], ids=[c[0] for c in CASES64])
def test_matches_optax_over_ten_steps_float64(build, x64):
    """The formulas to double precision, including the cases whose float32 trajectories drift
    (Dion's steeper polynomial magnifies rounding) and the dimension numbers."""
    _compare(build, _dims_params(jnp.float64), _dims_loss, rtol=1e-10, atol=1e-12)


def test_scale_by_muon_matches_optax_float64(x64):
    """The direction alone on a tree of matrices (a stack of two in "k")."""
    p = {k: v for k, v in _dims_params(jnp.float64).items() if k != "b"}

    def build(m, lib):
        dims = {"w": m.MuonDimensionNumbers(), "k": m.MuonDimensionNumbers(1, 2)}
        return lib.chain(m.scale_by_muon(weight_dimension_numbers=dims), lib.scale(-0.05))

    _compare(build, p, _dims_loss, rtol=1e-10, atol=1e-12)


def test_galore_dimension_numbers_match_optax_float32():
    """A 3-D leaf projected as a (6, 5) matrix. In float32: Optax computes the SVD in float32
    for every dtype, gradtx in the leaf's precision, so float64 runs differ by about 1e-7."""

    def build(m, lib):
        dims = {"w": None, "k": m.GaLoreDimensionNumbers((0, 1), 2), "b": None}
        return m.galore(0.05, rank=2, weight_dimension_numbers=dims)

    _compare(build, _dims_params(jnp.float32), _dims_loss)


def _complex_params():
    re = jax.random.normal(jax.random.key(1), (3, 4))
    im = jax.random.normal(jax.random.key(2), (3, 4))
    z = jax.lax.complex(re, im).astype(jnp.complex64)
    return {"z": z, "b": jnp.array([0.3, -0.2, 0.1, 0.4], jnp.float32)}


def _complex_loss(p):
    return (
        jnp.sum(jnp.abs(p["z"] - 1j) ** 2)
        + jnp.sum(jnp.abs(p["z"] @ p["b"].astype(p["z"].dtype)) ** 2)
        + jnp.sum((p["b"] - 1.0) ** 2)
    )


@pytest.mark.parametrize(
    "inner",
    [lambda L: L.adam(0.05), lambda L: L.sgd(0.05, momentum=0.9, nesterov=True)],
    ids=["adam", "sgd-nesterov"],
)
def test_split_real_and_imaginary_matches_optax(inner):
    def build(m, lib):
        return m.split_real_and_imaginary(inner(lib))

    _compare(build, _complex_params(), _complex_loss, conj=True)


def test_split_real_and_imaginary_is_the_real_optimizer_on_the_parts():
    """Adam on the complex leaf equals Adam on the two real leaves (re, im) run by hand."""
    p = _complex_params()
    tx = gc.split_real_and_imaginary(gradtx.adam(0.05))
    got = _run(tx, gradtx.apply_updates, p, _complex_loss, conj=True)

    def real_loss(q):
        return _complex_loss({"z": jax.lax.complex(q["re"], q["im"]), "b": q["b"]})

    q = {"re": jnp.real(p["z"]), "im": jnp.imag(p["z"]), "b": p["b"]}
    want = _run(gradtx.adam(0.05), gradtx.apply_updates, q, real_loss)
    assert got["z"].dtype == jnp.complex64
    np.testing.assert_allclose(np.real(got["z"]), want["re"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.imag(got["z"]), want["im"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["b"], want["b"], rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# reduce_on_plateau

LOSSES = [5.0, 4.0, 4.0, 4.0, 4.0, 3.9999, 4.0, 4.0, 4.0, 4.0, 4.0, 2.0, 2.0, 2.0, 2.0]


def _scales(tx, losses, promotion="strict"):
    p = {"x": jnp.ones(3, jnp.float32)}
    s = tx.init(p)
    out = []
    with jax.numpy_dtype_promotion(promotion):
        for v in losses:
            u, s = tx.update(p, s, p, value=jnp.asarray(v, jnp.float32))
            out.append(float(u["x"][0]))
    return out, s


PLATEAU = [
    dict(patience=2, cooldown=2),
    dict(factor=0.2, patience=2, cooldown=1, accumulation_size=2, min_scale=0.005),
    dict(patience=1, rtol=0.0, atol=0.5),
    dict(patience=3, rtol=0.1, atol=0.2, cooldown=1),
]


@pytest.mark.parametrize("kw", PLATEAU, ids=[str(k) for k in PLATEAU])
def test_reduce_on_plateau_matches_optax(kw):
    want, ref_state = _scales(oc.reduce_on_plateau(**kw), LOSSES, "standard")
    got, state = _scales(gc.reduce_on_plateau(**kw), LOSSES)
    np.testing.assert_allclose(got, want, rtol=1e-7)
    assert min(got) < 1.0  # a reduction happened
    for a, b in zip(state, ref_state):
        np.testing.assert_allclose(a, b, rtol=1e-7)


def test_reduce_on_plateau_reduction_and_cooldown_by_hand():
    """patience=2, cooldown=2 on LOSSES, from Optax's rule: checks 1-2 improve (5, then 4 <
    5 * (1 - 1e-4)); checks 3-4 do not, so check 4 reduces (scale 0.1) and starts a cooldown of
    2 checks (5, 6: 3.9999 is not below 4 * (1 - 1e-4)); checks 7-8 are bad again, so check 8
    reduces (0.01); cooldown 9-10, bad 11, improvement 12 (2.0), bad 13-14, reduction at 14."""
    got, state = _scales(gc.reduce_on_plateau(patience=2, cooldown=2), LOSSES)
    want = [1.0] * 3 + [0.1] * 4 + [0.01] * 6 + [0.001] * 2
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert int(state.cooldown_count) == 1 and float(state.best_value) == 2.0


# ---------------------------------------------------------------------------------------------
# Hyperparameters are leaves: one compile across learning rates, and vmap over them

LR_CASES = [
    ("muon", lambda lr: gc.muon(lr)),
    ("muon-aol-dims", lambda lr: gc.muon(lr, preconditioning="aol",
                                         muon_weight_dimension_numbers=_muon_dims(gc))),
    ("galore", lambda lr: gc.galore(lr, rank=2, update_proj_gap=2)),
    ("split_real_and_imaginary", lambda lr: gc.split_real_and_imaginary(gradtx.adam(lr))),
]  # fmt: skip


@pytest.mark.parametrize("make", [c[1] for c in LR_CASES], ids=[c[0] for c in LR_CASES])
def test_one_compile_for_four_learning_rates(make):
    traces = []

    @jax.jit
    def step(tx, p, s):
        traces.append(1)
        u, s = tx.update(jax.grad(_dims_loss)(p), s, p)
        return gradtx.apply_updates(p, u), s

    finals = []
    for lr in (1e-2, 3e-2, 1e-1, 2e-1):
        tx = make(lr)
        p = _dims_params(jnp.float32)
        s = tx.init(p)
        for _ in range(3):
            p, s = step(tx, p, s)
        finals.append(p)
    assert len(traces) == 1, len(traces)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(finals))
    assert not np.allclose(finals[0]["w"], finals[3]["w"])


@pytest.mark.parametrize("make", [c[1] for c in LR_CASES[:3]], ids=[c[0] for c in LR_CASES[:3]])
def test_vmap_over_the_learning_rate_equals_a_loop(make, x64):
    """In float64, so that the comparison is of the programs, not of float32 rounding (which
    Newton-Schulz magnifies differently in batched and single matrix products)."""
    lrs = jnp.array([1e-2, 5e-2, 1e-1], jnp.float64)
    p0 = _dims_params(jnp.float64)

    def run(lr):
        return _run(make(lr), gradtx.apply_updates, p0, _dims_loss, steps=4)

    batched = jax.vmap(run)(lrs)
    for i, lr in enumerate(lrs):
        one = run(lr)
        for k in one:
            np.testing.assert_allclose(batched[k][i], one[k], rtol=1e-10, atol=1e-12, err_msg=k)


# ---------------------------------------------------------------------------------------------
# Bad input fails at construction, naming the function, the argument, the value and the range

BAD = [
    (lambda: gc.muon(0.1, beta=1.0), "gradtx.contrib.muon: beta must be in [0, 1), got 1.0"),
    (lambda: gc.muon(-0.1), "gradtx.contrib.muon: learning_rate must be in [0, inf), got -0.1"),
    (lambda: gc.muon(0.1, adam_b2=1.5), "gradtx.contrib.muon: adam_b2 must be in [0, 1), got 1.5"),
    (lambda: gc.muon(0.1, adam_learning_rate=-1.0),
     "gradtx.contrib.muon: adam_learning_rate must be in [0, inf), got -1.0"),
    (lambda: gc.muon(0.1, preconditioning="polar"), "gradtx.contrib.muon: preconditioning must "
     "be one of"),
    (lambda: gc.muon(0.1, ns_coeffs="fast"), "gradtx.contrib.muon: ns_coeffs must be (a, b, c)"),
    (lambda: gc.muon(0.1, ns_coeffs=(1.0, 2.0)),
     "gradtx.contrib.muon: ns_coeffs must have shape (3,) or (n, 3), got shape (2,)"),
    (lambda: gc.muon(0.1, ns_coeffs="dion", ns_steps=3),
     "gradtx.contrib.muon: ns_coeffs has 5 rows (one per Newton-Schulz step), more than "
     "ns_steps=3"),
    (lambda: gc.muon(0.1, consistent_rms=-0.2),
     "gradtx.contrib.muon: consistent_rms must be in [0, inf), got -0.2"),
    (lambda: gc.muon(0.1, muon_weight_dimension_numbers={"w": 3}),
     "gradtx.contrib.muon: muon_weight_dimension_numbers must be None, a MuonDimensionNumbers"),
    (lambda: gc.scale_by_muon(ns_steps=-1),
     "gradtx.contrib.scale_by_muon: ns_steps must be in [0, 1000], got -1"),
    (lambda: gc.galore(0.1, rank=0), "gradtx.contrib.galore: rank must be an integer in [1, inf)"),
    (lambda: gc.scale_by_galore(rank=2.5),
     "gradtx.contrib.scale_by_galore: rank must be an integer in [1, inf), got 2.5"),
    (lambda: gc.galore(0.1, update_proj_gap=0),
     "gradtx.contrib.galore: update_proj_gap must be in [1, inf), got 0"),
    (lambda: gc.galore(0.1, weight_decay=-1.0),
     "gradtx.contrib.galore: weight_decay must be in [0, inf), got -1.0"),
    (lambda: gc.reduce_on_plateau(factor=1.0),
     "gradtx.contrib.reduce_on_plateau: factor must be in (0, 1), got 1.0"),
    (lambda: gc.reduce_on_plateau(rtol=1.5),
     "gradtx.contrib.reduce_on_plateau: rtol must be in [0, 1], got 1.5"),
    (lambda: gc.reduce_on_plateau(rtol=0.0, atol=0.0),
     "gradtx.contrib.reduce_on_plateau: rtol and atol must not both be 0"),
    (lambda: gc.reduce_on_plateau(accumulation_size=0),
     "gradtx.contrib.reduce_on_plateau: accumulation_size must be in [1, inf), got 0"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(gradtx.HyperparameterError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_scale_by_muon_names_a_leaf_that_is_not_a_matrix():
    tx = gc.scale_by_muon()
    p = {"k": jnp.ones((2, 3, 4))}
    with pytest.raises(ValueError, match=r"gradtx.contrib.scale_by_muon: a leaf of shape \(2, 3"):
        tx.update(p, tx.init(p))


def test_reduce_on_plateau_needs_the_loss():
    tx = gc.reduce_on_plateau()
    p = {"x": jnp.ones(2)}
    with pytest.raises(TypeError, match="needs the loss"):
        tx.update(p, tx.init(p), p)
