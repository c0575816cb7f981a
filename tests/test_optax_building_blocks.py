"""Optax's names for writing one's own transforms, checked against Optax itself.

``GradientTransformation`` pairs in gradtx's combinators (and which of them get extra
arguments), ``MultiSteps`` over several steps (a scheduled ``k``, sums, skipped steps), and the
numerics helpers (values, dtypes, and gradients where they matter: ``safe_norm`` at zero,
``scale_gradient``'s backward pass).
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx


def _standard():
    """Optax mixes int32 counts and floats: it runs under standard promotion."""
    return jax.numpy_dtype_promotion("standard")


def _close(a, b, rtol=1e-6, atol=1e-7):
    a_leaves, a_def = jax.tree.flatten(a)
    b_leaves, b_def = jax.tree.flatten(b)
    assert a_def == b_def, (a_def, b_def)
    for x, y in zip(a_leaves, b_leaves):
        assert jnp.result_type(x) == jnp.result_type(y), (x, y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


PARAMS = {
    "w": jnp.asarray(np.linspace(-1.0, 2.0, 12).reshape(3, 4), jnp.float32),
    "b": jnp.asarray([0.5, -0.25, 1.5], jnp.float32),
}


def _grads(step: int):
    """A deterministic gradient per step, shaped like PARAMS."""
    return {
        "w": jnp.asarray(np.cos(np.arange(12.0) + step).reshape(3, 4), jnp.float32),
        "b": jnp.asarray(np.sin(np.arange(3.0) * (step + 1)), jnp.float32),
    }


# --------------------------------------------------------------------------------------------
# GradientTransformation pairs


def _doubling_pair(cls):
    """A hand-written transform: doubles the updates and counts its steps."""

    def init(params):
        del params
        return jnp.zeros((), jnp.int32)

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: 2.0 * u, updates), state + 1

    return cls(init, update)


def _loss_scaling_pair(cls):
    """Multiplies the updates by ``loss`` when it arrives; by 1 otherwise."""

    def update(updates, state, params=None, **extra):
        del params
        factor = extra.get("loss", 1.0)
        return jax.tree.map(lambda u: factor * u, updates), state

    return cls(lambda params: (), update)


def test_the_pair_types_are_optaxs():
    assert gradtx.GradientTransformation._fields == optax.GradientTransformation._fields
    assert issubclass(gradtx.GradientTransformationExtraArgs, gradtx.GradientTransformation)
    assert gradtx.GradientTransformationExtraArgs._fields == ("init", "update")
    pair = _doubling_pair(gradtx.GradientTransformation)
    init, update = pair
    assert init is pair.init and update is pair.update
    for name in ("TransformInitFn", "TransformUpdateFn", "TransformUpdateExtraArgsFn"):
        ours = inspect.signature(getattr(gradtx, name).__call__).parameters
        theirs = inspect.signature(getattr(optax, name).__call__).parameters
        assert list(ours) == list(theirs), name


def test_type_aliases_annotate():
    def update(
        updates: gradtx.Updates, state: gradtx.OptState, params: gradtx.Params | None = None
    ) -> tuple[gradtx.Updates, gradtx.OptState]:
        return updates, state

    assert update(1.0, (), None) == (1.0, ())
    # Annotations are strings in this module: build the unions the way an annotation would.
    for alias in (gradtx.Params, gradtx.Updates, gradtx.OptState, gradtx.MaskOrFn):
        assert (alias | None) is not None
    assert gradtx.Schedule in gradtx.ScalarOrSchedule.__args__


def _run(tx, steps=4, extra=None, jit=False):
    params = PARAMS
    state = tx.init(params)

    def step(tx, params, state, grads):
        updates, state = tx.update(grads, state, params, **(extra or {}))
        return optax.apply_updates(params, updates), state, updates

    if jit:  # a gradtx transform is a pytree argument; a pair inside it is static
        step = jax.jit(step)
    out = []
    for t in range(steps):
        params, state, updates = step(tx, params, state, _grads(t))
        out.append(updates)
    return params, state, out


@pytest.mark.parametrize("jit", [False, True])
def test_a_hand_written_pair_chains_with_gradtx_transforms(jit):
    ours = gradtx.chain(_doubling_pair(gradtx.GradientTransformation), gradtx.sgd(0.1, 0.9))
    with _standard():
        theirs = optax.chain(_doubling_pair(optax.GradientTransformation), optax.sgd(0.1, 0.9))
        p_theirs, s_theirs, _ = _run(theirs)
    p_ours, s_ours, _ = _run(ours, jit=jit)
    _close(p_ours, p_theirs)
    assert int(s_ours[0]) == int(s_theirs[0]) == 4


@pytest.mark.parametrize("extra_args", [False, True])
def test_extra_args_reach_only_an_extra_args_pair(extra_args):
    loss = {"loss": jnp.asarray(3.0, jnp.float32)}
    ours_cls = (
        gradtx.GradientTransformationExtraArgs if extra_args else gradtx.GradientTransformation
    )
    their_cls = (
        optax.GradientTransformationExtraArgs if extra_args else optax.GradientTransformation
    )
    with _standard():
        theirs = optax.chain(_loss_scaling_pair(their_cls), optax.sgd(0.1))
        _, _, u_theirs = _run(theirs, steps=2, extra=loss)
    for ours in (
        gradtx.chain(_loss_scaling_pair(ours_cls), gradtx.sgd(0.1)),
        gradtx.chain(_loss_scaling_pair(their_cls), gradtx.sgd(0.1)),  # Optax's pair classes too
    ):
        _, _, u_ours = _run(ours, steps=2, extra=loss)
        _close(u_ours, u_theirs)
    scale = 3.0 if extra_args else 1.0
    _close(u_theirs[0], jax.tree.map(lambda g: -0.1 * scale * g, _grads(0)))


def test_with_extra_args_support_takes_a_pair():
    tx = gradtx.with_extra_args_support(_loss_scaling_pair(gradtx.GradientTransformation))
    grads = _grads(0)
    updates, _ = tx.update(grads, tx.init(PARAMS), PARAMS, loss=jnp.asarray(5.0))
    _close(updates, grads)  # the pair takes no extra arguments: loss is dropped
