"""gradtx.sweep: the vmapped population equals a Python loop of single runs (for every registry
optimizer), divergence is contained, chunking and keep_best change nothing, keys are per setting.

The oracle is the plain training loop every Optax user writes (value_and_grad, update,
apply_updates), run one setting at a time with a step function compiled once per optimizer
structure (the transform is a jit argument).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import registry
from gradtx._sweep._grid import expand_grid, parse_values
from gradtx._sweep._lr_finder import lr_finder
from gradtx._sweep._sweep import sweep

STEPS = 4
COEF = jnp.array([1.0, 3.0, 0.5], jnp.float32)
PARAMS = {"a": jnp.array([1.0, -2.0, 0.5], jnp.float32), "b": jnp.asarray(0.3, jnp.float32)}


def quad_loss(p, batch):
    return jnp.sum(COEF * p["a"] ** 2) + (p["b"] - 1.0) ** 2 + 0.1 * jnp.sum(p["a"]) * p["b"]


@functools.partial(jax.jit, static_argnames=("pass_loss",))
def _oracle_step(tx, p, s, pass_loss):
    loss, g = jax.value_and_grad(quad_loss)(p, None)
    extra = {"loss": loss} if pass_loss else {}
    u, s = tx.update(g, s, p, **extra)
    return loss, gradtx.apply_updates(p, u), s


def _oracle(tx, steps=STEPS, pass_loss=False, params=PARAMS):
    p, s = params, tx.init(params)
    losses = []
    for _ in range(steps):
        loss, p, s = _oracle_step(tx, p, s, pass_loss)
        losses.append(float(loss))
    return np.array(losses, np.float32), p


def _assert_tree_close(a, b, rtol=1e-6, atol=1e-7):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=rtol, atol=atol), a, b)


# Measured: XLA:CPU's LLVM IR emitters (the suite's quick-compile setting) round the batched
# reductions of these two entries differently from the loop's, by 2e-6 relative (polyak_sgd's
# squared gradient norm) and 2e-7 absolute (L-BFGS's curvature products); with XLA's default
# emitters the sweep equals the loop to the tolerances below.
_XLA_DEFAULTS = {"lbfgs[linesearch=None]", "polyak_sgd"}
_KEYS = [
    pytest.param(k, marks=pytest.mark.xla_defaults) if k in _XLA_DEFAULTS else k
    for k in sorted(registry.OPTIMIZERS)
]


@pytest.mark.parametrize("key", _KEYS)
def test_vmapped_sweep_equals_sequential_loop(key):
    spec = registry.OPTIMIZERS[key]
    lrs = [0.5 * spec.learning_rate, spec.learning_rate, 2.0 * spec.learning_rate]
    res = sweep(quad_loss, PARAMS, None, key, {spec.lr_arg: lrs}, STEPS)
    assert res.losses.shape == (3, STEPS) and not res.diverged.any()
    for i, lr in enumerate(lrs):
        losses, p = _oracle(spec.make(learning_rate=lr), pass_loss=spec.reads_loss)
        np.testing.assert_allclose(res.losses[i], losses, rtol=1e-6, atol=1e-7)
        _assert_tree_close(res.params_of(i), p)


def test_grid_over_b1_and_weight_decay_is_a_cartesian_product():
    grid = {"learning_rate": [0.01, 0.1], "b1": [0.8, 0.9], "weight_decay": [0.0, 0.1]}
    res = sweep(quad_loss, PARAMS, None, gradtx.adam, grid, STEPS)
    assert res.size == 8
    assert [tuple(s.values()) for s in res.settings] == list(
        __import__("itertools").product(*grid.values())
    )
    for i in (0, 3, 5, 7):
        losses, p = _oracle(gradtx.adam(**res.settings[i]))
        np.testing.assert_allclose(res.losses[i], losses, rtol=1e-6, atol=1e-7)
        _assert_tree_close(res.params_of(i), p)


def test_schedule_parameters_by_dotted_path():
    base = gradtx.linear_schedule(0.1, 0.01, 10.0)
    grid = {"learning_rate.init_value": [0.05, 0.2], "learning_rate.transition_steps": [2.0, 8.0]}
    res = sweep(quad_loss, PARAMS, None, "sgd", grid, STEPS, hparams={"learning_rate": base})
    for i, s in enumerate(res.settings):
        sched = gradtx.linear_schedule(
            s["learning_rate.init_value"], 0.01, s["learning_rate.transition_steps"]
        )
        losses, p = _oracle(gradtx.sgd(sched))
        np.testing.assert_allclose(res.losses[i], losses, rtol=1e-6, atol=1e-7)
        _assert_tree_close(res.params_of(i), p)


def test_batched_transform_equals_factory_and_grid():
    lrs = jnp.array([0.01, 0.05, 0.1], jnp.float32)
    a = sweep(quad_loss, PARAMS, None, gradtx.adam(lrs, b1=0.8), None, STEPS)
    b = sweep(
        quad_loss, PARAMS, None, gradtx.adam, {"learning_rate": lrs}, STEPS, hparams={"b1": 0.8}
    )
    np.testing.assert_array_equal(a.losses, b.losses)
    assert a.size == 3 and a.names and np.allclose([s[a.names[0]] for s in a.settings], lrs)


def test_diverging_setting_is_reported_and_frozen_and_others_unaffected():
    lrs = [0.05, 100.0, 0.2]
    res = sweep(quad_loss, PARAMS, None, "sgd", {"learning_rate": lrs}, 40)
    ref = sweep(quad_loss, PARAMS, None, "sgd", {"learning_rate": [0.05, 0.2]}, 40)
    assert res.diverged.tolist() == [False, True, False]
    t = int(res.diverged_at[1])
    assert 0 <= t < 40 and res.diverged_at[0] == -1 and res.diverged_at[2] == -1
    assert np.isnan(res.losses[1, t + 1 :]).all() and np.isfinite(res.losses[1, :t]).all()
    assert np.isnan(res.final_loss[1])
    # Frozen: the params are those before the diverging step, finite, and equal the loop's.
    frozen = res.params_of(1)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(frozen))
    _, p_before = _oracle(gradtx.sgd(100.0), steps=t)
    _assert_tree_close(frozen, p_before)
    # The others: bit-identical to the same population with a benign setting in its place (the
    # same program, so any difference could only come from the diverging lane)...
    benign = sweep(quad_loss, PARAMS, None, "sgd", {"learning_rate": [0.05, 0.1, 0.2]}, 40)
    for i in (0, 2):
        np.testing.assert_array_equal(res.losses[i], benign.losses[i])
        np.testing.assert_array_equal(res.final_loss[i], benign.final_loss[i])
        jax.tree.map(np.testing.assert_array_equal, res.params_of(i), benign.params_of(i))
    # ...and equal to a sweep without it (a population of another width is another program,
    # which XLA may vectorise differently: equal to float32 rounding).
    for i, j in ((0, 0), (2, 1)):
        np.testing.assert_allclose(res.losses[i], ref.losses[j], rtol=1e-6, atol=0)
        _assert_tree_close(res.params_of(i), ref.params_of(j), atol=0)
    assert res.best(3)[-1] == 1  # ranked last


def test_max_loss_counts_as_divergence():
    res = sweep(quad_loss, PARAMS, None, "sgd", {"learning_rate": [0.05, 1.5]}, 10, max_loss=50.0)
    assert res.diverged.tolist() == [False, True]


LRS5 = [0.01, 0.3, 0.05, 100.0, 0.1]


def test_chunked_equals_unchunked():
    full = sweep(quad_loss, PARAMS, None, "adam", {"learning_rate": LRS5}, 8)
    chunked = sweep(quad_loss, PARAMS, None, "adam", {"learning_rate": LRS5}, 8, chunk_size=2)
    # Chunks are vmapped programs of another width: equal up to float32 rounding.
    np.testing.assert_allclose(chunked.losses, full.losses, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(chunked.diverged, full.diverged)
    np.testing.assert_array_equal(chunked.diverged_at, full.diverged_at)
    _assert_tree_close(chunked.params, full.params, atol=0)


@pytest.mark.parametrize("chunk_size", [None, 2])
def test_keep_best(chunk_size):
    full = sweep(quad_loss, PARAMS, None, "sgd", {"learning_rate": LRS5}, 8)
    kept = sweep(
        quad_loss,
        PARAMS,
        None,
        "sgd",
        {"learning_rate": LRS5},
        8,
        keep_best=2,
        chunk_size=chunk_size,
    )
    assert kept.params_index.tolist() == full.best(2)
    assert jax.tree.leaves(kept.params)[0].shape[0] == 2
    for i in full.best(2):
        _assert_tree_close(kept.params_of(i), full.params_of(i), atol=0)
    np.testing.assert_allclose(kept.losses, full.losses, rtol=1e-6, atol=0)
    with pytest.raises(KeyError, match="not kept"):
        kept.params_of(full.best(5)[-1])


# --- per-setting keys, minibatches and data functions -------------------------------------------

X = jax.random.normal(jax.random.PRNGKey(3), (40, 3), jnp.float32)
Y = X @ jnp.array([1.0, -1.0, 0.5], jnp.float32)


def lsq_loss(w, batch):
    x, y = batch
    return jnp.mean((x @ w - y) ** 2)


def test_each_setting_has_its_own_key():
    w0 = jnp.zeros(3, jnp.float32)
    res = sweep(
        lsq_loss, w0, (X, Y), "sgd", {"learning_rate": [0.1, 0.1, 0.1]}, 6, key=7, batch_size=4
    )
    np.testing.assert_array_equal(res.keys, jax.random.split(jax.random.PRNGKey(7), 3))
    # Same hyperparameters, different keys: different minibatches.
    assert not np.array_equal(res.losses[0], res.losses[1])
    # A setting depends only on its own key: alone with that key it gives the same curve.
    for i in range(3):
        alone = sweep(
            lsq_loss,
            w0,
            (X, Y),
            "sgd",
            {"learning_rate": [0.1]},
            6,
            key=res.keys[i : i + 1],
            batch_size=4,
        )
        np.testing.assert_array_equal(alone.losses[0], res.losses[i])
    # The oracle: minibatches drawn from fold_in(data key, step), as documented.
    _, data_key = jax.random.split(jnp.asarray(res.keys[0]))

    @jax.jit
    def oracle_step(w, step):
        idx = jax.random.randint(jax.random.fold_in(data_key, step), (4,), 0, 40)
        loss, g = jax.value_and_grad(lsq_loss)(w, (X[idx], Y[idx]))
        return loss, w - 0.1 * g

    w = w0
    for step in range(6):
        loss, w = oracle_step(w, step)
        np.testing.assert_allclose(res.losses[0, step], loss, rtol=1e-6)
    np.testing.assert_allclose(res.params_of(0), w, rtol=1e-6)


def test_data_function_and_init_function_get_per_setting_keys():
    def data_fn(step, key):
        return jax.random.normal(key, (3,), jnp.float32)

    def loss(w, noise):
        return jnp.sum((w - noise) ** 2)

    def init(key):
        return jax.random.uniform(key, (3,), jnp.float32)

    res = sweep(loss, init, data_fn, "sgd", {"learning_rate": [0.1, 0.1]}, 3, key=1)

    @jax.jit
    def oracle(key):
        init_key, data_key = jax.random.split(key)
        w, values = init(init_key), []
        for step in range(3):
            noise = data_fn(step, jax.random.fold_in(data_key, step))
            value, g = jax.value_and_grad(loss)(w, noise)
            values.append(value)
            w = w - 0.1 * g
        return jnp.stack(values), w

    for i in range(2):
        values, w = oracle(jnp.asarray(res.keys[i]))
        np.testing.assert_allclose(res.losses[i], values, rtol=1e-6)
        np.testing.assert_allclose(res.params_of(i), w, rtol=1e-6)
    assert not np.array_equal(res.losses[0], res.losses[1])


# --- grids and errors ----------------------------------------------------------------------------


def test_grid_specs():
    np.testing.assert_allclose(parse_values("1e-4:1e-1:4"), [1e-4, 1e-3, 1e-2, 1e-1], rtol=1e-12)
    np.testing.assert_allclose(parse_values("0:1:3:lin"), [0.0, 0.5, 1.0])
    assert parse_values("100,200") == [100, 200] and parse_values("0.9, 0.99") == [0.9, 0.99]
    assert parse_values("10:1000:3:int") == [10, 100, 1000]
    assert len(expand_grid({"a": [1, 2, 3], "b": "1,2"})) == 6
    assert expand_grid({"a": [1, 2], "b": [3, 4]}, product=False) == [
        {"a": 1, "b": 3},
        {"a": 2, "b": 4},
    ]
    with pytest.raises(ValueError, match="lo, hi > 0"):
        parse_values("0:1:3")


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="sgd has no hyperparameter 'b1'"):
        sweep(quad_loss, PARAMS, None, "sgd", {"b1": [0.9]}, 2)
    with pytest.raises(ValueError, match="unknown optimizer 'nope'"):
        sweep(quad_loss, PARAMS, None, "nope", {"learning_rate": [0.1]}, 2)
    with pytest.raises(gradtx.HyperparameterError, match="b1 must be in"):
        sweep(
            quad_loss, PARAMS, None, "adam", {"b1": [0.9, 1.5]}, 2, hparams={"learning_rate": 0.1}
        )
    with pytest.raises(ValueError, match="adam needs learning_rate; sweep it in grid"):
        sweep(quad_loss, PARAMS, None, "adam", {"b1": [0.9, 0.95]}, 2)
    with pytest.raises(ValueError, match="pass 'learning_rate' in hparams"):
        sweep(quad_loss, PARAMS, None, "adam", {"learning_rate.init_value": [0.1]}, 2)


def test_one_compile_serves_new_values():
    a = sweep(quad_loss, PARAMS, None, "adam", {"learning_rate": [0.011, 0.012]}, 3)
    b = sweep(quad_loss, PARAMS, None, "adam", {"learning_rate": [0.5, 0.6]}, 3)
    assert a.compile_seconds >= 0 and b.compile_seconds == 0.0


# --- the LR range test ---------------------------------------------------------------------------


def test_lr_finder_on_a_quadratic():
    # SGD on 0.5 * x^2 multiplies x by (1 - lr): the loss falls for lr < 2 and grows for lr > 2.
    def loss(x, _):
        return 0.5 * jnp.sum(x**2)

    res = lr_finder(
        loss, jnp.ones(2, jnp.float32), None, "sgd", lr_min=1e-3, lr_max=100.0, steps=60
    )
    np.testing.assert_allclose(res.learning_rates, np.geomspace(1e-3, 100.0, 60), rtol=1e-9)
    assert res.learning_rates[res.stop_index] > 2.0
    assert res.suggestion < 2.0 and res.min_loss_lr < res.learning_rates[res.stop_index]
    # The recorded losses follow the product of (1 - lr_t)^2 exactly.
    x = 1.0
    for t in range(5):
        np.testing.assert_allclose(res.losses[t], x * x, rtol=1e-5)
        x *= 1 - res.learning_rates[t]


def test_warmup_peak_value_and_warmup_steps():
    base = gradtx.warmup_cosine_decay_schedule(
        init_value=0.0, peak_value=0.1, warmup_steps=2, decay_steps=6
    )
    grid = {"learning_rate.peak_value": [0.05, 0.2], "learning_rate.warmup_steps": [1, 3]}
    res = sweep(quad_loss, PARAMS, None, "adamw", grid, STEPS, hparams={"learning_rate": base})
    for i, s in enumerate(res.settings):
        sched = gradtx.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=s["learning_rate.peak_value"],
            warmup_steps=s["learning_rate.warmup_steps"],
            decay_steps=6,
        )
        losses, p = _oracle(gradtx.adamw(sched))
        np.testing.assert_allclose(res.losses[i], losses, rtol=1e-6, atol=1e-7)
        _assert_tree_close(res.params_of(i), p)
