"""Block-wise quantised optimizer state (8 and 4 bits) and stochastic rounding into bf16/fp16."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.transforms._quantize import dequantize, quantize, signed_map, unsigned_map

# ---------------------------------------------------------------------------------------------
# the maps and the codes


def _dynamic(bits):
    """The docstring's dynamic map, built value by value: band e (e = 0 .. bits-1) holds
    2^(bits-1-e) values 10^-e * (0.1 + 0.9 k / n), k = 1 .. n."""
    vals = []
    for e in range(bits):
        n = 2 ** (bits - 1 - e)
        vals += [10.0**-e * (0.1 + 0.9 * k / n) for k in range(1, n + 1)]
    return sorted(vals)


def test_maps():
    pos = _dynamic(7)
    np.testing.assert_allclose(signed_map(8), [-v for v in pos[::-1]] + [0.0] + pos, rtol=1e-6)
    np.testing.assert_allclose(unsigned_map(8), [0.0, *_dynamic(8)], rtol=1e-6)
    np.testing.assert_allclose(signed_map(4), [-v for v in _dynamic(3)[::-1]] + [0.0] +
                               _dynamic(3), rtol=1e-6)  # fmt: skip
    np.testing.assert_allclose(unsigned_map(4), np.arange(1, 17) / 16.0, rtol=1e-7)
    assert len(signed_map(8)) == 255 and len(unsigned_map(8)) == 256
    assert len(signed_map(4)) == 15 and len(unsigned_map(4)) == 16


@pytest.mark.parametrize("bits", [8, 4])
def test_nearest_codes_match_numpy(bits):
    """Round to nearest: per block of 64, absmax scale, the signed map where the block has a
    negative element, the unsigned map otherwise; codes and the dequantised values."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 70)).astype(np.float32) * np.geomspace(1e-3, 1.0, 70)
    x[2] = np.abs(x[2])  # a non-negative stretch (blocks fully inside it use the unsigned map)
    x[3] = 0.0  # an all-zero block
    q = quantize(jnp.asarray(x), bits, 64)
    flat = np.concatenate([x.ravel(), np.zeros((-x.size) % 64, np.float32)]).reshape(-1, 64)
    want = []
    for blk in flat:
        s = np.max(np.abs(blk))
        table = signed_map(bits) if np.any(blk < 0) else unsigned_map(bits)
        codes = np.argmin(np.abs(blk[:, None] / (s if s > 0 else 1.0) - table[None]), axis=1)
        want.append(table[codes] * s)
    want = np.concatenate(want)[: x.size].reshape(x.shape)
    np.testing.assert_allclose(dequantize(q), want, rtol=1e-6, atol=0)
    assert q.codes.dtype == jnp.uint8
    assert q.codes.shape == ((x.size + 63) // 64, 64 if bits == 8 else 32)


def test_stochastic_codes_are_unbiased():
    """Stochastic rounding of the codes: the mean of many draws is the value (within 5
    standard errors of the binomial draw between the two neighbouring codes)."""
    x = jnp.asarray(np.linspace(-1.0, 1.0, 256, dtype=np.float32) ** 3)
    keys = jax.random.split(jax.random.key(0), 400)
    draws = jax.jit(jax.vmap(lambda k: dequantize(quantize(x, 4, 256, k))))(keys)
    table = signed_map(4)
    i = np.clip(np.searchsorted(table, np.asarray(x), side="right") - 1, 0, len(table) - 2)
    gap = table[i + 1] - table[i]
    se = gap / 2 / np.sqrt(400)
    assert np.all(np.abs(np.mean(draws, axis=0) - x) <= 5 * se + 1e-7)


# ---------------------------------------------------------------------------------------------
# the wrapper


def _big_tree():
    rng = np.random.default_rng(1)
    return {
        "w1": jnp.asarray(rng.normal(size=(128, 256)), jnp.float32),
        "w2": jnp.asarray(rng.normal(size=(256, 64)), jnp.float32),
        "emb": jnp.asarray(rng.normal(size=(100, 96)), jnp.float32),
        "b": jnp.zeros((256,), jnp.float32),
    }


def test_state_bytes():
    """8 bits: at most 0.3x of float32 Adam's state bytes; 4 bits: at most 0.15x. Small leaves
    and counts stay as they are."""
    params = jax.tree.map(lambda p: jax.ShapeDtypeStruct(p.shape, p.dtype), _big_tree())
    shapes = lambda tx: jax.eval_shape(tx.init, params)  # nothing allocated
    full = gradtx.state_nbytes(shapes(gradtx.adam(1e-3)))
    s8 = shapes(gradtx.quantized(gradtx.adam(1e-3), bits=8))
    s4 = shapes(gradtx.quantized(gradtx.adam(1e-3), bits=4))
    assert gradtx.state_nbytes(s8) <= 0.3 * full
    assert gradtx.state_nbytes(s4) <= 0.15 * full
    adam_state = s8.inner[0]
    assert isinstance(adam_state.mu["w1"], gradtx.QuantizedArray)
    assert isinstance(adam_state.nu["emb"], gradtx.QuantizedArray)
    assert adam_state.mu["b"].dtype == jnp.float32  # 256 < min_size
    assert adam_state.mu["w1"].codes.dtype == jnp.uint8
    assert adam_state.mu["w1"].codes.shape == (128 * 256 // 256, 256)
    assert adam_state.count.dtype == jnp.int32


def _run(tx, loss, p0, steps=400):
    def body(carry, _):
        p, s = carry
        u, s = tx.update(jax.grad(loss)(p), s, p)
        return (gradtx.apply_updates(p, u), s), None

    (p, _), _ = jax.lax.scan(body, (p0, tx.init(p0)), None, length=steps)
    return loss(p)


def _least_squares():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(256, 64)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(64, 128)), jnp.float32)
    y = x @ w + 0.1 * jnp.asarray(rng.normal(size=(256, 128)), jnp.float32)
    loss = lambda p: jnp.mean((x @ p["w"] + p["b"] - y) ** 2)
    return loss, {"w": jnp.zeros((64, 128), jnp.float32), "b": jnp.zeros((128,), jnp.float32)}


def _digits():
    from gradtx._sweep._problems import digits_mlp

    prob = digits_mlp(hidden=128)
    loss = lambda p: prob.loss_fn(p, prob.data)
    return loss, prob.params


@functools.cache  # one run per process, shared by the four cases below
def _final_losses():
    # 2,400 steps in one program: at the suite's LLVM level 0 (conftest.py) running it takes
    # about 3x as long as compiling it, so where the process runs at level 0 this program is
    # compiled at level 1 (compile and run took 13 s instead of 20 s). Other levels are kept.
    lowered = _final_losses_compiled.lower(0)
    if "--xla_backend_optimization_level=0" in os.environ.get("XLA_FLAGS", "").split():
        compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 1})
    else:
        compiled = lowered.compile()
    return {k: float(v) for k, v in compiled(0).items()}


@jax.jit
def _final_losses_compiled(_):
    out = {}
    for name, make in (("lsq", _least_squares), ("digits", _digits)):
        loss, p0 = make()
        out[name, 32] = _run(gradtx.adam(1e-2), loss, p0)
        for bits in (8, 4):
            tx = gradtx.quantized(gradtx.adam(1e-2), bits=bits, min_size=1024)
            out[name, bits] = _run(tx, loss, p0)
    return out


_FOUR_BIT_MISSES = pytest.mark.xfail(
    strict=True,
    reason="4-bit block-wise state ends 26% (least squares) and 49% (digits) above float32 "
    "Adam's loss: the zero-point-free linear map clamps small second moments within a block "
    "to absmax / 16 (Li et al. add a rank-1 normalisation, not implemented here)",
)


@pytest.mark.slow
@pytest.mark.xdist_group("quantized_final_losses")  # one worker runs (and compiles) them once
@pytest.mark.parametrize("problem", ["lsq", "digits"])
@pytest.mark.parametrize("bits", [8, pytest.param(4, marks=_FOUR_BIT_MISSES)])
def test_final_loss_within_5_percent_of_float32_adam(problem, bits):
    """400 full-batch Adam steps (lr 1e-2): least squares (64 x 128 weights) and the digits
    MLP (64-128-10; both weight matrices quantised). 8 bits is within 5%; 4 bits is not yet
    (an expected failure that turns into an error the day it passes)."""
    out = _final_losses()
    base, got = out[problem, 32], out[problem, bits]
    assert got <= 1.05 * base, (problem, bits, got, base, got / base - 1)


@pytest.mark.parametrize(
    "make, sign_based",
    [
        (lambda: gradtx.sgd(0.05, momentum=0.9), False),
        (lambda: gradtx.lion(1e-3), True),
        (lambda: gradtx.adamw(1e-3, amsgrad=True), False),
        (lambda: gradtx.adafactor(1e-2, eps=None, convention="torch"), False),
        # muon partitions the tree (matrices to Newton-Schulz, the rest to Adam): its buffers
        # hold None where the other side owns the parameter, and are quantised all the same
        (lambda: gradtx.muon(1e-2), False),
    ],
    ids=["sgd-momentum", "lion", "adamw-amsgrad", "adafactor", "muon"],
)
def test_any_optimizer(make, sign_based):
    """Parameter-shaped buffers are quantised whatever the optimizer; factored statistics
    (Adafactor's row and column vectors) are not parameter-shaped and stay float32. Ten steps
    stay within 2% (relative L2) of the float32 run; for Lion, whose step is the sign of the
    momentum mix, at least 98% of the weights end exactly where the float32 run puts them
    (only mixes near zero can change sign)."""
    params = {"w": _big_tree()["w2"]}
    rng = np.random.default_rng(2)
    grads = [{"w": jnp.asarray(rng.normal(size=(256, 64)), jnp.float32)} for _ in range(10)]
    results = []
    for tx in (make(), gradtx.quantized(make(), bits=8)):
        p, s = params, tx.init(params)
        for g in grads:
            u, s = tx.update(g, s, p)
            p = gradtx.apply_updates(p, u)
        results.append((p["w"] - params["w"], s))
    (d_ref, _), (d_q, s_q) = results
    if sign_based:
        assert np.mean(np.asarray(d_q == d_ref)) >= 0.98
    else:
        assert np.linalg.norm(d_q - d_ref) <= 0.02 * np.linalg.norm(d_ref)
    quantised = [x for x in jax.tree.leaves(s_q, is_leaf=lambda x: isinstance(
        x, gradtx.QuantizedArray)) if isinstance(x, gradtx.QuantizedArray)]  # fmt: skip
    n_param_shaped = sum(
        1 for x in jax.tree.leaves(results[0][1]) if getattr(x, "shape", None) == (256, 64)
    )
    assert len(quantised) == n_param_shaped


def test_jit_vmap_and_checkpoint(tmp_path):
    """The state is a pytree of uint8 codes and float32 scales: it passes through jit, round
    trips through save_npz / load_npz, and training resumed from the checkpoint continues
    exactly."""
    params = {"w": _big_tree()["w2"]}
    tx = gradtx.quantized(gradtx.adam(1e-3), bits=4)
    g = {"w": jnp.ones((256, 64), jnp.float32)}

    @jax.jit
    def step(p, s):
        u, s = tx.update(g, s, p)
        return gradtx.apply_updates(p, u), s

    p, s = step(params, tx.init(params))
    gradtx.save_npz(tmp_path / "state.npz", s)
    loaded = gradtx.load_npz(tmp_path / "state.npz", like=tx.init(params))
    assert jax.tree.structure(loaded) == jax.tree.structure(s)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(s)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    p1, _ = step(p, s)
    p2, _ = step(p, loaded)
    np.testing.assert_array_equal(p1["w"], p2["w"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"bits": 3}, "gradtx.quantized: bits must be one of 4, 8, got 3"),
        ({"bits": 4, "block_size": 7}, "gradtx.quantized: block_size must be even with bits=4"),
        ({"block_size": 1}, r"gradtx.quantized: block_size must be in \[2, inf\), got 1"),
        ({"min_size": -1}, r"gradtx.quantized: min_size must be in \[0, inf\), got -1"),
        ({"rounding": "up"}, "gradtx.quantized: rounding must be one of"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(gradtx.HyperparameterError, match=message):
        gradtx.quantized(gradtx.adam(1e-3), **kwargs)


# ---------------------------------------------------------------------------------------------
# stochastic rounding of parameters


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_stochastic_round_is_unbiased(dtype):
    """x between two dtype neighbours lo < hi rounds up with probability (x - lo) / (hi - lo):
    over 20000 draws the fraction rounded up is within 5 binomial standard errors."""
    lo = np.float32(1.5)
    hi = np.float32(1.5 + (2.0**-7 if dtype == jnp.bfloat16 else 2.0**-10))
    x = np.float32(lo + 0.3 * (hi - lo))
    sround = jax.jit(gradtx.stochastic_round, static_argnums=1)  # one program, not op by op
    r = sround(jnp.full((20000,), x), dtype, jax.random.key(0))
    vals = np.asarray(r.astype(jnp.float32))
    assert set(np.unique(vals)) <= {lo, hi}
    frac = np.mean(vals == hi)
    assert abs(frac - 0.3) <= 5 * np.sqrt(0.3 * 0.7 / 20000)
    # values already in the dtype, infinities and NaN are kept
    exact = jnp.asarray([1.0, -2.5, 0.0, np.inf, -np.inf], jnp.float32)
    np.testing.assert_array_equal(sround(exact, dtype, jax.random.key(1)), exact.astype(dtype))
    assert np.isnan(float(sround(jnp.float32(np.nan), dtype, jax.random.key(2))))


def _tiny_steps_problem():
    """Least squares whose weights start at 1 (bf16 spacing 2^-7 = 0.0078 above 1) and whose
    Adam steps (lr 1e-3) are far below half that spacing. The optimum (about 1.8) is beyond the
    300 steps' reach, so the loss measures the distance travelled, which stochastic rounding
    reproduces up to its random walk: per weight a variance of about travel * spacing, which
    moves a loss summed over 256 weights by about 1% (one standard deviation)."""
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(1024, 256)), jnp.float32)
    w_true = jnp.asarray(1.8 + 0.1 * rng.normal(size=(256,)), jnp.float32)
    y = x @ w_true

    def loss(p):
        return jnp.mean((x @ p["w"].astype(jnp.float32) - y) ** 2)

    return loss, {"w": jnp.ones((256,), jnp.float32)}


@jax.jit
def _bf16_runs(_):
    loss, p0 = _tiny_steps_problem()
    tx = gradtx.adam(1e-3, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    p16 = jax.tree.map(lambda p: p.astype(jnp.bfloat16), p0)

    def run(p, apply, steps=300):
        def body(carry, k):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = tx.update(g, s, p)
            return (apply(p, u, k), s), None

        keys = jax.random.split(jax.random.key(0), steps)
        (p, _), _ = jax.lax.scan(body, (p, tx.init(p)), keys)
        return loss(p)

    plain = lambda p, u, k: gradtx.apply_updates(p, u)
    sr = lambda p, u, k: gradtx.apply_updates_stochastic(p, u, k)
    wrapped_tx = gradtx.with_stochastic_rounding(tx, seed=1)

    def run_wrapped(p, steps=300):
        def body(carry, _):
            p, s = carry
            u, s = wrapped_tx.update(jax.grad(loss)(p), s, p)
            return (gradtx.apply_updates(p, u), s), None

        (p, _), _ = jax.lax.scan(body, (p, wrapped_tx.init(p)), None, length=steps)
        return loss(p)

    return {
        "initial": loss(p0),
        "fp32": run(p0, plain),
        "bf16": run(p16, plain),
        "bf16_sr": run(p16, sr),
        "bf16_sr_wrapper": run_wrapped(p16),
    }


def test_bf16_stochastic_rounding_follows_float32():
    """bf16 weights, updates below bf16 spacing: round-to-nearest stalls (the weights never
    move), stochastic rounding (the function and the wrapper) ends within 5% of the float32
    run's loss."""
    out = {k: float(v) for k, v in _bf16_runs(0).items()}
    assert out["fp32"] < 0.6 * out["initial"]  # the float32 run makes real progress
    assert out["bf16"] == pytest.approx(out["initial"], rel=1e-6)  # stalled
    for k in ("bf16_sr", "bf16_sr_wrapper"):
        assert abs(out[k] - out["fp32"]) <= 0.05 * out["fp32"], (k, out)
