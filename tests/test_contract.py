"""The contract every registry entry keeps (DESIGN.md section 5).

Each check runs over every ``gradtx.registry.OPTIMIZERS`` entry; no check branches on a name.
Capabilities come from the Spec (``memoryless``, ``reads_loss``, ``invalid``...).
"""

from __future__ import annotations

import collections
import functools
import inspect
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx.registry import FACTORIES, OPTIMIZERS

from ._packed import LAYOUT_LABELS, check_packed_equals_tree, layout_params
from ._problems import linear_loss, linear_params, quadratic_loss, quadratic_params, train

SPECS = list(OPTIMIZERS.items())
IDS = [k for k, _ in SPECS]
# One xdist group per entry: its tests run in one worker, so they share its compiled step.
VALUES = [pytest.param(s, marks=pytest.mark.xdist_group(f"contract-{k}")) for k, s in SPECS]
_KEY_OF = {id(s): k for k, s in SPECS}


def _step_fn(spec, loss_fn):
    def step(tx, params, state):
        loss, g = jax.value_and_grad(loss_fn)(params)
        g = jax.tree.map(lambda gi, pi: gi.astype(pi.dtype), g, params)
        extra = {"loss": loss} if spec.reads_loss else {}
        u, state = tx.update(g, state, params, **extra)
        return gradtx.apply_updates(params, u), state, u

    return step


_TRACES: collections.Counter = collections.Counter()


@functools.cache
def _jit_step(key):
    """The jitted quadratic step of one registry entry, shared by the tests of this module in a
    process (one compile per input signature instead of one per test); counts its traces."""
    inner = _step_fn(OPTIMIZERS[key], quadratic_loss)

    def step(tx, params, state):
        _TRACES[key] += 1
        return inner(tx, params, state)

    return jax.jit(step)


def _final_loss(spec, lr, steps, loss_fn=quadratic_loss, params_fn=quadratic_params):
    p, _ = train(spec.make(lr), params_fn(), loss_fn, steps, spec.reads_loss)
    return loss_fn(p)


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_converges_on_seed_problems(spec):
    """The seed quadratic (SEEDS.md 1) below the entry's tolerance; the seed linear model
    (SEEDS.md 2) to a tenth of its initial loss. One compiled program for both."""

    def both(lr):
        quad = _final_loss(spec, lr, spec.steps)
        lin = _final_loss(spec, lr, spec.steps, linear_loss, linear_params)
        return quad, lin

    quad, lin = jax.jit(both)(spec.learning_rate)
    assert np.isfinite(quad) and quad < spec.convergence_tol, (spec.name, float(quad))
    initial = float(linear_loss(linear_params()))
    assert np.isfinite(lin) and lin < 0.1 * initial, (spec.name, float(lin))


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_one_compile_across_hyperparameter_values(spec):
    key = _KEY_OF[id(spec)]
    jstep = _jit_step(key)
    params = quadratic_params()  # a nested dict/list/tuple tree with a None leaf
    outs, traces = [], []
    for scale in (1.0, 0.1, 0.01):
        tx = spec.make(spec.learning_rate * scale)
        p, s = params, tx.init(params)
        for _ in range(3):  # some optimizers (ADOPT) only initialise on their first step
            p, s, u = jstep(tx, p, s)
            traces.append(_TRACES[key])
        outs.append(p)
    # The step is shared with other tests, so its first trace may have come earlier; none of
    # the eight calls after the first traced again (new values, same compiled program).
    assert traces[0] >= 1 and traces == [traces[0]] * 9, (key, "retraced", traces)
    # Nested trees with None leaves: structure kept, None passed through, values finite.
    assert jax.tree.structure(u) == jax.tree.structure(params)
    assert u["nested"][1] is None and p["nested"][1] is None
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(p))
    # The values really were used: different rates give different parameters.
    assert not np.allclose(outs[0]["a"], outs[2]["a"])


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_eager_equals_jit(spec):
    params = quadratic_params()
    tx = spec.make()
    step = _step_fn(spec, quadratic_loss)
    p_e, s_e = params, tx.init(params)
    p_j, s_j = params, tx.init(params)
    jstep = _jit_step(_KEY_OF[id(spec)])
    for _ in range(2):
        p_e, s_e, _ = step(tx, p_e, s_e)
        p_j, s_j, _ = jstep(tx, p_j, s_j)
    for a, b in zip(jax.tree.leaves(p_e), jax.tree.leaves(p_j)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_vmap_over_learning_rate_equals_loop(spec):
    lrs = spec.learning_rate * jnp.logspace(-1.0, 0.0, 8)

    def run(lr):
        return train(spec.make(lr), quadratic_params(), quadratic_loss, 10, spec.reads_loss)[0]

    def run_tx(tx):
        return train(tx, quadratic_params(), quadratic_loss, 10, spec.reads_loss)[0]

    # A batched transform (hyperparameters with a leading axis) gives the same population as
    # vmapping the factory over the rates; both populations come from one compiled program.
    txs = spec.make(lrs)
    axes = gradtx.batch_axes(txs)
    both = jax.jit(lambda lrs, txs: (jax.vmap(run)(lrs), jax.vmap(run_tx, in_axes=(axes,))(txs)))
    batched, from_tx = both(lrs, txs)
    # The loop: one setting at a time, 10 calls of the module's shared jitted step (compiled
    # once per entry and reused by the other tests here).
    jstep = _jit_step(_KEY_OF[id(spec)])
    for i, lr in enumerate(lrs):
        tx = spec.make(float(lr))
        ref, s = quadratic_params(), tx.init(quadratic_params())
        for _ in range(10):
            ref, s, _ = jstep(tx, ref, s)
        for a, b in zip(jax.tree.leaves(batched), jax.tree.leaves(ref)):
            np.testing.assert_allclose(a[i], b, rtol=1e-6, atol=1e-6)

    for a, b in zip(jax.tree.leaves(from_tx), jax.tree.leaves(batched)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_grad_through_learning_rate_is_finite(spec):
    meta = jax.jit(jax.grad(lambda lr: _final_loss(spec, lr, 10)))
    g = meta(jnp.asarray(spec.learning_rate, jnp.float32))
    assert np.isfinite(g), (spec.name, g)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_dtype_and_state_structure_kept(spec, dtype):
    params = quadratic_params(dtype)
    tx = spec.make()
    state = tx.init(params)
    sig = lambda tree: jax.tree.map(lambda x: (jnp.shape(x), jnp.result_type(x)), tree)
    s0 = sig(state)
    jstep = _jit_step(_KEY_OF[id(spec)])
    p = params
    for _ in range(2):
        p, state, u = jstep(tx, p, state)
        assert jax.tree.structure(state) == jax.tree.structure(tx.init(params))
        assert sig(state) == s0
        for leaf in jax.tree.leaves(u) + jax.tree.leaves(p):
            assert leaf.dtype == dtype


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_constant_schedule_equals_float(spec):
    params = quadratic_params()
    jstep = _jit_step(_KEY_OF[id(spec)])
    results = []
    for lr in (spec.learning_rate, gradtx.constant_schedule(spec.learning_rate)):
        tx = spec.make(lr)
        p, s = params, tx.init(params)
        for _ in range(3):
            p, s, _ = jstep(tx, p, s)
        results.append(p)
    for a, b in zip(jax.tree.leaves(results[0]), jax.tree.leaves(results[1])):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_packed_layout_equals_tree(spec):
    """On ``gradtx.pack(params, tx)`` (leaves raveled, stacked or kept, as ``tx`` declares) the
    tree's numbers, alone and as one group of a partition whose masks split the buffers
    (tests/_packed.py)."""
    extra = {"loss": jnp.float32(1.0)} if spec.reads_loss else {}
    tx = spec.make(0.05)
    groups = {"on": tx, "off": gradtx.sgd(0.05, momentum=0.9)}
    packed, _ = check_packed_equals_tree(tx, gradtx.partition(groups, LAYOUT_LABELS), extra=extra)
    if spec.elementwise or spec.stack_aware:  # the capabilities let it pack: fewer buffers
        assert len(packed.buffers) < len(jax.tree.leaves(layout_params())), packed


@pytest.mark.parametrize("spec", VALUES, ids=IDS)
def test_invalid_hyperparameters_raise(spec):
    from gradtx.registry import NAN_LR, NEGATIVE_LR

    # The learning rate's message names the factory's own argument (polyak_sgd's ``scaling``).
    lr_cases = [(k, m.replace("learning_rate", spec.lr_arg)) for k, m in (NEGATIVE_LR, NAN_LR)]
    for kwargs, message in (*lr_cases, *spec.invalid):
        kwargs = dict(kwargs)
        lr = kwargs.pop("learning_rate", None)
        with pytest.raises(gradtx.HyperparameterError, match=re.escape(message)) as info:
            spec.make(lr, **kwargs)
        assert str(info.value).startswith("gradtx."), str(info.value)


def test_registry_equals_public_api():
    for name, factory in FACTORIES.items():
        assert getattr(gradtx, name) is factory, name
    # Every public optimizer factory defined in gradtx.optimizers is registered.
    import pkgutil

    import gradtx.optimizers as pkg

    registered = set(FACTORIES.values())
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_"):
            continue
        module = __import__(f"gradtx.optimizers.{info.name}", fromlist=["_"])
        for attr, obj in vars(module).items():
            if attr.startswith(("_", "scale_by_")) or not inspect.isfunction(obj):
                continue
            if obj.__module__ != module.__name__ or not hasattr(gradtx, attr):
                continue
            assert obj in registered, f"gradtx.{attr} is public but not in the registry"


def test_every_factory_has_a_formula_docstring():
    for name, factory in FACTORIES.items():
        doc = inspect.getdoc(factory) or ""
        assert "Args:" in doc and "References:" in doc and "_t" in doc, name
