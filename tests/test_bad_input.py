"""Bad input: each case raises a clear error naming the function, the path or argument and the
value, or has a documented behaviour that these tests pin down."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from gradtx import registry

KEYS = sorted(registry.OPTIMIZERS)
NAMES = sorted(registry.FACTORIES)
LR_ARG = {s.name: s.lr_arg for s in registry.OPTIMIZERS.values()}  # polyak_sgd's is ``scaling``
_BOUND = r"\[0, inf[\])]"  # the learning rate's valid range, however the bracket is printed


def _params():
    return {"w": jnp.ones((3,)), "layer": {"b": jnp.zeros((2,))}}


def _extra(key):
    """The extra arguments ``update`` needs (a loss for the entries that read it)."""
    return {"loss": jnp.asarray(0.5)} if registry.OPTIMIZERS[key].reads_loss else {}


# --- hyperparameters --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("lr, shown", [(-1.0, "-1.0"), (math.nan, "nan"), (-1e-3, "-0.001")])
def test_negative_or_nan_learning_rate(name, lr, shown):
    with pytest.raises(
        gradtx.HyperparameterError,
        match=rf"^gradtx\.\w+: {LR_ARG[name]} must be in {_BOUND}, got {shown}$",
    ):
        registry.FACTORIES[name](**{LR_ARG[name]: lr})


def test_learning_rate_array_with_a_bad_entry_is_named():
    with pytest.raises(
        gradtx.HyperparameterError, match=r"learning_rate must be in .*got \[ 0.1 -1. \]"
    ):
        gradtx.adam(jnp.array([0.1, -1.0]))


def test_traced_learning_rate_is_not_validated():
    """Documented: only concrete values are checked; a traced value runs as given."""
    lr = jnp.asarray(-0.5)
    out = jax.jit(
        lambda lr: gradtx.sgd(lr).update(
            {"w": jnp.ones(1)}, gradtx.sgd(0.1).init({"w": jnp.ones(1)})
        )[0]
    )(lr)
    np.testing.assert_allclose(np.asarray(out["w"]), [0.5])


@pytest.mark.parametrize(
    "factory, kwargs, message",
    [
        (gradtx.adam, {"b1": 1.5}, r"gradtx.adam: b1 must be in \[0, 1\), got 1.5"),
        (gradtx.adam, {"b1": -0.1}, r"gradtx.adam: b1 must be in \[0, 1\), got -0.1"),
        (gradtx.adam, {"b1": 1.0}, r"gradtx.adam: b1 must be in \[0, 1\), got 1.0"),
        (gradtx.adam, {"b2": 1.0}, r"gradtx.adam: b2 must be in \[0, 1\), got 1.0"),
        (gradtx.adam, {"b2": math.nan}, r"gradtx.adam: b2 must be in \[0, 1\), got nan"),
        (gradtx.adamw, {"b2": -0.5}, r"gradtx.adamw: b2 must be in \[0, 1\), got -0.5"),
        (gradtx.sgd, {"momentum": 1.5}, r"gradtx.sgd: momentum must be in \[0, 1\], got 1.5"),
        (
            gradtx.sgd,
            {"momentum": 0.9, "dampening": -1.0},
            r"gradtx.sgd: dampening must be in \[0, 1\], got -1.0",
        ),
        (gradtx.rmsprop, {"decay": 1.5}, r"gradtx.rmsprop: decay must be in \[0, 1\], got 1.5"),
        (
            gradtx.rmsprop,
            {"momentum": -0.1},
            r"gradtx.rmsprop: momentum must be in \[0, 1\], got -0.1",
        ),
        (gradtx.adagrad, {"eps": -1.0}, r"gradtx.adagrad: eps must be in \[0, inf.?, got -1.0"),
    ],
)
def test_betas_and_decays_out_of_range(factory, kwargs, message):
    with pytest.raises(gradtx.HyperparameterError, match=message):
        factory(learning_rate=0.1, **kwargs)


# --- gradient trees ---------------------------------------------------------------------------


_BAD_GRADS = {
    "extra key": (
        lambda p: {**p, "c": jnp.ones((1,))},
        r"at \['c'\]: expected nothing \(extra key\), got float32\[1\]",
    ),
    "missing key": (
        lambda p: {"w": p["w"]},
        r"at \['layer'\]\['b'\]: expected float32\[2\], got missing",
    ),
    "changed shape": (
        lambda p: {**p, "w": jnp.ones((4,))},
        r"at \['w'\]: expected float32\[3\], got float32\[4\]",
    ),
}


@pytest.mark.parametrize("case", sorted(_BAD_GRADS))
@pytest.mark.parametrize("key", KEYS)
def test_gradient_tree_mismatch_names_path(key, case):
    make_grads, where = _BAD_GRADS[case]
    tx = registry.OPTIMIZERS[key].make()
    params = _params()
    state = tx.init(params)
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"^gradtx\.\w+\.update: the updates tree does not match the \w+ .*" + where,
    ):
        tx.update(make_grads(params), state, params, **_extra(key))


def test_gradient_tree_mismatch_without_params():
    """Without params, a transform with per-leaf state still checks the grads against it (and
    names the buffer); plain SGD keeps no per-leaf state, so it cannot: pass params."""
    params = _params()
    tx = gradtx.adam(0.1)
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"ScaleByAdam.update: the updates tree does not match the mu tree at \['w'\]",
    ):
        tx.update({**params, "w": jnp.ones((4,))}, tx.init(params))
    sgd = gradtx.sgd(0.1)
    u, _ = sgd.update({"w": jnp.ones((4,))}, sgd.init(params))
    assert u["w"].shape == (4,)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_])
def test_integer_and_boolean_leaves_are_rejected(dtype):
    """Documented: init and update reject them (TypeError naming the path and the dtype); keep
    them out of the optimized tree (a filter or a partition)."""
    tx = gradtx.adam(0.1)
    bad = {"w": jnp.ones((3,)), "step": jnp.zeros((), dtype)}
    name = jnp.dtype(dtype).name
    with pytest.raises(
        TypeError, match=rf"gradtx.Chain.init: params leaf at \['step'\] has dtype {name}"
    ):
        tx.init(bad)
    params = _params()
    grads = {**params, "w": jnp.ones((3,), dtype)}
    with pytest.raises(
        TypeError, match=rf"gradtx.Chain.update: updates leaf at \['w'\] has dtype {name}"
    ):
        tx.update(grads, tx.init(params), params)


def test_python_int_leaf_is_rejected():
    with pytest.raises(TypeError, match=r"params leaf at \['n'\] has dtype int"):
        gradtx.sgd(0.1).init({"n": 3})


@pytest.mark.parametrize("key", KEYS)
def test_none_leaves_pass_through(key):
    tx = registry.OPTIMIZERS[key].make()
    params = {"w": jnp.ones((3,)), "frozen": None, "layer": {"b": jnp.ones((2,)), "c": None}}
    state = tx.init(params)
    grads = jax.tree.map(lambda p: 0.5 * p, params)
    u, state = tx.update(grads, state, params, **_extra(key))
    assert u["frozen"] is None and u["layer"]["c"] is None
    new = gradtx.apply_updates(params, u)
    assert new["frozen"] is None and new["layer"]["c"] is None
    assert jax.tree.structure(new) == jax.tree.structure(params)


@pytest.mark.parametrize("key", KEYS)
def test_empty_tree_and_scalar_params(key):
    tx = registry.OPTIMIZERS[key].make()
    u, _ = tx.update({}, tx.init({}), {}, **_extra(key))
    assert u == {}
    for p in (jnp.asarray(2.0), 2.0):  # a 0-d array and a Python float
        state = tx.init(p)
        u, state = tx.update(jnp.asarray(0.5), state, p, **_extra(key))
        assert jnp.shape(u) == () and np.isfinite(float(u))
        new = gradtx.apply_updates(p, u)
        assert jnp.shape(new) == () and np.isfinite(float(new))


def test_grads_dtype_differing_from_params():
    """Documented: updates keep the gradient's dtype, moments keep their own dtype, and
    apply_updates casts the sum back to each parameter's dtype."""
    tx = gradtx.adam(0.1)
    p32 = {"w": jnp.ones((3,))}
    state = tx.init(p32)
    u, state = tx.update({"w": jnp.ones((3,), jnp.bfloat16)}, state, p32)
    assert u["w"].dtype == jnp.bfloat16 and state[0].mu["w"].dtype == jnp.float32
    assert gradtx.apply_updates(p32, u)["w"].dtype == jnp.float32
    p16 = {"w": jnp.ones((3,), jnp.bfloat16)}
    state = tx.init(p16)
    u, state = tx.update({"w": jnp.ones((3,))}, state, p16)
    assert u["w"].dtype == jnp.float32 and state[0].mu["w"].dtype == jnp.bfloat16
    assert gradtx.apply_updates(p16, u)["w"].dtype == jnp.bfloat16


@pytest.mark.parametrize("key", KEYS)
def test_state_from_init_of_another_tree(key):
    tx = registry.OPTIMIZERS[key].make()
    params = _params()
    other = tx.init({"x": jnp.ones((5,))})
    has_buffers = any(jnp.ndim(x) > 0 for x in jax.tree.leaves(other))
    if not has_buffers:
        # Documented: a state of counts only (plain SGD) fits any tree.
        tx.update(params, other, params, **_extra(key))
        return
    with pytest.raises(
        gradtx.TreeMismatchError,
        match=r"^gradtx\.\w+\.update: .*does not match .* at \S*\['(layer|w|x)'\]",
    ):
        tx.update(params, other, params, **_extra(key))


# --- composition arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: gradtx.masked(3, {"w": True}), r"gradtx\.masked: inner must be a transform"),
        (lambda: gradtx.freeze({"w": True}, inner="adam"), r"gradtx\.freeze: inner must be"),
        (lambda: gradtx.accumulate(None, 2), r"gradtx\.accumulate: inner must be a transform"),
        (lambda: gradtx.apply_if_finite(1.0, 3), r"gradtx\.apply_if_finite: inner must be"),
        (
            lambda: gradtx.lookahead("sgd", 5, 0.5),
            r"gradtx\.lookahead: fast_optimizer must be a transform",
        ),
        (
            lambda: gradtx.partition({"a": gradtx.sgd(0.1), "b": 0.1}, {"w": "a"}),
            r"gradtx\.partition: transforms\['b'\] must be a transform",
        ),
        (
            lambda: gradtx.named_chain(("a", gradtx.sgd(0.1)), ("b", "adam")),
            r"gradtx\.named_chain: transform 'b' must be a transform",
        ),
        (
            lambda: gradtx.quantized(3),
            r"gradtx\.quantized: tx must be a transform",
        ),
        (
            lambda: gradtx.contrib.mechanize(None),
            r"gradtx\.contrib\.mechanize: base_optimizer must be a transform",
        ),
        (
            lambda: gradtx.contrib.sam(gradtx.sgd(0.1), 0.1),
            r"gradtx\.contrib\.sam: adv_optimizer must be a transform",
        ),
        (
            lambda: gradtx.muon(fallback=0.1),
            r"gradtx\.muon: fallback must be a transform",
        ),
        (
            lambda: gradtx.chain(gradtx.adam(1e-3), 3),
            r"gradtx\.chain: args\[1\] must be a transform .* got int: 3",
        ),
        (
            lambda: gradtx.partition({}, {"w": "a"}),
            r"gradtx\.partition: transforms must be a non-empty dict",
        ),
    ],
)
def test_inner_transforms_are_checked_at_construction(make, message):
    with pytest.raises(TypeError, match=message):
        make()


@pytest.mark.parametrize(
    "make, fn",
    [
        (lambda m: gradtx.masked(gradtx.sgd(0.1), m), "masked"),
        (lambda m: gradtx.add_decayed_weights(1e-4, mask=m), "add_decayed_weights"),
        (lambda m: gradtx.adamw(1e-3, mask=m), "add_decayed_weights"),
        (lambda m: gradtx.freeze(m), "freeze"),
    ],
)
def test_masks_of_numbers_are_refused_naming_the_function(make, fn):
    with pytest.raises(TypeError, match=rf"^gradtx\.{fn}: mask must be a pytree of bools"):
        make({"w": 1.0})


@pytest.mark.parametrize("empty", [{}, [], ()])
def test_an_empty_mask_fits_empty_params(empty):
    for tx in (gradtx.add_decayed_weights(1e-4, mask=empty), gradtx.masked(gradtx.sgd(0.1), empty)):
        state = tx.init(empty)
        updates, _ = tx.update(empty, state, empty)
        assert updates == empty
