"""gradtx against Optax where the two follow the same formula.

Each case runs 20 steps of both libraries from the same start with the same fixed random
gradients (the trees and gradients of tests/ref_problem.py) and compares the parameters
after every step, ``|gradtx - optax| <= tol + tol * |optax|``:

- in float32 with ``tol = 1e-6`` (the parameters are of order 1; the two libraries round in a
  different order);
- in float64 with ``tol = 1e-12``, the cases whose float32 hyperparameters round differently in
  the two libraries (below).

Hyperparameter rounding: Optax closes over Python floats, so its ``1 - b2`` is computed in double
precision and then rounded (0.001), while gradtx's ``b2`` is a float32 leaf and its ``1 - b2`` is
``1 - float32(0.999)`` = 0.00099998713. Optax then mixes that exact ``1 - b2`` with a rounded
``b2`` in ``b2 * v`` and in ``1 - b2^t``; gradtx uses the one rounded ``b2`` everywhere. With
b2 = 0.999 the two float32 trajectories drift apart by about 3e-6 in 20 steps, and gradtx's is the
closer one to the float64 result (``test_float32_adam_default_betas``). So the float32 Adam cases
use betas that float32 represents exactly (0.875, 1 - 2^-10), where the formulas can be compared
at 1e-6, and the default betas are compared in float64.

Optax's own code is not clean under the suite's strict dtype promotion (``b ** count`` mixes a
float with an int32), so everything that runs Optax code runs under standard promotion; pure
gradtx runs stay strict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from tests.ref_problem import MASK_FN, MASK_TREE, np_grads, np_params

TOL32 = 1e-6
TOL64 = 1e-12
B1, B2 = 0.875, 1 - 2**-10  # exact in float32


def _cast(tree, dtype):
    return jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    gradtx: Callable[[], Any]
    optax: Callable[[], Any]
    gradtx_promotion: str = "strict"  # "standard" where the gradtx side holds Optax transforms
    float32: bool = True  # compared in float32 too (False: hyperparameters rounded differently)


LR = 0.05
STD = "standard"
ADAMS = [  # (id suffix, betas): default betas in float64 only, exact betas in both precisions
    ("", {}, False),
    ("-exact-betas", {"b1": B1, "b2": B2}, True),
]
UNCORRECTED = {"bias_correction_mu": False, "bias_correction_nu": False}  # the AMSGrad paper's

CASES = [
    Case("sgd", lambda: gradtx.sgd(LR), lambda: optax.sgd(LR)),
    Case("sgd-momentum", lambda: gradtx.sgd(LR, 0.9), lambda: optax.sgd(LR, 0.9)),
    Case(
        "sgd-nesterov",
        lambda: gradtx.sgd(LR, 0.9, nesterov=True),
        lambda: optax.sgd(LR, 0.9, nesterov=True),
    ),
    Case(
        "adam-betas-eps",
        lambda: gradtx.adam(LR, 0.5, 0.75, 1e-3),
        lambda: optax.adam(LR, 0.5, 0.75, 1e-3),
    ),
    Case(
        "adagrad",
        lambda: gradtx.adagrad(LR, initial_accumulator_value=0.1, eps=1e-7),
        lambda: optax.adagrad(LR),
    ),
    Case(
        "adagrad-zero-acc",
        lambda: gradtx.adagrad(LR, initial_accumulator_value=0.0, eps=1e-7),
        lambda: optax.adagrad(LR, initial_accumulator_value=0.0),
    ),
    Case(
        "rmsprop",
        lambda: gradtx.rmsprop(LR, decay=0.9),
        lambda: optax.rmsprop(LR),
    ),
    Case(
        "rmsprop-eps-outside",
        lambda: gradtx.rmsprop(LR, decay=0.9, eps=1e-3, eps_in_sqrt=False),
        lambda: optax.rmsprop(LR, eps=1e-3, eps_in_sqrt=False),
    ),
    Case(
        "rmsprop-centered",
        lambda: gradtx.rmsprop(LR, decay=0.9, centered=True),
        lambda: optax.rmsprop(LR, centered=True),
    ),
    Case(
        "rmsprop-momentum",
        lambda: gradtx.rmsprop(LR, decay=0.9, momentum=0.9),
        lambda: optax.rmsprop(LR, momentum=0.9),
    ),
    Case(
        "rmsprop-centered-momentum",
        lambda: gradtx.rmsprop(LR, decay=0.9, momentum=0.5, centered=True),
        lambda: optax.rmsprop(LR, momentum=0.5, centered=True),
    ),
    Case(
        "rmsprop-initial-scale",
        lambda: gradtx.rmsprop(LR, decay=0.9, initial_scale=1.0),
        lambda: optax.rmsprop(LR, initial_scale=1.0),
    ),
    Case(
        "add-decayed-weights-mask",
        lambda: gradtx.chain(gradtx.add_decayed_weights(0.1, MASK_TREE), gradtx.scale(-LR)),
        lambda: optax.chain(optax.add_decayed_weights(0.1, MASK_TREE), optax.scale(-LR)),
    ),
    Case(
        "add-decayed-weights-maskfn",
        lambda: gradtx.chain(gradtx.add_decayed_weights(0.1, MASK_FN), gradtx.scale(-LR)),
        lambda: optax.chain(optax.add_decayed_weights(0.1, MASK_FN), optax.scale(-LR)),
    ),
    # optax.scale_by_adam inside gradtx.chain equals optax.adam with any betas: both use Optax's
    # rounding of the hyperparameters
    Case(
        "optax-in-gradtx-chain",
        lambda: gradtx.chain(optax.scale_by_adam(), gradtx.scale_by_learning_rate(LR)),
        lambda: optax.adam(LR),
        STD,
    ),
]

for _sfx, _b, _f32_ok in ADAMS:
    CASES += [
        Case(
            f"adam{_sfx}",
            lambda b=_b: gradtx.adam(LR, **b),
            lambda b=_b: optax.adam(LR, **b),
            float32=_f32_ok,
        ),
        Case(
            f"adam-eps-root{_sfx}",
            lambda b=_b: gradtx.adam(LR, eps_root=1e-6, **b),
            lambda b=_b: optax.adam(LR, eps_root=1e-6, **b),
            float32=_f32_ok,
        ),
        Case(
            f"adamw{_sfx}",
            lambda b=_b: gradtx.adamw(LR, weight_decay=0.1, **b),
            lambda b=_b: optax.adamw(LR, weight_decay=0.1, **b),
            float32=_f32_ok,
        ),
        Case(
            f"adamw-mask-tree{_sfx}",
            lambda b=_b: gradtx.adamw(LR, weight_decay=0.1, mask=MASK_TREE, **b),
            lambda b=_b: optax.adamw(LR, weight_decay=0.1, mask=MASK_TREE, **b),
            float32=_f32_ok,
        ),
        Case(
            f"adamw-mask-fn{_sfx}",
            lambda b=_b: gradtx.adamw(LR, weight_decay=0.1, mask=MASK_FN, **b),
            lambda b=_b: optax.adamw(LR, weight_decay=0.1, mask=MASK_FN, **b),
            float32=_f32_ok,
        ),
        Case(
            f"amsgrad{_sfx}",
            lambda b=_b: gradtx.amsgrad(LR, **b),
            lambda b=_b: optax.amsgrad(LR, **b),
            float32=_f32_ok,
        ),
        Case(
            f"amsgrad-as-adam-option{_sfx}",
            lambda b=_b: gradtx.adam(LR, amsgrad=True, amsgrad_max="corrected", **b),
            lambda b=_b: optax.amsgrad(LR, **b),
            float32=_f32_ok,
        ),
        Case(
            f"amsgrad-uncorrected{_sfx}",
            lambda b=_b: gradtx.amsgrad(LR, **UNCORRECTED, **b),
            lambda b=_b: optax.amsgrad(LR, **UNCORRECTED, **b),
            float32=_f32_ok,
        ),
        Case(
            f"adam-nesterov{_sfx}",
            lambda b=_b: gradtx.adam(LR, nesterov=True, **b),
            lambda b=_b: optax.adam(LR, nesterov=True, **b),
            float32=_f32_ok,
        ),
        Case(
            f"nadam{_sfx}",
            lambda b=_b: gradtx.nadam(LR, eps_root=1e-6, **b),
            lambda b=_b: optax.nadam(LR, eps_root=1e-6, **b),
            float32=_f32_ok,
        ),
        Case(
            f"nadamw-mask-tree{_sfx}",
            lambda b=_b: gradtx.nadamw(LR, weight_decay=0.1, mask=MASK_TREE, **b),
            lambda b=_b: optax.nadamw(LR, weight_decay=0.1, mask=MASK_TREE, **b),
            float32=_f32_ok,
        ),
        Case(
            f"amsgrad-eps-root{_sfx}",
            lambda b=_b: gradtx.amsgrad(LR, eps_root=1e-6, **b),
            lambda b=_b: optax.amsgrad(LR, eps_root=1e-6, **b),
            float32=_f32_ok,
        ),
        # a gradtx transform inside optax.chain; a mixed chain in gradtx.chain
        Case(
            f"gradtx-in-optax-chain{_sfx}",
            lambda b=_b: optax.chain(gradtx.scale_by_adam(**b), optax.scale_by_learning_rate(LR)),
            lambda b=_b: optax.adam(LR, **b),
            STD,
            float32=_f32_ok,
        ),
        Case(
            f"mixed-adamw-chain{_sfx}",
            lambda b=_b: gradtx.chain(
                gradtx.scale_by_adam(**b),
                optax.add_decayed_weights(0.1, MASK_TREE),
                gradtx.scale_by_learning_rate(LR),
            ),
            lambda b=_b: optax.adamw(LR, weight_decay=0.1, mask=MASK_TREE, **b),
            STD,
            float32=_f32_ok,
        ),
    ]

CASES32 = [c for c in CASES if c.float32]
CASES64 = [c for c in CASES if not c.float32]


def _trajectory(tx, apply_updates, dtype, promotion=STD) -> list[list[np.ndarray]]:
    with jax.numpy_dtype_promotion(promotion):
        return _run(tx, apply_updates, dtype)


def _run(tx, apply_updates, dtype) -> list[list[np.ndarray]]:
    params = _cast(np_params(), dtype)

    @jax.jit
    def step(params, state, grads):
        updates, state = tx.update(grads, state, params)
        return apply_updates(params, updates), state

    state = tx.init(params)
    out = []
    for g in np_grads():
        params, state = step(params, state, _cast(g, dtype))
        leaves = jax.tree.leaves(params)
        assert all(x.dtype == dtype for x in leaves)
        out.append([np.asarray(x) for x in leaves])
    return out


def _compare(got, want, tol):
    for k, (gs, ws) in enumerate(zip(got, want)):
        for i, (g, w) in enumerate(zip(gs, ws)):
            np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"step {k + 1} leaf {i}")


def _check(case: Case, dtype, tol):
    want = _trajectory(case.optax(), optax.apply_updates, dtype)
    got = _trajectory(case.gradtx(), gradtx.apply_updates, dtype, case.gradtx_promotion)
    _compare(got, want, tol)
    assert not np.allclose(want[-1][3], np_params()["w"], atol=1e-3)  # it moved


@pytest.mark.parametrize("case", CASES32, ids=[c.id for c in CASES32])
def test_matches_optax_float32(case: Case):
    _check(case, jnp.float32, TOL32)


@pytest.mark.parametrize("case", CASES64, ids=[c.id for c in CASES64])
def test_matches_optax_float64(case: Case, x64):
    _check(case, jnp.float64, TOL64)


def test_float32_adam_default_betas():
    """With b2 = 0.999, gradtx's float32 Adam is within 1e-6 of the float64 result (Optax's
    float32 Adam is about 3e-6 away, see the module docstring)."""
    with jax.enable_x64(True):
        want = _trajectory(optax.adam(LR), optax.apply_updates, jnp.float64)
    got = _trajectory(gradtx.adam(LR), gradtx.apply_updates, jnp.float32, "strict")
    _compare(got, want, TOL32)


@pytest.mark.parametrize("apply_updates", [optax.apply_updates, gradtx.apply_updates])
def test_gradtx_updates_with_either_apply_updates(apply_updates):
    """gradtx.adam's updates applied with optax.apply_updates (and gradtx's) equal optax.adam."""
    want = _trajectory(optax.adam(LR, B1, B2), optax.apply_updates, jnp.float32)
    _compare(_trajectory(gradtx.adam(LR, B1, B2), apply_updates, jnp.float32), want, TOL32)


@jax.numpy_dtype_promotion(STD)
def test_interop_eager_unjitted():
    """Without an outer jit: a gradtx transform as an optax.chain element and vice versa."""
    params = _cast(np_params(), jnp.float32)
    grads = [_cast(g, jnp.float32) for g in np_grads()[:3]]
    pure = optax.adam(LR, B1, B2)
    for tx in (
        optax.chain(gradtx.scale_by_adam(B1, B2), optax.scale_by_learning_rate(LR)),
        gradtx.chain(optax.scale_by_adam(B1, B2), gradtx.scale_by_learning_rate(LR)),
    ):
        p_a, s_a = params, tx.init(params)
        p_b, s_b = params, pure.init(params)
        for g in grads:
            u_a, s_a = tx.update(g, s_a, p_a)
            u_b, s_b = pure.update(g, s_b, p_b)
            p_a, p_b = optax.apply_updates(p_a, u_a), optax.apply_updates(p_b, u_b)
        _compare([jax.tree.leaves(p_a)], [jax.tree.leaves(p_b)], TOL32)
