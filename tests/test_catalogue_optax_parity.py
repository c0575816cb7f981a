"""Optax's catalogue: gradtx matches Optax in float32 within 1e-5, option by option.

Both libraries are driven with the same gradient sequence (fixed random gradients, so both see
exactly the same inputs) for 20 steps on a small tree; each applies its own updates to its own
copy of the parameters, and the parameters are compared after every step.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import gradtx

STEPS = 20


def _params():
    k = jax.random.split(jax.random.key(0), 3)
    return {
        "w": jax.random.normal(k[0], (3, 4), jnp.float32),
        "b": jax.random.normal(k[1], (4,), jnp.float32),
        "c": jax.random.normal(k[2], (2, 3, 2), jnp.float32),
    }


def _grads():
    keys = jax.random.split(jax.random.key(1), STEPS)
    p = _params()
    return [
        jax.tree.map(
            lambda x, k=k: jax.random.normal(jax.random.fold_in(k, x.size), x.shape, x.dtype), p
        )
        for k in keys
    ]


GRADS = _grads()
LOSSES = [float(x) for x in np.linspace(3.0, 0.5, STEPS)]
MASK = {"w": True, "b": False, "c": True}
DECAY = lambda c: 0.1 * 0.9 ** jnp.asarray(c, jnp.float32)


STACKED = jax.tree.map(lambda *xs: jnp.stack(xs), *GRADS)


def _trajectory(tx, loss_name=None, negate=False):
    """Parameters after each of the STEPS updates (a scan, traced inside the caller's jit)."""
    params = _params()

    def body(carry, xs):
        p, state = carry
        g, loss = xs
        if negate:
            g = jax.tree.map(jnp.negative, g)
        extra = {loss_name: loss} if loss_name else {}
        u, state = tx.update(g, state, p, **extra)
        p = optax.apply_updates(p, u)
        return (p, state), p

    xs = (STACKED, jnp.asarray(LOSSES, jnp.float32))
    return jax.lax.scan(body, (params, tx.init(params)), xs)[1]


def _both(gtx, otx, loss_name, negate):
    """Both libraries' trajectories, in one compiled program. Optax's own code assumes standard
    dtype promotion, so its run is traced under it; gradtx's under the suite's strict promotion."""
    ours = _trajectory(gtx, loss_name)
    with jax.numpy_dtype_promotion("standard"):
        theirs = _trajectory(otx, loss_name, negate)
    return ours, theirs


def _deprecated(factory, *args, **kwargs):
    """An Optax alias that Optax deprecates (optimistic_adam), built without its warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return factory(*args, **kwargs)


# (id, gradtx transform, optax transform); a 4th element marks gradtx's maximize run (driven
# with negated gradients on the Optax side).
CASES = [
    ("lion", gradtx.lion(1e-2), optax.lion(1e-2)),
    ("lion-options", gradtx.lion(1e-2, 0.8, 0.95, weight_decay=0.1, mask=MASK),
     optax.lion(1e-2, 0.8, 0.95, weight_decay=0.1, mask=MASK)),
    ("lion-smooth", gradtx.lion(1e-2, mode="smooth", smooth_beta=2.0),
     optax.chain(optax.scale_by_lion(mode="smooth", smooth_beta=2.0),
                 optax.add_decayed_weights(1e-3), optax.scale_by_learning_rate(1e-2))),
    ("lion-refined-schedule", gradtx.lion(DECAY, mode="refined", weight_decay=0.0),
     optax.chain(optax.scale_by_lion(mode="refined"), optax.scale_by_learning_rate(DECAY))),
    ("lamb", gradtx.lamb(1e-2), optax.lamb(1e-2)),
    ("lamb-options", gradtx.lamb(1e-2, 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.1, mask=MASK),
     optax.lamb(1e-2, 0.8, 0.99, 1e-4, 1e-8, weight_decay=0.1, mask=MASK)),
    ("lars", gradtx.lars(0.5), optax.lars(0.5)),
    ("lars-options", gradtx.lars(0.5, 0.1, {"w": True, "b": True, "c": False}, 1e-2, 1e-3, MASK,
                                 0.8, True),
     optax.lars(0.5, 0.1, {"w": True, "b": True, "c": False}, 1e-2, 1e-3, MASK, 0.8, True)),
    ("lars-schedule", gradtx.lars(DECAY), optax.lars(DECAY)),
    ("adabelief", gradtx.adabelief(1e-2), optax.adabelief(1e-2)),
    ("adabelief-options", gradtx.adabelief(1e-2, 0.8, 0.99, 1e-8, 1e-10, nesterov=True),
     optax.adabelief(1e-2, 0.8, 0.99, 1e-8, 1e-10, nesterov=True)),
    ("yogi", gradtx.yogi(1e-2), optax.yogi(1e-2)),
    ("yogi-options", gradtx.yogi(DECAY, 0.8, 0.99, 1e-4), optax.yogi(DECAY, 0.8, 0.99, 1e-4)),
    ("novograd", gradtx.novograd(1e-2), optax.novograd(1e-2)),
    ("novograd-options", gradtx.novograd(1e-2, 0.8, 0.5, 1e-4, 1e-8, 0.1),
     optax.novograd(1e-2, 0.8, 0.5, 1e-4, 1e-8, 0.1)),
    ("adan", gradtx.adan(1e-2), optax.adan(1e-2)),
    ("adan-options", gradtx.adan(1e-2, 0.9, 0.8, 0.95, 1e-6, 1e-10, 0.1, MASK),
     optax.adan(1e-2, 0.9, 0.8, 0.95, 1e-6, 1e-10, 0.1, MASK)),
    ("scale_by_adan", gradtx.scale_by_adan(), optax.scale_by_adan()),
    ("scale_by_novograd", gradtx.scale_by_novograd(0.8, weight_decay=0.1),
     optax.scale_by_novograd(0.8, weight_decay=0.1)),
    ("lion-mu-dtype", gradtx.lion(1e-2, 0.8, 0.95, jnp.bfloat16),
     optax.lion(1e-2, 0.8, 0.95, jnp.bfloat16)),
    ("scale_by_lion", gradtx.scale_by_lion(0.8, 0.95, jnp.bfloat16),
     optax.scale_by_lion(0.8, 0.95, jnp.bfloat16)),
    ("adamaxw", gradtx.adamaxw(1e-2, 0.8, 0.99, 1e-6, 0.1, MASK),
     optax.adamaxw(1e-2, 0.8, 0.99, 1e-6, 0.1, MASK)),
    ("radam-options", gradtx.radam(1e-2, 0.8, 0.99, 1e-6, 1e-8, 4.0, nesterov=True),
     optax.radam(1e-2, 0.8, 0.99, 1e-6, 1e-8, 4.0, nesterov=True)),
    ("scale_by_radam", gradtx.scale_by_radam(nesterov=True), optax.scale_by_radam(nesterov=True)),
    ("optimistic_adam", gradtx.optimistic_adam(1e-2), _deprecated(optax.optimistic_adam, 1e-2)),
    ("optimistic_adam-options", gradtx.optimistic_adam(1e-2, 0.5, 0.8, 0.99, 1e-6, 1e-8,
                                                       nesterov=False),
     _deprecated(optax.optimistic_adam, 1e-2, 0.5, 0.8, 0.99, 1e-6, 1e-8, nesterov=False)),
    ("optimistic_adam_v2", gradtx.optimistic_adam_v2(DECAY, alpha=0.5, beta=2.0, b1=0.8),
     optax.optimistic_adam_v2(DECAY, alpha=0.5, beta=2.0, b1=0.8)),
    ("sign_sgd", gradtx.sign_sgd(1e-2), optax.sign_sgd(1e-2)),
    ("sign_sgd-maximize", gradtx.sign_sgd(1e-2, maximize=True), optax.sign_sgd(1e-2), True),
    ("signum", gradtx.signum(1e-2), optax.signum(1e-2)),
    ("signum-options", gradtx.signum(DECAY, 0.5), optax.signum(DECAY, 0.5)),
    ("sm3", gradtx.sm3(1e-1), optax.sm3(1e-1)),
    ("sm3-momentum", gradtx.sm3(1e-1, 0.5), optax.sm3(1e-1, 0.5)),
    ("fromage", gradtx.fromage(1e-2), optax.fromage(1e-2)),
    ("fromage-options", gradtx.fromage(0.3, 1e-2), optax.fromage(0.3, 1e-2)),
    ("fromage-schedule", gradtx.fromage(DECAY), optax.fromage(DECAY)),
    ("noisy_sgd", gradtx.noisy_sgd(1e-2, key=3), optax.noisy_sgd(1e-2, key=3)),
    ("noisy_sgd-options", gradtx.noisy_sgd(DECAY, 0.1, 0.3, key=jax.random.key(7)),
     optax.noisy_sgd(DECAY, 0.1, 0.3, key=jax.random.key(7))),
    ("optimistic", gradtx.optimistic_gradient_descent(1e-2),
     optax.optimistic_gradient_descent(1e-2)),
    ("optimistic-options", gradtx.optimistic_gradient_descent(1e-2, 0.5, 2.0),
     optax.optimistic_gradient_descent(1e-2, 0.5, 2.0)),
    ("optimistic-maximize", gradtx.optimistic_gradient_descent(1e-2, maximize=True),
     optax.optimistic_gradient_descent(1e-2), True),
]  # fmt: skip

# Modern optimizers whose conventions coincide with optax.contrib's (their main oracle is the
# NumPy transcription of the paper in test_catalogue_modern_numpy.py).
CASES += [
    ("adopt", gradtx.adopt(1e-2), optax.contrib.adopt(1e-2)),
    ("adopt-options", gradtx.adopt(1e-2, 0.8, 0.99, 1e-3, nesterov=True, use_clipping=False),
     optax.contrib.adopt(1e-2, 0.8, 0.99, 1e-3, nesterov=True, use_clipping=False)),
    ("ademamix", gradtx.ademamix(1e-2), optax.contrib.ademamix(1e-2)),
    ("ademamix-options", gradtx.ademamix(1e-2, 0.8, 0.99, 0.999, 3.0, 1e-6, 0.1,
                                         weight_decay_mask=MASK),
     optax.contrib.ademamix(1e-2, 0.8, 0.99, 0.999, 3.0, 1e-6, weight_decay=0.1, mask=MASK)),
    # Optax's prodigy always bias-corrects; its d * eps term uses d_{k+1} (gradtx: the paper's
    # d_k), a difference far below float32 resolution here.
    ("prodigy-bias-correction", gradtx.prodigy(1.0, bias_correction=True),
     optax.contrib.prodigy(1.0)),
    ("prodigy-options", gradtx.prodigy(0.5, 0.8, 0.99, weight_decay=0.1, d0=1e-3,
                                       bias_correction=True, safeguard_warmup=True),
     optax.contrib.prodigy(0.5, (0.8, 0.99), estim_lr0=1e-3, weight_decay=0.1,
                           safeguard_warmup=True)),
    # With a constant rate both average with weights lr^2 and step z the same way.
    ("schedule_free_sgd-constant", gradtx.schedule_free_sgd(0.1, 0.8),
     optax.contrib.schedule_free_sgd(0.1, b1=0.8)),
]  # fmt: skip

# Weight decay where Optax's alias has none: gradtx's coupled L2 == Optax's decay placed first.
L2_CASES = [
    ("adabelief-l2", gradtx.adabelief(1e-2, weight_decay=0.1, weight_decay_mask=MASK),
     optax.chain(optax.add_decayed_weights(0.1, MASK), optax.adabelief(1e-2))),
    ("yogi-l2", gradtx.yogi(1e-2, weight_decay=0.1),
     optax.chain(optax.add_decayed_weights(0.1), optax.yogi(1e-2))),
    ("yogi-decoupled", gradtx.yogi(1e-2, weight_decay=0.1, decoupled_weight_decay=True),
     optax.chain(optax.scale_by_yogi(), optax.add_decayed_weights(0.1),
                 optax.scale_by_learning_rate(1e-2))),
    ("signum-l2", gradtx.signum(1e-2, weight_decay=0.1),
     optax.chain(optax.add_decayed_weights(0.1), optax.signum(1e-2))),
    ("sm3-l2", gradtx.sm3(1e-1, weight_decay=0.1),
     optax.chain(optax.add_decayed_weights(0.1), optax.sm3(1e-1))),
]  # fmt: skip


def _compare(gtx, otx, loss_name=None, negate=False):
    ours, theirs = jax.jit(lambda: _both(gtx, otx, loss_name, negate))()
    for k in ours:
        for step in range(STEPS):
            np.testing.assert_allclose(
                ours[k][step], theirs[k][step], rtol=1e-5, atol=1e-5,
                err_msg=f"step {step + 1}, leaf {k}",
            )  # fmt: skip


@pytest.mark.parametrize("case", CASES + L2_CASES, ids=[c[0] for c in CASES + L2_CASES])
def test_matches_optax(case):
    _compare(case[1], case[2], negate=len(case) > 3)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_learning_rate": 0.05, "f_min": 0.2, "eps": 1e-3}, {"variant": "sps+", "f_min": 2.0}],
    ids=["default", "options", "sps+"],
)
def test_polyak_sgd_matches_optax(kwargs):
    _compare(
        gradtx.polyak_sgd(scaling=0.5, **kwargs),
        optax.polyak_sgd(scaling=0.5, **kwargs),
        loss_name="value",
    )


def test_polyak_sgd_needs_the_loss():
    tx = gradtx.polyak_sgd()
    p = _params()
    with pytest.raises(TypeError, match="value="):
        tx.update(GRADS[0], tx.init(p), p)


def test_noisy_sgd_key_kinds_agree():
    p = _params()

    def first_update(key):
        tx = gradtx.noisy_sgd(1.0, eta=1.0, gamma=0.0, key=key)
        return tx.update(GRADS[0], tx.init(p), p)[0]

    a = first_update(5)
    b = first_update(jax.random.PRNGKey(5))
    d = first_update(6)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
        assert not np.allclose(a[k], d[k])


def test_sm3_accepts_scalar_leaves():
    tx = gradtx.sm3(0.1)
    p = {"s": jnp.float32(2.0), "v": jnp.ones(3, jnp.float32)}
    s = tx.init(p)
    u, s = tx.update({"s": jnp.float32(1.0), "v": jnp.ones(3, jnp.float32)}, s, p)
    # One full accumulator below 2-D: the first step is -lr * (1 - momentum) * g / |g|.
    np.testing.assert_allclose(u["s"], -0.1 * 0.1, rtol=1e-5)
