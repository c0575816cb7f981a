"""Regression tests: each one failed before the fix of the behaviour it names."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

# --------------------------------------------------------------------------------------------
# Muon on complex matrices follows Optax's convention (X X^H, |x|^2 in the norm)


def _complex_matrix(shape, seed):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    return (jax.random.normal(k1, shape) + 1j * jax.random.normal(k2, shape)).astype(jnp.complex64)


def test_muon_complex_matrix_matches_optax(standard_promotion):
    # Square, so both libraries' shape scale is 1; the first step orthogonalises the direction of
    # the gradient in both (Optax's bias correction only rescales it, and the iteration
    # normalises it away).
    g = _complex_matrix((4, 4), 0)
    p = jnp.zeros((4, 4), jnp.complex64)
    tx = gradtx.muon(0.1, weight_decay=0.0, ns_dtype=jnp.float32)
    u, _ = tx.update(g, tx.init(p), p)
    ref = optax.contrib.muon(0.1)
    u_ref, _ = ref.update(g, ref.init(p), p)
    assert u.dtype == jnp.complex64
    np.testing.assert_allclose(np.asarray(u), np.asarray(u_ref), rtol=1e-5, atol=1e-6)


def test_muon_keeps_the_imaginary_part(standard_promotion):
    p = jnp.eye(3, dtype=jnp.complex64)
    g = 1j * jnp.eye(3, dtype=jnp.complex64)
    tx = gradtx.muon(0.1, weight_decay=0.0, ns_dtype=jnp.float32)
    u, _ = tx.update(g, tx.init(p), p)
    ref = optax.contrib.muon(0.1)
    u_ref, _ = ref.update(g, ref.init(p), p)
    assert np.all(np.abs(np.imag(np.diag(np.asarray(u)))) > 0.05)
    np.testing.assert_allclose(np.asarray(u), np.asarray(u_ref), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Empty trees through masked, freeze and partition (Optax returns {} for them)


@pytest.mark.parametrize(
    ("make", "empty"),
    [
        (lambda: gradtx.masked(gradtx.sgd(1.0), {}), {}),
        (lambda: gradtx.masked(gradtx.adam(1.0), []), []),
        (lambda: gradtx.freeze({}, gradtx.adam(1.0)), {}),
        (lambda: gradtx.partition({"a": gradtx.adam(1.0)}, {}), {}),
    ],
    ids=["masked-sgd", "masked-adam-list", "freeze", "partition"],
)
def test_empty_tree_through_mask_and_partition(make, empty, standard_promotion):
    ref = optax.masked(optax.sgd(1.0), empty)
    u_ref, _ = ref.update(empty, ref.init(empty), empty)
    tx = make()
    state = tx.init(empty)
    u, state = tx.update(empty, state, empty)
    assert u == u_ref
    u, state = jax.jit(tx.update)(empty, state, empty)
    assert u == u_ref


# --------------------------------------------------------------------------------------------
# partition names the path its label tree lacks


def test_partition_names_the_missing_label_path():
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    tx = gradtx.partition({"a": gradtx.sgd(1.0)}, {"w": "a"})
    with pytest.raises(gradtx.TreeMismatchError, match=r"\['b'\]") as err:
        tx.init(params)
    assert "['w']" not in str(err.value)


def test_partition_names_a_nested_missing_label_path():
    params = {"enc": {"w": jnp.ones(2), "b": jnp.ones(2)}, "head": jnp.ones(2)}
    tx = gradtx.partition({"a": gradtx.sgd(1.0)}, {"enc": {"w": "a"}, "head": "a"})
    with pytest.raises(gradtx.TreeMismatchError, match=r"\['enc'\]\['b'\]"):
        tx.init(params)


# --------------------------------------------------------------------------------------------
# warmup_cosine_decay rejects a decay that ends before the warmup does


@pytest.mark.parametrize("decay_steps", [10, 5])
def test_warmup_cosine_decay_rejects_decay_steps_not_after_warmup(decay_steps):
    with pytest.raises(ValueError):  # Optax refuses the same arguments
        optax.warmup_cosine_decay_schedule(0.2, 1.2, 10, decay_steps, 0.0)
    msg = (
        rf"gradtx\.warmup_cosine_decay_schedule: decay_steps must be in \(warmup_steps, inf\) = "
        rf"\(10, inf\), got {decay_steps}"
    )
    with pytest.raises(gradtx.HyperparameterError, match=msg):
        gradtx.warmup_cosine_decay_schedule(0.2, 1.2, 10, decay_steps, 0.0)


def test_warmup_cosine_decay_reaches_its_peak_after_the_warmup():
    sched = gradtx.warmup_cosine_decay_schedule(0.2, 1.2, 10, 11, 0.0)
    ref = optax.warmup_cosine_decay_schedule(0.2, 1.2, 10, 11, 0.0)
    assert float(sched(10)) == pytest.approx(float(ref(10)), rel=1e-6)
    assert float(ref(10)) == pytest.approx(1.2, rel=1e-6)


# --------------------------------------------------------------------------------------------
# Adafactor keeps its statistics of g^2 in float32 for float16 params


def _fp16_grads(shape):
    base = jnp.ones(shape, jnp.float32)
    return [300.0 * base, base.at[0, 0].set(-2.0), 0.5 * base]  # all exact in float16


@pytest.mark.parametrize("shape", [(4, 4), (4, 6)], ids=["unfactored-stack", "factored"])
def test_adafactor_float16_after_a_large_gradient_matches_float32_optax(shape, standard_promotion):
    # Optax in float32 is the reference (Optax in float16 overflows too); the float16 run may
    # differ from it only by the final rounding to float16 (one float16 ulp: 2^-10 relative).
    p32 = {"w": jnp.ones(shape, jnp.float32)}
    p16 = {"w": jnp.ones(shape, jnp.float16)}
    ref = optax.adafactor(1e-2, min_dim_size_to_factor=2)
    tx = gradtx.adafactor(1e-2, min_dim_size_to_factor=2, convention="optax")
    s_ref, s = ref.init(p32), tx.init(p16)
    for g in _fp16_grads(shape):
        u_ref, s_ref = ref.update({"w": g}, s_ref, p32)
        u, s = tx.update({"w": g.astype(jnp.float16)}, s, p16)
        assert u["w"].dtype == jnp.float16
        np.testing.assert_allclose(
            np.asarray(u["w"], np.float32), np.asarray(u_ref["w"]), rtol=2.0**-10
        )


def test_adafactor_torch_convention_float16_stays_finite():
    p16 = {"w": jnp.ones((4, 6), jnp.float16), "b": jnp.ones((6,), jnp.float16)}
    tx = gradtx.adafactor(1e-2, min_dim_size_to_factor=2, eps=None, convention="torch")
    s = tx.init(p16)
    for g in _fp16_grads((4, 6)):
        grads = {"w": g.astype(jnp.float16), "b": g[0].astype(jnp.float16)}
        u, s = tx.update(grads, s, p16)
        assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(u))


# --------------------------------------------------------------------------------------------
# SM3 passes a NaN gradient on to the update, as Optax does


def test_sm3_nan_gradient_gives_a_nan_update_like_optax(standard_promotion):
    p = {"w": jnp.ones((2, 3), jnp.float32), "b": jnp.ones((3,), jnp.float32)}
    nan_g = {
        "w": jnp.ones((2, 3), jnp.float32).at[0, 0].set(jnp.nan),
        "b": jnp.asarray([jnp.nan, 1.0, 2.0], jnp.float32),
    }
    ok_g = jax.tree.map(lambda x: jnp.full_like(x, 0.5), p)
    ref = optax.sm3(0.1)
    tx = gradtx.sm3(0.1)
    s_ref, s = ref.init(p), tx.init(p)
    for g in [nan_g, ok_g, ok_g]:
        u_ref, s_ref = ref.update(g, s_ref, p)
        u, s = tx.update(g, s, p)
        for k in p:
            np.testing.assert_allclose(
                np.asarray(u[k]), np.asarray(u_ref[k]), rtol=1e-6, equal_nan=True
            )
    assert np.isnan(np.asarray(u["w"])[0, 0])


# --------------------------------------------------------------------------------------------
# save_npz replaces the file atomically; load_npz names a bad file; both use the same path


_KILLED_SAVER = """
import sys
import numpy as np
import gradtx

target = sys.argv[1]
big = {"w": np.arange(4 * 1024 * 1024, dtype=np.float32)}  # 16 MiB
print("saving", flush=True)
while True:  # the parent kills this process while one of these saves is being written
    gradtx.save_npz(target, big)
"""


def test_save_killed_midway_leaves_the_previous_checkpoint(tmp_path):
    import os
    import pathlib
    import signal
    import subprocess
    import sys
    import time

    target = tmp_path / "ckpt.npz"
    old = {"w": np.full((4,), 7.0, np.float32)}
    gradtx.save_npz(target, old)
    root = pathlib.Path(gradtx.__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=str(root), JAX_PLATFORMS="cpu")
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SAVER, str(target)],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == b"saving"
        time.sleep(1.0)  # several 16 MiB saves in a row: the kill lands inside one of them
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    like = {"w": jnp.zeros((4,), jnp.float32)}
    big_like = {"w": jnp.zeros((4 * 1024 * 1024,), jnp.float32)}
    try:
        back = gradtx.load_npz(target, like)
    except gradtx.TreeMismatchError:  # a completed save of the big tree replaced the old one
        back = gradtx.load_npz(target, big_like)
        np.testing.assert_array_equal(np.asarray(back["w"]), np.arange(4 * 1024 * 1024))
    else:
        np.testing.assert_array_equal(np.asarray(back["w"]), old["w"])


def test_load_npz_names_a_truncated_or_corrupt_file(tmp_path):
    target = tmp_path / "ckpt.npz"
    tree = {"w": jnp.arange(1000, dtype=jnp.float32)}
    gradtx.save_npz(target, tree)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"ckpt\.npz is corrupt or truncated"):
        gradtx.load_npz(target, tree)
    target.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"ckpt\.npz is corrupt or truncated"):
        gradtx.load_npz(target, tree)


def test_save_and_load_npz_use_the_same_path_rule(tmp_path):
    tree = {"w": jnp.arange(3, dtype=jnp.float32)}
    gradtx.save_npz(tmp_path / "x", tree)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]  # numpy's savez rule
    back = gradtx.load_npz(tmp_path / "x", tree)
    np.testing.assert_array_equal(np.asarray(back["w"]), np.arange(3))
    back = gradtx.load_npz(tmp_path / "x.npz", tree)
    np.testing.assert_array_equal(np.asarray(back["w"]), np.arange(3))


# --------------------------------------------------------------------------------------------
# Muon and SOAP update on meshes with Explicit axes (jax.make_mesh's default)

needs_8 = pytest.mark.skipif(
    jax.device_count() < 8, reason="needs XLA_FLAGS=--xla_force_host_platform_device_count=8"
)


def _explicit_mesh():
    from jax.sharding import AxisType

    return jax.make_mesh((8,), ("data",), axis_types=(AxisType.Explicit,))


def _sharded_params(mesh, dtype=jnp.float32):
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(3), 3)
    params = {
        "w": jax.random.normal(k1, (16, 8), dtype),
        "stack": jax.random.normal(k2, (8, 4, 4), dtype),
        "b": jax.random.normal(k3, (8,), dtype),
    }
    specs = {"w": P("data", None), "stack": P("data", None, None), "b": P("data")}
    sharded = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in params.items()}
    return params, sharded


#: SOAP runs in float64. Three steps give a rank-deficient 16 x 16 preconditioner for "w", whose
#: null-space eigenvectors are arbitrary, so in float32 a relative change of 1e-7 in the gradient
#: moves "w" by 0.17 (an amplification of about 2e6), and the sharded program's other reduction
#: order decides the result. In float64 the same amplification of float64 rounding (2.2e-16) is
#: below 1e-9.
@needs_8
@pytest.mark.parametrize(
    "make, dtype, rtol, atol",
    [
        (lambda: gradtx.muon(0.01, ns_dtype=jnp.float32), jnp.float32, 1e-5, 1e-6),
        (lambda: gradtx.soap(0.01, precondition_frequency=2), jnp.float64, 1e-9, 1e-9),
    ],
    ids=["muon", "soap"],
)
def test_matrix_optimizers_update_on_an_explicit_mesh(make, dtype, rtol, atol):
    with jax.enable_x64(dtype == jnp.float64):
        mesh = _explicit_mesh()
        params, sharded = _sharded_params(mesh, dtype)
        tx = make()
        s_ref, s = tx.init(params), tx.init(sharded)
        p_ref, p = params, sharded
        for i in range(3):
            g_ref = jax.tree.map(lambda x, i=i: jnp.sin(x * (i + 1)), p_ref)
            g = jax.tree.map(lambda x, i=i: jnp.sin(x * (i + 1)), p)
            u_ref, s_ref = tx.update(g_ref, s_ref, p_ref)
            u, s = tx.update(g, s, p)
            p_ref, p = gradtx.apply_updates(p_ref, u_ref), gradtx.apply_updates(p, u)
    for k in params:
        assert u[k].sharding == sharded[k].sharding, k
        assert p[k].dtype == p_ref[k].dtype == dtype, k
        np.testing.assert_allclose(np.asarray(p[k]), np.asarray(p_ref[k]), rtol=rtol, atol=atol)


# --------------------------------------------------------------------------------------------
# A user's jax.jit(tx.init) keeps each buffer on its parameter's sharding


@needs_8
@pytest.mark.parametrize(
    "make", [lambda: gradtx.adam(1e-3), lambda: gradtx.sgd(0.1, momentum=0.9)], ids=["adam", "sgd"]
)
def test_user_jit_of_init_keeps_param_shardings(make):
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((8,), ("data",), axis_types=(AxisType.Auto,))
    w = jnp.asarray([[1.0, -2.0, jnp.inf, -jnp.inf]] * 16, jnp.float32)  # inf must not give NaN
    b = jnp.arange(8, dtype=jnp.float32) - 4.0
    params = {
        "w": jax.device_put(w, NamedSharding(mesh, P("data", None))),
        "b": jax.device_put(b, NamedSharding(mesh, P("data"))),
    }
    tx = make()
    state = jax.jit(tx.init)(params)
    buffers = 0
    for got in jax.tree.leaves(state):
        # every buffer of a fresh Adam or momentum state is +0.0 bit for bit (no -0.0 from the
        # negative entries, no NaN from the infinite ones)
        zero = np.zeros(np.shape(got), np.asarray(got).dtype)
        np.testing.assert_array_equal(
            np.atleast_1d(np.asarray(got)).view(np.uint8), np.atleast_1d(zero).view(np.uint8)
        )
        if got.ndim:
            buffers += 1
            spec = params["w"].sharding.spec if got.ndim == 2 else params["b"].sharding.spec
            assert got.sharding.is_equivalent_to(NamedSharding(mesh, spec), got.ndim)
    assert buffers >= 2


# --------------------------------------------------------------------------------------------
# Schedules at counts past 2**24: integer counts are compared and reduced in integers

BIG = 20_000_001  # the first odd count past 2**24 that float32 cannot hold


def _i32(c):
    return jnp.asarray(c, jnp.int32)


def test_piecewise_constant_fires_exactly_at_a_large_boundary(standard_promotion):
    sched = gradtx.piecewise_constant_schedule(1.0, {BIG: 0.1})
    ref = optax.piecewise_constant_schedule(1.0, {BIG: 0.1})
    for c in (BIG - 1, BIG, BIG + 1):
        assert float(sched(_i32(c))) == pytest.approx(float(ref(_i32(c))), rel=1e-7), c
    assert float(sched(_i32(BIG - 1))) == 1.0


def test_join_switches_exactly_at_a_large_boundary(standard_promotion):
    sched = gradtx.join_schedules(
        [gradtx.constant_schedule(1.0), gradtx.linear_schedule(0.0, 1.0, 4)], [BIG]
    )
    ref = optax.join_schedules(
        [optax.constant_schedule(1.0), optax.linear_schedule(0.0, 1.0, 4)], [BIG]
    )
    for c in (BIG - 1, BIG, BIG + 1, BIG + 3):
        assert float(sched(_i32(c))) == pytest.approx(float(ref(_i32(c))), rel=1e-7), c


@pytest.mark.parametrize("c", [999_999_000, 999_999_001, 999_999_500, 999_999_999, 10**9 + 7])
def test_cosine_restarts_position_is_exact_near_1e9(c):
    sched = gradtx.cosine_restarts_schedule(1.0, 1000, min_value=0.0)
    ref = 0.5 * (1.0 + np.cos(np.pi * (c % 1000) / 1000))  # float64 NumPy, integer modulo
    np.testing.assert_allclose(float(sched(_i32(c))), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("c", [10**8, 10**8 + 1, 10**8 + 2, 10**8 + 3, 10**8 + 5])
def test_cyclic_position_is_exact_at_1e8(c):
    sched = gradtx.cyclic_schedule(0.0, 1.0, 3)
    # torch's CyclicLR formula in float64 NumPy (cycle length 6, rising for half of it)
    cycle = np.floor(1 + c / 6)
    x = 1.0 + c / 6 - cycle
    ref = x / 0.5 if x <= 0.5 else (x - 1) / (0.5 - 1)
    np.testing.assert_allclose(float(sched(_i32(c))), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("c", [BIG - 1, BIG, BIG + 29, BIG + 30])
def test_exponential_decay_staircase_steps_exactly_at_large_counts(c):
    sched = gradtx.exponential_decay(1.0, 30, 0.5, transition_begin=BIG, staircase=True)
    ref = 1.0 if c <= BIG else 0.5 ** ((c - BIG) // 30)  # float64 NumPy, integer division
    np.testing.assert_allclose(float(sched(_i32(c))), ref, rtol=1e-7)


@pytest.mark.parametrize("c", [BIG - 1, BIG, BIG + 1])
def test_warmup_schedules_end_their_warmup_exactly_at_a_large_count(c):
    warm = c < BIG  # the warmup covers counts 0 .. BIG - 1
    # linear warmup from 0 to 1 over BIG steps: count / BIG, in float64 NumPy
    ramp = c / BIG
    cos = gradtx.warmup_cosine_decay_schedule(0.0, 1.0, BIG, BIG + 1000)
    decay = 0.5 * (1.0 + np.cos(np.pi * (c - BIG) / 1000))
    np.testing.assert_allclose(float(cos(_i32(c))), ramp if warm else decay, rtol=1e-6)
    const = gradtx.warmup_constant_schedule(0.0, 1.0, BIG)
    np.testing.assert_allclose(float(const(_i32(c))), ramp if warm else 1.0, rtol=1e-6)
    wsd = gradtx.warmup_stable_decay_schedule(1.0, 10, BIG - 10, 100)  # stable until BIG
    np.testing.assert_allclose(float(wsd(_i32(c))), 1.0 if warm else 1.0 - (c - BIG) / 100)


@pytest.mark.parametrize("c", [BIG + 1, BIG + 2, BIG + 3])
def test_piecewise_interpolate_is_exact_at_a_large_boundary(c):
    b = BIG + 2  # 20_000_003, which float32 rounds to 20_000_004
    sched = gradtx.piecewise_interpolate_schedule("linear", 1.0, {b: 1.0, b + 1: 0.0})
    # the value is 1 up to b, falls linearly to 0 over [b, b + 1], then stays 0
    ref = 1.0 if c <= b else 0.0
    np.testing.assert_allclose(float(sched(_i32(c))), ref, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gradtx.masked(gradtx.sgd(1.0), {"w": True}),
        lambda: gradtx.freeze({"w": True}, gradtx.sgd(1.0)),
    ],
    ids=["masked", "freeze"],
)
def test_mask_tree_names_the_missing_path(make):
    params = {"w": jnp.ones(2), "b": jnp.ones(2)}
    with pytest.raises(gradtx.TreeMismatchError, match=r"no entry for the params at \['b'\]"):
        make().init(params)


# --------------------------------------------------------------------------------------------
# Integer step counts past int32 in a schedule's arguments


@pytest.mark.parametrize("decay_steps", [int(1e10), 1e10])
def test_cosine_decay_accepts_decay_steps_past_int32(decay_steps):
    sched = gradtx.cosine_decay_schedule(1000.0, decay_steps)
    ref = 1000.0 * 0.5 * (1.0 + np.cos(np.pi * 1e9 / 1e10))  # float64 NumPy, the formula
    np.testing.assert_allclose(float(sched(int(1e9))), ref, rtol=1e-6)


# --------------------------------------------------------------------------------------------
# learning_rate=None: no scaling (a unit step), never a crash in update


@pytest.mark.parametrize(
    "name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "lion", "adadelta", "adafactor"]
)
def test_learning_rate_none_is_a_unit_step_downhill(name):
    factory = getattr(gradtx, name)
    p = {"w": jnp.array([1.0, -2.0, 3.0])}
    g = {"w": jnp.array([0.5, -0.25, 2.0])}
    tx, unit = factory(None), factory(1.0)
    u_none, _ = tx.update(g, tx.init(p), p)
    u_unit, _ = unit.update(g, unit.init(p), p)
    np.testing.assert_array_equal(np.asarray(u_none["w"]), np.asarray(u_unit["w"]))
    assert np.all(np.asarray(u_none["w"]) * np.asarray(g["w"]) < 0)  # against the gradient


def test_scale_by_learning_rate_none_is_the_identity_like_optax(standard_promotion):
    g = jnp.array([0.5, -0.25, 2.0])
    for flip in (True, False):
        ours = gradtx.scale_by_learning_rate(None, flip_sign=flip)
        theirs = optax.scale_by_learning_rate(None, flip_sign=flip)
        u, _ = ours.update(g, ours.init(g), g)
        v, _ = theirs.update(g, theirs.init(g), g)
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
