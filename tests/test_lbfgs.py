"""L-BFGS: ``gradtx.torch.lbfgs`` against torch.optim.LBFGS (fixtures from
tests/torch_cases/lbfgs.py), ``gradtx.lbfgs`` and its line searches against Optax."""

from __future__ import annotations

import collections
import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
import gradtx.torch

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_lbfgs.npz"

# Repeated from tests/torch_cases/lbfgs.py: (lr, max_iter, history_size) and line searches.
SETTINGS = {"default": (1.0, 20, 100), "short": (0.5, 4, 3)}
LINE_SEARCHES = {"fixed": None, "wolfe": "strong_wolfe"}
CASES = [
    f"{p}-{ls}-{s}" for p in ("rosenbrock", "quadratic") for ls in LINE_SEARCHES for s in SETTINGS
]


@pytest.fixture(scope="module")
def torch_values():
    with np.load(FIXTURE) as data:
        return {k: data[k] for k in data.files}


def rosenbrock(params):
    x = jnp.concatenate([params["head"], params["tail"]])
    return jnp.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def _objective(params, data):
    """Rosenbrock or the quadratic ``x A x / 2 - b x``, chosen by ``data``: both problems share
    one compiled step per setting (``value_fn`` is a ``Partial``, so its data are traced)."""
    x = jnp.concatenate([params["head"], params["tail"]])
    quadratic = 0.5 * x @ (data["A"] @ x) - data["b"] @ x
    return jnp.where(data["rosenbrock"], rosenbrock(params), quadratic)


def _split(x):
    return {"head": jnp.asarray(x[:2]), "tail": jnp.asarray(x[2:])}


def _joined(params):
    return np.concatenate([np.asarray(params["head"]), np.asarray(params["tail"])])


_TRACES: collections.Counter = collections.Counter()


@jax.jit
def _torch_step(tx, params, state, loss_fn):
    """One ``step(closure)``: the loss and gradient at params, then the update."""
    _TRACES[jax.tree.structure(tx)] += 1
    value, grads = jax.value_and_grad(loss_fn)(params)
    updates, state = tx.update(grads, state, params, value=value, value_fn=loss_fn)
    return gradtx.apply_updates(params, updates), state


@pytest.mark.parametrize("case", CASES)
def test_torch_lbfgs_matches_torch_trajectory(case, torch_values, x64):
    problem, ls_name, setting = case.split("-")
    lr, max_iter, history_size = SETTINGS[setting]
    data = {
        "A": jnp.asarray(torch_values["quadratic/A"]),
        "b": jnp.asarray(torch_values["quadratic/b"]),
        "rosenbrock": jnp.asarray(problem == "rosenbrock"),
    }
    loss_fn = jax.tree_util.Partial(_objective, data=data)
    tx = gradtx.torch.lbfgs(
        lr=lr,
        max_iter=max_iter,
        history_size=history_size,
        line_search_fn=LINE_SEARCHES[ls_name],
    )
    params = _split(torch_values[f"{problem}/x0"])
    state = tx.init(params)
    expected = torch_values[f"{case}/x"]
    for k in range(expected.shape[0]):
        params, state = _torch_step(tx, params, state, loss_fn)
        np.testing.assert_allclose(_joined(params), expected[k], rtol=1e-8, atol=0, err_msg=f"{k}")
        # The same inner iterations and closure evaluations as torch, step by step.
        assert int(state.n_iter) == torch_values[f"{case}/n_iter"][k], k
        assert int(state.func_evals) == torch_values[f"{case}/func_evals"][k], k


def test_torch_fixture_covers_every_case(torch_values):
    assert str(torch_values["torch_version"]).startswith("2.13.0")
    assert {k.rsplit("/", 1)[0] for k in torch_values if k.endswith("/x")} == set(CASES)


def test_torch_lbfgs_signature_and_defaults_are_torchs():
    import inspect

    sig = inspect.signature(gradtx.torch.lbfgs)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [
        ("lr", 1),
        ("max_iter", 20),
        ("max_eval", None),
        ("tolerance_grad", 1e-7),
        ("tolerance_change", 1e-9),
        ("history_size", 100),
        ("line_search_fn", None),
    ]
    assert gradtx.torch.lbfgs(max_iter=8).max_eval == 10  # torch: max_iter * 5 // 4


# --------------------------------------------------------------------------------------------
# Optax


X0 = np.array([-1.2, 1.0, -0.5, 0.8, 1.3, -0.7])


def rosenbrock6(x):
    return jnp.sum((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2)


def _trajectory(tx, value_and_grad, steps=30):
    """Optax's documented loop: value and gradient from the state, then the update (jitted)."""

    @jax.jit
    def step(params, state):
        value, grad = value_and_grad(params, state=state)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=rosenbrock6
        )
        return params + updates, state

    params = jnp.asarray(X0)
    state = tx.init(params)
    out = []
    for _ in range(steps):
        params, state = step(params, state)
        out.append(np.asarray(params))
    return np.asarray(out), state


def _optax_trajectory(tx, steps=30):
    import optax

    with jax.numpy_dtype_promotion("standard"):
        return _trajectory(tx, optax.value_and_grad_from_state(rosenbrock6), steps)[0]


def test_lbfgs_matches_optax_with_zoom_linesearch(x64):
    import optax

    ref = _optax_trajectory(optax.lbfgs())
    got, state = _trajectory(gradtx.lbfgs(), gradtx.value_and_grad_from_state(rosenbrock6))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)
    assert rosenbrock6(got[-1]) < 0.5 * rosenbrock6(X0)
    # The state holds the value and gradient at the returned params (reused by the next step).
    ls_state = state[-1]
    value, grad = jax.value_and_grad(rosenbrock6)(jnp.asarray(got[-1]))
    np.testing.assert_allclose(ls_state.value, value, rtol=1e-12)
    np.testing.assert_allclose(ls_state.grad, grad, rtol=1e-12)


def test_lbfgs_matches_optax_with_backtracking_linesearch(x64):
    import optax

    ref = _optax_trajectory(
        optax.lbfgs(
            linesearch=optax.scale_by_backtracking_linesearch(
                max_backtracking_steps=15, store_grad=True
            )
        )
    )
    tx = gradtx.lbfgs(
        linesearch=gradtx.scale_by_backtracking_linesearch(
            max_backtracking_steps=15, store_grad=True
        )
    )
    got, _ = _trajectory(tx, gradtx.value_and_grad_from_state(rosenbrock6))
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


def test_linesearches_after_sgd_match_optax(x64):
    """Each search on its own, after a plain gradient step, with Optax's default arguments."""
    import optax

    for gt, ox in (
        (gradtx.scale_by_zoom_linesearch(15), optax.scale_by_zoom_linesearch(15)),
        (
            gradtx.scale_by_backtracking_linesearch(15, store_grad=True),
            optax.scale_by_backtracking_linesearch(15, store_grad=True),
        ),
    ):
        ref = _optax_trajectory(optax.chain(optax.sgd(1e-3), ox), steps=10)
        tx = gradtx.chain(gradtx.sgd(1e-3), gt)
        got, _ = _trajectory(tx, gradtx.value_and_grad_from_state(rosenbrock6), steps=10)
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=0)


def test_lbfgs_without_linesearch_matches_optax(x64):
    import optax

    vg = lambda p, state: jax.value_and_grad(rosenbrock6)(p)
    with jax.numpy_dtype_promotion("standard"):
        ref = _trajectory(optax.lbfgs(learning_rate=0.01, linesearch=None), vg, steps=10)[0]
    got, _ = _trajectory(gradtx.lbfgs(learning_rate=0.01, linesearch=None), vg, steps=10)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
    # weight_decay (a gradtx extra) is the L2 term added before the direction.
    with jax.numpy_dtype_promotion("standard"):
        opt = optax.chain(
            optax.add_decayed_weights(0.1), optax.lbfgs(learning_rate=0.01, linesearch=None)
        )
        ref = _trajectory(opt, vg, steps=10)[0]
    tx = gradtx.lbfgs(learning_rate=0.01, linesearch=None, weight_decay=0.1)
    got, _ = _trajectory(tx, vg, steps=10)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)


def test_signatures_are_optaxs():
    import inspect

    import optax

    for name in (
        "lbfgs",
        "scale_by_lbfgs",
        "scale_by_zoom_linesearch",
        "scale_by_backtracking_linesearch",
        "value_and_grad_from_state",
    ):
        ours = inspect.signature(getattr(gradtx, name)).parameters
        theirs = inspect.signature(getattr(optax, name)).parameters
        # Optax's parameters in Optax's order; gradtx's extras only after them, keyword-only.
        assert list(ours)[: len(theirs)] == list(theirs), name
        extras = list(ours.values())[len(theirs) :]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in extras), name
        for p in theirs.values():
            if p.name == "linesearch":  # a transform object: compare what it is
                continue
            assert ours[p.name].default == p.default, (name, p.name)
    # The default line search is built when lbfgs is called (never at import); the signature
    # shows what it is.
    default = inspect.signature(gradtx.lbfgs).parameters["linesearch"].default
    assert "scale_by_zoom_linesearch(max_linesearch_steps=20" in repr(default)
    built = gradtx.lbfgs().transforms[-1]
    assert isinstance(built, gradtx.ScaleByZoomLinesearch)
    assert built.max_linesearch_steps == 20 and built.initial_guess_strategy == "one"


# --------------------------------------------------------------------------------------------
# One compile, errors


def test_one_compile_across_learning_rates(x64):
    traces = collections.Counter()
    vg = gradtx.value_and_grad_from_state(rosenbrock6)

    @jax.jit
    def step(tx, params, state):
        traces["optax"] += 1
        value, grad = vg(params, state=state)
        updates, state = tx.update(
            grad, state, params, value=value, grad=grad, value_fn=rosenbrock6
        )
        return params + updates, state

    finals = []
    for lr in (1.0, 0.5):
        tx = gradtx.lbfgs(learning_rate=lr)
        p, s = jnp.asarray(X0), tx.init(jnp.asarray(X0))
        for _ in range(3):
            p, s = step(tx, p, s)
        ttx = gradtx.torch.lbfgs(lr=lr, max_iter=3, line_search_fn="strong_wolfe")
        tp = _split(X0[:5])
        ts = ttx.init(tp)
        for _ in range(3):
            tp, ts = _torch_step(ttx, tp, ts, jax.tree_util.Partial(rosenbrock))
        finals.append((np.asarray(p), _joined(tp)))
    assert traces["optax"] == 1 and _TRACES[jax.tree.structure(ttx)] == 1
    # The rates were used: the torch variant's steps differ (Optax's line search rescales).
    assert not np.allclose(finals[0][1], finals[1][1])


def test_invalid_arguments_raise():
    cases = [
        (lambda: gradtx.lbfgs(learning_rate=-1.0), "gradtx.lbfgs: learning_rate must be in"),
        (
            lambda: gradtx.lbfgs(memory_size=0),
            "gradtx.lbfgs: memory_size must be in [1, inf), got 0",
        ),
        (
            lambda: gradtx.scale_by_zoom_linesearch(10, slope_rtol=1.5),
            "gradtx.scale_by_zoom_linesearch: slope_rtol must be in [0, 1), got 1.5",
        ),
        (
            lambda: gradtx.scale_by_zoom_linesearch(10, initial_guess_strategy="two"),
            "initial_guess_strategy must be one of 'keep', 'one', got 'two'",
        ),
        (
            lambda: gradtx.scale_by_backtracking_linesearch(10, decrease_factor=1.0),
            "gradtx.scale_by_backtracking_linesearch: decrease_factor must be in (0, 1), got 1.0",
        ),
        (
            lambda: gradtx.torch.lbfgs(lr=-1.0),
            "gradtx.torch.lbfgs: lr must be in [0, inf), got -1.0",
        ),
        (
            lambda: gradtx.torch.lbfgs(line_search_fn="armijo"),
            "line_search_fn must be one of None, 'strong_wolfe', got 'armijo'",
        ),
        (lambda: gradtx.torch.lbfgs(history_size=0), "gradtx.torch.lbfgs: history_size must be"),
    ]
    for make, message in cases:
        with pytest.raises(gradtx.HyperparameterError, match=re.escape(message)):
            make()
    # inf is a documented value of curv_rtol (no curvature condition) and increase_factor.
    gradtx.scale_by_zoom_linesearch(10, curv_rtol=float("inf"))
    gradtx.scale_by_backtracking_linesearch(10, increase_factor=float("inf"))


def test_missing_objective_is_explained():
    tx = gradtx.lbfgs()
    params = jnp.ones(3)
    state = tx.init(params)
    with pytest.raises(TypeError, match="value_fn"):
        tx.update(params, state, params)
    ttx = gradtx.torch.lbfgs()
    with pytest.raises(TypeError, match="value_fn"):
        ttx.update(params, ttx.init(params), params, value=jnp.float32(1.0))
    with pytest.raises(ValueError, match="value_and_grad_from_state"):
        gradtx.value_and_grad_from_state(jnp.sum)(params, state=gradtx.sgd(0.1).init(params))
