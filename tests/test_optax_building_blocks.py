"""Optax's names for writing one's own transforms, checked against Optax itself.

``GradientTransformation`` pairs in gradtx's combinators (and which of them get extra
arguments), ``MultiSteps`` over several steps (a scheduled ``k``, sums, skipped steps), and the
numerics helpers (values, dtypes, and gradients where they matter: ``safe_norm`` at zero,
``scale_gradient``'s backward pass).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._packed import check_packed_equals_tree, layout_params


def _standard():
    """Optax mixes int32 counts and floats: it runs under standard promotion."""
    return jax.numpy_dtype_promotion("standard")


def _close(a, b, rtol=1e-6, atol=1e-7):
    a_leaves, a_def = jax.tree.flatten(a)
    b_leaves, b_def = jax.tree.flatten(b)
    assert a_def == b_def, (a_def, b_def)
    for x, y in zip(a_leaves, b_leaves):
        assert jnp.result_type(x) == jnp.result_type(y), (x, y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


PARAMS = {
    "w": jnp.asarray(np.linspace(-1.0, 2.0, 12).reshape(3, 4), jnp.float32),
    "b": jnp.asarray([0.5, -0.25, 1.5], jnp.float32),
}


def _grads(step: int):
    """A deterministic gradient per step, shaped like PARAMS."""
    return {
        "w": jnp.asarray(np.cos(np.arange(12.0) + step).reshape(3, 4), jnp.float32),
        "b": jnp.asarray(np.sin(np.arange(3.0) * (step + 1)), jnp.float32),
    }


# --------------------------------------------------------------------------------------------
# GradientTransformation pairs


def _doubling_pair(cls):
    """A hand-written transform: doubles the updates and counts its steps."""

    def init(params):
        del params
        return jnp.zeros((), jnp.int32)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: 2.0 * u, updates), state + 1

    return cls(init, update)


def _loss_scaling_pair(cls):
    """Multiplies the updates by ``loss`` when it arrives; by 1 otherwise."""

    def update(updates, state, params=None, **extra):
        del params
        factor = extra.get("loss", 1.0)
        return jax.tree.map(lambda u: factor * u, updates), state

    return cls(lambda params: (), update)


def test_the_pair_types_are_optaxs():
    assert gradtx.GradientTransformation._fields == optax.GradientTransformation._fields
    assert issubclass(gradtx.GradientTransformationExtraArgs, gradtx.GradientTransformation)
    assert gradtx.GradientTransformationExtraArgs._fields == ("init", "update")
    pair = _doubling_pair(gradtx.GradientTransformation)
    init, update = pair
    assert init is pair.init and update is pair.update
    for name in ("TransformInitFn", "TransformUpdateFn", "TransformUpdateExtraArgsFn"):
        ours = inspect.signature(getattr(gradtx, name).__call__).parameters
        theirs = inspect.signature(getattr(optax, name).__call__).parameters
        assert list(ours) == list(theirs), name


def test_type_aliases_annotate():
    def update(
        updates: gradtx.Updates, state: gradtx.OptState, params: gradtx.Params | None = None
    ) -> tuple[gradtx.Updates, gradtx.OptState]:
        return updates, state

    assert update(1.0, (), None) == (1.0, ())
    # Annotations are strings in this module: build the unions the way an annotation would.
    for alias in (gradtx.Params, gradtx.Updates, gradtx.OptState, gradtx.MaskOrFn):
        assert (alias | None) is not None
    assert gradtx.Schedule in gradtx.ScalarOrSchedule.__args__


def _run(tx, steps=4, extra=None, jit=False):
    params = PARAMS
    state = tx.init(params)

    def step(tx, params, state, grads):
        updates, state = tx.update(grads, state, params, **(extra or {}))
        return optax.apply_updates(params, updates), state, updates

    if jit:  # a gradtx transform is a pytree argument; a pair inside it is static
        step = jax.jit(step)
    out = []
    for t in range(steps):
        params, state, updates = step(tx, params, state, _grads(t))
        out.append(updates)
    return params, state, out


@pytest.mark.parametrize("jit", [False, True])
def test_a_hand_written_pair_chains_with_gradtx_transforms(jit):
    ours = gradtx.chain(_doubling_pair(gradtx.GradientTransformation), gradtx.sgd(0.1, 0.9))
    with _standard():
        theirs = optax.chain(_doubling_pair(optax.GradientTransformation), optax.sgd(0.1, 0.9))
        p_theirs, s_theirs, _ = _run(theirs)
    p_ours, s_ours, _ = _run(ours, jit=jit)
    _close(p_ours, p_theirs)
    assert int(s_ours[0]) == int(s_theirs[0]) == 4


@pytest.mark.parametrize("extra_args", [False, True])
def test_extra_args_reach_only_an_extra_args_pair(extra_args):
    loss = {"loss": jnp.asarray(3.0, jnp.float32)}
    ours_cls = (
        gradtx.GradientTransformationExtraArgs if extra_args else gradtx.GradientTransformation
    )
    their_cls = (
        optax.GradientTransformationExtraArgs if extra_args else optax.GradientTransformation
    )
    with _standard():
        theirs = optax.chain(_loss_scaling_pair(their_cls), optax.sgd(0.1))
        _, _, u_theirs = _run(theirs, steps=2, extra=loss)
    for ours in (
        gradtx.chain(_loss_scaling_pair(ours_cls), gradtx.sgd(0.1)),
        gradtx.chain(_loss_scaling_pair(their_cls), gradtx.sgd(0.1)),  # Optax's pair classes too
    ):
        _, _, u_ours = _run(ours, steps=2, extra=loss)
        _close(u_ours, u_theirs)
    scale = 3.0 if extra_args else 1.0
    _close(u_theirs[0], jax.tree.map(lambda g: -0.1 * scale * g, _grads(0)))


def test_with_extra_args_support_takes_a_pair():
    tx = gradtx.with_extra_args_support(_loss_scaling_pair(gradtx.GradientTransformation))
    grads = _grads(0)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS, loss=jnp.asarray(5.0))
    _close(updates, grads)  # the pair takes no extra arguments: loss is dropped


# --------------------------------------------------------------------------------------------
# MultiSteps


def _k_schedule(step):
    return jnp.where(step < 2, 2, 3)


def _nan_at(steps):
    """Gradients with a NaN in ``w`` at the given steps."""

    def grads(t):
        g = _grads(t)
        if t in steps:
            g = {**g, "w": g["w"].at[1, 2].set(jnp.nan)}
        return g

    return grads


MULTISTEPS_CASES = {
    "k3_mean": (dict(every_k_schedule=3), _grads),
    "k2_sum": (dict(every_k_schedule=2, use_grad_mean=False), _grads),
    "k1": (dict(every_k_schedule=1), _grads),
    "k_scheduled": (dict(every_k_schedule=_k_schedule), _grads),
    "skip_not_finite": (
        dict(every_k_schedule=3, should_skip_update_fn="skip_not_finite"),
        _nan_at({1, 5}),
    ),
    "skip_large_updates": (
        dict(every_k_schedule=2, should_skip_update_fn="skip_large_updates"),
        lambda t: jax.tree.map(lambda g: (4.0 if t in (2, 3) else 1.0) * g, _grads(t)),
    ),
}


def _skip_fn(lib, name):
    if name == "skip_large_updates":
        return functools.partial(lib.skip_large_updates, max_squared_norm=20.0)
    return getattr(lib, name)


def _multisteps(lib, inner, kwargs):
    kwargs = dict(kwargs)
    if "should_skip_update_fn" in kwargs:
        kwargs["should_skip_update_fn"] = _skip_fn(lib, kwargs["should_skip_update_fn"])
    return lib.MultiSteps(inner, **kwargs)


def _trajectory(ms, grads_at, steps=10, jit=False):
    params = PARAMS
    state = ms.init(params)
    update = jax.jit(ms.update) if jit else ms.update
    out = []
    for t in range(steps):
        updates, state = update(grads_at(t), state, params)
        params = optax.apply_updates(params, updates)
        out.append((updates, state, bool(ms.has_updated(state))))
    return params, out


def _same_steps(ours, theirs, rtol=1e-6, atol=1e-7):
    for (u_a, s_a, h_a), (u_b, s_b, h_b) in zip(ours, theirs):
        assert h_a == h_b
        assert int(s_a.mini_step) == int(s_b.mini_step)
        assert int(s_a.gradient_step) == int(s_b.gradient_step)
        assert s_a.mini_step.dtype == s_b.mini_step.dtype == jnp.int32
        _close(u_a, u_b, rtol, atol)
        _close(s_a.acc_grads, s_b.acc_grads, rtol, atol)
        assert jax.tree.structure(s_a.skip_state) == jax.tree.structure(s_b.skip_state)
        for x, y in zip(jax.tree.leaves(s_a.skip_state), jax.tree.leaves(s_b.skip_state)):
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol)


@pytest.mark.parametrize("case", list(MULTISTEPS_CASES))
def test_multisteps_matches_optax_with_the_same_inner_transform(case):
    kwargs, grads_at = MULTISTEPS_CASES[case]
    with _standard():
        p_theirs, theirs = _trajectory(
            _multisteps(optax, optax.sgd(0.1, 0.9), kwargs), grads_at, jit=True
        )
        p_ours, ours = _trajectory(_multisteps(gradtx, optax.sgd(0.1, 0.9), kwargs), grads_at)
    _same_steps(ours, theirs)
    _close(p_ours, p_theirs)
    _close(ours[-1][1].inner_opt_state, theirs[-1][1].inner_opt_state)
    assert any(h for _, _, h in ours)
    if case.startswith("skip"):  # some steps were skipped: fewer emitted updates than steps / k
        assert int(ours[-1][1].gradient_step) < 10 // kwargs["every_k_schedule"]


@pytest.mark.parametrize("case", ["k3_mean", "k_scheduled", "skip_not_finite"])
def test_multisteps_over_gradtx_adam_matches_optax_over_optax_adam(case):
    kwargs, grads_at = MULTISTEPS_CASES[case]
    with _standard():
        p_theirs, theirs = _trajectory(_multisteps(optax, optax.adam(0.1), kwargs), grads_at)
    p_ours, ours = _trajectory(_multisteps(gradtx, gradtx.adam(0.1), kwargs), grads_at, jit=True)
    _same_steps(ours, theirs, rtol=1e-5, atol=1e-6)
    _close(p_ours, p_theirs, rtol=1e-5, atol=1e-6)


def test_multisteps_every_k_is_a_leaf_one_compile_serves_every_k():
    traces = []

    @jax.jit
    def run(ms, params):
        traces.append(1)
        state = ms.init(params)
        for t in range(6):
            updates, state = ms.update(_grads(t), state, params)
            params = gradtx.apply_updates(params, updates)
        return params, state

    results = {}
    for k in (2, 3):
        ms = gradtx.MultiSteps(gradtx.sgd(0.1), k)
        assert any(int(x) == k for x in jax.tree.leaves(ms))
        results[k] = run(ms, PARAMS)
        eager = _trajectory(ms, _grads, steps=6)[0]
        _close(results[k][0], eager, rtol=1e-6, atol=1e-6)
        assert int(results[k][1].gradient_step) == 6 // k
    assert len(traces) == 1
    replaced = dataclasses.replace(gradtx.MultiSteps(gradtx.sgd(0.1), 2), every_k_schedule=3)
    _close(run(replaced, PARAMS), results[3])
    assert len(traces) == 1


def test_multisteps_with_a_gradtx_schedule_for_k():
    schedule = gradtx.piecewise_constant_schedule(2.0, {2: 1.5})  # 2 updates of 2, then of 3
    ours = _trajectory(gradtx.MultiSteps(gradtx.sgd(0.1), schedule), _grads)[1]
    with _standard():
        theirs = _trajectory(optax.MultiSteps(optax.sgd(0.1), _k_schedule), _grads)[1]
    _same_steps(ours, theirs)


def test_multisteps_in_a_chain_and_as_a_pair():
    ms = gradtx.MultiSteps(gradtx.sgd(0.1, 0.9), 2)
    pair = ms.gradient_transformation()
    assert isinstance(pair, gradtx.GradientTransformationExtraArgs)
    assert isinstance(pair, gradtx.GradientTransformation)
    with _standard():
        theirs = optax.chain(
            optax.clip_by_global_norm(1.0),
            optax.MultiSteps(optax.sgd(0.1, 0.9), 2).gradient_transformation(),
        )
        p_theirs, _, _ = _run(theirs, steps=6)
    for inner in (ms, pair):
        p_ours, _, _ = _run(gradtx.chain(gradtx.clip_by_global_norm(1.0), inner), steps=6)
        _close(p_ours, p_theirs, rtol=1e-5, atol=1e-6)
    assert ms.inner_opt is ms.opt


def test_multisteps_passes_extra_args_to_the_inner_transform():
    loss = {"loss": jnp.asarray(3.0, jnp.float32)}
    with _standard():
        theirs = optax.MultiSteps(
            _loss_scaling_pair(optax.GradientTransformationExtraArgs), every_k_schedule=2
        )
        _, _, u_theirs = _run(theirs, steps=4, extra=loss)
    ours = gradtx.MultiSteps(
        _loss_scaling_pair(gradtx.GradientTransformationExtraArgs), every_k_schedule=2
    )
    _, _, u_ours = _run(ours, steps=4, extra=loss)
    _close(u_ours, u_theirs)
    assert float(jnp.abs(u_ours[1]["b"]).sum()) > 0  # the emitting step saw the loss


def test_multisteps_state_and_signature_are_optaxs():
    assert gradtx.MultiStepsState._fields == optax.MultiStepsState._fields
    ours = inspect.signature(gradtx.MultiSteps).parameters
    theirs = inspect.signature(optax.MultiSteps).parameters
    assert list(ours) == list(theirs)
    for name in ("use_grad_mean", "should_skip_update_fn"):
        assert ours[name].default == theirs[name].default
    for name in ("init", "update", "has_updated", "gradient_transformation", "inner_opt"):
        assert hasattr(gradtx.MultiSteps, name), name
    ours = inspect.signature(gradtx.ShouldSkipUpdateFunction.__call__).parameters
    theirs = inspect.signature(optax.ShouldSkipUpdateFunction.__call__).parameters
    assert list(ours) == list(theirs)


def test_multisteps_rejects_bad_arguments():
    with pytest.raises(
        gradtx.HyperparameterError,
        match=r"^gradtx\.MultiSteps: every_k_schedule must be in \[1, inf\), got 0$",
    ):
        gradtx.MultiSteps(gradtx.sgd(0.1), 0)
    with pytest.raises(
        gradtx.HyperparameterError,
        match=r"^gradtx\.MultiSteps: every_k_schedule must be an integer in \[1, inf\), got 2\.5$",
    ):
        gradtx.MultiSteps(gradtx.sgd(0.1), 2.5)
    with pytest.raises(gradtx.HyperparameterError, match=r"gradtx\.MultiSteps: use_grad_mean"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 2, use_grad_mean="yes")
    with pytest.raises(TypeError, match=r"gradtx\.MultiSteps: should_skip_update_fn must be"):
        gradtx.MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn="skip")

    def counts(updates, gradient_step, params):
        return jnp.asarray(1, jnp.int32), ()

    ms = gradtx.MultiSteps(gradtx.sgd(0.1), 2, should_skip_update_fn=counts)
    with pytest.raises(ValueError, match=r"must return a boolean scalar first, got .* int32"):
        ms.init(PARAMS)


# --------------------------------------------------------------------------------------------
# Numerics helpers

TREE = {
    "a": jnp.asarray(np.linspace(-2.0, 3.0, 10).reshape(2, 5), jnp.float32),
    "b": jnp.asarray([0.25, -4.0, 1.5], jnp.float32),
    "c": None,
}
MOMENTS = {
    "a": jnp.asarray(np.linspace(0.1, 1.0, 10).reshape(2, 5), jnp.float32),
    "b": jnp.asarray([0.5, 0.01, 2.0], jnp.float32),
    "c": None,
}


def test_global_norm_matches_optax():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Optax's name is deprecated there
        theirs = optax.global_norm(TREE)
    ours = gradtx.global_norm(TREE)
    _close(ours, theirs)
    complex_tree = {"z": jnp.asarray([1 + 2j, -3j], jnp.complex64), "r": TREE["b"]}
    with warnings.catch_warnings(), _standard():
        warnings.simplefilter("ignore", DeprecationWarning)
        _close(gradtx.global_norm(complex_tree), optax.global_norm(complex_tree))


NORM_CASES = [
    dict(),
    dict(ord=1),
    dict(ord=2, axis=1, keepdims=True),
    dict(ord="fro", axis=(0, 1)),
    dict(ord=jnp.inf, axis=0),
    dict(axis=1),
]


@pytest.mark.parametrize("kwargs", NORM_CASES, ids=[str(k) for k in NORM_CASES])
@pytest.mark.parametrize("min_norm", [0.0, 1e-3, 10.0])
def test_safe_norm_values_and_gradients_match_optax(kwargs, min_norm):
    x = TREE["a"] if "axis" in kwargs or kwargs.get("ord") == "fro" else TREE["b"]
    for value in (x, jnp.zeros_like(x), x.at[0].set(0.0)):
        _close(
            gradtx.safe_norm(value, min_norm, **kwargs),
            optax.safe_norm(value, min_norm, **kwargs),
        )

        def total(lib, v):
            return jnp.sum(lib.safe_norm(v, min_norm, **kwargs))

        ours = jax.grad(functools.partial(total, gradtx))(value)
        theirs = jax.grad(functools.partial(total, optax))(value)
        assert bool(jnp.all(jnp.isfinite(ours)))
        _close(ours, theirs)


def test_safe_norm_gradient_at_zero_is_zero():
    grad = jax.grad(lambda v: gradtx.safe_norm(v, 0.0))(jnp.zeros(3, jnp.float32))
    np.testing.assert_array_equal(grad, np.zeros(3, np.float32))
    naive = jax.grad(lambda v: jnp.maximum(jnp.linalg.norm(v), 0.0))(jnp.zeros(3, jnp.float32))
    assert not bool(jnp.all(jnp.isfinite(naive)))  # what the safe version avoids


@pytest.mark.parametrize("min_rms", [0.0, 1e-3, 10.0])
def test_safe_root_mean_squares_matches_optax(min_rms):
    for x in (TREE["a"], jnp.zeros((4,), jnp.float32), jnp.asarray([1 + 1j, -2j], jnp.complex64)):
        _close(gradtx.safe_root_mean_squares(x, min_rms), optax.safe_root_mean_squares(x, min_rms))
        if jnp.iscomplexobj(x):
            continue
        ours = jax.grad(lambda v: gradtx.safe_root_mean_squares(v, min_rms))(x)
        theirs = jax.grad(lambda v: optax.safe_root_mean_squares(v, min_rms))(x)
        assert bool(jnp.all(jnp.isfinite(ours)))
        _close(ours, theirs)


@pytest.mark.parametrize(
    "count",
    [
        jnp.asarray(5, jnp.int32),
        jnp.asarray(np.iinfo(np.int32).max, jnp.int32),
        jnp.asarray([0, 127], jnp.int8),
        jnp.asarray(1.5, jnp.float32),
        jnp.asarray([np.finfo(np.float32).max, np.inf, np.nan], jnp.float32),
        7,
    ],
    ids=["int32", "int32_max", "int8", "float32", "float32_edges", "python_int"],
)
def test_safe_increment_matches_optax(count):
    ours, theirs = gradtx.safe_increment(count), optax.safe_increment(count)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    assert gradtx.safe_int32_increment is gradtx.safe_increment
    jitted = jax.jit(gradtx.safe_increment)(count)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(theirs))


def test_safe_increment_rejects_booleans():
    with pytest.raises(
        ValueError,
        match=r"^gradtx\.safe_increment: count must have an integer or floating-point dtype, "
        r"got bool$",
    ):
        gradtx.safe_increment(jnp.asarray(True))


@pytest.mark.parametrize("decay", [0.9, 0.0, 1.0, jnp.asarray(0.99, jnp.float32)])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_moment_updates_match_optax(decay, order):
    with _standard():
        _close(
            gradtx.update_moment(TREE, MOMENTS, decay, order),
            optax.update_moment(TREE, MOMENTS, decay, order),
        )
        _close(
            gradtx.update_moment_per_elem_norm(TREE, MOMENTS, decay, order),
            optax.update_moment_per_elem_norm(TREE, MOMENTS, decay, order),
        )
        _close(
            gradtx.update_infinity_moment(TREE, MOMENTS, decay, 1e-8 * order),
            optax.update_infinity_moment(TREE, MOMENTS, decay, 1e-8 * order),
        )


def test_moment_per_elem_norm_of_complex_gradients_matches_optax():
    g = {"z": jnp.asarray([1 + 2j, -3 + 0.5j], jnp.complex64)}
    m = {"z": jnp.asarray([0.5, 1.0], jnp.float32)}
    for order in (1, 2, 3):
        with _standard():
            theirs = optax.update_moment_per_elem_norm(g, m, 0.9, order)
        _close(gradtx.update_moment_per_elem_norm(g, m, 0.9, order), theirs)
    with _standard():
        _close(gradtx.update_moment(g, g, 0.9, 2), optax.update_moment(g, g, 0.9, 2))


@pytest.mark.parametrize("decay", [0.9, 0.999, jnp.asarray(0.5, jnp.float32)])
@pytest.mark.parametrize("count", [1, 5, 100])
def test_bias_correction_matches_optax(decay, count):
    t = jnp.asarray(count, jnp.int32)
    with _standard():
        theirs = optax.bias_correction(MOMENTS, decay, t)
    _close(gradtx.bias_correction(MOMENTS, decay, t), theirs)
    _close(jax.jit(gradtx.bias_correction)(MOMENTS, decay, t), theirs)


def test_bias_correction_keeps_a_bfloat16_moment_in_bfloat16():
    m = {"m": jnp.asarray([1.0, 2.0], jnp.bfloat16)}
    out = gradtx.bias_correction(m, 0.999, jnp.asarray(1, jnp.int32))
    assert out["m"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out["m"], np.float32), [1000.0, 2000.0], rtol=1e-2)


@pytest.mark.parametrize("scale", [0.5, -1.0, 0.0, 1.0, 2.0])
def test_scale_gradient_matches_optax(scale):
    def loss(lib, tree):
        y = lib.scale_gradient(tree, scale)
        return jnp.sum(y["a"] ** 2) + jnp.sum(jnp.sin(y["b"]))

    tree = {"a": TREE["a"], "b": TREE["b"]}
    _close(gradtx.scale_gradient(tree, scale), tree)
    ours = jax.grad(functools.partial(loss, gradtx))(tree)
    theirs = jax.grad(functools.partial(loss, optax))(tree)
    _close(ours, theirs)


def test_scale_gradient_takes_a_traced_scale():
    x = TREE["b"]

    @jax.jit
    def grad_at(scale):
        return jax.grad(lambda v: jnp.sum(gradtx.scale_gradient(v, scale) ** 2))(x)

    for scale in (0.0, 0.5, -2.0):
        _close(grad_at(jnp.asarray(scale, jnp.float32)), scale * 2.0 * x)
    bf16 = jax.grad(lambda v: jnp.sum(gradtx.scale_gradient(v, 0.5)).astype(jnp.float32))(
        x.astype(jnp.bfloat16)
    )
    assert bf16.dtype == jnp.bfloat16


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: gradtx.safe_norm(TREE["b"], -1.0),
            r"gradtx\.safe_norm: min_norm must be in \[0, inf\), got -1\.0",
        ),
        (
            lambda: gradtx.safe_root_mean_squares(TREE["b"], -0.5),
            r"gradtx\.safe_root_mean_squares: min_rms must be in \[0, inf\), got -0\.5",
        ),
        (
            lambda: gradtx.update_moment(TREE, MOMENTS, 1.5, 2),
            r"gradtx\.update_moment: decay must be in \[0, 1\], got 1\.5",
        ),
        (
            lambda: gradtx.update_moment_per_elem_norm(TREE, MOMENTS, 0.9, 0),
            r"gradtx\.update_moment_per_elem_norm: order must be in \(0, inf\), got 0",
        ),
        (
            lambda: gradtx.update_infinity_moment(TREE, MOMENTS, 0.9, -1e-8),
            r"gradtx\.update_infinity_moment: eps must be in \[0, inf\), got -1e-08",
        ),
        (
            lambda: gradtx.bias_correction(MOMENTS, 1.0, 3),
            r"gradtx\.bias_correction: decay must be in \[0, 1\), got 1\.0",
        ),
    ],
)
def test_numerics_reject_bad_arguments(call, message):
    with pytest.raises(gradtx.HyperparameterError, match="^" + message + "$"):
        call()


def test_moment_updates_name_a_tree_mismatch():
    with pytest.raises(gradtx.TreeMismatchError, match=r"gradtx\.update_moment: .*\['b'\]"):
        gradtx.update_moment(TREE, {**MOMENTS, "b": jnp.zeros(2)}, 0.9, 2)


@pytest.mark.parametrize("skip", ["none", "not_finite", "large"])
def test_multisteps_packs_and_gives_the_tree_numbers(skip):
    fn = {
        "none": None,
        "not_finite": gradtx.skip_not_finite,
        "large": functools.partial(gradtx.skip_large_updates, max_squared_norm=1e6),
    }[skip]
    tx = gradtx.MultiSteps(gradtx.adam(0.05), 2, should_skip_update_fn=fn)
    assert tx.is_elementwise()
    # four steps: two emitted updates of k = 2
    (packed,) = check_packed_equals_tree(tx, steps=4)
    assert len(packed.buffers) < len(jax.tree.leaves(layout_params()))


def test_multisteps_with_its_own_skip_test_keeps_the_leaves():
    def never(updates, gradient_step, params):
        return jnp.asarray(False), ()

    tx = gradtx.MultiSteps(gradtx.adam(0.05), 2, should_skip_update_fn=never)
    assert not tx.is_elementwise() and not tx.is_stackable()
    packed = gradtx.pack(layout_params(), tx)
    assert len(packed.buffers) == len(jax.tree.leaves(layout_params()))
