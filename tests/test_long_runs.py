"""Long runs: counts saturate at the int32 maximum; everything stays finite at count 2**31 - 1."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import _tree, registry

INT32_MAX = 2**31 - 1


def _set_counts(state, value):
    """Tree surgery: every ``count`` field of the state (int32 scalars) set to ``value``."""

    def f(path, leaf):
        last = path[-1] if path else None
        if getattr(last, "name", None) == "count":
            assert leaf.dtype == jnp.int32 and leaf.shape == ()
            return jnp.asarray(value, jnp.int32)
        return leaf

    return jax.tree_util.tree_map_with_path(f, state)


def _counts(state):
    out = []

    def f(path, leaf):
        if getattr(path[-1] if path else None, "name", None) == "count":
            out.append(int(leaf))
        return leaf

    jax.tree_util.tree_map_with_path(f, state)
    return out


def test_safe_increment_saturates():
    c = jnp.asarray(INT32_MAX - 1, jnp.int32)
    c = _tree.safe_increment(c)
    assert int(c) == INT32_MAX
    assert int(_tree.safe_increment(c)) == INT32_MAX
    assert _tree.safe_increment(c).dtype == jnp.int32


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.999, 0.99999])
def test_bias_correction_finite_at_int32_max(decay):
    for t in (1, 2, 1000, INT32_MAX):
        bc = _tree.bias_correction(decay, jnp.asarray(float(t), jnp.float32))
        assert bc.dtype == jnp.float32
        ref = 1 - float(np.float32(decay)) ** float(np.float32(t))
        assert math.isfinite(float(bc)) and float(bc) > 0
        # b**t in float32 is good to a few ulps of 1 (2**-24 each); 1 - b**t is then exact.
        np.testing.assert_allclose(float(bc), ref, rtol=0, atol=4 * 2.0**-24)


def _data(x):
    """A leaf as a NumPy array (a typed PRNG key as its raw key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


@pytest.mark.parametrize("key", sorted(registry.OPTIMIZERS))
def test_every_optimizer_at_int32_max_count(key):
    params = {"w": jnp.asarray([1.0, -2.0, 0.5]), "s": jnp.asarray(0.3)}
    grads = {"w": jnp.asarray([0.1, 0.0, -3.0]), "s": jnp.asarray(1.0)}
    spec = registry.OPTIMIZERS[key]
    tx = spec.make()
    extra = {"loss": jnp.asarray(0.5)} if spec.reads_loss else {}
    state = tx.init(params)
    u, state = tx.update(grads, state, params, **extra)  # one ordinary step fills the buffers
    state = _set_counts(state, INT32_MAX - 1)
    counted = bool(_counts(tx.init(params)))  # a state may keep no count (sgd's, say)
    for expected in (INT32_MAX, INT32_MAX):
        u, state = tx.update(grads, state, params, **extra)
        assert set(_counts(state)) == ({expected} if counted else set()), key
        for leaf in jax.tree.leaves((u, state)):
            assert np.all(np.isfinite(_data(leaf).astype(np.float64))), key
        params = gradtx.apply_updates(params, u)
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(params))


def _schedules():
    out = {
        "constant": gradtx.constant_schedule(0.1),
        "linear": gradtx.linear_schedule(0.1, 0.0, 1000),
        "cosine_decay": gradtx.cosine_decay_schedule(0.1, 1000, end_value=1e-4),
        "exponential_decay": gradtx.exponential_decay(0.1, 1, 0.9),
        "exponential_decay_staircase_end": gradtx.exponential_decay(
            0.1, 10, 0.99, 5, staircase=True, end_value=1e-3
        ),
        "exponential_growth_capped": gradtx.exponential_decay(1e-3, 1, 1.01, end_value=0.1),
        "inverse_time_decay": gradtx.inverse_time_decay_schedule(0.1, 1.0, 0.5),
        "piecewise_constant": gradtx.piecewise_constant_schedule(0.1, {100: 0.1, 1000: 0.1}),
        "join": gradtx.join_schedules(
            [gradtx.linear_schedule(0.0, 0.1, 100), gradtx.cosine_decay_schedule(0.1, 1000)], [100]
        ),
    }
    for name, entry in getattr(registry, "SCHEDULES", {}).items():
        sched = entry.make() if hasattr(entry, "make") else entry
        if isinstance(sched, gradtx.Schedule):
            out[f"registry:{name}"] = sched
    return out


_SCHEDULES = _schedules()


@pytest.mark.parametrize("name", sorted(_SCHEDULES))
def test_every_schedule_finite_at_int32_max(name):
    sched = _SCHEDULES[name]
    counts = jnp.asarray([0, 1, 2**24, INT32_MAX - 1, INT32_MAX], jnp.int32)
    values = np.asarray(jax.jit(jax.vmap(sched))(counts), np.float64)
    assert np.all(np.isfinite(values)), (name, values)
    # As an optimizer's learning rate with the count at the maximum.
    tx = gradtx.sgd(sched, momentum=0.9)
    p = {"w": jnp.ones((2,))}
    state = _set_counts(tx.init(p), INT32_MAX)
    u, state = tx.update(p, state, p)
    assert np.all(np.isfinite(np.asarray(u["w"])))
    assert set(_counts(state)) == {INT32_MAX}
