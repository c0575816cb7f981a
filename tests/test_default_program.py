"""On the user's own params tree, gradtx compiles the program Optax compiles.

The default path (``tx.update`` + ``apply_updates`` in the user's donated ``jax.jit``) adds
nothing to Optax's step where the two compose the same chain: not a step count that no schedule
reads, not a cast, not a copy. The check counts every HLO instruction of the optimized module
(fused computations included) by opcode.
"""

import collections
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

PARAMS = {"w": jnp.ones((64, 32)), "b": jnp.zeros((32,)), "s": jnp.ones(())}
GRADS = jax.tree.map(lambda x: 0.1 * x + 0.01, PARAMS)

#: Factories whose chain is Optax's, with the default arguments and with a decay.
SAME_CHAIN = [
    ("adam", {}),
    ("adam", {"b1": 0.8, "eps": 1e-6}),
    ("adamw", {}),
    ("adamw", {"weight_decay": 0.1}),
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True}),
    ("rmsprop", {}),
    ("rmsprop", {"momentum": 0.9}),
    ("adadelta", {}),
    ("adagrad", {}),
    ("adamax", {}),
    ("adamaxw", {}),
    ("adabelief", {}),
    ("amsgrad", {}),
    ("sign_sgd", {}),
]

_OPCODE = re.compile(r" = .*? ([a-z][a-z0-9-]*)\(")


def _opcodes(tx):
    def step(p, s, g):
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s

    lowered = jax.jit(step, donate_argnums=(0, 1)).lower(PARAMS, tx.init(PARAMS), GRADS)
    text = lowered.compile().as_text()
    return collections.Counter(_OPCODE.findall(text))


@pytest.mark.parametrize("name, kwargs", SAME_CHAIN, ids=[f"{n}{sorted(k)}" for n, k in SAME_CHAIN])
def test_default_step_compiles_optaxs_program(name, kwargs):
    ours = _opcodes(getattr(gradtx, name)(1e-3, **kwargs))
    with jax.numpy_dtype_promotion("standard"):  # Optax mixes int32 counts and floats
        theirs = _opcodes(getattr(optax, name)(1e-3, **kwargs))
    assert theirs["fusion"] > 0  # the pattern reads this module's instructions
    diff = {k: (ours[k], theirs[k]) for k in ours.keys() | theirs.keys() if ours[k] != theirs[k]}
    assert not diff, f"gradtx.{name}: opcodes (gradtx, optax) that differ: {diff}"


def test_constant_learning_rate_keeps_no_count_a_schedule_does():
    """As in Optax: a value scales with no state, a schedule keeps the step count it reads."""
    ours, theirs = gradtx.adam(1e-3).init(PARAMS), optax.adam(1e-3).init(PARAMS)
    assert ours[1] == gradtx.EmptyState() and theirs[1] == optax.EmptyState()
    sched = gradtx.adamw(gradtx.cosine_decay_schedule(1e-3, 10), weight_decay=0.1)
    state = sched.init(PARAMS)
    assert [type(s).__name__ for s in state] == ["AdamState", "EmptyState", "CountState"]
    decay = gradtx.adamw(1e-3, weight_decay=gradtx.linear_schedule(0.1, 0.0, 10))
    assert [type(s).__name__ for s in decay.init(PARAMS)] == [
        "AdamState",
        "CountState",
        "EmptyState",
    ]
    for _ in range(3):
        _, state = sched.update(GRADS, state, PARAMS)
    assert int(state[2].count) == 3
    used = gradtx.current_hyperparams(sched, state)["learning_rate"]
    assert float(used) == pytest.approx(float(gradtx.cosine_decay_schedule(1e-3, 10)(2)))


def test_a_schedule_put_into_a_state_without_a_count_says_so():
    tx = gradtx.adam(1e-3)
    state = tx.init(PARAMS)
    scheduled = gradtx.tree_set(tx, learning_rate=gradtx.cosine_decay_schedule(1e-3, 10))
    with pytest.raises(
        ValueError, match=r"does not match this optimizer's init\(params\) at \[1\]\.count"
    ):
        scheduled.update(GRADS, state, PARAMS)
    scheduled.update(GRADS, scheduled.init(PARAMS), PARAMS)  # a fresh state has its count


def test_momentum_keeps_a_count_only_where_something_reads_it():
    """Optax's trace state has no count; gradtx's buffer keeps one for a schedule, a dampening
    (torch's first step copies the gradient) or a debiased moving average."""
    plain = gradtx.sgd(0.1, momentum=0.9).init(PARAMS)[0]
    assert plain.count is None and jax.tree.structure(plain.trace) == jax.tree.structure(PARAMS)
    scheduled = gradtx.sgd(0.1, momentum=gradtx.linear_schedule(0.5, 0.9, 10))
    torch_like = gradtx.sgd(0.1, momentum=0.9, dampening=0.5)
    for tx in (scheduled, torch_like, gradtx.ema(0.9)):
        state = tx.init(PARAMS)
        first = state[0] if isinstance(state, tuple) and not hasattr(state, "_fields") else state
        assert int(first.count) == 0, tx
    # torch's buffer starts at the gradient itself, not at (1 - dampening) * g.
    u, s = torch_like.update(GRADS, torch_like.init(PARAMS), PARAMS)
    np.testing.assert_allclose(np.asarray(u["w"]), -0.1 * np.asarray(GRADS["w"]), rtol=1e-6)
    u, s = torch_like.update(GRADS, s, PARAMS)
    want = -0.1 * (0.9 + 0.5) * np.asarray(GRADS["w"])
    np.testing.assert_allclose(np.asarray(u["w"]), want, rtol=1e-6)
    assert int(s[0].count) == 2


def test_adagrad_keeps_a_count_only_for_an_lr_decay():
    """Optax's Adagrad state is the sum of squares alone; torch's lr_decay reads the step."""
    plain = gradtx.adagrad(0.1).init(PARAMS)[0]
    assert plain.count is None
    assert gradtx.scale_by_rss().init(PARAMS).count is None
    decayed = gradtx.adagrad(0.1, lr_decay=0.5)
    torch_like = gradtx.torch.adagrad(0.1)
    for tx in (decayed, torch_like):
        assert int(tx.init(PARAMS)[0].count) == 0, tx
    # With the decay, the second step divides by 1 + (t - 1) * lr_decay = 1.5; without, by 1.
    g = np.asarray(GRADS["w"], np.float64)
    s = 0.1 + g**2
    for tx, div in ((gradtx.adagrad(0.1), 1.0), (decayed, 1.5)):
        state = tx.init(PARAMS)
        _, state = tx.update(GRADS, state, PARAMS)
        u, state = tx.update(GRADS, state, PARAMS)
        want = -0.1 * g / np.sqrt(s + g**2 + 1e-7) / div
        np.testing.assert_allclose(np.asarray(u["w"]), want, rtol=1e-5)
