"""Composition laws, the contract checks for every wrapper, extra arguments, logging, and
low-precision zero gradients over the whole registry."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx
from gradtx.registry import OPTIMIZERS

from ._composition_util import assert_trees_close, assert_trees_equal, grad_seq, make_params

LABELS = {"dense": {"kernel": "a", "bias": "b"}, "norm": "b", "head": "a"}
MASK = {"dense": {"kernel": True, "bias": False}, "norm": False, "head": True}

# Every wrapper and combinator, as a function of the learning rate (a float or a tracer).
WRAPPERS: dict[str, Any] = {
    "masked": lambda lr: gradtx.masked(gradtx.adam(lr), MASK),
    "partition": lambda lr: gradtx.partition(
        {"a": gradtx.adam(lr), "b": gradtx.sgd(lr, momentum=0.9)}, LABELS
    ),
    "freeze": lambda lr: gradtx.freeze(gradtx.mask_by_path("norm/*"), gradtx.adamw(lr)),
    "accumulate": lambda lr: gradtx.accumulate(gradtx.adam(lr), 2),
    "apply_if_finite": lambda lr: gradtx.apply_if_finite(gradtx.adam(lr), 2),
    "lookahead": lambda lr: gradtx.lookahead(gradtx.adam(lr), 2, 0.5),
    "ema_params": lambda lr: gradtx.chain(gradtx.adam(lr), gradtx.ema_params(0.9)),
    "swa": lambda lr: gradtx.chain(gradtx.sgd(lr), gradtx.swa(1)),
    "clipping": lambda lr: gradtx.chain(
        gradtx.clip(1.0),
        gradtx.clip_by_global_norm(1.0),
        gradtx.clip_by_block_rms(1.0),
        gradtx.adaptive_grad_clip(0.5),
        gradtx.adamw(lr, mask=gradtx.decay_mask()),
        gradtx.clip_updates(max_norm=10.0),
    ),
    "blocks": lambda lr: gradtx.chain(
        gradtx.zero_nans(),
        gradtx.centralize(),
        gradtx.trace(0.9, nesterov=True),
        gradtx.ema(0.9),
        gradtx.scale_by_trust_ratio(),
        gradtx.add_noise(1e-4, 0.55, 0),
        gradtx.scale_by_learning_rate(lr),
        gradtx.keep_params_nonnegative(),
    ),
    "sign": lambda lr: gradtx.chain(gradtx.scale_by_sign(), gradtx.scale_by_learning_rate(lr)),
}

N_STEPS = 2


def _run(tx, params, grads):
    state = tx.init(params)
    for g in grads:
        u, state = tx.update(g, state, params)
        params = gradtx.apply_updates(params, u)
    return params, state


_TRACES: dict[str, int] = {}


def _traced_run(name):
    def run(tx, params, grads):
        _TRACES[name] = _TRACES.get(name, 0) + 1
        return _run(tx, params, grads)[0]

    return jax.jit(run)


@pytest.mark.parametrize("name", sorted(WRAPPERS))
def test_wrapper_contract(x64, name):
    make = WRAPPERS[name]
    # float64, so vmap-vs-loop differences are the transforms', not float32 rounding
    params = jax.tree.map(
        jnp.abs, make_params(jnp.float64)
    )  # non-negative for keep_params_nonnegative
    grads = grad_seq(params, N_STEPS)
    run = _traced_run(name)
    lrs = [0.1, 0.01, 0.001]
    # jit once across learning-rate values
    looped = [run(make(lr), params, grads) for lr in lrs]
    assert _TRACES[name] == 1, f"{name} retraced for a new learning rate"
    # vmap over the learning rate == the loop
    batched = jax.jit(jax.vmap(lambda lr: _run(make(lr), params, grads)[0]))(jnp.asarray(lrs))
    for i in range(len(lrs)):
        assert_trees_close(jax.tree.map(lambda x, i=i: x[i], batched), looped[i], rtol=1e-12)
    # dtype kept (bfloat16 params and gradients)
    p16 = jax.tree.map(lambda x: x.astype(jnp.bfloat16), params)
    g16 = [jax.tree.map(lambda x: x.astype(jnp.bfloat16), g) for g in grads[:1]]
    tx = make(0.01)
    u, state = tx.update(g16[0], tx.init(p16), p16)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(u)), name
    assert all(np.all(np.isfinite(np.asarray(x, np.float32))) for x in jax.tree.leaves(u))
    # state structure and dtypes stable across steps
    s0 = tx.init(p16)
    assert jax.tree.structure(s0) == jax.tree.structure(state)
    assert [x.dtype for x in jax.tree.leaves(s0)] == [x.dtype for x in jax.tree.leaves(state)]


def test_chain_is_associative():
    params = make_params()
    grads = grad_seq(params, 3)
    a, b, c = gradtx.clip_by_global_norm(1.0), gradtx.trace(0.9), gradtx.adamw(0.1)
    flat, _ = _run(gradtx.chain(a, b, c), params, grads)
    left, _ = _run(gradtx.chain(gradtx.chain(a, b), c), params, grads)
    right, _ = _run(gradtx.chain(a, gradtx.chain(b, c)), params, grads)
    assert_trees_equal(flat, left)
    assert_trees_equal(flat, right)


# ---------------------------------------------------------------------------------------------
# Extra arguments reach the transforms that read them, through every wrapper


@gradtx.pytree_dataclass
class _ScaleByLoss(gradtx.Transform):
    """Test transform: ``u <- loss * u``; fails without ``loss=``."""

    def _update(self, updates, state, params, *, loss, **extra):
        return jax.tree.map(lambda u: (u * loss).astype(u.dtype), updates), state


@pytest.mark.parametrize(
    "wrap",
    [
        lambda t: gradtx.chain(gradtx.clip_by_global_norm(1e6), t),
        lambda t: gradtx.masked(t, True),
        lambda t: gradtx.partition({"x": t}, "x"),
        lambda t: gradtx.freeze(gradtx.mask_by_path("nothing"), t),
        lambda t: gradtx.accumulate(t, 1),
        lambda t: gradtx.apply_if_finite(t, 1),
        lambda t: gradtx.lookahead(t, 1, 1.0),
        lambda t: gradtx.chain(t, gradtx.ema_params(0.5)),
    ],
    ids=[
        "chain",
        "masked",
        "partition",
        "freeze",
        "accumulate",
        "apply_if_finite",
        "lookahead",
        "ema_params",
    ],
)
def test_extra_args_pass_through(wrap):
    params = {"x": jnp.ones((2,))}
    g = {"x": jnp.full((2,), 2.0)}
    tx = wrap(gradtx.chain(_ScaleByLoss(), gradtx.sgd(1.0)))
    u, _ = tx.update(g, tx.init(params), params, loss=jnp.asarray(3.0))
    np.testing.assert_allclose(np.asarray(u["x"]), [-6.0, -6.0])


# ---------------------------------------------------------------------------------------------
# current_hyperparams


def test_current_hyperparams_flat_dict_of_scheduled_values(x64):
    params = make_params(jnp.float64)
    grads = grad_seq(params, 3)
    lr = gradtx.cosine_decay_schedule(0.1, 10)
    wd = gradtx.linear_schedule(0.0, 0.3, 4)
    tx = gradtx.chain(
        gradtx.clip_by_global_norm(gradtx.linear_schedule(1.0, 2.0, 4)),
        gradtx.adamw(lr, b1=gradtx.linear_schedule(0.8, 0.9, 4), weight_decay=wd),
    )
    assert set(gradtx.current_hyperparams(tx, tx.init(params))) == {
        "max_norm",
        "b1",
        "weight_decay",
        "learning_rate",
    }
    _, state = _run(tx, params, grads)
    hp = gradtx.current_hyperparams(tx, state)
    np.testing.assert_allclose(float(hp["learning_rate"]), 0.05 * (1 + np.cos(np.pi * 2 / 10)))
    np.testing.assert_allclose(float(hp["b1"]), 0.85)
    np.testing.assert_allclose(float(hp["weight_decay"]), 0.15)
    np.testing.assert_allclose(float(hp["max_norm"]), 1.5)
    # works under jit, and reads counts through wrappers (inner count advances on emit only)
    acc = gradtx.accumulate(gradtx.sgd(lr), 2)
    _, s = _run(acc, params, grads[:3] + grads[:2])  # 5 steps: 2 emitted
    hp = jax.jit(gradtx.current_hyperparams)(acc, s)
    np.testing.assert_allclose(float(hp["learning_rate"]), float(lr(1)))


def test_current_hyperparams_partition_keys():
    params = make_params()
    tx = gradtx.partition({"a": gradtx.adam(0.1), "b": gradtx.sgd(0.5)}, LABELS)
    hp = gradtx.current_hyperparams(tx, tx.init(params))
    assert {k: float(v) for k, v in hp.items()} == pytest.approx(
        {"a/learning_rate": 0.1, "b/learning_rate": 0.5}
    )


def test_current_hyperparams_reads_optaxs_injected_states(standard_promotion):
    """An Optax transform inside a gradtx chain reports what its inject_hyperparams state
    holds: the values of the last step, as Optax records them."""
    params = {"w": jnp.ones(3)}
    sched = optax.linear_schedule(0.1, 0.0, 10)
    inner = optax.inject_hyperparams(optax.sgd)(learning_rate=sched, momentum=0.9)
    tx = gradtx.chain(gradtx.clip_by_global_norm(1.0), inner)
    state = tx.init(params)
    for _ in range(3):
        _, state = tx.update(params, state, params)
    hp = gradtx.current_hyperparams(tx, state)
    assert set(hp) == {"learning_rate", "momentum"}
    for name, value in state[1].hyperparams.items():
        np.testing.assert_array_equal(hp[name], value)
    np.testing.assert_allclose(hp["learning_rate"], sched(2), rtol=1e-6)  # the third step's
    # An Optax transform given directly reads alike.
    direct = gradtx.current_hyperparams(inner, state[1])
    assert direct.keys() == hp.keys()
    jax.tree.map(np.testing.assert_array_equal, direct, hp)


# ---------------------------------------------------------------------------------------------
# fp16 / bf16 gradients that are exactly zero never give NaN, in any registry optimizer


@pytest.mark.parametrize("key", sorted(OPTIMIZERS))
def test_low_precision_zero_gradients_stay_finite(key):
    spec = OPTIMIZERS[key]
    params = {
        "h": jnp.asarray([0.5, -1.0, 2.0], jnp.float16),
        "b": jnp.asarray([[0.5, -1.0], [2.0, 0.25]], jnp.bfloat16),
    }
    zeros = jax.tree.map(jnp.zeros_like, params)
    nonzero = jax.tree.map(lambda p: (0.5 * p).astype(p.dtype), params)
    extra = {"loss": jnp.asarray(1.0, jnp.float32)} if spec.reads_loss else {}

    def stacked(*trees):
        return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)

    @jax.jit
    def run(tx, params):
        def steps(grads):  # every step's update and params (stacked), and the last state
            def body(carry, g):
                p, state = carry
                u, state = tx.update(g, state, p, **extra)
                p = gradtx.apply_updates(p, u)
                return (p, state), (u, p)

            (_, state), per_step = jax.lax.scan(body, (params, tx.init(params)), grads)
            return per_step, state

        # zeros from the start, then zeros after a real step
        return steps(stacked(zeros, zeros)), steps(stacked(nonzero, zeros, zeros))

    out = run(spec.make(), params)
    for leaf in jax.tree.leaves(out):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert np.all(np.isfinite(np.asarray(leaf, np.float32))), key
