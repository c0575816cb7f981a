"""Hyperparameters are JAX scalars made at construction: one compile in every framework."""

import dataclasses
import inspect

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import gradtx
import gradtx.contrib
import gradtx.nnx
from gradtx import _checks
from gradtx._step import _compiled_step
from gradtx._transform import Transform, field, pytree_dataclass, split_extra, static_field

LRS = (0.1, 0.01, 1e-3, 1e-4)


def test_leaves_are_what_jit_makes_of_the_numbers():
    tx = gradtx.chain(gradtx.clip_by_global_norm(1), gradtx.adam(1e-3, b1=0.0))
    for x in jax.tree.leaves(tx):
        assert isinstance(x, jax.Array)
    lr = tx.transforms[1].transforms[-1].learning_rate
    want = jnp.asarray(1e-3)
    assert (lr.dtype, lr.weak_type) == (want.dtype, want.weak_type)
    assert np.asarray(lr) == np.asarray(want)
    # -0.0 keeps its sign; integers stay integers; bools are structure, not leaves.
    assert np.signbit(np.asarray(gradtx.scale(-0.0).step_size))
    assert gradtx.cosine_decay_schedule(1.0, 10).decay_steps.dtype == jnp.int32


def test_repr_shows_the_numbers_given():
    assert "learning_rate=0.1)" in repr(gradtx.sgd(0.1))


def test_x64_mode_at_construction():
    with jax.enable_x64(True):
        assert gradtx.sgd(0.1).transforms[-1].learning_rate.dtype == jnp.float64
    assert gradtx.sgd(0.1).transforms[-1].learning_rate.dtype == jnp.float32


def test_replace_converts_too():
    tx = dataclasses.replace(gradtx.scale_by_learning_rate(0.1), learning_rate=0.5)
    assert isinstance(tx.learning_rate, jax.Array) and float(tx.learning_rate) == 0.5


def test_a_field_declares_its_converter_and_check():
    seen = []

    def halve(fn, name, value):
        seen.append((fn, name, value))
        return value / 2

    @pytree_dataclass
    class Halved(Transform):
        fn_name = "halved"
        rate: object = field(1.0, converter=halve, check=_checks.UNIT)
        axes: object = static_field(None, converter=lambda fn, name, v: v and tuple(v))

    tx = Halved(1.5, [0, 1])
    # the converter gets the function, the argument and the value given; the check sees its
    # result, and the field holds it as a JAX scalar (a pytree leaf)
    assert seen == [("halved", "rate", 1.5)]
    assert isinstance(tx.rate, jax.Array) and float(tx.rate) == 0.75 and tx.axes == (0, 1)
    assert jax.tree.structure(tx) == jax.tree.structure(Halved(0.5, (0, 1)))
    with pytest.raises(gradtx.HyperparameterError, match=r"^gradtx\.halved: rate must be in"):
        Halved(2.0)
    # unflattening (jit, vmap, tree_map) rebuilds the object without converting again
    assert float(jax.tree.map(lambda x: x * 4, tx).rate) == 3.0 and len(seen) == 3


@pytest.mark.parametrize(
    "make, message",
    [
        (
            lambda: gradtx.adam(float("inf")),
            "gradtx.adam: learning_rate must be in [0, inf), got inf",
        ),
        (lambda: gradtx.adam("abc"), "gradtx.adam: learning_rate must be a number"),
        (lambda: gradtx.adam(1e-3, b1=1.5), "b1 must be in [0, 1), got 1.5"),
    ],
)
def test_bad_values_fail_at_construction(make, message):
    with pytest.raises(gradtx.HyperparameterError) as err:
        make()
    assert message in str(err.value)


def test_step_same_bits_as_python_numbers():
    """The compiled step fed device scalars equals the one fed Python numbers."""
    params = {"w": jnp.linspace(-1.0, 1.0, 257, dtype=jnp.float32)}
    grads = {"w": jnp.cos(params["w"])}
    tx = gradtx.adamw(3e-3, weight_decay=0.1)
    numbers = jax.tree.map(lambda x: x.item(), tx)  # bypasses __init__: Python floats as leaves
    assert all(isinstance(x, float) for x in jax.tree.leaves(numbers))
    p1, s1 = jax.tree.map(jnp.copy, params), tx.init(params)
    p2, s2 = jax.tree.map(jnp.copy, params), tx.init(params)
    for _ in range(3):
        p1, s1 = gradtx.step(tx, grads, s1, p1)
        s2, p2 = _compiled_step(numbers, grads, s2, p2, *split_extra({}))
    for a, b in zip(jax.tree.leaves((p1, s1)), jax.tree.leaves((p2, s2))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_vmap_over_learning_rate_still_traces():
    x0 = jnp.linspace(-1.0, 1.0, 8)

    def final(lr):
        tx = gradtx.sgd(lr, momentum=0.9)
        x, s = x0, tx.init(x0)
        for _ in range(2):
            u, s = tx.update(2 * x, s, x)
            x = gradtx.apply_updates(x, u)
        return jnp.sum(x * x)

    out = jax.vmap(final)(jnp.array([0.0, 0.1], jnp.float32))
    np.testing.assert_allclose(np.asarray(out[0]), float(jnp.sum(x0 * x0)))
    assert float(out[1]) < float(out[0])


def _sched(lr):
    return gradtx.warmup_cosine_decay_schedule(0.0, lr, 5, 50, end_value=lr / 10)


@pytest.mark.parametrize("make", [gradtx.adamw, lambda lr: gradtx.sgd(_sched(lr), momentum=0.9)])
def test_one_trace_for_four_rates_under_jax_jit(make):
    traces = []
    params = {"w": jnp.ones(3)}

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        updates, state = tx.update(params, state, params)
        return gradtx.apply_updates(params, updates), state

    for lr in LRS:
        tx = make(lr)
        step(tx, params, tx.init(params))
    assert len(traces) == 1


@pytest.mark.parametrize("make", [gradtx.adamw, lambda lr: gradtx.sgd(_sched(lr), momentum=0.9)])
def test_one_trace_for_four_rates_under_eqx_filter_jit(make):
    traces = []
    model = eqx.nn.Linear(3, 2, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_inexact_array)

    @eqx.filter_jit
    def step(tx, params, state):
        traces.append(1)
        grads = jax.grad(lambda p: jnp.sum(eqx.combine(p, static)(jnp.ones(3)) ** 2))(params)
        updates, state = tx.update(grads, state, params)
        return eqx.apply_updates(params, updates), state

    for lr in LRS:
        tx = make(lr)
        out, _ = step(tx, params, tx.init(params))
    assert len(traces) == 1
    assert isinstance(out.weight, jax.Array)


class _MLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(3, 8, rngs=rngs)
        self.l2 = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


@pytest.mark.parametrize("make", [gradtx.adamw, lambda lr: gradtx.sgd(_sched(lr), momentum=0.9)])
def test_one_trace_for_four_rates_under_nnx_jit(make):
    X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    traces = []

    @nnx.jit
    def step(model, optimizer):
        traces.append(1)
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m(X) ** 2))(model)
        optimizer.update(model, grads)
        return loss

    for lr in LRS:
        model = _MLP(nnx.Rngs(0))
        optimizer = gradtx.nnx.Optimizer(model, make(lr), wrt=nnx.Param)
        step(model, optimizer)
        step(model, optimizer)
    assert len(traces) == 1
    assert int(optimizer.step[...]) == 2


def test_nnx_optimizer_matches_the_plain_loop_and_logs():
    X = jnp.linspace(-1.0, 1.0, 12).reshape(4, 3)
    model = _MLP(nnx.Rngs(0))
    graphdef, params = nnx.split(model, nnx.Param)
    params = jax.tree.map(jnp.array, params)
    sched = gradtx.exponential_decay(0.1, 1, 0.5)
    tx = gradtx.adam(sched)
    optimizer = gradtx.nnx.Optimizer(model, tx)

    @nnx.jit
    def step(model, optimizer):
        grads = nnx.grad(lambda m: jnp.mean(m(X) ** 2))(model)
        optimizer.update(model, grads)

    for _ in range(3):
        step(model, optimizer)
    state = tx.init(params)
    for _ in range(3):
        grads = jax.grad(lambda p: jnp.mean(nnx.merge(graphdef, p)(X) ** 2))(params)
        updates, state = tx.update(grads, state, params)
        params = gradtx.apply_updates(params, updates)
    got = nnx.state(model, nnx.Param)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    logged = gradtx.current_hyperparams(optimizer)["learning_rate"]
    np.testing.assert_allclose(float(logged), float(sched(2)), rtol=1e-6)
    # The optimizer's own fields read alike: its opt_state holds NNX variables.
    spelled = gradtx.current_hyperparams(optimizer.tx, optimizer.opt_state)["learning_rate"]
    np.testing.assert_allclose(float(spelled), float(sched(2)), rtol=1e-6)
    with pytest.raises(TypeError, match=r"gradtx.current_hyperparams: tx must be .* got tuple"):
        gradtx.current_hyperparams(optimizer.opt_state)


def test_update_is_traced_once_for_new_transforms_and_new_step_functions(monkeypatch):
    """Inside the caller's jit, update's trace is kept: four step functions, each a new jit
    over a new transform with another learning rate, trace Adam's update once; a function among
    the extras (which may close over the caller's tracers) is traced in every program."""
    calls = []
    original = gradtx.optimizers.adam.ScaleByAdam._update

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(gradtx.optimizers.adam.ScaleByAdam, "_update", counted)
    params = {"w": jnp.ones((5, 3)), "b": jnp.zeros((3,))}
    shape = {"w": (5, 3), "b": (4,)}  # a tree of other shapes traces again
    results = []
    for lr in LRS:
        tx = gradtx.adam(lr, b1=0.7)

        def step(p, s, g):
            u, s = tx.update(g, s, p)
            return gradtx.apply_updates(p, u), s

        results.append(jax.jit(step)(params, tx.init(params), params)[0])
    assert len(calls) == 1
    for lr, p in zip(LRS, results):  # and every program has its own rate
        ref = gradtx.adam(lr, b1=0.7)
        u, _ = ref.update(params, ref.init(params), params)  # eager: a program of its own
        want = gradtx.apply_updates(params, u)
        np.testing.assert_allclose(np.asarray(p["w"]), np.asarray(want["w"]), rtol=1e-6)
    other = {k: jnp.ones(v) for k, v in shape.items()}
    tx = gradtx.adam(0.1, b1=0.7)
    jax.jit(lambda p, s: tx.update(p, s, p))(other, tx.init(other))
    assert len(calls) == 2
    tx = gradtx.adam(0.1, b1=0.7)
    for _ in range(2):
        jax.jit(lambda p, s: tx.update(p, s, p, value_fn=lambda q: q))(params, tx.init(params))
    assert len(calls) == 4


def test_non_array_extras_are_static():
    """An Optax transform that takes a function among its extras runs inside gradtx.chain."""
    params = jnp.array([1.0, 2.0])

    def f(p):
        return jnp.sum((p - 3.0) ** 2)

    ref = optax.lbfgs()
    tx = gradtx.chain(ref)
    s_ref, s = ref.init(params), tx.init(params)
    p_ref, p = params, params
    for _ in range(3):
        v, g = jax.value_and_grad(f)(p_ref)
        u_ref, s_ref = ref.update(g, s_ref, p_ref, value=v, grad=g, value_fn=f)
        p_ref = optax.apply_updates(p_ref, u_ref)
        v, g = jax.value_and_grad(f)(p)
        u, s = tx.update(g, s, p, value=v, grad=g, value_fn=f)
        p = gradtx.apply_updates(p, u)
    np.testing.assert_allclose(np.asarray(p), np.asarray(p_ref), rtol=1e-6)


def test_extras_an_inner_transform_does_not_take_are_not_passed():
    class NoExtras:
        def init(self, params):
            return ()

        def update(self, updates, state, params=None):
            return updates, state

    u, _ = gradtx.chain(NoExtras()).update(jnp.ones(2), ((),), None, note="hi", loss=1.0)
    np.testing.assert_array_equal(np.asarray(u), np.ones(2))


def test_a_batch_of_rates_outside_vmap_is_an_error():
    tx = gradtx.sgd(jnp.array([0.1, 0.2, 0.3]))
    p = jnp.ones((4, 3))
    with pytest.raises(gradtx.HyperparameterError, match=r"learning_rate has shape \(3,\)"):
        tx.update(p, tx.init(p), p)
    # Under vmap each member sees its own scalar rate.
    u, _ = jax.vmap(lambda t: t.update(p, t.init(p), p), in_axes=(gradtx.batch_axes(tx),))(tx)
    np.testing.assert_allclose(np.asarray(u[:, 0, 0]), [-0.1, -0.2, -0.3], rtol=1e-6)


@pytest.mark.parametrize("every_k", [1.5, float("inf"), 0])
def test_accumulate_needs_a_whole_number_of_steps(every_k):
    with pytest.raises(gradtx.HyperparameterError, match="every_k must be"):
        gradtx.accumulate(gradtx.sgd(0.1), every_k)


def _public_factories():
    """(id, function, its parameters) for every public function of gradtx and gradtx.contrib,
    the sweep API's own functions left out (they build no transform or schedule)."""
    for module in (gradtx, gradtx.contrib):
        for name in sorted(dir(module)):
            f = getattr(module, name)
            if name.startswith("_") or isinstance(f, type) or not callable(f):
                continue
            if getattr(f, "__module__", "").startswith("gradtx._sweep"):
                continue
            try:
                params = inspect.signature(f).parameters
            except (TypeError, ValueError):
                continue
            yield f"{module.__name__}.{name}", f, params


#: Values for required arguments other than a learning rate (which gets 0.1).
_REQUIRED = {
    "base_optimizer": gradtx.sgd(0.1),
    "max_linesearch_steps": 10,
    "max_backtracking_steps": 10,
    "decay_steps": 100,
    "warmup_steps": 10,
}


def _required(make):
    return {
        k: _REQUIRED.get(k, 0.1)
        for k, p in inspect.signature(make).parameters.items()
        if p.default is inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
    }


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(f, id=i)
        for i, f, params in _public_factories()
        if "weight_decay" in params and not i.endswith(".add_decayed_weights")
    ],
)
def test_a_weight_decay_of_zero_is_a_leaf_like_any_other(make):
    """Every factory with a ``weight_decay``: an array 0 and 0.1 build the same pytree structure
    (so one compiled program serves a sweep that includes 0), and so does a literal 0 wherever
    0 is not the default (a default 0 leaves the term out where Optax's program does)."""
    required = _required(make)
    zeros = [jnp.array(0.0)]
    default = inspect.signature(make).parameters["weight_decay"].default
    if not (isinstance(default, (int, float)) and default == 0):
        zeros.append(0.0)
    decayed = make(**required, weight_decay=0.1)
    for zero in zeros:
        tx = make(**required, weight_decay=zero)
        assert jax.tree.structure(tx) == jax.tree.structure(decayed), zero
    leaves = [np.asarray(x) for x in jax.tree.leaves(decayed) if isinstance(x, jax.Array)]
    assert any(x.dtype.kind == "f" and np.any(x == np.float32(0.1)) for x in leaves)


def test_one_trace_for_a_weight_decay_sweep_that_includes_zero():
    traces = []
    params = {"w": jnp.linspace(-1.0, 1.0, 3)}

    @jax.jit
    def step(tx, params, state):
        traces.append(1)
        updates, state = tx.update(params, state, params)
        return gradtx.apply_updates(params, updates), state

    out = {}
    for wd in (0.0, 1e-4, 1e-2, 0.5):
        tx = gradtx.adamw(0.1, weight_decay=wd)
        out[wd] = step(tx, params, tx.init(params))[0]["w"]
    assert len(traces) == 1
    # AdamW's first step is -lr * (sign(g) + wd * p): 0 decays nothing.
    ref = params["w"] - 0.1 * jnp.sign(params["w"])
    np.testing.assert_allclose(np.asarray(out[0.0]), np.asarray(ref), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(out[0.5]), np.asarray(ref - 0.1 * 0.5 * params["w"]), rtol=1e-6, atol=1e-6
    )


@pytest.mark.parametrize(
    "make, name",
    [
        pytest.param(f, k, id=f"{i}.{k}")
        for i, f, params in _public_factories()
        for k, p in params.items()
        if type(p.default) is float and p.default != 0
    ],
)
def test_a_float_hyperparameter_is_never_in_the_treedef(make, name):
    """Every argument of a transform or schedule factory whose default is a (nonzero) float: two
    values build the same pytree structure, so ``jax.jit`` over it compiles once for both."""
    required = _required(make)
    default = inspect.signature(make).parameters[name].default
    built = make(**required)
    if not isinstance(built, (gradtx.Schedule, Transform)):
        pytest.skip(f"returns a {type(built).__name__}, neither a transform nor a schedule")
    other = make(**required, **{name: default * (1.5 if default > 1 else 0.5)})
    assert jax.tree.structure(other) == jax.tree.structure(make(**required, **{name: default}))


def test_soap_refresh_frequency_is_a_leaf():
    """SOAP's ``precondition_frequency`` enters only ``t % frequency == 0``: one compile serves
    every frequency, and the frequency still changes the steps."""
    traces = []
    params = {"w": jnp.arange(24.0).reshape(6, 4) / 10, "b": jnp.ones(4)}

    @jax.jit
    def run(tx, params):
        traces.append(1)
        state = tx.init(params)
        for _ in range(4):
            updates, state = tx.update(params, state, params)
            params = gradtx.apply_updates(params, updates)
        return params["w"]

    out = {f: run(gradtx.soap(0.01, precondition_frequency=f), params) for f in (1, 2, 10)}
    assert len(traces) == 1
    assert not np.allclose(np.asarray(out[1]), np.asarray(out[10]))
    with pytest.raises(_checks.HyperparameterError, match="precondition_frequency"):
        gradtx.soap(0.01, precondition_frequency=2.5)
