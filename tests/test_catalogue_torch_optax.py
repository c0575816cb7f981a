"""The Optax conventions of the torch.optim catalogue against Optax itself (float32, 1e-5).

Where torch and Optax disagree (NAdam's momentum schedule, RAdam's threshold and eps,
Adafactor), the top-level ``gradtx.<name>`` follows Optax, checked here against
``optax.<name>``, and ``gradtx.torch.<name>`` follows torch, checked against torch's
trajectories in test_catalogue_torch_parity.py. Adamax and Adadelta are the same algorithm in
both libraries. Problems: the contract quadratic (a nested tree with a ``None`` leaf) and a small
matrix problem for Adafactor's factored statistics.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

from ._problems import quadratic_loss, quadratic_params, train

STEPS = 50
TOL = 1e-5

MATRIX_P0 = {
    "m": jnp.asarray(np.linspace(-1.5, 2.0, 12).reshape(3, 4), jnp.float32),
    "b": jnp.asarray([0.5, -1.0, 2.0, 0.25], jnp.float32),
}
MATRIX_C = {
    "m": jnp.asarray(np.linspace(0.5, 2.0, 12)[::-1].reshape(3, 4), jnp.float32),
    "b": jnp.asarray([1.0, 0.3, 0.7, 2.0], jnp.float32),
}


def matrix_loss(p):
    return sum(jnp.sum(MATRIX_C[k] * (p[k] - 0.3) ** 2) for k in p)


def matrix_params():
    return dict(MATRIX_P0)


LR = 0.05
B2_EXACT = 1.0 - 2.0**-10  # 0.9990234375, exact in float32
CASES = {
    "adadelta": (gradtx.adadelta(1.0), optax.adadelta(1.0)),
    "adadelta_wd": (
        gradtx.adadelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.1),
        optax.adadelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.1),
    ),
    "adamax": (gradtx.adamax(LR), optax.adamax(LR)),
    "adamax_w": (
        gradtx.adamax(LR, b1=0.8, b2=0.99, weight_decay=0.1, decoupled_weight_decay=True),
        optax.adamaxw(LR, b1=0.8, b2=0.99, weight_decay=0.1),
    ),
    "nadam": (gradtx.nadam(LR), optax.nadam(LR)),
    "nadam_w": (
        gradtx.nadamw(LR, b1=0.8, weight_decay=0.1),
        optax.nadamw(LR, b1=0.8, weight_decay=0.1),
    ),
    # RAdam with b2 exactly representable in float32 (1 - 2^-10 and 1 - 2^-7): gradtx's
    # hyperparameters are float32 leaves of the compiled step, while Optax folds
    # rho_inf = 2 / (1 - b2) - 1 in Python double. For b2 = 0.999, float32 rounding moves
    # 1 - b2 by 1.3e-5 (relative) and the 50-step trajectory by ~1.5e-4; with float64 the two
    # agree exactly (test_radam_default_b2_matches_optax_in_float64).
    "radam": (
        gradtx.radam(LR, b2=B2_EXACT, threshold_inclusive=True, eps_placement="corrected"),
        optax.radam(LR, b2=B2_EXACT),
    ),
    "radam_threshold": (
        gradtx.radam(
            LR,
            b2=0.9921875,
            eps=1e-3,
            threshold=8.0,
            threshold_inclusive=True,
            eps_placement="corrected",
        ),
        optax.radam(LR, b2=0.9921875, eps=1e-3, threshold=8.0),
    ),
    "adafactor": (gradtx.adafactor(LR, convention="optax"), optax.adafactor(LR)),
    "adafactor_factored": (
        gradtx.adafactor(LR, convention="optax", min_dim_size_to_factor=2),
        optax.adafactor(LR, min_dim_size_to_factor=2),
    ),
    "adafactor_opts": (
        gradtx.adafactor(
            LR,
            decay_rate=0.5,
            clipping_threshold=0.5,
            weight_decay_rate=0.2 * LR,
            momentum=0.9,
            min_dim_size_to_factor=3,
            multiply_by_parameter_scale=False,
        ),
        optax.adafactor(
            LR,
            decay_rate=0.5,
            clipping_threshold=0.5,
            weight_decay_rate=0.2 * LR,
            momentum=0.9,
            min_dim_size_to_factor=3,
            multiply_by_parameter_scale=False,
        ),
    ),
}


@pytest.mark.parametrize("problem", ["quadratic", "matrix"])
@pytest.mark.parametrize("case", list(CASES))
def test_optax_convention_matches_optax(case, problem):
    ours, theirs = CASES[case]
    params_fn, loss = {
        "quadratic": (quadratic_params, quadratic_loss),
        "matrix": (matrix_params, matrix_loss),
    }[problem]
    p_ours, _ = jax.jit(lambda: train(ours, params_fn(), loss, STEPS))()
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes Python floats and int32 counts
        p_theirs, _ = jax.jit(lambda: train(theirs, params_fn(), loss, STEPS))()
    moved = max(
        float(np.max(np.abs(a - b)))
        for a, b in zip(jax.tree.leaves(p_theirs), jax.tree.leaves(params_fn()))
    )
    assert moved > 1e-2, (case, moved)  # the comparison is not vacuous
    for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs)):
        np.testing.assert_allclose(a, b, rtol=TOL, atol=TOL)


@pytest.mark.parametrize(
    "torch_conv, optax_conv",
    [
        (gradtx.torch.nadam(LR), gradtx.nadam(LR)),
        (
            gradtx.torch.radam(LR, betas=(0.9, 0.99), eps=1e-3),
            gradtx.radam(
                LR, b2=0.99, eps=1e-3, threshold_inclusive=True, eps_placement="corrected"
            ),
        ),
        (
            gradtx.torch.adafactor(0.5),
            gradtx.adafactor(0.5, convention="optax", min_dim_size_to_factor=2),
        ),
    ],
    ids=["nadam", "radam", "adafactor"],
)
def test_the_two_conventions_differ(torch_conv, optax_conv):
    """Same name, different algorithms: gradtx.torch's and the top level's trajectories differ."""
    a, _ = train(torch_conv, matrix_params(), matrix_loss, 10)
    b, _ = train(optax_conv, matrix_params(), matrix_loss, 10)
    diff = max(float(np.max(np.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert diff > 1e-6, diff


def test_radam_default_b2_matches_optax_in_float64(x64):
    ours = gradtx.radam(LR, threshold_inclusive=True, eps_placement="corrected")
    dt = jnp.float64
    p_ours, _ = jax.jit(lambda: train(ours, quadratic_params(dt), quadratic_loss, STEPS))()
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.radam(LR)
        p_theirs, _ = jax.jit(lambda: train(theirs, quadratic_params(dt), quadratic_loss, STEPS))()
    for a, b in zip(jax.tree.leaves(p_ours), jax.tree.leaves(p_theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
