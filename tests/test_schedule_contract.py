"""The contract every SCHEDULES entry keeps: traced parameters, vmap, one compile, finiteness."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.registry import SCHEDULES

KEYS = list(SCHEDULES)
COUNTS = jnp.asarray([0, 1, 5, 9, 10, 11, 29, 30, 45, 59, 60, 99, 100, 150], jnp.int32)
INT32_MAX = np.iinfo(np.int32).max


def replace_leaf(tree, name, value):
    """``tree`` with the leaf at key path ``.name`` replaced by ``value``."""
    pairs, treedef = jax.tree_util.tree_flatten_with_path(tree)
    names = [jax.tree_util.keystr(p).lstrip(".") for p, _ in pairs]
    assert name in names, f"{name} is not a leaf of {tree!r}; leaves: {names}"
    return jax.tree_util.tree_unflatten(
        treedef, [value if n == name else leaf for n, (_, leaf) in zip(names, pairs)]
    )


def assert_close32(got, want, msg=""):
    """float32 agreement: relative 1e-6, or a few ulps of the schedule's largest value (values
    built from terms of that size carry rounding of that size)."""
    got, want = np.asarray(got), np.asarray(want)
    atol = 1e-6 * float(np.max(np.abs(want)))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=atol, err_msg=msg)


def leaf(tree, name):
    pairs, _ = jax.tree_util.tree_flatten_with_path(tree)
    return dict((jax.tree_util.keystr(p).lstrip("."), x) for p, x in pairs)[name]


@jax.jit
def _evaluate(schedule, counts):
    return jax.vmap(schedule)(counts)


def test_every_entry_has_value_params_and_is_public():
    for key, spec in SCHEDULES.items():
        assert spec.values, key
        assert getattr(gradtx, spec.name) is spec.factory, key
        s = spec.make()
        for name in (*spec.values, *spec.steps):
            leaf(s, name)  # raises if the path is wrong


@pytest.mark.parametrize("key", KEYS)
def test_compiles_once_across_values(key):
    spec = SCHEDULES[key]
    traces = []

    @jax.jit
    def f(schedule, count):
        traces.append(1)
        return schedule(count)

    base = spec.make()
    variants = [base]
    for name in spec.values:
        variants.append(replace_leaf(base, name, float(leaf(base, name)) * 1.25 + 0.01))
    for name in spec.steps:
        variants.append(replace_leaf(base, name, int(leaf(base, name)) + 2))
    outs = [f(s, jnp.int32(7)) for s in variants]
    assert len(traces) == 1, f"{key}: traced {len(traces)} times"
    assert all(np.isfinite(np.asarray(o)) for o in outs)


def _replace_all(base, batch):
    for name, value in batch.items():
        base = replace_leaf(base, name, value)
    return base


EXTREMES = jnp.concatenate([COUNTS, jnp.asarray([INT32_MAX - 1, INT32_MAX], jnp.int32)])


@jax.jit
def _values_and_grads(base, x):
    """The schedule on COUNTS and the int32 extremes, and the gradient of its sum over COUNTS
    with respect to the leaves named in ``x`` (one compiled program per entry)."""

    def total(x):
        return jnp.sum(jax.vmap(_replace_all(base, x))(COUNTS))

    return jax.vmap(base)(EXTREMES), jax.grad(total)(x)


@pytest.mark.parametrize("key", KEYS)
def test_finite_at_extremes_eager_equals_jit_and_finite_grads(key):
    spec = SCHEDULES[key]
    s = spec.make()
    names = (*spec.values, *spec.steps)
    x0 = {n: jnp.float32(float(leaf(s, n))) for n in names}
    values, grads = _values_and_grads(s, x0)
    values = np.asarray(values)
    assert np.all(np.isfinite(values)), (key, values)
    assert_close32(values, s(EXTREMES))  # eager, vectorised over the counts
    for count in (0, INT32_MAX):  # Python ints
        assert np.all(np.isfinite(np.asarray(s(count)))), (key, count)
    for name in names:  # traced values and step counts have finite gradients
        assert np.isfinite(np.asarray(grads[name])), (key, name, grads[name])
    for name in spec.values:  # and the value parameters actually move the schedule
        assert np.asarray(grads[name]) != 0.0, (key, name)


@pytest.mark.parametrize("key", KEYS)
def test_vmap_over_values_and_step_counts_matches_loop(key):
    # every value leaf (x1, x1.5, x0.5) and every step-count leaf (n, n+3, 2n) batched at once
    spec = SCHEDULES[key]
    base = spec.make()
    batch = {}
    for name in spec.values:
        v = float(leaf(base, name))
        batch[name] = jnp.asarray([v, 1.5 * v, 0.5 * v], jnp.float32)
    for name in spec.steps:
        n = int(leaf(base, name))
        batch[name] = jnp.asarray([n, n + 3, 2 * n], jnp.int32)
    batched = _replace_all(base, batch)
    got = jax.vmap(_evaluate.__wrapped__, in_axes=(gradtx.batch_axes(batched), None))(
        batched, COUNTS
    )
    for i in range(3):
        one = _replace_all(base, {n: v[i] for n, v in batch.items()})
        assert_close32(got[i], _evaluate(one, COUNTS), f"row {i} of {batch}")
    assert not np.allclose(np.asarray(got[0]), np.asarray(got[1]))  # the batch matters


@jax.jit
def _sgd_run(tx, params, grads):
    state = tx.init(params)
    out = []
    for _ in range(4):
        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
        out.append(params)
    return jnp.stack(out)


# value_at is the same for every schedule: a few shapes suffice here
@pytest.mark.parametrize(
    "key",
    [
        "cosine_onecycle_schedule",
        "join_schedules",
        "cosine_restarts_schedule",
        "multiply_schedules",
    ],
)
def test_as_learning_rate_is_the_value_at_each_step(key):
    s = SCHEDULES[key].make()
    p0 = jnp.asarray([1.0, -2.0], jnp.float32)
    g = jnp.asarray([0.5, 0.25], jnp.float32)
    got = _sgd_run(gradtx.sgd(learning_rate=s), p0, g)
    p, want = np.asarray(p0), []
    lrs = np.asarray(s(jnp.arange(4, dtype=jnp.int32)), np.float32)
    for k in range(4):
        p = (p - lrs[k] * np.asarray(g)).astype(np.float32)
        want.append(p)
    np.testing.assert_allclose(np.asarray(got), np.stack(want), rtol=1e-6, atol=1e-7)


def test_constant_schedule_equals_float_learning_rate():
    p0 = jnp.asarray([1.0, -2.0, 3.0], jnp.float32)
    g = jnp.asarray([0.5, 0.25, -1.0], jnp.float32)
    for make in (gradtx.sgd, gradtx.adam):
        a = _sgd_run(make(learning_rate=gradtx.constant_schedule(0.1)), p0, g)
        b = _sgd_run(make(learning_rate=0.1), p0, g)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("key", KEYS)
def test_repr_is_readable(key):
    r = repr(SCHEDULES[key].make())
    assert r.startswith(type(SCHEDULES[key].make()).__name__ + "(")
    assert "Array(" not in r and "object at" not in r, r


def test_traced_peak_value_where_optax_fails():
    # Optax's warmup_cosine_decay_schedule and sgdr_schedule reject a traced peak_value.
    def at_20(peak):
        return gradtx.warmup_cosine_decay_schedule(0.0, peak, 10, 100)(jnp.int32(20))

    np.testing.assert_allclose(float(jax.jit(at_20)(1.0)), float(at_20(1.0)), rtol=1e-6)
    g = jax.grad(lambda peak: gradtx.cosine_restarts_schedule(peak, 10, 2)(jnp.int32(13)))(1.0)
    assert np.isfinite(float(g)) and float(g) > 0


def test_every_public_schedule_factory_is_registered():
    import inspect
    import typing

    factories = set()
    for name in dir(gradtx):
        obj = getattr(gradtx, name)
        if inspect.isfunction(obj):
            ret = typing.get_type_hints(obj).get("return")
            if inspect.isclass(ret) and issubclass(ret, gradtx.Schedule):
                factories.add(name)
    assert len(factories) >= 19
    assert factories == {spec.name for spec in SCHEDULES.values()}


def test_vmap_and_grad_through_a_training_run():
    # vmap over warmup_steps and grad w.r.t. peak_value of a whole (scheduled) training run
    p0 = jnp.asarray([1.0, -2.0], jnp.float32)
    g = jnp.asarray([0.5, 0.25], jnp.float32)

    def final(peak, warmup):
        tx = gradtx.sgd(gradtx.warmup_cosine_decay_schedule(0.0, peak, warmup, 20), momentum=0.9)
        return _sgd_run(tx, p0, g)[-1]

    warmups = jnp.asarray([0, 2, 3], jnp.int32)
    got = jax.vmap(final, in_axes=(None, 0))(0.1, warmups)
    for i, w in enumerate([0, 2, 3]):
        assert_close32(got[i], final(0.1, w))
    assert not np.allclose(np.asarray(got[0]), np.asarray(got[2]))
    dpeak = jax.grad(lambda peak: jnp.sum(final(peak, 2) ** 2))(0.1)
    assert np.isfinite(float(dpeak)) and float(dpeak) != 0.0
