"""Optax's base, update, wrapper and tree utilities at gradtx's top level, against Optax.

Each test feeds the same params and gradients through the gradtx function and the Optax function
of the same name (gradtx and Optax transforms inside gradtx's wrappers, too) and compares the
outputs in float32: exactly where the arithmetic is the same, else to 1e-6.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.transforms
import optax.tree_utils
import pytest
from optax._src import linesearch as optax_linesearch

import gradtx

pytestmark = pytest.mark.usefixtures("standard_promotion")  # Optax mixes int counts and floats

PARAMS = {
    "w": jnp.asarray(np.linspace(-1.0, 1.0, 6).reshape(2, 3), jnp.float32),
    "b": jnp.asarray([0.5, -1.0, 2.0], jnp.float32),
}
MASK = {"w": True, "b": False}


def _grads(n=5, scale=1.0):
    return [
        jax.tree.map(lambda p, i=i: scale * jnp.cos(3.0 * p + i) + 0.1 * i, PARAMS)
        for i in range(n)
    ]


def _updates(tx, grads=None, params=PARAMS, **extra):
    """The updates of each step and the final state."""
    state = tx.init(params)
    out = []
    for g in grads if grads is not None else _grads():
        u, state = tx.update(g, state, params, **extra)
        out.append(u)
    return out, state


def _close(ours, theirs, tol=1e-6):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert jnp.result_type(a) == jnp.result_type(b)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


def _numbers(x):
    if jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
        return np.asarray(jax.random.key_data(x))
    return np.asarray(x)


def _equal(ours, theirs):
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        np.testing.assert_array_equal(_numbers(a), _numbers(b))


def _norm(tree):
    return jnp.sqrt(sum(jnp.sum(x * x) for x in jax.tree.leaves(tree)))


def _mul(u, p):
    return jax.tree.map(lambda a, b: a * b, u, p)


def _sched(count):
    return 0.1 / (1.0 + count)


def _even(step):
    return step % 2 == 0


def _odd(step):
    return step % 2 == 1


# Pairs (gradtx, Optax) of transforms whose updates must agree step by step.
PAIRS = {
    "chain": (
        lambda: gradtx.chain(gradtx.scale(0.5), gradtx.scale_by_learning_rate(0.1)),
        lambda: optax.chain(optax.scale(0.5), optax.scale_by_learning_rate(0.1)),
    ),
    "chain_holding_optax": (
        lambda: gradtx.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(0.1)),
        lambda: optax.chain(optax.scale_by_adam(), optax.scale_by_learning_rate(0.1)),
    ),
    "scale_by_learning_rate_schedule_no_flip": (
        lambda: gradtx.scale_by_learning_rate(_sched, flip_sign=False),
        lambda: optax.scale_by_learning_rate(_sched, flip_sign=False),
    ),
    "scale_by_learning_rate_none": (
        lambda: gradtx.scale_by_learning_rate(),
        lambda: optax.scale_by_learning_rate(),
    ),
    "identity": (gradtx.identity, optax.identity),
    "set_to_zero": (gradtx.set_to_zero, optax.set_to_zero),
    "stateless": (lambda: gradtx.stateless(_mul), lambda: optax.stateless(_mul)),
    "stateless_with_tree_map": (
        lambda: gradtx.stateless_with_tree_map(lambda u, p: u - 2.0 * p),
        lambda: optax.stateless_with_tree_map(lambda u, p: u - 2.0 * p),
    ),
    "with_extra_args_support": (
        lambda: gradtx.with_extra_args_support(optax.scale(-0.3)),
        lambda: optax.with_extra_args_support(optax.scale(-0.3)),
    ),
    "named_chain": (
        lambda: gradtx.named_chain(("adam", gradtx.scale_by_adam()), ("lr", gradtx.scale(-0.1))),
        lambda: optax.named_chain(("adam", optax.scale_by_adam()), ("lr", optax.scale(-0.1))),
    ),
    "apply_every": (lambda: gradtx.apply_every(2), lambda: optax.apply_every(2)),
    "conditionally_mask": (
        lambda: gradtx.conditionally_mask(gradtx.adam(0.1), _even),
        lambda: optax.conditionally_mask(optax.adam(0.1), _even),
    ),
    "conditionally_transform": (
        lambda: gradtx.conditionally_transform(gradtx.adam(0.1), _odd),
        lambda: optax.conditionally_transform(optax.adam(0.1), _odd),
    ),
    "conditionally_transform_optax_inner": (
        lambda: gradtx.conditionally_transform(optax.sgd(0.1, 0.9), _odd),
        lambda: optax.conditionally_transform(optax.sgd(0.1, 0.9), _odd),
    ),
    "normalize_by_update_norm": (
        lambda: gradtx.normalize_by_update_norm(2.0),
        lambda: optax.normalize_by_update_norm(2.0),
    ),
    "adaptive_grad_clip": (
        lambda: gradtx.adaptive_grad_clip(0.1),
        lambda: optax.adaptive_grad_clip(0.1),
    ),
    "adaptive_grad_clip_axis": (
        lambda: gradtx.adaptive_grad_clip(0.1, 1e-3, 0),
        lambda: optax.adaptive_grad_clip(0.1, 1e-3, 0),
    ),
    "ema": (lambda: gradtx.ema(0.8, True, jnp.float32), lambda: optax.ema(0.8, True, jnp.float32)),
    "trace_nesterov": (lambda: gradtx.trace(0.8, True), lambda: optax.trace(0.8, True)),
    "masked": (
        lambda: gradtx.masked(gradtx.adam(0.1), MASK),
        lambda: optax.masked(optax.adam(0.1), MASK),
    ),
    "partition_label_function": (
        lambda: gradtx.partition(
            {"x": gradtx.adam(0.1), "y": gradtx.sgd(0.2)}, lambda p: {"w": "x", "b": "y"}
        ),
        lambda: optax.partition(
            {"x": optax.adam(0.1), "y": optax.sgd(0.2)}, lambda p: {"w": "x", "b": "y"}
        ),
    ),
    "partition_param_labels_keyword": (
        lambda: gradtx.partition(
            {"x": gradtx.adam(0.1), "y": optax.sgd(0.2)}, param_labels={"w": "x", "b": "y"}
        ),
        lambda: optax.partition(
            {"x": optax.adam(0.1), "y": optax.sgd(0.2)}, param_labels={"w": "x", "b": "y"}
        ),
    ),
    "selective_transform": (
        lambda: gradtx.selective_transform(gradtx.adam(0.1), freeze_mask=MASK),
        lambda: optax.transforms.selective_transform(optax.adam(0.1), freeze_mask=MASK),
    ),
    "freeze": (lambda: gradtx.freeze(MASK), lambda: optax.transforms.freeze(MASK)),
    "inject_hyperparams": (
        lambda: gradtx.inject_hyperparams(gradtx.adam)(learning_rate=_sched, b1=0.8),
        lambda: optax.inject_hyperparams(optax.adam)(learning_rate=_sched, b1=0.8),
    ),
    "inject_hyperparams_static_args": (
        lambda: gradtx.inject_hyperparams(gradtx.sgd, static_args="momentum")(0.1, momentum=0.9),
        lambda: optax.inject_hyperparams(optax.sgd, static_args="momentum")(0.1, momentum=0.9),
    ),
    "measure_with_ema": (
        lambda: gradtx.measure_with_ema(_norm, 0.7),
        lambda: optax.measure_with_ema(_norm, 0.7),
    ),
    # The inner transform sees one vector: Adam elementwise, and a global-norm clip whose norm
    # runs over every leaf at once.
    "flatten": (
        lambda: gradtx.flatten(gradtx.chain(gradtx.clip_by_global_norm(0.5), gradtx.adam(0.1))),
        lambda: optax.flatten(optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.1))),
    ),
    "flatten_holding_optax": (
        lambda: gradtx.flatten(optax.scale_by_rms()),
        lambda: optax.flatten(optax.scale_by_rms()),
    ),
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_updates_match_optax(name):
    ours, theirs = PAIRS[name]
    a, _ = _updates(ours())
    b, _ = _updates(theirs())
    _close(a, b)


def test_named_chain_state_is_keyed_by_name():
    tx = gradtx.named_chain(("adam", gradtx.scale_by_adam()), ("lr", gradtx.scale(-0.1)))
    _, state = _updates(tx)
    _, ref = _updates(optax.named_chain(("adam", optax.scale_by_adam()), ("lr", optax.scale(-0.1))))
    assert set(state) == set(ref) == {"adam", "lr"}
    assert int(state["adam"].count) == int(ref["adam"].count) == 5
    with pytest.raises(ValueError, match="unique"):
        gradtx.named_chain(("a", gradtx.identity()), ("a", gradtx.identity()))


def test_init_empty_state():
    assert gradtx.init_empty_state(PARAMS) == gradtx.EmptyState() == ()


def test_incremental_and_periodic_update_match_optax():
    new, old = _grads(2)
    _equal(gradtx.incremental_update(new, old, 0.3), optax.incremental_update(new, old, 0.3))
    for step in (4, 5, jnp.asarray(6)):
        _equal(gradtx.periodic_update(new, old, step, 2), optax.periodic_update(new, old, step, 2))
    with pytest.raises(gradtx.HyperparameterError, match="periodic_update: update_period"):
        gradtx.periodic_update(new, old, 1, 0)


def test_apply_every_sums_k_gradients():
    grads = _grads(6)
    out, state = _updates(gradtx.apply_every(3), grads)
    want = jax.tree.map(lambda *g: sum(np.asarray(x, np.float64) for x in g), *grads[3:6])
    _close(out[5], jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), want))
    _equal(out[4], jax.tree.map(jnp.zeros_like, PARAMS))
    assert int(state.count) == 0


def test_conditionally_forwards_extra_args():
    def only_small(step, loss):
        return loss < 1.0

    ours = gradtx.conditionally_transform(gradtx.scale(2.0), only_small, forward_extra_args=True)
    theirs = optax.conditionally_transform(optax.scale(2.0), only_small, forward_extra_args=True)
    for loss in (0.5, 2.0):
        a, sa = _updates(ours, loss=jnp.asarray(loss))
        b, sb = _updates(theirs, loss=jnp.asarray(loss))
        _close(a, b)
        assert int(sa.step) == int(sb.step) == 5


def _add_other():
    """An Optax transform that reads a per-leaf extra argument ``other``."""

    def update(updates, state, params=None, *, other=None, **extra):
        return jax.tree.map(lambda u, o: u + o, updates, other), state

    return optax.GradientTransformationExtraArgs(optax.init_empty_state, update)


@pytest.mark.parametrize("wrapper", ["masked", "partition"])
def test_mask_compatible_extra_args(wrapper):
    other = jax.tree.map(lambda p: jnp.full_like(p, 10.0), PARAMS)
    if wrapper == "masked":
        ours = gradtx.masked(_add_other(), MASK, mask_compatible_extra_args=True)
        theirs = optax.masked(_add_other(), MASK, mask_compatible_extra_args=True)
    else:
        labels = {"w": "x", "b": "y"}
        txs = {"x": _add_other(), "y": optax.identity()}
        ours = gradtx.partition(txs, labels, mask_compatible_extra_args=True)
        theirs = optax.partition(txs, labels, mask_compatible_extra_args=True)
    a, _ = _updates(ours, other=other)
    b, _ = _updates(theirs, other=other)
    _equal(a, b)
    assert float(a[0]["b"][0]) == float(_grads()[0]["b"][0])  # the masked-out leaf is untouched


def test_partition_label_forms_agree():
    txs = {"x": gradtx.adam(0.1), "y": gradtx.sgd(0.2)}
    tree, _ = _updates(gradtx.partition(txs, {"w": "x", "b": "y"}))
    fn, _ = _updates(gradtx.partition(txs, lambda params: {"w": "x", "b": "y"}))
    per_leaf, _ = _updates(gradtx.partition(txs, lambda path, leaf: "x" if leaf.ndim > 1 else "y"))
    by_path, _ = _updates(gradtx.partition(txs, gradtx.label_by_path({"w": "x"}, default="y")))
    for other in (fn, per_leaf, by_path):
        _equal(other, tree)


def test_skip_functions_match_optax():
    bad = {"a": jnp.asarray([1.0, jnp.nan, jnp.inf]), "b": jnp.ones((2,))}
    for updates in (bad, _grads(1)[0]):
        _equal(gradtx.skip_not_finite(updates, 0, None), optax.skip_not_finite(updates, 0, None))
        for bound in (1.0, 100.0):
            _close(
                gradtx.skip_large_updates(updates, 0, None, bound),
                optax.skip_large_updates(updates, 0, None, bound),
            )


PER_EXAMPLE = {
    "w": jnp.asarray(np.linspace(-2.0, 3.0, 24).reshape(4, 2, 3), jnp.float32),
    "b": jnp.asarray(np.linspace(-1.0, 1.0, 12).reshape(4, 3), jnp.float32),
}


def test_per_example_clipping_matches_optax():
    for bound in (0.5, 1.5, 100.0):
        _close(
            gradtx.per_example_global_norm_clip(PER_EXAMPLE, bound),
            optax.per_example_global_norm_clip(PER_EXAMPLE, bound),
        )
        for uniform in (True, False):
            _close(
                gradtx.per_example_layer_norm_clip(PER_EXAMPLE, bound, uniform),
                optax.per_example_layer_norm_clip(PER_EXAMPLE, bound, uniform),
            )
    with pytest.raises(ValueError, match="leading"):
        gradtx.per_example_global_norm_clip({"a": jnp.ones((2,)), "b": jnp.ones((3,))}, 1.0)


def test_unitwise_norm_and_clip_match_optax():
    x = jnp.asarray(np.linspace(-1.0, 2.0, 24).reshape(2, 3, 4), jnp.float32)
    for axis in (None, 0, 1, (0, 2)):
        _close(gradtx.unitwise_norm(x, axis), optax.transforms.unitwise_norm(x, axis))
    g_norm = optax.transforms.unitwise_norm(x)
    bound = jnp.full_like(x, 1.5)
    _close(gradtx.unitwise_clip(g_norm, bound, x), optax.transforms.unitwise_clip(g_norm, bound, x))
    with pytest.raises(ValueError, match="unitwise_norm: without axis"):
        gradtx.unitwise_norm(jnp.ones((2, 2, 2, 2, 2, 2)))


def test_snapshot_and_monitor_match_optax():
    ours = gradtx.chain(
        gradtx.monitor({"norm": _norm, "ema": gradtx.measure_with_ema(_norm, 0.5)}),
        gradtx.snapshot("last", _norm),
    )
    theirs = optax.chain(
        optax.monitor({"norm": _norm, "ema": optax.measure_with_ema(_norm, 0.5)}),
        optax.snapshot("last", _norm),
    )
    a, sa = _updates(ours)
    _, sb = _updates(theirs)
    _equal(a, _grads())  # the updates pass through
    _close(sa[0].measurements, dict(sb[0].measurements))
    _close(sa[1].measurement, sb[1].measurement)
    # gradtx starts from zeros shaped like the measurements, so the state keeps its structure.
    fresh = ours.init(PARAMS)
    assert jax.tree.structure(fresh) == jax.tree.structure(sa)


def test_lookahead_with_optax_lookahead_params():
    grads = _grads()
    results = []
    for lib in (gradtx, optax):
        tx = lib.lookahead(lib.sgd(0.1, momentum=0.9), 2, 0.5)
        params = optax.LookaheadParams.init_synced(PARAMS)
        state = tx.init(params)
        for g in grads:
            u, state = tx.update(g, state, params)
            params = optax.apply_updates(params, u)
        results.append(params)
    _close(results[0], results[1])


def test_lookahead_fast_weights_equal_optax_fast_params():
    tree_params = PARAMS
    tx = gradtx.lookahead(gradtx.sgd(0.1, momentum=0.9), 3, 0.5, True)
    state = tx.init(tree_params)
    ref_tx = optax.lookahead(optax.sgd(0.1, momentum=0.9), 3, 0.5, True)
    ref_params = optax.LookaheadParams.init_synced(PARAMS)
    ref_state = ref_tx.init(ref_params)
    for g in _grads(7):
        u, state = tx.update(g, state, tree_params)
        tree_params = gradtx.apply_updates(tree_params, u)
        v, ref_state = ref_tx.update(g, ref_state, ref_params)
        ref_params = optax.apply_updates(ref_params, v)
    _close(tree_params, ref_params.fast)
    _close(gradtx.eval_params(state, tree_params), ref_params.slow)


def test_apply_if_finite_matches_optax_up_to_giving_up():
    grads = _grads(6)
    grads[1] = jax.tree.map(lambda g: g.at[0].set(jnp.nan), grads[1])
    grads[3] = jax.tree.map(lambda g: g.at[0].set(jnp.inf), grads[3])
    a, sa = _updates(gradtx.apply_if_finite(gradtx.adam(0.1), 2), grads)
    b, sb = _updates(optax.apply_if_finite(optax.adam(0.1), 2), grads)
    _close(a, b)
    assert int(sa.total_notfinite) == int(sb.total_notfinite) == 2


def test_tree_get_and_set_on_states_match_optax():
    state = optax.chain(optax.add_noise(1.0, 0.9, key=0), optax.scale_by_adam()).init(PARAMS)
    for key in ("count", "mu", "ScaleByAdamState", "missing"):
        ours = gradtx.tree_get_all_with_path(state, key)
        theirs = optax.tree_utils.tree_get_all_with_path(state, key)
        assert [jax.tree_util.keystr(p) for p, _ in ours] == [
            jax.tree_util.keystr(p) for p, _ in theirs
        ]
        _equal([v for _, v in ours], [v for _, v in theirs])
    _equal(gradtx.tree_get(state, "mu"), optax.tree_utils.tree_get(state, "mu"))
    with pytest.raises(KeyError):
        gradtx.tree_get(state, "count")
    count = jnp.asarray(7)
    _equal(gradtx.tree_set(state, count=count), optax.tree_utils.tree_set(state, count=count))
    only_adam = lambda path, _: "ScaleByAdamState" in jax.tree_util.keystr(path)
    ours = gradtx.tree_set(state, only_adam, count=count)
    _equal(ours, optax.tree_utils.tree_set(state, only_adam, count=count))
    assert int(gradtx.tree_get(ours, "count", filtering=only_adam)) == 7
    with pytest.raises(KeyError):
        gradtx.tree_set(state, nothing=1)


def test_tree_get_and_set_on_gradtx_states_and_transforms():
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(0.1))
    state = tx.init(PARAMS)
    counts = gradtx.tree_get_all_with_path(state, "count")
    # The clip's and Adam's (a constant learning rate keeps no count, as in Optax).
    names = [jax.tree_util.keystr(path) for path, _ in counts]
    assert names == ["[0]ClipState.count", "[1][0]AdamState.count"] and all(
        int(v) == 0 for _, v in counts
    )
    assert gradtx.tree_get(state, "AdamState") is state[1][0]
    assert float(gradtx.tree_get(tx, "learning_rate")) == pytest.approx(0.1)
    assert float(gradtx.tree_get(tx, "max_norm")) == 1.0
    faster = gradtx.tree_set(tx, learning_rate=0.3)
    ref = gradtx.chain(gradtx.clip_by_global_norm(1.0), gradtx.adam(0.3))
    _equal(_updates(faster)[0], _updates(ref)[0])
    with pytest.raises(gradtx.HyperparameterError, match="learning_rate"):
        gradtx.tree_set(tx, learning_rate=-1.0)  # checked as at construction


def test_tree_map_params_matches_optax():
    specs = jax.tree.map(lambda p: str(p.shape), PARAMS)
    to_spec = functools.partial(gradtx.tree_map_params, transform_non_params=lambda _: None)
    state = gradtx.adam(0.1).init(PARAMS)
    out = to_spec(gradtx.adam(0.1), lambda _, s: s, state, specs)
    assert out[0].mu == out[0].nu == specs and out[0].count is None
    assert out[1] == gradtx.EmptyState()  # a constant learning rate keeps no state, as in Optax
    ref_state = optax.adam(0.1).init(PARAMS)
    ref = optax.tree_utils.tree_map_params(
        optax.adam(0.1), lambda _, s: s, ref_state, specs, transform_non_params=lambda _: None
    )
    assert ref[0].mu == out[0].mu
    # Through masks and groups: the other group's leaves are None.
    tx = gradtx.partition(
        {"x": gradtx.adam(0.1), "y": gradtx.sgd(0.1, momentum=0.9)}, {"w": "x", "b": "y"}
    )
    out = gradtx.tree_map_params(
        tx, lambda p, s: s if p is not None else None, tx.init(PARAMS), specs,
        is_leaf=lambda x: x is None,
    )  # fmt: skip
    assert out.inner_states["x"][0].mu == {"w": "(2, 3)", "b": None}
    assert out.inner_states["y"][0].trace == {"w": None, "b": "(3,)"}


def test_inject_hyperparams_state_is_readable_and_writable():
    ours = gradtx.inject_hyperparams(gradtx.adam)(learning_rate=_sched, b1=0.8)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=_sched, b1=0.8)
    sa, sb = ours.init(PARAMS), theirs.init(PARAMS)
    step = jax.jit(lambda tx, g, s: tx.update(g, s, PARAMS))
    for i, g in enumerate(_grads()):
        if i == 2:  # a numeric hyperparameter written between steps takes effect
            sa.hyperparams["b1"] = jnp.asarray(0.5)
            sb.hyperparams["b1"] = jnp.asarray(0.5)
        ua, sa = step(ours, g, sa)
        ub, sb = theirs.update(g, sb, PARAMS)
        _close(ua, ub)
    for key, value in sb.hyperparams.items():
        _close(sa.hyperparams[key], value)
    assert float(sa.hyperparams["learning_rate"]) == pytest.approx(_sched(4))
    logged = gradtx.current_hyperparams(ours, sa)
    assert float(logged["learning_rate"]) == float(sa.hyperparams["learning_rate"])
    assert float(logged["b1"]) == 0.5
    with pytest.raises(ValueError, match="static_args"):
        gradtx.inject_hyperparams(gradtx.adam, static_args=("nope",))


def test_inject_hyperparams_holds_an_optax_factory():
    ours = gradtx.inject_hyperparams(optax.adam)(learning_rate=_sched)
    theirs = optax.inject_hyperparams(optax.adam)(learning_rate=_sched)
    _close(_updates(ours)[0], _updates(theirs)[0])


def test_zoom_linesearch_functions_match_optax():
    def loss(params, scale):
        w, b = params["w"], params["b"]
        return (
            scale * jnp.sum((w - 1.0) ** 2)
            + 0.25 * jnp.sum((b + 0.1) ** 4)
            + 0.1 * jnp.sum(w) * jnp.sum(b)
        )

    value, grad = jax.value_and_grad(loss)(PARAMS, 1.5)
    # A step of 1 that overshoots (zoom phase) and one that is too short (interval search).
    for factor in (-1.0, -0.01):
        direction = jax.tree.map(lambda g: factor * g, grad)
        finals = []
        for lib in (gradtx, optax_linesearch):
            init, step, cond = lib.zoom_linesearch(20)
            state = init(direction, PARAMS, value=value, grad=grad)
            while cond(state):
                state = step(
                    state, value_and_grad_fn=jax.value_and_grad(loss), fn_kwargs={"scale": 1.5}
                )
            finals.append(state)
        ours, theirs = finals
        assert int(ours.count) == int(theirs.count) > 1
        _close((ours.stepsize, ours.value, ours.grad), (theirs.stepsize, theirs.value, theirs.grad))
    with pytest.raises(gradtx.HyperparameterError, match="zoom_linesearch: max_stepsize"):
        gradtx.zoom_linesearch(10, max_stepsize=-1.0)


def test_new_wrappers_compile_once_across_hyperparameter_values():
    g = _grads(1)[0]
    step = jax.jit(lambda tx, s: tx.update(g, s, PARAMS))
    makers = [
        lambda v: gradtx.conditionally_mask(gradtx.adam(v), _even),
        lambda v: gradtx.normalize_by_update_norm(v),
        lambda v: gradtx.named_chain(("a", gradtx.scale(v))),
        lambda v: gradtx.inject_hyperparams(gradtx.sgd)(v),
        lambda v: gradtx.scale_by_learning_rate(v, flip_sign=False),
    ]
    for make in makers:
        step = jax.jit(lambda tx, s: tx.update(g, s, PARAMS))
        for v in (0.1, 0.2):
            tx = make(v)
            step(tx, tx.init(PARAMS))
        assert step._cache_size() == 1


def test_bad_hyperparameters_name_the_function():
    cases = [
        (lambda: gradtx.apply_every(0), "apply_every: k"),
        (lambda: gradtx.normalize_by_update_norm(1.0, -1.0), "normalize_by_update_norm: eps"),
        (lambda: gradtx.lookahead(gradtx.sgd(0.1), 2, 1.5), "lookahead: slow_step_size"),
        (lambda: gradtx.ema(1.0), "ema: decay"),
        (lambda: gradtx.scale_by_learning_rate(-0.1, flip_sign=False), "learning_rate"),
        (lambda: gradtx.per_example_global_norm_clip(PER_EXAMPLE, -1.0), "l2_norm_clip"),
        (lambda: gradtx.skip_large_updates(PARAMS, 0, None, -1.0), "max_squared_norm"),
    ]
    for make, message in cases:
        with pytest.raises(gradtx.HyperparameterError, match=message):
            make()
