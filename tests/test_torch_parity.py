"""gradtx against torch.optim 2.13.0 through the committed fixture tests/fixtures/torch_seed.npz.

The fixture (written by ``python tests/torch_fixtures.py seed``, see tests/torch_cases/seed.py)
holds a starting point, 50 fixed gradients and, per case, torch's parameters after each step.
Each case below rebuilds the same optimizer with gradtx, replays the 50 gradients in float64 and
compares every step: ``|gradtx - torch| <= 1e-10 + 1e-10 * |torch|``. torch is not imported.
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


def exp_lr(lr):
    """torch ExponentialLR(gamma=0.95) stepped after every optimizer step."""
    return gradtx.exponential_decay(lr, 0.95)


def step_lr(lr):
    """torch StepLR(step_size=10, gamma=0.5)."""
    return gradtx.exponential_decay(lr, 0.5, 10, staircase=True)


# case name in the fixture -> the gradtx optimizer with the same hyperparameters
CASES = {
    "sgd": lambda: gradtx.sgd(0.1),
    "sgd_wd": lambda: gradtx.sgd(0.1, weight_decay=0.1),
    "sgd_max": lambda: gradtx.sgd(0.1, maximize=True),
    "sgd_max_wd": lambda: gradtx.sgd(0.1, weight_decay=0.1, maximize=True),
    "sgd_mom": lambda: gradtx.sgd(0.05, 0.9),
    "sgd_mom0_damp": lambda: gradtx.sgd(0.1, 0.0, dampening=0.5),
    "sgd_mom_damp": lambda: gradtx.sgd(0.05, 0.9, dampening=0.5),
    "sgd_nesterov": lambda: gradtx.sgd(0.05, 0.9, nesterov=True),
    "sgd_nesterov_wd_max": lambda: gradtx.sgd(
        0.05, 0.8, nesterov=True, weight_decay=0.05, maximize=True
    ),
    "sgd_mom_damp_wd_max": lambda: gradtx.sgd(
        0.05, 0.9, dampening=0.3, weight_decay=0.1, maximize=True
    ),
    "sgd_mom_wd_decay_w": lambda: gradtx.sgd(
        0.05, 0.9, weight_decay=0.1, weight_decay_mask=DECAY_W
    ),
    "sgd_mom_explr": lambda: gradtx.sgd(exp_lr(0.1), 0.9),
    "adagrad": lambda: gradtx.adagrad(0.1),
    "adagrad_lr_decay": lambda: gradtx.adagrad(0.1, lr_decay=0.05),
    "adagrad_iav": lambda: gradtx.adagrad(0.1, initial_accumulator_value=0.1),
    "adagrad_eps": lambda: gradtx.adagrad(0.1, eps=0.1),
    "adagrad_wd": lambda: gradtx.adagrad(0.1, weight_decay=0.1),
    "adagrad_max": lambda: gradtx.adagrad(0.1, maximize=True),
    "adagrad_all": lambda: gradtx.adagrad(
        0.1,
        lr_decay=0.01,
        weight_decay=0.05,
        initial_accumulator_value=0.2,
        eps=1e-3,
        maximize=True,
    ),
    "adagrad_wd_decay_w": lambda: gradtx.adagrad(0.1, weight_decay=0.1, weight_decay_mask=DECAY_W),
    "adagrad_lr_decay_steplr": lambda: gradtx.adagrad(step_lr(0.1), lr_decay=0.05),
    "rmsprop": lambda: gradtx.rmsprop(0.01),
    "rmsprop_alpha_eps": lambda: gradtx.rmsprop(0.01, decay=0.9, eps=1e-3),
    "rmsprop_centered": lambda: gradtx.rmsprop(0.01, centered=True),
    "rmsprop_mom": lambda: gradtx.rmsprop(0.01, momentum=0.9),
    "rmsprop_centered_mom": lambda: gradtx.rmsprop(0.01, momentum=0.5, centered=True),
    "rmsprop_wd": lambda: gradtx.rmsprop(0.01, weight_decay=0.1),
    "rmsprop_max": lambda: gradtx.rmsprop(0.01, maximize=True),
    "rmsprop_all": lambda: gradtx.rmsprop(
        0.01,
        decay=0.95,
        eps=1e-4,
        weight_decay=0.05,
        momentum=0.5,
        centered=True,
        maximize=True,
    ),
    "rmsprop_wd_decay_w": lambda: gradtx.rmsprop(0.01, weight_decay=0.1, weight_decay_mask=DECAY_W),
    "rmsprop_mom_explr": lambda: gradtx.rmsprop(exp_lr(0.01), momentum=0.9),
    "adam": lambda: gradtx.adam(0.01),
    "adam_betas_eps": lambda: gradtx.adam(0.01, 0.5, 0.9, 1e-3),
    "adam_amsgrad": lambda: gradtx.adam(0.01, amsgrad=True),
    "adam_wd": lambda: gradtx.adam(0.01, weight_decay=0.1),
    "adam_decoupled": lambda: gradtx.adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
    "adam_max": lambda: gradtx.adam(0.01, maximize=True),
    "adam_amsgrad_wd_max": lambda: gradtx.adam(0.01, amsgrad=True, weight_decay=0.1, maximize=True),
    "adam_decoupled_amsgrad_max": lambda: gradtx.adam(
        0.01, amsgrad=True, weight_decay=0.1, decoupled_weight_decay=True, maximize=True
    ),
    "adam_wd_decay_w": lambda: gradtx.adam(0.01, weight_decay=0.1, weight_decay_mask=DECAY_W),
    "adam_explr": lambda: gradtx.adam(exp_lr(0.01)),
    "adamw": lambda: gradtx.adamw(0.01),
    "adamw_wd": lambda: gradtx.adamw(0.01, weight_decay=0.1),
    "adamw_amsgrad": lambda: gradtx.adamw(0.01, weight_decay=0.1, amsgrad=True),
    "adamw_max": lambda: gradtx.adamw(0.01, weight_decay=0.1, maximize=True),
    "adamw_betas_eps": lambda: gradtx.adamw(0.01, 0.5, 0.9, 1e-3, weight_decay=0.1),
    "adamw_wd_decay_w": lambda: gradtx.adamw(0.01, weight_decay=0.1, weight_decay_mask=DECAY_W),
    "adamw_steplr": lambda: gradtx.adamw(step_lr(0.01), weight_decay=0.1),
}


@pytest.fixture(scope="module")
def fixture():
    with np.load(FIXTURE, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_every_fixture_case_is_replayed(fixture):
    """The table and the fixture name the same cases (none skipped, none invented)."""
    in_fixture = {k.split("/")[0] for k in fixture if k.endswith("/torch")}
    assert in_fixture == set(CASES)


# torch.optim class -> gradtx factory, for the defaults check
FACTORIES = {
    "SGD": gradtx.sgd,
    "Adagrad": gradtx.adagrad,
    "RMSprop": gradtx.rmsprop,
    "Adam": gradtx.adam,
    "AdamW": gradtx.adamw,
}
RENAMED = {"lr": ("learning_rate",), "alpha": ("decay",), "betas": ("b1", "b2")}
EXECUTION_FLAGS = {"foreach", "fused", "capturable", "differentiable"}  # no effect on the math
SAME_MEANING = {("momentum", 0): None}  # torch's momentum 0 is no buffer: gradtx's None


@pytest.mark.parametrize("cls", sorted(FACTORIES))
def test_defaults_follow_torch(cls, fixture):
    """Every option of the torch class exists in gradtx with the same default."""
    torch_defaults = json.loads(fixture[f"defaults/{cls}"].item().decode())
    params = inspect.signature(FACTORIES[cls]).parameters
    for name, value in torch_defaults.items():
        if name in EXECUTION_FLAGS:
            continue
        names = RENAMED.get(name, (name,))
        values = value if len(names) > 1 else [value]
        for ours, theirs in zip(names, values):
            assert ours in params, f"gradtx.{FACTORIES[cls].__name__} lacks torch's {name}"
            want = SAME_MEANING.get((ours, theirs), theirs)
            assert params[ours].default == want, (cls, name, params[ours].default, want)


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
    tx = CASES[name]()
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
