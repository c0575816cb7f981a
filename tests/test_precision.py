"""Mixed precision: low-precision params, float32 moments and master weights, complex params."""

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import optax
import pytest

import gradtx
from gradtx import registry

BF16 = ml_dtypes.bfloat16


def _grads(n, shape=(4,), dtype=jnp.bfloat16, seed=0):
    """A fixed sequence of gradients (independent of the params, so runs compare exactly)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), n)
    return [{"w": (jax.random.normal(k, shape) * 0.3).astype(dtype)} for k in keys]


F32 = lambda x: float(np.float32(x))  # a hyperparameter as gradtx holds it for float32 math


def _np_adam(gs):
    """Adam's updates in float64 NumPy (the docstring's formula), lr 1e-2 and defaults."""
    b1, b2, eps, lr = F32(0.9), F32(0.999), F32(1e-8), F32(1e-2)
    m = v = 0.0
    out = []
    for t, g in enumerate(gs, start=1):
        g = np.asarray(g, np.float64)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        out.append(-lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps))
    return out, m, v


def _ulp(x, dtype):
    """One unit in the last place of ``x`` in ``dtype`` (for float-to-dtype rounding bounds)."""
    x = np.abs(np.asarray(x, np.float64))
    fi = ml_dtypes.finfo(dtype)
    exp = np.floor(np.log2(np.maximum(x, float(fi.smallest_normal))))
    return 2.0 ** (exp - fi.nmant)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_low_precision_params_with_float32_moments(dtype):
    gs = _grads(4, dtype=dtype)
    params = {"w": jnp.zeros((4,), dtype)}
    tx = gradtx.adam(1e-2, mu_dtype=jnp.float32, nu_dtype=jnp.float32)
    state = tx.init(params)
    adam_state = state[0]
    assert adam_state.mu["w"].dtype == jnp.float32 and adam_state.nu["w"].dtype == jnp.float32
    ref, m_ref, v_ref = _np_adam([np.asarray(g["w"], np.float64) for g in gs])
    for g, r in zip(gs, ref):
        u, state = tx.update(g, state, params)
        assert u["w"].dtype == dtype
        # The float64 update rounded once to the param dtype (plus float32 arithmetic).
        err = np.abs(np.asarray(u["w"], np.float64) - r)
        assert np.all(err <= _ulp(r, dtype)), (err, r)
        params = gradtx.apply_updates(params, u)
        assert params["w"].dtype == dtype
    np.testing.assert_allclose(np.asarray(state[0].mu["w"]), m_ref, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(state[0].nu["w"]), v_ref, rtol=1e-6)


def test_sgd_float32_accumulator_with_bf16_params():
    gs = _grads(4)
    params = {"w": jnp.zeros((4,), jnp.bfloat16)}
    tx = gradtx.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.float32)
    state = tx.init(params)
    assert state[0].trace["w"].dtype == jnp.float32
    b = None
    for g in gs:
        u, state = tx.update(g, state, params)
        gn = np.asarray(g["w"], np.float64)
        b = gn if b is None else 0.9 * b + gn
        assert u["w"].dtype == jnp.bfloat16
        assert np.all(np.abs(np.asarray(u["w"], np.float64) + 0.1 * b) <= _ulp(0.1 * b, BF16))
    np.testing.assert_allclose(np.asarray(state[0].trace["w"]), b, rtol=1e-6)


def test_bias_corrections_and_eps_in_float32_with_bf16_moments():
    """bf16 moments (the default for bf16 params) but float32 arithmetic: in bf16, b2 = 0.999
    rounds to 1.0 and 1 - b2^t would be 0 (a NaN update); in float32 it is 1e-3."""
    assert float(jnp.asarray(0.999, jnp.bfloat16)) == 1.0
    g = np.asarray([0.3, -1e-3, 2.0, 0.0], np.float32).astype(BF16)
    params = {"w": jnp.zeros((4,), jnp.bfloat16)}
    tx = gradtx.adam(1.0)
    state = tx.init(params)
    u, state = tx.update({"w": jnp.asarray(g)}, state, params)
    # Oracle: moments computed in float32 and stored in bf16, the rest in float64.
    gf = g.astype(np.float32)
    m = (np.float32(0.1) * gf).astype(BF16).astype(np.float64)
    v = (np.float32(1 - np.float32(0.999)) * gf * gf).astype(BF16).astype(np.float64)
    ref = -(m / (1 - F32(0.9))) / (np.sqrt(v / (1 - F32(0.999))) + F32(1e-8))
    out = np.asarray(u["w"], np.float64)
    assert np.all(np.isfinite(out))
    # Within one bf16 rounding of the update, plus float32 arithmetic (relative 2^-20).
    assert np.all(np.abs(out - ref) <= _ulp(ref, BF16) + 1e-6 * np.abs(ref))


def _data(x):
    """A leaf as a NumPy array (a typed PRNG key as its raw key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


@pytest.mark.parametrize("key", sorted(registry.OPTIMIZERS))
def test_fp16_zero_gradients_never_nan(key):
    """eps (1e-8 underflows to 0 in fp16) and the bias corrections are float32, so 0 / 0 never
    happens; a zero gradient after a tiny one (whose square underflows in fp16 moments) is
    finite too."""
    params = {"w": jnp.ones((3,), jnp.float16), "s": jnp.ones((), jnp.float16)}
    spec = registry.OPTIMIZERS[key]
    tx = spec.make()
    extra = {"loss": jnp.asarray(0.5)} if spec.reads_loss else {}
    state = tx.init(params)
    for g in (0.0, 0.0, 1e-4, 0.0):
        grads = jax.tree.map(lambda p, g=g: jnp.full_like(p, g), params)
        u, state = tx.update(grads, state, params, **extra)
        for leaf in jax.tree.leaves((u, state)):
            assert np.all(np.isfinite(_data(leaf).astype(np.float64))), (key, g)


def test_master_weights_accumulate_steps_that_bf16_rounds_away():
    params = {"w": jnp.ones((4,), jnp.bfloat16)}
    g = {"w": jnp.ones((4,), jnp.bfloat16)}
    plain = gradtx.sgd(1e-3)
    master = gradtx.with_master_weights(gradtx.sgd(1e-3))
    p_plain, s_plain = params, plain.init(params)
    p_master, s_master = params, master.init(params)
    for _ in range(10):
        u, s_plain = plain.update(g, s_plain, p_plain)
        p_plain = gradtx.apply_updates(p_plain, u)
        u, s_master = master.update(g, s_master, p_master)
        p_master = gradtx.apply_updates(p_master, u)
    # bf16's spacing below 1 is 2^-8: a 1e-3 step rounds back to 1 every time.
    assert np.all(np.asarray(p_plain["w"], np.float32) == 1.0)
    np.testing.assert_allclose(np.asarray(s_master.master["w"]), 1 - 10 * 1e-3, rtol=1e-6)
    np.testing.assert_array_equal(
        np.asarray(p_master["w"]), np.asarray(s_master.master["w"].astype(jnp.bfloat16))
    )


def test_master_weights_follow_the_float32_run_exactly():
    gs = _grads(5)
    tx = gradtx.adamw(1e-2, weight_decay=1e-2)
    p16 = {"w": jnp.linspace(-1, 1, 4).astype(jnp.bfloat16)}
    p32 = jax.tree.map(lambda x: x.astype(jnp.float32), p16)
    mw = gradtx.with_master_weights(tx)
    s16, s32 = mw.init(p16), tx.init(p32)
    assert s16.master["w"].dtype == jnp.float32
    for g in gs:
        u, s16 = mw.update(g, s16, p16)
        p16 = gradtx.apply_updates(p16, u)
        u32, s32 = tx.update(jax.tree.map(lambda x: x.astype(jnp.float32), g), s32, p32)
        p32 = gradtx.apply_updates(p32, u32)
        # The master copy is the float32 run; the bf16 params are it rounded.
        np.testing.assert_array_equal(np.asarray(s16.master["w"]), np.asarray(p32["w"]))
        np.testing.assert_array_equal(
            np.asarray(p16["w"]), np.asarray(p32["w"].astype(jnp.bfloat16))
        )


def test_master_weights_need_params():
    tx = gradtx.with_master_weights(gradtx.sgd(0.1))
    p = {"w": jnp.ones((2,), jnp.bfloat16)}
    with pytest.raises(ValueError, match=r"WithMasterWeights.update: master weights need params"):
        tx.update(p, tx.init(p))


# --- complex parameters -----------------------------------------------------------------------


def _complex_grads(n, shape=(3,)):
    keys = jax.random.split(jax.random.PRNGKey(3), 2 * n)
    return [
        jax.lax.complex(
            jax.random.normal(keys[2 * i], shape), jax.random.normal(keys[2 * i + 1], shape)
        )
        for i in range(n)
    ]


def _np_adam_complex(gs, convention, b1=0.9, b2=0.999, eps=1e-8, lr=1e-2):
    m, v_abs = 0.0, 0.0
    v_re = v_im = 0.0
    out = []
    for t, g in enumerate(gs, start=1):
        g = np.asarray(g, np.complex128)
        m = b1 * m + (1 - b1) * g
        mh = m / (1 - b1**t)
        if convention == "abs":
            v_abs = b2 * v_abs + (1 - b2) * np.abs(g) ** 2
            out.append(-lr * mh / (np.sqrt(v_abs / (1 - b2**t)) + eps))
        else:
            v_re = b2 * v_re + (1 - b2) * g.real**2
            v_im = b2 * v_im + (1 - b2) * g.imag**2
            re = mh.real / (np.sqrt(v_re / (1 - b2**t)) + eps)
            im = mh.imag / (np.sqrt(v_im / (1 - b2**t)) + eps)
            out.append(-lr * (re + 1j * im))
    return out


@pytest.mark.parametrize("convention", ["abs", "real_view"])
def test_adam_complex_conventions(convention):
    gs = _complex_grads(4)
    params = {"w": jnp.zeros((3,), jnp.complex64)}
    tx = gradtx.adam(1e-2, complex_convention=convention)
    state = tx.init(params)
    v_dtype = {"abs": jnp.float32, "real_view": jnp.complex64}[convention]
    assert state[0].nu["w"].dtype == v_dtype
    ref = _np_adam_complex(gs, convention)
    for g, r in zip(gs, ref):
        u, state = tx.update({"w": g}, state, params)
        assert u["w"].dtype == jnp.complex64
        np.testing.assert_allclose(np.asarray(u["w"]), r, rtol=1e-5, atol=1e-7)


# Optax forms 1 - b2 in float64 before rounding it to float32; gradtx rounds b2 to float32 first
# (so v_1 / (1 - b2^1) is exactly g^2). The two values of 1 - b2 differ by up to half a float32
# spacing of b2, relatively 0.5 * spacing / (1 - b2); the square root halves that.
_OPTAX_RTOL = 0.5 * 0.5 * float(np.spacing(np.float32(0.999))) / (1 - 0.999) + 1e-6


def test_adam_abs_convention_is_optax_and_real_view_is_adam_on_pairs():
    gs = _complex_grads(3)
    params = {"w": jnp.zeros((3,), jnp.complex64)}
    tx, otx = gradtx.adam(1e-2), optax.adam(1e-2)
    s = tx.init(params)
    with jax.numpy_dtype_promotion("standard"):
        os_ = otx.init(params)
    rv = gradtx.adam(1e-2, amsgrad=True, complex_convention="real_view")
    real = gradtx.adam(1e-2, amsgrad=True)
    pr = {"w": jnp.zeros((3, 2))}
    s_rv, s_real = rv.init(params), real.init(pr)
    for g in gs:
        u, s = tx.update({"w": g}, s, params)
        with jax.numpy_dtype_promotion("standard"):  # Optax mixes real and complex
            ou, os_ = otx.update({"w": g}, os_, params)
        np.testing.assert_allclose(np.asarray(u["w"]), np.asarray(ou["w"]), rtol=_OPTAX_RTOL)
        u, s_rv = rv.update({"w": g}, s_rv, params)
        ur, s_real = real.update({"w": jnp.stack([g.real, g.imag], -1)}, s_real, pr)
        np.testing.assert_allclose(np.asarray(u["w"].real), np.asarray(ur["w"][:, 0]), rtol=1e-6)
        np.testing.assert_allclose(np.asarray(u["w"].imag), np.asarray(ur["w"][:, 1]), rtol=1e-6)


def test_complex_convention_is_validated():
    with pytest.raises(gradtx.HyperparameterError, match=r"complex_convention must be one of"):
        gradtx.adam(1e-3, complex_convention="torch")


_COMPLEX_FIRST_STEP = {
    # name: (optimizer, its first update in float64 NumPy with the |g|^2 convention)
    "sgd_momentum_wd": (
        lambda: gradtx.sgd(0.1, momentum=0.9, weight_decay=0.1),
        lambda g, p: -0.1 * (g + 0.1 * p),
    ),
    "rmsprop": (
        lambda: gradtx.rmsprop(0.1, decay=0.99, eps_in_sqrt=False),
        lambda g, p: -0.1 * g / (np.sqrt(0.01 * np.abs(g) ** 2) + 1e-8),
    ),
    "rmsprop_centered": (
        lambda: gradtx.rmsprop(0.1, decay=0.99, eps_in_sqrt=False, centered=True, momentum=0.5),
        lambda g, p: (
            -0.1
            * g
            / (np.sqrt(np.maximum(0.0, 0.01 * np.abs(g) ** 2 - np.abs(0.01 * g) ** 2)) + 1e-8)
        ),
    ),
    "adagrad": (
        lambda: gradtx.adagrad(0.1, 0.0, 1e-10, eps_placement="outside"),
        lambda g, p: -0.1 * g / (np.sqrt(np.abs(g) ** 2) + 1e-10),
    ),
}


@pytest.mark.parametrize("name", sorted(_COMPLEX_FIRST_STEP))
def test_complex_first_step_uses_abs_squared(name):
    """The seed optimizers take complex params under strict promotion, with |g|^2."""
    make, oracle = _COMPLEX_FIRST_STEP[name]
    g = np.asarray(_complex_grads(1)[0], np.complex128)
    p = np.asarray([1 + 2j, -0.5j, 0.25], np.complex128)
    tx = make()
    params = {"w": jnp.asarray(p, jnp.complex64)}
    u, _ = tx.update({"w": jnp.asarray(g, jnp.complex64)}, tx.init(params), params)
    assert u["w"].dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(u["w"]), oracle(g, p), rtol=1e-5)
