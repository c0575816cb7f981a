"""gradtx.torch against torch.optim 2.13.0 through the committed tests/fixtures/torch_seed.npz.

The fixture (written by ``python tests/torch_fixtures.py seed``, see tests/torch_cases/seed.py)
holds a starting point, 50 fixed gradients and, per case, torch's parameters after each step.
Each case below makes torch's call to ``gradtx.torch`` (torch's names and arguments), replays
the 50 gradients in float64 and compares every step:
``|gradtx - torch| <= 1e-10 + 1e-10 * |torch|``. torch is not imported.
"""

from __future__ import annotations

import inspect
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "torch_seed.npz"
RTOL = ATOL = 1e-10
DECAY_W = {"w": True, "b": False}  # torch: b in a param group with weight_decay=0
T = gradtx.torch


def _f64(k):
    return jnp.asarray(k, jnp.float64)


# The torch.optim.lr_scheduler classes the fixture steps after every optimizer step, as
# functions of the number of steps taken: (lr, scheduler kwargs) -> schedule.
SCHEDULERS = {
    "ExponentialLR": lambda lr, gamma: lambda k: lr * gamma ** _f64(k),
    "StepLR": lambda lr, step_size, gamma: lambda k: lr * gamma ** _f64(k // step_size),
}

# case name in the fixture -> (gradtx.torch factory, torch's keyword arguments, param groups,
# lr scheduler): the call torch got, which test_the_table_makes_torchs_call reads back.
CASES = {
    "sgd": (T.sgd, {"lr": 0.1}, None, None),
    "sgd_wd": (T.sgd, {"lr": 0.1, "weight_decay": 0.1}, None, None),
    "sgd_max": (T.sgd, {"lr": 0.1, "maximize": True}, None, None),
    "sgd_max_wd": (T.sgd, {"lr": 0.1, "weight_decay": 0.1, "maximize": True}, None, None),
    "sgd_mom": (T.sgd, {"lr": 0.05, "momentum": 0.9}, None, None),
    "sgd_mom0_damp": (T.sgd, {"lr": 0.1, "momentum": 0.0, "dampening": 0.5}, None, None),
    "sgd_mom_damp": (T.sgd, {"lr": 0.05, "momentum": 0.9, "dampening": 0.5}, None, None),
    "sgd_nesterov": (T.sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True}, None, None),
    "sgd_nesterov_wd_max": (
        T.sgd,
        {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.05, "maximize": True},
        None,
        None,
    ),
    "sgd_mom_damp_wd_max": (
        T.sgd,
        {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1, "maximize": True},
        None,
        None,
    ),
    "sgd_mom_wd_decay_w": (
        T.sgd,
        {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.1},
        "decay_w",
        None,
    ),
    "sgd_mom_explr": (
        T.sgd,
        {"lr": 0.1, "momentum": 0.9},
        None,
        ("ExponentialLR", {"gamma": 0.95}),
    ),
    "adagrad": (T.adagrad, {"lr": 0.1}, None, None),
    "adagrad_lr_decay": (T.adagrad, {"lr": 0.1, "lr_decay": 0.05}, None, None),
    "adagrad_iav": (T.adagrad, {"lr": 0.1, "initial_accumulator_value": 0.1}, None, None),
    "adagrad_eps": (T.adagrad, {"lr": 0.1, "eps": 0.1}, None, None),
    "adagrad_wd": (T.adagrad, {"lr": 0.1, "weight_decay": 0.1}, None, None),
    "adagrad_max": (T.adagrad, {"lr": 0.1, "maximize": True}, None, None),
    "adagrad_all": (
        T.adagrad,
        {
            "lr": 0.1,
            "lr_decay": 0.01,
            "weight_decay": 0.05,
            "initial_accumulator_value": 0.2,
            "eps": 1e-3,
            "maximize": True,
        },
        None,
        None,
    ),
    "adagrad_wd_decay_w": (T.adagrad, {"lr": 0.1, "weight_decay": 0.1}, "decay_w", None),
    "adagrad_lr_decay_steplr": (
        T.adagrad,
        {"lr": 0.1, "lr_decay": 0.05},
        None,
        ("StepLR", {"step_size": 10, "gamma": 0.5}),
    ),
    "rmsprop": (T.rmsprop, {"lr": 0.01}, None, None),
    "rmsprop_alpha_eps": (T.rmsprop, {"lr": 0.01, "alpha": 0.9, "eps": 1e-3}, None, None),
    "rmsprop_centered": (T.rmsprop, {"lr": 0.01, "centered": True}, None, None),
    "rmsprop_mom": (T.rmsprop, {"lr": 0.01, "momentum": 0.9}, None, None),
    "rmsprop_centered_mom": (
        T.rmsprop,
        {"lr": 0.01, "momentum": 0.5, "centered": True},
        None,
        None,
    ),
    "rmsprop_wd": (T.rmsprop, {"lr": 0.01, "weight_decay": 0.1}, None, None),
    "rmsprop_max": (T.rmsprop, {"lr": 0.01, "maximize": True}, None, None),
    "rmsprop_all": (
        T.rmsprop,
        {
            "lr": 0.01,
            "alpha": 0.95,
            "eps": 1e-4,
            "weight_decay": 0.05,
            "momentum": 0.5,
            "centered": True,
            "maximize": True,
        },
        None,
        None,
    ),
    "rmsprop_wd_decay_w": (T.rmsprop, {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    "rmsprop_mom_explr": (
        T.rmsprop,
        {"lr": 0.01, "momentum": 0.9},
        None,
        ("ExponentialLR", {"gamma": 0.95}),
    ),
    "adam": (T.adam, {"lr": 0.01}, None, None),
    "adam_betas_eps": (T.adam, {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3}, None, None),
    "adam_amsgrad": (T.adam, {"lr": 0.01, "amsgrad": True}, None, None),
    "adam_wd": (T.adam, {"lr": 0.01, "weight_decay": 0.1}, None, None),
    "adam_decoupled": (
        T.adam,
        {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True},
        None,
        None,
    ),
    "adam_max": (T.adam, {"lr": 0.01, "maximize": True}, None, None),
    "adam_amsgrad_wd_max": (
        T.adam,
        {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1, "maximize": True},
        None,
        None,
    ),
    "adam_decoupled_amsgrad_max": (
        T.adam,
        {
            "lr": 0.01,
            "amsgrad": True,
            "weight_decay": 0.1,
            "decoupled_weight_decay": True,
            "maximize": True,
        },
        None,
        None,
    ),
    "adam_wd_decay_w": (T.adam, {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    "adam_explr": (T.adam, {"lr": 0.01}, None, ("ExponentialLR", {"gamma": 0.95})),
    "adamw": (T.adamw, {"lr": 0.01}, None, None),
    "adamw_wd": (T.adamw, {"lr": 0.01, "weight_decay": 0.1}, None, None),
    "adamw_amsgrad": (T.adamw, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}, None, None),
    "adamw_max": (T.adamw, {"lr": 0.01, "weight_decay": 0.1, "maximize": True}, None, None),
    "adamw_betas_eps": (
        T.adamw,
        {"lr": 0.01, "betas": (0.5, 0.9), "eps": 1e-3, "weight_decay": 0.1},
        None,
        None,
    ),
    "adamw_wd_decay_w": (T.adamw, {"lr": 0.01, "weight_decay": 0.1}, "decay_w", None),
    "adamw_steplr": (
        T.adamw,
        {"lr": 0.01, "weight_decay": 0.1},
        None,
        ("StepLR", {"step_size": 10, "gamma": 0.5}),
    ),
}


def build(name):
    """A case's gradtx.torch optimizer: torch's call, its param groups as a decay mask."""
    factory, kwargs, groups, scheduler = CASES[name]
    kwargs = dict(kwargs)
    if scheduler is not None:
        kwargs["lr"] = SCHEDULERS[scheduler[0]](kwargs["lr"], **scheduler[1])
    return factory(**kwargs, weight_decay_mask={None: None, "decay_w": DECAY_W}[groups])


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_every_fixture_case_is_replayed(fixture):
    """The table and the fixture name the same cases (none skipped, none invented)."""
    in_fixture = {k.split("/")[0] for k in fixture if k.endswith("/torch")}
    assert in_fixture == set(CASES)


def _as_json(x):
    """A value as JSON gives it back: tuples become lists."""
    if isinstance(x, (tuple, list)):
        return [_as_json(v) for v in x]
    if isinstance(x, dict):
        return {k: _as_json(v) for k, v in x.items()}
    return x


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_table_makes_torchs_call(name, fixture):
    """Each case passes gradtx.torch exactly the arguments torch's optimizer got."""
    call = json.loads(fixture[f"{name}/torch"].item().decode())
    factory, kwargs, groups, scheduler = CASES[name]
    assert factory is getattr(gradtx.torch, call["optimizer"].lower())
    assert _as_json(kwargs) == call["kwargs"]
    assert groups == call["groups"]
    assert _as_json(scheduler) == call["scheduler"]


# torch.optim class -> gradtx.torch factory, for the defaults check
FACTORIES = {
    "SGD": gradtx.torch.sgd,
    "Adagrad": gradtx.torch.adagrad,
    "RMSprop": gradtx.torch.rmsprop,
    "Adam": gradtx.torch.adam,
    "AdamW": gradtx.torch.adamw,
}


@pytest.mark.parametrize("cls", sorted(FACTORIES))
def test_defaults_follow_torch(cls, fixture):
    """Every option of the torch class exists in gradtx.torch, with the same default."""
    torch_defaults = json.loads(fixture[f"defaults/{cls}"].item().decode())
    params = inspect.signature(FACTORIES[cls]).parameters
    for name, value in torch_defaults.items():
        assert name in params, f"gradtx.torch.{FACTORIES[cls].__name__} lacks torch's {name}"
        ours = params[name].default
        assert _as_json(ours) == value, (cls, name, ours, value)


@jax.jit
def _step(tx, params, state, grads):
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name, fixture, x64):
    params = {"w": jnp.asarray(fixture["params/w"]), "b": jnp.asarray(fixture["params/b"])}
    grads_w, grads_b = fixture["grads/w"], fixture["grads/b"]
    want_w, want_b = fixture[f"{name}/w"], fixture[f"{name}/b"]
    call = json.loads(fixture[f"{name}/torch"].item().decode())
    tx = build(name)
    state = tx.init(params)
    for k in range(len(grads_w)):
        g = {"w": jnp.asarray(grads_w[k]), "b": jnp.asarray(grads_b[k])}
        params, state = _step(tx, params, state, g)
        for leaf, want in (("w", want_w[k]), ("b", want_b[k])):
            got = np.asarray(params[leaf])
            assert got.dtype == np.float64
            np.testing.assert_allclose(
                got, want, rtol=RTOL, atol=ATOL, err_msg=f"{name} step {k + 1} {leaf}: {call}"
            )
