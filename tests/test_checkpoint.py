"""Checkpoints: npz and orbax round trips, bit-identical resume, clear errors on mismatch."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import gradtx
from gradtx import registry


def _params():
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    return {
        "w": jax.random.normal(k1, (3, 2)),
        "h": {"b": jax.random.normal(k2, (2,)).astype(jnp.bfloat16), "none": None},
    }


def _loss(params, x):
    w, b = params["w"], params["h"]["b"].astype(jnp.float32)
    return jnp.sum((x @ w + b) ** 2) + jnp.sum(jnp.cos(w))


_X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)


@functools.partial(jax.jit, static_argnums=3)
def _step(tx, params, state, reads_loss=False):
    loss, grads = jax.value_and_grad(_loss)(params, _X)
    extra = {"loss": loss} if reads_loss else {}
    updates, state = tx.update(grads, state, params, **extra)
    return gradtx.apply_updates(params, updates), state


def _run(tx, params, state, n, reads_loss=False):
    for _ in range(n):
        params, state = _step(tx, params, state, reads_loss)
    return params, state


def _data(x):
    """A leaf as a NumPy array (a typed PRNG key as its raw key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def _assert_identical(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        if isinstance(x, float | int):
            assert type(x) is type(y) and x == y
            continue
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(_data(x), _data(y))


def _tx_with_schedule():
    return gradtx.adam(gradtx.cosine_decay_schedule(0.05, 10), amsgrad=True, weight_decay=1e-2)


def test_npz_round_trip_state_params_and_transform(tmp_path):
    tx = _tx_with_schedule()
    params = _params()
    state = tx.init(params)
    params, state = _run(tx, params, state, 2)
    gradtx.save_npz(tmp_path / "ckpt.npz", {"tx": tx, "params": params, "state": state})
    like = {"tx": _tx_with_schedule(), "params": _params(), "state": tx.init(_params())}
    back = gradtx.load_npz(tmp_path / "ckpt.npz", like)
    _assert_identical(back["params"], params)
    _assert_identical(back["state"], state)
    _assert_identical(back["tx"], tx)
    assert back["params"]["h"]["b"].dtype == jnp.bfloat16
    assert back["params"]["h"]["none"] is None
    assert repr(back["tx"]) == repr(tx)


@pytest.mark.parametrize("key", sorted(registry.OPTIMIZERS))
def test_resume_after_n_steps_is_bit_identical(key, tmp_path):
    spec = registry.OPTIMIZERS[key]
    tx = spec.make(learning_rate=0.01)
    p0 = _params()
    rl = spec.reads_loss
    p_full, s_full = _run(tx, p0, tx.init(p0), 6, rl)
    p_half, s_half = _run(tx, p0, tx.init(p0), 3, rl)
    gradtx.save_npz(tmp_path / "c.npz", {"tx": tx, "params": p_half, "state": s_half})
    # A fresh process would rebuild the optimizer and the model, then load into them.
    tx2 = spec.make(learning_rate=0.01)
    like = {"tx": tx2, "params": _params(), "state": tx2.init(_params())}
    back = gradtx.load_npz(tmp_path / "c.npz", like)
    gradtx.check_state(back["tx"], back["state"], back["params"])
    compiled = _step._cache_size()
    p_res, s_res = _run(back["tx"], back["params"], back["state"], 3, rl)
    _assert_identical(p_res, p_full)
    _assert_identical(s_res, s_full)
    # the loaded tree is typed and placed as the fresh one: the step does not compile again
    assert _step._cache_size() == compiled, key


def test_orbax_round_trip_and_resume(tmp_path):
    ocp = pytest.importorskip("orbax.checkpoint")
    tx = _tx_with_schedule()
    p0 = _params()
    p_full, s_full = _run(tx, p0, tx.init(p0), 4)
    p_half, s_half = _run(tx, p0, tx.init(p0), 2)
    ckpt = ocp.StandardCheckpointer()
    ckpt.save(tmp_path / "orbax", {"tx": tx, "params": p_half, "state": s_half})
    ckpt.wait_until_finished()
    like = {"tx": _tx_with_schedule(), "params": _params(), "state": tx.init(_params())}
    back = ckpt.restore(tmp_path / "orbax", like)
    _assert_identical(back["state"], s_half)
    assert repr(back["tx"]) == repr(tx)
    gradtx.check_state(back["tx"], back["state"], back["params"])
    p_res, s_res = _run(back["tx"], back["params"], back["state"], 2)
    _assert_identical(p_res, p_full)
    _assert_identical(s_res, s_full)
    # Restoring into an optimizer whose state has another layout is refused by orbax.
    other = gradtx.adam(0.05, weight_decay=1e-2)
    bad_like = {"tx": _tx_with_schedule(), "params": _params(), "state": other.init(_params())}
    with pytest.raises(ValueError, match=r"state\[1\]\.nu_max"):
        ckpt.restore(tmp_path / "orbax", bad_like)
    ckpt.close()


def test_load_into_differently_configured_optimizer_fails(tmp_path):
    params = _params()
    saved = gradtx.adam(1e-3, amsgrad=True)
    gradtx.save_npz(tmp_path / "s.npz", saved.init(params))
    gradtx.save_npz(tmp_path / "tx.npz", saved)
    with pytest.raises(
        gradtx.TreeMismatchError, match=r"has entries that `like` lacks: \[0\]\.nu_max"
    ):
        gradtx.load_npz(tmp_path / "s.npz", gradtx.adam(1e-3).init(params))
    with pytest.raises(
        gradtx.TreeMismatchError, match=r"has no entry for \[0\]\.trace\['h'\]\['b'\]"
    ):
        gradtx.load_npz(tmp_path / "s.npz", gradtx.sgd(1e-3, momentum=0.9).init(params))
    # Same leaves, other static options: the recorded treedef differs.
    with pytest.raises(gradtx.TreeMismatchError, match=r"another structure.*'corrected'"):
        gradtx.load_npz(
            tmp_path / "tx.npz", gradtx.adam(1e-3, amsgrad=True, amsgrad_max="corrected")
        )
    # Other params (a changed shape) for the same optimizer.
    wide = {**params, "w": jnp.zeros((3, 5))}
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"holds float32\[3, 2\] at \[0\]\.mu\['w'\] but `like` expects float32\[3, 5\]",
    ):
        gradtx.load_npz(tmp_path / "s.npz", saved.init(wide))


def test_check_state_names_what_differs():
    params = _params()
    state = gradtx.adam(1e-3).init(params)
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"gradtx.check_state\(Chain\): the state does not match tx.init\(params\) at "
        r"\[0\]\.nu_max\['h'\]\['b'\]: expected bfloat16\[2\], got missing",
    ):
        gradtx.check_state(gradtx.adam(1e-3, amsgrad=True), state, params)
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"at \[0\]\.mu\['h'\]\['b'\]: expected dtype float32, got bfloat16",
    ):
        gradtx.check_state(gradtx.adam(1e-3, mu_dtype=jnp.float32), state, params)
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"at \[0\]\.mu\['w'\]: expected float32\[4, 2\], got float32\[3, 2\]",
    ):
        gradtx.check_state(gradtx.adam(1e-3), state, {**params, "w": jnp.zeros((4, 2))})
    gradtx.check_state(gradtx.adam(0.5, b1=0.5), state, params)  # other hyperparameter values: fine


@pytest.mark.skipif(jax.device_count() < 8, reason="needs 8 host devices")
def test_npz_load_places_arrays_with_like_sharding(tmp_path):
    mesh = jax.make_mesh((8,), ("data",))
    params = {"w": jax.device_put(jnp.arange(16.0).reshape(8, 2), NamedSharding(mesh, P("data")))}
    tx = gradtx.adam(1e-3)
    state = tx.init(params)
    gradtx.save_npz(tmp_path / "s.npz", state)
    back = gradtx.load_npz(tmp_path / "s.npz", tx.init(params))
    assert back[0].mu["w"].sharding.is_equivalent_to(params["w"].sharding, 2)
    _assert_identical(back, state)
