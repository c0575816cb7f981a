"""gradtx's top level is Optax's: the same names, signatures, defaults and default behaviour.

The functions compared are every public function defined in the Optax modules that hold its
optimizers (read from the installed optax, so a new Optax release shows up here): ``alias``,
``base``, ``factorized``, ``linesearch``, ``lookahead``, ``transform``, ``update``, every module
of ``optax.schedules`` and ``optax.transforms``, and ``tree_utils._state_utils``.

For each, ``gradtx.<name>`` must take Optax's parameters in Optax's positional order, with the
same keyword names and defaults. gradtx may add parameters after Optax's, each with a default
(torch conventions, ``maximize``, complex conventions...).

Then every Optax alias runs 10 steps with its default arguments (a learning rate where Optax
requires one) on a small tree, from the same start, with gradients of the same loss, and
gradtx's parameters must match Optax's to 1e-5 in float32.

Documented exceptions (``EXCEPTIONS``): where Optax is known to be wrong, gradtx keeps the correct
behaviour; the docstring of each such function says how they differ.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.schedules
import optax.transforms
import pytest

import gradtx

MODULES = [
    "optax._src.alias",
    "optax._src.base",
    "optax._src.factorized",
    "optax._src.linesearch",
    "optax._src.lookahead",
    "optax._src.transform",
    "optax._src.update",
    "optax.tree_utils._state_utils",
]
for _pkg in (optax.schedules, optax.transforms):
    MODULES += [
        f"{_pkg.__name__}.{m.name}"
        for m in pkgutil.iter_modules(_pkg.__path__)
        if not m.name.endswith("_test")
    ]

# Aliases whose default run differs from Optax's on purpose (each documented in its docstring):
# Optax's rprop emits the previous step's update (its first update is zero), gradtx follows the
# published iRprop-, as torch does; Optax's adadelta with its default learning_rate=None returns
# the direction without the sign flip, so its steps ascend, gradtx's takes the paper's unit step
# (checked against Optax with learning_rate=1.0 below).
EXCEPTIONS = {"rprop", "adadelta"}


def _optax_functions():
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or not inspect.isfunction(obj):
                continue
            if obj.__module__ == name:
                found[attr] = obj
    return dict(sorted(found.items()))


OPTAX_FUNCTIONS = _optax_functions()
ALIASES = {n: f for n, f in OPTAX_FUNCTIONS.items() if f.__module__ == "optax._src.alias"}
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def test_the_optax_modules_were_found():
    # Guards the collection above: a rename inside Optax must not empty this test silently.
    assert len(ALIASES) >= 29 and len(OPTAX_FUNCTIONS) >= 110


def test_optaxs_other_top_level_names_for_these_functions_exist():
    """Optax binds some of these functions under a second top-level name (``multi_transform``
    is ``partition``); a rename from ``optax.`` to ``gradtx.`` finds each, as the same function."""
    by_id = {id(f): n for n, f in OPTAX_FUNCTIONS.items()}
    seconds = {
        n: by_id[id(getattr(optax, n))]
        for n in dir(optax)
        if not n.startswith("_") and by_id.get(id(getattr(optax, n)), n) != n
    }
    assert "multi_transform" in seconds
    for name, original in seconds.items():
        assert getattr(gradtx, name, None) is getattr(gradtx, original), name


@pytest.mark.parametrize("namespace", ["schedules", "transforms"])
def test_optaxs_namespaces_hold_the_same_functions(namespace):
    """``optax.schedules.cosine_decay_schedule`` and ``optax.transforms.partition`` become
    ``gradtx.schedules...`` and ``gradtx.transforms...`` by the same rename: every name of
    Optax's namespace that gradtx's top level has is there, as the same object."""
    theirs = getattr(optax, namespace)
    ours = getattr(gradtx, namespace)
    names = [n for n in dir(theirs) if not n.startswith("_") and hasattr(gradtx, n)]
    assert len(names) >= 18, names
    for name in names:
        assert getattr(ours, name) is getattr(gradtx, name), name
    exec(f"from gradtx.{namespace} import {names[0]}", {})
    assert set(names) <= set(dir(ours))
    with pytest.raises(AttributeError, match=f"gradtx.{namespace}' has no attribute 'nope'"):
        _ = ours.nope


def _same_default(theirs, ours):
    if theirs is inspect.Parameter.empty or ours is inspect.Parameter.empty:
        return theirs is ours
    if hasattr(theirs, "init") and hasattr(theirs, "update"):
        # A transform as default (lbfgs's line search): gradtx's default must be one too.
        return ours is not None
    if isinstance(theirs, (bool, int, float, str, type(None), tuple)):
        return type(theirs) is type(ours) and theirs == ours
    if isinstance(theirs, (type, np.dtype)) or inspect.isclass(theirs):
        return np.dtype(theirs) == np.dtype(ours)
    # A function as default (scale_by_factored_rms's decay_rate_fn): gradtx's must be one too.
    return ours is not None


@pytest.mark.parametrize("name", list(OPTAX_FUNCTIONS))
def test_signature_is_optaxs(name):
    assert hasattr(gradtx, name), f"gradtx.{name} is missing"
    theirs = inspect.signature(OPTAX_FUNCTIONS[name]).parameters
    ours = inspect.signature(getattr(gradtx, name)).parameters
    t_pos = [k for k, p in theirs.items() if p.kind in POSITIONAL]
    o_pos = [k for k, p in ours.items() if p.kind in POSITIONAL]
    assert o_pos[: len(t_pos)] == t_pos, f"{name}: positional order {o_pos} != {t_pos}"
    for key, p in theirs.items():
        assert key in ours, f"{name}: no parameter {key!r}"
        q = ours[key]
        if p.kind in VARIADIC or q.kind in VARIADIC:
            assert p.kind == q.kind, f"{name}: {key!r} is {q.kind}, Optax's is {p.kind}"
            continue
        if p.kind == inspect.Parameter.KEYWORD_ONLY:
            assert q.kind in (inspect.Parameter.KEYWORD_ONLY, *POSITIONAL), name
        assert _same_default(p.default, q.default), (
            f"{name}: default of {key!r} is {q.default!r}, Optax's is {p.default!r}"
        )
    for key, q in ours.items():
        if key not in theirs and q.kind not in VARIADIC:
            assert q.default is not inspect.Parameter.empty, (
                f"{name}: gradtx's extra parameter {key!r} needs a default"
            )


def _loss(params):
    w, b = params["w"], params["b"]
    return 0.5 * jnp.sum(jnp.linspace(0.5, 2.0, w.size).reshape(w.shape) * (w - 0.3) ** 2) + (
        0.25 * jnp.sum((b + 0.1) ** 4) + 0.1 * jnp.sum(w) * jnp.sum(b)
    )


def _start():
    key_w, key_b = jax.random.split(jax.random.key(0))
    return {
        "w": jax.random.normal(key_w, (3, 4), jnp.float32),
        "b": jax.random.normal(key_b, (4,), jnp.float32),
    }


def _needs_value(name):
    return name in ("polyak_sgd", "lbfgs")


def _run(lib, name, steps=10, **kwargs):
    factory = getattr(lib, name)
    params = _start()
    sig = inspect.signature(ALIASES[name]).parameters  # Optax's: both get the same arguments
    if "learning_rate" in sig and sig["learning_rate"].default is inspect.Parameter.empty:
        kwargs.setdefault("learning_rate", 1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tx = factory(**kwargs)
    state = tx.init(params)
    for _ in range(steps):
        value, grads = jax.value_and_grad(_loss)(params)
        extra = {}
        if name == "lbfgs":
            extra = dict(value=value, grad=grads, value_fn=_loss)
        elif _needs_value(name):
            extra = dict(value=value)
        updates, state = tx.update(grads, state, params, **extra)
        params = optax.apply_updates(params, updates)
    return params


@pytest.mark.parametrize("name", [n for n in ALIASES if n not in EXCEPTIONS])
def test_alias_defaults_match_optax_for_10_steps(name):
    with jax.numpy_dtype_promotion("standard"):
        theirs = _run(optax, name)
    ours = _run(gradtx, name)
    for key in ("w", "b"):
        assert ours[key].dtype == theirs[key].dtype == jnp.float32
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-5, err_msg=name)


def test_adadelta_default_is_optaxs_with_a_unit_learning_rate():
    with jax.numpy_dtype_promotion("standard"):
        theirs = _run(optax, "adadelta", learning_rate=1.0)
    ours = _run(gradtx, "adadelta")
    for key in ("w", "b"):
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-5, atol=1e-5)
    assert _loss(ours) < _loss(_start())


def _f32(**hyperparameters):
    # The same float32 numbers for both libraries: gradtx holds its hyperparameters as float32
    # leaves, where Optax would round ``1 - b2`` from Python's float64 (1e-5 apart for 0.999).
    return {k: jnp.float32(v) for k, v in hyperparameters.items()}


_BETAS = _f32(b1=0.9, b2=0.999)
_AMSGRAD = dict(amsgrad=True, amsgrad_max="corrected")  # optax.amsgrad's maximum

# Optax's alias, gradtx's, their arguments (gradtx's extra keywords last), and the buffers
# Optax's state holds: ScaleByAdamState, ScaleByAmsgradState, ScaleByLionState,
# ScaleByBeliefState, ScaleByNovogradState, ScaleByRssState, ScaleByRStdDevState, TraceState,
# ScaleByAdemamixState, ScaleByAdaDeltaState, ScaleByRpropState, ScaleBySM3State,
# ScaleByAdanState, ScaleByOptimisticGradientState. Not compared: SM3's ``mu`` (the same
# accumulators, a tuple per leaf where Optax's is a list) and Rprop's ``prev`` (the previous
# gradient, where Optax's ``prev_updates`` holds the previous step).
STATE_FIELDS = [
    ("adam", optax.adam, gradtx.adam, _BETAS, {}, ("mu", "nu")),
    ("adamw", optax.adamw, gradtx.adamw, _BETAS, {}, ("mu", "nu")),
    ("amsgrad", optax.amsgrad, gradtx.adam, _BETAS, _AMSGRAD, ("mu", "nu", "nu_max")),
    ("lion", optax.lion, gradtx.lion, _f32(b1=0.9, b2=0.99), {}, ("mu",)),
    ("adabelief", optax.adabelief, gradtx.adabelief, _BETAS, {}, ("mu", "nu")),
    ("adamax", optax.adamax, gradtx.adamax, _BETAS, {}, ("mu", "nu")),
    ("nadam", optax.nadam, gradtx.nadam, _BETAS, {}, ("mu", "nu")),
    ("radam", optax.radam, gradtx.radam, _BETAS, {}, ("mu", "nu")),
    ("yogi", optax.yogi, gradtx.yogi, _BETAS, {}, ("mu", "nu")),
    ("novograd", optax.novograd, gradtx.novograd, _f32(b1=0.9, b2=0.25), {}, ("mu", "nu")),
    ("adopt", optax.contrib.adopt, gradtx.adopt, _f32(b1=0.9, b2=0.9999), {}, ("mu", "nu")),
    ("adagrad", optax.adagrad, gradtx.adagrad, {}, {}, ("sum_of_squares",)),
    ("rmsprop", optax.rmsprop, gradtx.rmsprop,
     dict(**_f32(decay=0.9, momentum=0.9), centered=True), {}, ("mu", "nu", "trace")),
    ("sgd", optax.sgd, gradtx.sgd, _f32(momentum=0.9), {}, ("trace",)),
    ("ademamix", optax.contrib.ademamix, gradtx.contrib.ademamix,
     _f32(b1=0.9, b2=0.999, b3=0.9999), {}, ("m1", "m2", "nu")),
    ("adadelta", optax.adadelta, gradtx.adadelta, _f32(rho=0.9, eps=1e-6), {}, ("e_g", "e_x")),
    ("rprop", optax.rprop, gradtx.rprop, {}, {}, ("step_sizes",)),
    ("sm3", optax.sm3, gradtx.sm3, _f32(momentum=0.9), {}, ("nu",)),
    ("adan", optax.adan, gradtx.adan, _f32(b1=0.98, b2=0.92, b3=0.99), {}, ("m", "v", "n", "g")),
    ("optimistic_gradient_descent", optax.optimistic_gradient_descent,
     gradtx.optimistic_gradient_descent, {}, {}, ("previous_gradient",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "optax_fn", "gradtx_fn", "kwargs", "extra", "fields"),
    STATE_FIELDS,
    ids=[c[0] for c in STATE_FIELDS],
)
def test_state_fields_have_optaxs_names_and_values(
    name, optax_fn, gradtx_fn, kwargs, extra, fields, standard_promotion
):
    """Optax code that reads a buffer by name (``opt_state[0].mu``,
    ``optax.tree_utils.tree_get(opt_state, "nu")``) reads the same buffer in gradtx's state,
    with Optax's values after one update."""
    params = _start()
    grads = jax.grad(_loss)(params)
    ox = optax_fn(1e-2, **kwargs)
    _, ox_state = ox.update(grads, ox.init(params), params)
    with jax.numpy_dtype_promotion("strict"):
        gx = gradtx_fn(1e-2, **kwargs, **extra)
        _, gx_state = gx.update(grads, gx.init(params), params)
    for field in fields:
        want = optax.tree_utils.tree_get(ox_state, field)
        got = optax.tree_utils.tree_get(gx_state, field)
        assert want is not None and got is not None, (name, field)
        assert jax.tree.structure(got) == jax.tree.structure(want), (name, field)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            assert g.dtype == w.dtype, (name, field)
            np.testing.assert_allclose(g, w, rtol=1e-6, err_msg=f"{name}.{field}")
        assert gradtx.tree_get(gx_state, field) is got
