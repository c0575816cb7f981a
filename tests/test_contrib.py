"""gradtx.contrib against optax.contrib: signatures, 10-step parity, one compile, bad input.

Every reference number comes from Optax's own contrib optimizers run on the same tree, loss and
extra inputs (the loss value, the objective for Sophia, per-example gradients and the seed for
DP-SGD, the gradient function for SAM's opaque mode).
"""

from __future__ import annotations

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib as oc
import pytest

import gradtx
import gradtx.contrib as gc

# Optax state classes whose gradtx counterpart has another name or lives at the top level.
STATES_ELSEWHERE = {
    "ScaleByAdemamixState": "gradtx.AdEMAMixState",
    "ProdigyState": "gradtx.ProdigyState",
    "ScheduleFreeState": "gradtx.ScheduleFreeState",
}


def _optax_public():
    return sorted(n for n in dir(oc) if not n.startswith("_"))


def test_every_optax_contrib_name_is_covered():
    for name in _optax_public():
        if name in STATES_ELSEWHERE:
            continue
        obj = getattr(oc, name)
        if inspect.isclass(obj):
            # State classes: gradtx keeps Optax's name (fields follow gradtx's conventions).
            if name == "ScaleByBeliefState":
                continue
            assert hasattr(gc, name), f"gradtx.contrib.{name} is missing"
        elif callable(obj):
            assert callable(getattr(gc, name, None)), f"gradtx.contrib.{name} is missing"
    for where in STATES_ELSEWHERE.values():
        assert hasattr(gradtx, where.split(".")[1]), where
    assert gradtx.contrib is gc


FACTORIES = [
    n for n in _optax_public() if inspect.isfunction(getattr(oc, n)) and not n[0].isupper()
]


def _same_default(name, param, ours, theirs):
    if param == "clip_value_fn":  # a function of the step: the same values
        t = np.array([1.0, 16.0, 81.0])
        return np.allclose(ours(t), theirs(t))
    if param == "hessian_diagonal_fn":  # the Hutchinson estimator keyed by PRNGKey(0)
        return isinstance(ours, gc._sophia.HutchinsonEstimator) and ours.random_seed is None
    if theirs is inspect.Parameter.empty or isinstance(
        theirs, (int, float, str, tuple, type(None))
    ):
        return ours == theirs and type(ours) is type(theirs)
    raise AssertionError(f"{name}: no rule to compare the default of {param}: {theirs!r}")


@pytest.mark.parametrize("name", FACTORIES)
def test_signature_matches_optax(name):
    theirs = inspect.signature(getattr(oc, name)).parameters
    ours = inspect.signature(getattr(gc, name)).parameters
    names = list(ours)
    assert names[: len(theirs)] == list(theirs), (name, names, list(theirs))
    for p in theirs.values():
        q = ours[p.name]
        assert q.kind == p.kind, (name, p.name, q.kind, p.kind)
        assert _same_default(name, p.name, q.default, p.default), (name, p.name, q.default)
    for extra in names[len(theirs) :]:  # gradtx's additions are keyword-only
        assert ours[extra].kind is inspect.Parameter.KEYWORD_ONLY, (name, extra)


# ---------------------------------------------------------------------------------------------
# Parity over 10 steps on a small tree


def _params():
    w = jnp.arange(12.0, dtype=jnp.float32).reshape(3, 4) / 10 - 0.5
    return {"w": w, "b": jnp.array([0.3, -0.2, 0.1, 0.4], jnp.float32)}


def _loss(p):
    return (
        jnp.sum(p["w"] ** 2)
        + jnp.sum(jnp.sin(p["w"] @ p["b"]))
        + 0.5 * jnp.sum((p["b"] - 1.0) ** 2)
    )


_grad_fn = jax.grad(lambda p, i: _loss(p))
_XS = jnp.linspace(-1.0, 1.0, 20, dtype=jnp.float32).reshape(5, 4)


def _example_loss(p, x):
    return jnp.sum(jnp.sin(p["w"] @ x) ** 2) + jnp.sum((p["b"] - x) ** 2)


def _grads(p, kind):
    if kind == "per_example":
        return None, jax.vmap(jax.grad(_example_loss), in_axes=(None, 0))(p, _XS)
    return jax.value_and_grad(_loss)(p)


def _extra(kind, value):
    return {
        "plain": {},
        "value": {"value": value},
        "obj_fn": {"obj_fn": _loss},
        "grad_fn": {"grad_fn": _grad_fn},
        "per_example": {},
    }[kind]


def _run(tx, apply, kind, steps=10):
    """``steps`` updates from ``_params()`` in one compiled ``lax.scan``."""

    def body(carry, _):
        p, s = carry
        value, g = _grads(p, kind)
        u, s = tx.update(g, s, p, **_extra(kind, value))
        return (apply(p, u), s), None

    def run():
        p = _params()
        return jax.lax.scan(body, (p, tx.init(p)), None, length=steps)[0][0]

    return jax.jit(run)()


# (id, builder taking the contrib module, kind of extra input)
CASES = [
    ("acprop", lambda m: m.acprop(1e-2), "plain"),
    ("acprop-decay", lambda m: m.acprop(1e-2, weight_decay=0.1), "plain"),
    ("cocob", lambda m: m.cocob(), "plain"),
    ("cocob-decay", lambda m: m.cocob(0.5, alpha=10.0, weight_decay=0.1), "plain"),
    ("dadapt_adamw", lambda m: m.dadapt_adamw(), "plain"),
    ("dadapt_adamw-d0", lambda m: m.dadapt_adamw(2.0, estim_lr0=1e-5, weight_decay=0.1), "plain"),
    ("dog", lambda m: m.dog(), "plain"),
    ("dog-distance", lambda m: m.dog(init_step=("distance", 0.1), weight_decay=0.01), "plain"),
    ("dog-lr", lambda m: m.dog(init_step=("learning_rate", 0.05)), "plain"),
    ("dowg", lambda m: m.dowg(), "plain"),
    ("madgrad", lambda m: m.madgrad(1e-2), "plain"),
    ("madgrad-decay", lambda m: m.madgrad(1e-2, weight_decay=0.1), "plain"),
    ("simplified_ademamix", lambda m: m.simplified_ademamix(1e-2), "plain"),
    ("simplified_ademamix-alpha", lambda m: m.simplified_ademamix(1e-2, alpha=2.0), "plain"),
    ("ademamix", lambda m: m.ademamix(1e-2), "plain"),
    ("adopt", lambda m: m.adopt(1e-2), "plain"),
    ("prodigy", lambda m: m.prodigy(), "plain"),
    ("schedule_free_sgd", lambda m: m.schedule_free_sgd(0.1), "plain"),
    ("schedule_free_adamw", lambda m: m.schedule_free_adamw(1e-2), "plain"),
    ("momo", lambda m: m.momo(), "value"),
    ("momo-adapt", lambda m: m.momo(adapt_lower_bound=True, weight_decay=0.01), "value"),
    ("momo_adam", lambda m: m.momo_adam(), "value"),
    ("momo_adam-adapt", lambda m: m.momo_adam(adapt_lower_bound=True, weight_decay=0.1), "value"),
    ("sophia", lambda m: m.sophia(1e-2, update_interval=3), "obj_fn"),
    ("sophia-gamma", lambda m: m.sophia(1e-2, gamma=50.0, update_interval=2), "obj_fn"),
]


def _lib(m):
    return optax if m is oc else gradtx


# Wrappers take the base optimizers from their own library.
CASES += [
    ("mechanize-sgd", lambda m: m.mechanize(_lib(m).sgd(1.0)), "plain"),
    ("mechanize-adam", lambda m: m.mechanize(_lib(m).adam(1.0)), "plain"),
    ("schedule_free-adam", lambda m: m.schedule_free(_lib(m).adam(0.01, b1=0.0), 0.01), "plain"),
    (
        "sam",
        lambda m: m.sam(_lib(m).sgd(0.05), _lib(m).chain(m.normalize(), _lib(m).sgd(0.1))),
        "plain",
    ),
    (
        "sam-opaque",
        lambda m: m.sam(
            _lib(m).sgd(0.05, momentum=0.9),
            _lib(m).chain(m.normalize(), _lib(m).sgd(0.1)),
            sync_period=3,
            opaque_mode=True,
        ),
        "grad_fn",
    ),
    ("dpsgd", lambda m: m.dpsgd(0.1, 1.0, 0.5, 3), "per_example"),
    ("dpsgd-momentum", lambda m: m.dpsgd(0.1, 0.5, 1.0, 7, momentum=0.9, nesterov=True),
     "per_example"),
]  # fmt: skip


@pytest.mark.parametrize(("build", "kind"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_matches_optax_over_ten_steps(build, kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Optax's dpsgd passes seed=
        with jax.numpy_dtype_promotion("standard"):
            ref = _run(build(oc), optax.apply_updates, kind)
    got = _run(build(gc), gradtx.apply_updates, kind)
    start = _params()
    moved = max(float(np.max(np.abs(ref[k] - start[k]))) for k in ref)
    assert moved > 1e-5, moved  # the comparison below is not of two unchanged trees
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_dpsgd_needs_per_example_gradients():
    tx = gc.dpsgd(0.1, 1.0, 0.5, 0)
    p = {"w": jnp.ones(()), "b": jnp.ones(())}
    with pytest.raises(ValueError, match="per-example gradients"):
        tx.update(p, tx.init(p), p)


def test_differentially_private_aggregate_matches_optax_and_numpy():
    """The transform alone: Optax with the same key, and NumPy with no noise (the clipped mean)."""
    key = jax.random.key(5)
    _, g = _grads(_params(), "per_example")
    ours = gc.differentially_private_aggregate(0.7, 0.3, key)
    with jax.numpy_dtype_promotion("standard"):
        theirs = oc.differentially_private_aggregate(0.7, 0.3, key)
        ref, _ = theirs.update(g, theirs.init(_params()))
    got, _ = ours.update(g, ours.init(_params()))
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-6, atol=1e-7)
    quiet = gc.differentially_private_aggregate(0.7, 0.0, key)
    got, _ = quiet.update(g, quiet.init(_params()))
    g64 = {k: np.asarray(v, np.float64) for k, v in g.items()}
    norms = np.sqrt(sum(np.sum(v.reshape(5, -1) ** 2, axis=1) for v in g64.values()))
    c = np.minimum(0.7 / norms, 1.0)
    for k, v in g64.items():
        want = np.tensordot(c, v, axes=1) / 5
        np.testing.assert_allclose(got[k], want, rtol=1e-5, atol=1e-7)


def test_hutchinson_matches_optax_and_the_exact_diagonal():
    """Same key, same probes as Optax; on a separable loss every probe gives the exact
    diagonal (z * (H z) = diag(H) * z^2 = diag(H) when H is diagonal)."""
    p = _params()
    ours = gc.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    theirs = oc.hutchinson_estimator_diag_hessian(jax.random.PRNGKey(3))
    with jax.numpy_dtype_promotion("standard"):
        ref, _ = theirs.update(p, theirs.init(p), p, obj_fn=_loss)
    got, _ = ours.update(p, ours.init(p), p, obj_fn=_loss)
    for k in ref:
        np.testing.assert_allclose(got[k], ref[k], rtol=1e-6, atol=1e-7)

    def separable(q):
        return jnp.sum(jnp.cos(q["w"])) + jnp.sum(q["b"] ** 3)

    got, _ = ours.update(p, ours.init(p), p, obj_fn=separable)
    np.testing.assert_allclose(got["w"], -np.cos(np.asarray(p["w"])), rtol=1e-6)
    np.testing.assert_allclose(got["b"], 6 * np.asarray(p["b"]), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# One compile across learning rates (hyperparameters are leaves), and jit == eager

LR_CASES = [
    ("acprop", lambda lr: gc.acprop(lr), "plain", True),
    ("cocob", lambda lr: gc.cocob(lr), "plain", False),  # the bet is invariant to the scale
    ("dadapt_adamw", lambda lr: gc.dadapt_adamw(lr), "plain", True),
    ("dog", lambda lr: gc.dog(lr), "plain", True),
    ("dowg", lambda lr: gc.dowg(lr), "plain", True),
    ("madgrad", lambda lr: gc.madgrad(lr), "plain", True),
    ("simplified_ademamix", lambda lr: gc.simplified_ademamix(lr), "plain", True),
    ("ademamix", lambda lr: gc.ademamix(lr), "plain", True),
    ("adopt", lambda lr: gc.adopt(lr), "plain", True),
    ("prodigy", lambda lr: gc.prodigy(lr), "plain", True),
    ("schedule_free_sgd", lambda lr: gc.schedule_free_sgd(lr), "plain", True),
    ("schedule_free_adamw", lambda lr: gc.schedule_free_adamw(lr), "plain", True),
    ("schedule_free", lambda lr: gc.schedule_free(gradtx.sgd(lr), lr), "plain", True),
    ("mechanize", lambda lr: gc.mechanize(gradtx.adam(lr)), "plain", True),
    ("momo", lambda lr: gc.momo(lr), "value", True),
    ("momo_adam", lambda lr: gc.momo_adam(lr), "value", True),
    ("sophia", lambda lr: gc.sophia(lr), "obj_fn", True),
    ("sam", lambda lr: gc.sam(gradtx.sgd(lr), gradtx.chain(gc.normalize(), gradtx.sgd(0.1))),
     "plain", True),
    ("dpsgd", lambda lr: gc.dpsgd(lr, 1.0, 0.5, 0), "per_example", True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "kind", "lr_matters"), [c[1:] for c in LR_CASES], ids=[c[0] for c in LR_CASES]
)
def test_one_compile_across_learning_rates_and_jit_equals_eager(make, kind, lr_matters):
    traces = []

    @jax.jit
    def step(tx, p, s):
        traces.append(1)
        value, g = _grads(p, kind)
        u, s = tx.update(g, s, p, **_extra(kind, value))
        return gradtx.apply_updates(p, u), s

    finals = []
    for lr in (1e-2, 3e-2, 1e-1):
        tx = make(lr)
        p = _params()
        s = tx.init(p)
        for _ in range(3):
            p, s = step(tx, p, s)
        finals.append(p)
    assert len(traces) == 1, len(traces)
    eager = _run(make(1e-2), gradtx.apply_updates, kind, steps=3)
    for k in eager:
        np.testing.assert_allclose(finals[0][k], eager[k], rtol=1e-6, atol=1e-7)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(finals))
    if lr_matters:
        assert not np.allclose(finals[0]["w"], finals[2]["w"])


# ---------------------------------------------------------------------------------------------
# Bad input fails at construction, naming the function, the argument, the value and the range

BAD = [
    (lambda: gc.acprop(1e-3, b1=1.5), "gradtx.contrib.acprop: b1 must be in [0, 1), got 1.5"),
    (lambda: gc.acprop(-1.0), "gradtx.contrib.acprop: learning_rate must be in [0, inf)"),
    (lambda: gc.cocob(alpha=0.0), "gradtx.contrib.cocob: alpha must be in (0, inf), got 0.0"),
    (lambda: gc.cocob(weight_decay=-1.0), "gradtx.contrib.cocob: weight_decay must be in [0"),
    (lambda: gc.dadapt_adamw(betas=(0.9, 1.0)),
     "gradtx.contrib.dadapt_adamw: betas[1] must be in [0, 1), got 1.0"),
    (lambda: gc.dadapt_adamw(estim_lr0=0.0),
     "gradtx.contrib.dadapt_adamw: estim_lr0 must be in (0, inf), got 0.0"),
    (lambda: gc.dog(init_step=("guess", 1.0)), "gradtx.contrib.dog: init_step[0] must be one of"),
    (lambda: gc.dog(init_step=("distance", -1.0)),
     "gradtx.contrib.dog: init_step[1] must be in (0, inf), got -1.0"),
    (lambda: gc.dowg(eps=0.0), "gradtx.contrib.dowg: eps must be in (0, inf), got 0.0"),
    (lambda: gc.madgrad(1e-2, momentum=1.0),
     "gradtx.contrib.madgrad: momentum must be in [0, 1), got 1.0"),
    (lambda: gc.simplified_ademamix(1e-2, b2=2.0),
     "gradtx.contrib.simplified_ademamix: b2 must be in [0, 1), got 2.0"),
    (lambda: gc.mechanize(gradtx.sgd(1.0), num_betas=0),
     "gradtx.contrib.mechanize: num_betas must be in [1, inf), got 0"),
    (lambda: gc.momo(beta=1.0), "gradtx.contrib.momo: beta must be in [0, 1), got 1.0"),
    (lambda: gc.momo_adam(b2=-0.1), "gradtx.contrib.momo_adam: b2 must be in [0, 1), got -0.1"),
    (lambda: gc.sam(gradtx.sgd(0.1), gradtx.sgd(0.1), sync_period=0),
     "gradtx.contrib.sam: sync_period must be in [1, inf), got 0"),
    (lambda: gc.sophia(1e-2, update_interval=0),
     "gradtx.contrib.sophia: update_interval must be in [1, inf), got 0"),
    (lambda: gc.sophia(1e-2, gamma=0.0), "gradtx.contrib.sophia: gamma must be in (0, inf)"),
    (lambda: gc.dpsgd(0.1, -1.0, 0.5, 0),
     "gradtx.contrib.differentially_private_aggregate: l2_norm_clip must be in [0, inf)"),
    (lambda: gc.dpsgd(0.1, 1.0, 0.5, 0, momentum=1.5),
     "gradtx.contrib.dpsgd: momentum must be in [0, 1], got 1.5"),
    (lambda: gc.differentially_private_aggregate(1.0, 0.5, key=0, seed=0),
     "gradtx.contrib.differentially_private_aggregate: pass one of key and seed"),
    (lambda: gc.schedule_free(gradtx.sgd(1.0), -1.0),
     "gradtx.contrib.schedule_free: learning_rate must be in [0, inf), got -1.0"),
    (lambda: gc.adopt(1e-3, clip_value_fn=lambda t: t),
     "gradtx.contrib.adopt: clip_value_fn must be the default t^(1/4)"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_hyperparameters_raise(make, message):
    with pytest.raises(gradtx.HyperparameterError) as info:
        make()
    assert str(info.value).startswith(message), str(info.value)


def test_momo_needs_the_loss():
    tx = gc.momo()
    p = _params()
    with pytest.raises(ValueError, match="needs the current loss"):
        tx.update(p, tx.init(p), p)
