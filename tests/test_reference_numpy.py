"""gradtx against the independent NumPy formulas of tests/reference_numpy.py (float64).

Every case runs 20 steps on a small nested pytree with fixed random gradients (some entries are
exactly zero for the first steps, to reach the ``s == 0`` and ``v == 0`` corners) and compares
the parameters after every step. Tolerance, for every comparison in this file:
``|gradtx - numpy| <= 1e-12 + 1e-12 * |numpy|`` (the parameters are of order 1, so this is a
relative error of about 1e-12; float64 rounding differences are about 1e-15).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx
from tests import reference_numpy as ref
from tests.ref_problem import (
    MASK_FN,
    MASK_FN_LEAVES,
    MASK_TREE,
    MASK_TREE_LEAVES,
    np_grads,
    np_params,
)

RTOL = ATOL = 1e-12


def lr_exp(c):
    """The NumPy side of ``gradtx.exponential_decay(0.1, 1, 0.9)``."""
    return 0.1 * 0.9**c


def wd_exp(c):
    """The NumPy side of ``gradtx.exponential_decay(0.2, 1, 0.8)``."""
    return 0.2 * 0.8**c


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], Any]  # builds the gradtx transform (called with float64 enabled)
    reference: Callable[..., list]  # reference_numpy function with its hyperparameters bound


def C(id: str, make: Callable[[], Any], reference: Callable[..., list], **kw: Any) -> Case:
    return Case(id, make, functools.partial(reference, **kw))


EXP = lambda: gradtx.exponential_decay(0.1, 1, 0.9)
WD_EXP = lambda: gradtx.exponential_decay(0.2, 1, 0.8)
# torch.optim.Adagrad's arithmetic through gradtx.adagrad's keywords (the reference is torch's).
TORCH_ADAGRAD = dict(initial_accumulator_value=0.0, eps=1e-10, eps_placement="outside")

CASES = [
    # --- sgd
    C("sgd", lambda: gradtx.sgd(0.1), ref.sgd, lr=0.1),
    C("sgd-wd", lambda: gradtx.sgd(0.1, weight_decay=0.1), ref.sgd, lr=0.1, weight_decay=0.1),
    C("sgd-max", lambda: gradtx.sgd(0.1, maximize=True), ref.sgd, lr=0.1, maximize=True),
    C(
        "sgd-max-wd",
        lambda: gradtx.sgd(0.1, weight_decay=0.1, maximize=True),
        ref.sgd,
        lr=0.1,
        weight_decay=0.1,
        maximize=True,
    ),
    C("sgd-mom", lambda: gradtx.sgd(0.1, 0.9), ref.sgd, lr=0.1, momentum=0.9),
    C("sgd-mom0", lambda: gradtx.sgd(0.1, 0.0), ref.sgd, lr=0.1, momentum=0.0),
    C(
        "sgd-mom0-damp",
        lambda: gradtx.sgd(0.1, 0.0, dampening=0.5),
        ref.sgd,
        lr=0.1,
        momentum=0.0,
        dampening=0.5,
    ),
    C(
        "sgd-ema-mom0",
        lambda: gradtx.sgd(0.1, 0.0, momentum_form="ema"),
        ref.sgd,
        lr=0.1,
        momentum=0.0,
        ema=True,
    ),
    C(
        "sgd-damp",
        lambda: gradtx.sgd(0.1, 0.9, dampening=0.3),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        dampening=0.3,
    ),
    C(
        "sgd-nesterov",
        lambda: gradtx.sgd(0.1, 0.9, nesterov=True),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        nesterov=True,
    ),
    C(
        "sgd-nesterov-wd-max",
        lambda: gradtx.sgd(0.1, 0.8, nesterov=True, weight_decay=0.05, maximize=True),
        ref.sgd,
        lr=0.1,
        momentum=0.8,
        nesterov=True,
        weight_decay=0.05,
        maximize=True,
    ),
    C(
        "sgd-ema",
        lambda: gradtx.sgd(0.1, 0.9, momentum_form="ema"),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        ema=True,
    ),
    C(
        "sgd-ema-nesterov",
        lambda: gradtx.sgd(0.1, 0.9, nesterov=True, momentum_form="ema"),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        ema=True,
    ),
    C(
        "sgd-ema-damp-ignored",
        lambda: gradtx.sgd(0.1, 0.9, dampening=0.5, momentum_form="ema"),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        ema=True,
    ),
    C(
        "sgd-ema-wd-max",
        lambda: gradtx.sgd(0.1, 0.9, weight_decay=0.1, maximize=True, momentum_form="ema"),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        ema=True,
        weight_decay=0.1,
        maximize=True,
    ),
    C(
        "sgd-mom-wd-masktree",
        lambda: gradtx.sgd(0.1, 0.9, weight_decay=0.1, weight_decay_mask=MASK_TREE),
        ref.sgd,
        lr=0.1,
        momentum=0.9,
        weight_decay=0.1,
        mask=MASK_TREE_LEAVES,
    ),
    C(
        "sgd-wd-maskfn",
        lambda: gradtx.sgd(0.1, weight_decay=0.1, weight_decay_mask=MASK_FN),
        ref.sgd,
        lr=0.1,
        weight_decay=0.1,
        mask=MASK_FN_LEAVES,
    ),
    C("sgd-mom-lrsched", lambda: gradtx.sgd(EXP(), 0.9), ref.sgd, lr=lr_exp, momentum=0.9),
    C(
        "sgd-lr-callable",
        lambda: gradtx.sgd(lambda c: 0.1 * 0.9 ** jnp.asarray(c, float)),
        ref.sgd,
        lr=lr_exp,
    ),
    C(
        "sgd-wdsched",
        lambda: gradtx.sgd(0.1, 0.5, weight_decay=WD_EXP()),
        ref.sgd,
        lr=0.1,
        momentum=0.5,
        weight_decay=wd_exp,
    ),
    # --- adagrad
    C("adagrad", lambda: gradtx.adagrad(0.1, **TORCH_ADAGRAD), ref.adagrad, lr=0.1),
    C(
        "adagrad-lrdecay",
        lambda: gradtx.adagrad(0.1, lr_decay=0.05, **TORCH_ADAGRAD),
        ref.adagrad,
        lr=0.1,
        lr_decay=0.05,
    ),
    C(
        "adagrad-iav",
        lambda: gradtx.adagrad(0.1, 0.1, 1e-10, eps_placement="outside"),
        ref.adagrad,
        lr=0.1,
        initial_accumulator_value=0.1,
    ),
    C(
        "adagrad-eps",
        lambda: gradtx.adagrad(0.1, 0.0, 0.1, eps_placement="outside"),
        ref.adagrad,
        lr=0.1,
        eps=0.1,
    ),
    C(
        "adagrad-wd",
        lambda: gradtx.adagrad(0.1, weight_decay=0.1, **TORCH_ADAGRAD),
        ref.adagrad,
        lr=0.1,
        weight_decay=0.1,
    ),
    C(
        "adagrad-max-wd",
        lambda: gradtx.adagrad(0.1, weight_decay=0.1, maximize=True, **TORCH_ADAGRAD),
        ref.adagrad,
        lr=0.1,
        weight_decay=0.1,
        maximize=True,
    ),
    C(
        "adagrad-inside-optax",
        lambda: gradtx.adagrad(0.1),
        ref.adagrad,
        lr=0.1,
        initial_accumulator_value=0.1,
        eps=1e-7,
        inside=True,
    ),
    C(
        "adagrad-inside-zero-acc",
        lambda: gradtx.adagrad(0.1, initial_accumulator_value=0.0),
        ref.adagrad,
        lr=0.1,
        eps=1e-7,
        inside=True,
    ),
    C(
        "adagrad-inside-lrdecay-wd",
        lambda: gradtx.adagrad(0.1, 0.1, 1e-3, lr_decay=0.05, weight_decay=0.1),
        ref.adagrad,
        lr=0.1,
        lr_decay=0.05,
        weight_decay=0.1,
        initial_accumulator_value=0.1,
        eps=1e-3,
        inside=True,
    ),
    C(
        "adagrad-mask",
        lambda: gradtx.adagrad(0.1, weight_decay=0.1, weight_decay_mask=MASK_TREE, **TORCH_ADAGRAD),
        ref.adagrad,
        lr=0.1,
        weight_decay=0.1,
        mask=MASK_TREE_LEAVES,
    ),
    C(
        "adagrad-lrsched-lrdecay",
        lambda: gradtx.adagrad(EXP(), lr_decay=0.05, **TORCH_ADAGRAD),
        ref.adagrad,
        lr=lr_exp,
        lr_decay=0.05,
    ),
    # --- rmsprop
    C("rmsprop", lambda: gradtx.rmsprop(0.01, decay=0.99, eps_in_sqrt=False), ref.rmsprop, lr=0.01),
    C(
        "rmsprop-decay-eps",
        lambda: gradtx.rmsprop(0.01, decay=0.9, eps=0.1, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        alpha=0.9,
        eps=0.1,
    ),
    C(
        "rmsprop-centered",
        lambda: gradtx.rmsprop(0.01, centered=True, decay=0.99, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        centered=True,
    ),
    C(
        "rmsprop-mom",
        lambda: gradtx.rmsprop(0.01, momentum=0.9, decay=0.99, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        momentum=0.9,
    ),
    C(
        "rmsprop-mom0",
        lambda: gradtx.rmsprop(0.01, momentum=0.0, decay=0.99, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        momentum=0.0,
    ),
    C(
        "rmsprop-centered-mom",
        lambda: gradtx.rmsprop(0.01, momentum=0.5, centered=True, decay=0.99, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        momentum=0.5,
        centered=True,
    ),
    C(
        "rmsprop-inside",
        lambda: gradtx.rmsprop(0.01, decay=0.9),
        ref.rmsprop,
        lr=0.01,
        alpha=0.9,
        inside=True,
    ),
    C(
        "rmsprop-inside-centered-mom",
        lambda: gradtx.rmsprop(0.01, 0.9, 1e-4, momentum=0.5, centered=True),
        ref.rmsprop,
        lr=0.01,
        alpha=0.9,
        eps=1e-4,
        momentum=0.5,
        centered=True,
        inside=True,
    ),
    C(
        "rmsprop-initial-scale",
        lambda: gradtx.rmsprop(0.01, initial_scale=0.5, decay=0.99, eps_in_sqrt=False),
        ref.rmsprop,
        lr=0.01,
        initial_scale=0.5,
    ),
    C(
        "rmsprop-inside-centered-initscale",
        lambda: gradtx.rmsprop(0.01, 0.9, centered=True, initial_scale=1.0),
        ref.rmsprop,
        lr=0.01,
        alpha=0.9,
        centered=True,
        inside=True,
        initial_scale=1.0,
    ),
    C(
        "rmsprop-wd-max",
        lambda: gradtx.rmsprop(
            0.01, weight_decay=0.1, maximize=True, decay=0.99, eps_in_sqrt=False
        ),
        ref.rmsprop,
        lr=0.01,
        weight_decay=0.1,
        maximize=True,
    ),
    C(
        "rmsprop-mask",
        lambda: gradtx.rmsprop(
            0.01, weight_decay=0.1, weight_decay_mask=MASK_FN, decay=0.99, eps_in_sqrt=False
        ),
        ref.rmsprop,
        lr=0.01,
        weight_decay=0.1,
        mask=MASK_FN_LEAVES,
    ),
    C(
        "rmsprop-mom-lrsched",
        # torch's order (the buffer before the learning rate): the kernel, then the rate.
        lambda: gradtx.chain(
            gradtx.scale_by_rmsprop(0.99, 1e-8, momentum=0.9), gradtx.scale_by_learning_rate(EXP())
        ),
        ref.rmsprop,
        lr=lr_exp,
        momentum=0.9,
    ),
    # --- adam
    C("adam", lambda: gradtx.adam(0.01), ref.adam, lr=0.01),
    C(
        "adam-betas-eps",
        lambda: gradtx.adam(0.01, 0.5, 0.9, 1e-3),
        ref.adam,
        lr=0.01,
        b1=0.5,
        b2=0.9,
        eps=1e-3,
    ),
    C("adam-eps-root", lambda: gradtx.adam(0.01, eps_root=1e-6), ref.adam, lr=0.01, eps_root=1e-6),
    C(
        "adam-amsgrad-raw",
        lambda: gradtx.adam(0.01, amsgrad=True),
        ref.adam,
        lr=0.01,
        amsgrad="raw",
    ),
    C(
        "adam-amsgrad-corrected",
        lambda: gradtx.adam(0.01, amsgrad=True, amsgrad_max="corrected"),
        ref.adam,
        lr=0.01,
        amsgrad="corrected",
    ),
    C(
        "adam-amsgrad-raw-eps-root",
        lambda: gradtx.adam(0.01, amsgrad=True, eps_root=1e-6),
        ref.adam,
        lr=0.01,
        amsgrad="raw",
        eps_root=1e-6,
    ),
    C(
        "adam-amsgrad-corrected-eps-root",
        lambda: gradtx.adam(0.01, amsgrad=True, amsgrad_max="corrected", eps_root=1e-6),
        ref.adam,
        lr=0.01,
        amsgrad="corrected",
        eps_root=1e-6,
    ),
    C("adam-wd", lambda: gradtx.adam(0.01, weight_decay=0.1), ref.adam, lr=0.01, weight_decay=0.1),
    C(
        "adam-decoupled",
        lambda: gradtx.adam(0.01, weight_decay=0.1, decoupled_weight_decay=True),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
    ),
    C("adam-max", lambda: gradtx.adam(0.01, maximize=True), ref.adam, lr=0.01, maximize=True),
    C(
        "adam-max-wd",
        lambda: gradtx.adam(0.01, weight_decay=0.1, maximize=True),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        maximize=True,
    ),
    C(
        "adam-max-decoupled",
        lambda: gradtx.adam(0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
        maximize=True,
    ),
    C(
        "adam-amsgrad-max-wd",
        lambda: gradtx.adam(0.01, weight_decay=0.1, amsgrad=True, maximize=True),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        amsgrad="raw",
        maximize=True,
    ),
    C(
        "adam-wd-mask",
        lambda: gradtx.adam(0.01, weight_decay=0.1, weight_decay_mask=MASK_TREE),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        mask=MASK_TREE_LEAVES,
    ),
    C(
        "adam-decoupled-maskfn",
        lambda: gradtx.adam(
            0.01, weight_decay=0.1, decoupled_weight_decay=True, weight_decay_mask=MASK_FN
        ),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
        mask=MASK_FN_LEAVES,
    ),
    C("adam-lrsched", lambda: gradtx.adam(EXP()), ref.adam, lr=lr_exp),
    C("adam-nesterov", lambda: gradtx.adam(0.01, nesterov=True), ref.adam, lr=0.01, nesterov=True),
    C(
        "nadamw-mask",
        lambda: gradtx.nadamw(0.01, weight_decay=0.1, mask=MASK_TREE),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
        mask=MASK_TREE_LEAVES,
        nesterov=True,
    ),
    C("amsgrad", lambda: gradtx.amsgrad(0.01), ref.adam, lr=0.01, amsgrad="corrected"),
    C(
        "amsgrad-uncorrected-eps-root",
        lambda: gradtx.amsgrad(
            0.01, eps_root=1e-6, bias_correction_mu=False, bias_correction_nu=False
        ),
        ref.adam,
        lr=0.01,
        eps_root=1e-6,
        amsgrad="corrected",
        bias_correction=False,
    ),
    # --- adamw
    C("adamw", lambda: gradtx.adamw(0.01), ref.adam, lr=0.01, weight_decay=1e-4, decoupled=True),
    C(
        "adamw-wd",
        lambda: gradtx.adamw(0.01, weight_decay=0.1),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
    ),
    C(
        "adamw-amsgrad-corrected",
        lambda: gradtx.adamw(0.01, weight_decay=0.1, amsgrad=True, amsgrad_max="corrected"),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
        amsgrad="corrected",
    ),
    C(
        "adamw-amsgrad-raw-max",
        lambda: gradtx.adamw(0.01, weight_decay=1e-2, amsgrad=True, maximize=True),
        ref.adam,
        lr=0.01,
        weight_decay=1e-2,
        decoupled=True,
        amsgrad="raw",
        maximize=True,
    ),
    C(
        "adamw-mask",
        lambda: gradtx.adamw(0.01, weight_decay=0.1, mask=MASK_TREE),
        ref.adam,
        lr=0.01,
        weight_decay=0.1,
        decoupled=True,
        mask=MASK_TREE_LEAVES,
    ),
    C(
        "adamw-lrsched-wdsched",
        lambda: gradtx.adamw(EXP(), weight_decay=WD_EXP()),
        ref.adam,
        lr=lr_exp,
        weight_decay=wd_exp,
        decoupled=True,
    ),
]


@jax.jit
def _step(tx, params, state, grads):
    updates, state = tx.update(grads, state, params)
    return gradtx.apply_updates(params, updates), state


def _run_gradtx(tx, params, grads) -> list[list[np.ndarray]]:
    params = jax.tree.map(jnp.asarray, params)
    state = tx.init(params)
    out = []
    for g in grads:
        params, state = _step(tx, params, state, jax.tree.map(jnp.asarray, g))
        out.append([np.asarray(x) for x in jax.tree.leaves(params)])
    return out


def _assert_trajectories(got, want):
    assert len(got) == len(want)
    for k, (g_leaves, w_leaves) in enumerate(zip(got, want)):
        assert len(g_leaves) == len(w_leaves)
        for i, (g, w) in enumerate(zip(g_leaves, w_leaves)):
            assert g.dtype == np.float64
            np.testing.assert_allclose(
                g, w, rtol=RTOL, atol=ATOL, err_msg=f"step {k + 1}, leaf {i}"
            )


def test_mask_leaf_order():
    """The NumPy masks name the leaves in JAX's flattening order (dict keys sorted)."""
    params = np_params()
    shapes = [np.shape(x) for x in jax.tree.leaves(params)]
    assert shapes == [(2,), (4,), (), (3, 2)]
    assert MASK_TREE_LEAVES == [False, False, True, True]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_matches_numpy_reference(case: Case, x64):
    params, grads = np_params(), np_grads()
    want = case.reference(jax.tree.leaves(params), [jax.tree.leaves(g) for g in grads])
    got = _run_gradtx(case.make(), params, grads)
    _assert_trajectories(got, want)
    # the trajectory moved: a case that never updates would pass vacuously
    assert not np.allclose(want[-1][3], params["w"])


# --- building blocks ---------------------------------------------------------------------------


def _tree_leaves_np(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_scale_negate_chain(x64):
    params, grads = np_params(), np_grads()
    g = jax.tree.map(jnp.asarray, grads[0])
    g_np = jax.tree.leaves(grads[0])
    for tx, want in [
        (gradtx.scale(-0.3), ref.scale(g_np, -0.3)),
        (gradtx.negate(), ref.negate(g_np)),
        (gradtx.chain(gradtx.negate(), gradtx.scale(2.5)), ref.scale(ref.negate(g_np), 2.5)),
        (
            gradtx.chain(gradtx.scale(2.0), gradtx.chain(gradtx.negate(), gradtx.scale(0.25))),
            ref.scale(ref.negate(ref.scale(g_np, 2.0)), 0.25),
        ),
    ]:
        state = tx.init(params)
        u, _ = tx.update(g, state, params)
        for a, b in zip(_tree_leaves_np(u), want):
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "mask, leaves_mask",
    [
        (None, None),
        (MASK_TREE, MASK_TREE_LEAVES),
        (MASK_FN, MASK_FN_LEAVES),
        ({"w": True, "nested": False, "b": True}, [True, False, False, True]),
    ],  # a prefix mask
    ids=["none", "tree", "fn", "prefix"],
)
def test_add_decayed_weights_in_chain(mask, leaves_mask, x64):
    """``chain(add_decayed_weights(wd, mask), scale(-lr))`` is ``-lr * (g + wd * p)`` over 20 steps."""
    params, grads = np_params(), np_grads()
    tx = gradtx.chain(gradtx.add_decayed_weights(0.1, mask), gradtx.scale(-0.2))
    p_np = jax.tree.leaves(params)
    want = []
    for g in grads:
        u = ref.scale(ref.add_decayed_weights(jax.tree.leaves(g), p_np, 0.1, leaves_mask), -0.2)
        p_np = ref.apply_updates(p_np, u)
        want.append(p_np)
    _assert_trajectories(_run_gradtx(tx, params, grads), want)


def test_scale_by_learning_rate_schedule_count(x64):
    """The first update uses schedule(0), the k-th schedule(k-1)."""
    params, grads = np_params(), np_grads()
    tx = gradtx.scale_by_learning_rate(gradtx.exponential_decay(0.1, 1, 0.9))
    want = ref.sgd(jax.tree.leaves(params), [jax.tree.leaves(g) for g in grads], lr=lr_exp)
    _assert_trajectories(_run_gradtx(tx, params, grads), want)


def test_apply_updates_casts_back_and_passes_none(x64):
    params = {
        "a": np.array([1.0, 2.0, 3.0], np.float32),
        "n": None,
        "b": np.array([0.5, -1.5], np.float64),
    }
    updates = {
        "a": np.array([1e-3, 1e-9, -2.0], np.float64),
        "n": None,
        "b": np.array([0.25, 1e-12], np.float64),
    }
    out = gradtx.apply_updates(
        jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, updates)
    )
    assert out["n"] is None
    assert out["a"].dtype == jnp.float32 and out["b"].dtype == jnp.float64
    want = ref.apply_updates([params["a"], params["b"]], [updates["a"], updates["b"]])
    np.testing.assert_array_equal(np.asarray(out["a"]), want[0])  # exact: one rounding
    np.testing.assert_allclose(np.asarray(out["b"]), want[1], rtol=RTOL, atol=ATOL)
