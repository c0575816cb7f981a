"""``gradtx.torch``'s optimizers: torch 2.13's signatures, checks, complex numbers and schedules.

The trajectories of the real-valued options are checked against torch's in
test_torch_parity.py and test_catalogue_torch_parity.py; here:

- each factory's arguments against torch.optim 2.13's constructor (written out below, from
  ``inspect.signature(torch.optim.X.__init__)``, less ``self`` and ``params``);
- complex parameters against torch's own complex trajectories (tests/fixtures/torch_complex.npz,
  from tests/torch_cases/complex.py), in complex128 within 1e-10;
- the errors of invalid arguments, torch's implementation switches, and hyperparameters given
  as schedules against NumPy loops of the documented formulas (float64, 1e-12).

torch is not imported.
"""

from __future__ import annotations

import inspect
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gradtx

from .torch_cases import complex as complex_cases

# torch 2.13.0: (positional-or-keyword (name, default), keyword-only (name, default))
TORCH_SIGNATURES = {
    "sgd": (
        [("lr", 0.001), ("momentum", 0), ("dampening", 0), ("weight_decay", 0),
         ("nesterov", False)],
        [("maximize", False), ("foreach", None), ("differentiable", False), ("fused", None)],
    ),
    "adam": (
        [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
         ("amsgrad", False)],
        [("foreach", None), ("maximize", False), ("capturable", False),
         ("differentiable", False), ("fused", None), ("decoupled_weight_decay", False)],
    ),
    "adamw": (
        [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0.01),
         ("amsgrad", False)],
        [("maximize", False), ("foreach", None), ("capturable", False),
         ("differentiable", False), ("fused", None)],
    ),
    "adagrad": (
        [("lr", 0.01), ("lr_decay", 0), ("weight_decay", 0), ("initial_accumulator_value", 0),
         ("eps", 1e-10), ("foreach", None)],
        [("maximize", False), ("differentiable", False), ("fused", None)],
    ),
    "adadelta": (
        [("lr", 1.0), ("rho", 0.9), ("eps", 1e-06), ("weight_decay", 0), ("foreach", None)],
        [("capturable", False), ("maximize", False), ("differentiable", False)],
    ),
    "adamax": (
        [("lr", 0.002), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
         ("foreach", None)],
        [("maximize", False), ("differentiable", False), ("capturable", False)],
    ),
    "asgd": (
        [("lr", 0.01), ("lambd", 0.0001), ("alpha", 0.75), ("t0", 1000000.0),
         ("weight_decay", 0), ("foreach", None), ("maximize", False), ("differentiable", False),
         ("capturable", False)],
        [],
    ),
    "nadam": (
        [("lr", 0.002), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
         ("momentum_decay", 0.004), ("decoupled_weight_decay", False)],
        [("foreach", None), ("maximize", False), ("capturable", False),
         ("differentiable", False)],
    ),
    "radam": (
        [("lr", 0.001), ("betas", (0.9, 0.999)), ("eps", 1e-08), ("weight_decay", 0),
         ("decoupled_weight_decay", False)],
        [("foreach", None), ("maximize", False), ("capturable", False),
         ("differentiable", False)],
    ),
    "rmsprop": (
        [("lr", 0.01), ("alpha", 0.99), ("eps", 1e-08), ("weight_decay", 0), ("momentum", 0),
         ("centered", False), ("capturable", False), ("foreach", None), ("maximize", False),
         ("differentiable", False)],
        [],
    ),
    "rprop": (
        [("lr", 0.01), ("etas", (0.5, 1.2)), ("step_sizes", (1e-06, 50))],
        [("capturable", False), ("foreach", None), ("maximize", False),
         ("differentiable", False)],
    ),
    "adafactor": (
        [("lr", 0.01), ("beta2_decay", -0.8), ("eps", (None, 0.001)), ("d", 1.0),
         ("weight_decay", 0.0)],
        [("foreach", None), ("maximize", False)],
    ),
    "muon": (
        [("lr", 0.001), ("weight_decay", 0.1), ("momentum", 0.95), ("nesterov", True),
         ("ns_coefficients", (3.4445, -4.775, 2.0315)), ("eps", 1e-07), ("ns_steps", 5),
         ("adjust_lr_fn", None)],
        [],
    ),
}  # fmt: skip
POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD = inspect.Parameter.KEYWORD_ONLY


def test_every_torch_optimizer_is_there():
    assert set(TORCH_SIGNATURES) <= set(dir(gradtx.torch))


@pytest.mark.parametrize("name", sorted(TORCH_SIGNATURES))
def test_signature_is_torchs(name):
    """torch's arguments in torch's order, kinds and defaults; gradtx's extras keyword-only after."""
    positional, keyword = TORCH_SIGNATURES[name]
    params = list(inspect.signature(getattr(gradtx.torch, name)).parameters.values())
    want = [(n, d, POSITIONAL) for n, d in positional] + [(n, d, KEYWORD) for n, d in keyword]
    got = [(p.name, p.default, p.kind) for p in params[: len(want)]]
    assert [g[0] for g in got] == [w[0] for w in want]
    for (n, d, kind), (_, gd, gkind) in zip(want, got):
        assert gkind == kind, (name, n, gkind)
        assert type(gd) is type(d) and gd == d, (name, n, gd, d)
    for p in params[len(want) :]:
        assert p.kind == KEYWORD and p.default is not inspect.Parameter.empty, (name, p.name)


# ---------------------------------------------------------------------------------------------
# Complex parameters: torch's real view

COMPLEX = dict(np.load(pathlib.Path(__file__).parent / "fixtures" / "torch_complex.npz"))


@pytest.mark.parametrize("case", list(complex_cases.CASES))
def test_complex_parameters_match_torch(case, x64):
    cls, kwargs = complex_cases.CASES[case]
    tx = getattr(gradtx.torch, cls.lower())(**kwargs)
    leaves = complex_cases.LEAVES
    p = {n: jnp.asarray(COMPLEX[f"inputs/p0/{n}"]) for n in leaves}
    c, tgt, noise = (
        {n: jnp.asarray(COMPLEX[f"inputs/{k}/{n}"]) for n in leaves}
        for k in ("c", "target", "noise")
    )

    def body(carry, nz):
        p, s = carry
        g = jax.tree.map(lambda pi, ci, ti, ni: ci.astype(pi.dtype) * (pi - ti) + ni, p, c, tgt, nz)
        u, s = tx.update(g, s, p)
        p = gradtx.apply_updates(p, u)
        return (p, s), p

    _, traj = jax.lax.scan(body, (p, tx.init(p)), noise)
    assert traj["z"].dtype == jnp.complex128
    for n in leaves:
        np.testing.assert_allclose(
            np.asarray(traj[n]), COMPLEX[f"{case}/{n}"], rtol=1e-10, atol=1e-10, err_msg=n
        )


# ---------------------------------------------------------------------------------------------
# Argument checks


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: gradtx.torch.sgd(lr=-1.0), "gradtx.torch.sgd: lr must be in [0, inf), got -1.0"),
        (lambda: gradtx.torch.sgd(0.1, momentum=1.5), "momentum must be in [0, 1], got 1.5"),
        (
            lambda: gradtx.torch.sgd(0.1, nesterov=True),
            "gradtx.torch.sgd: nesterov=True needs momentum > 0 and dampening == 0",
        ),
        (
            lambda: gradtx.torch.sgd(0.1, 0.9, dampening=0.5, nesterov=True),
            "nesterov=True needs momentum > 0 and dampening == 0",
        ),
        (
            lambda: gradtx.torch.adam(betas=(1.5, 0.999)),
            "gradtx.torch.adam: betas[0] must be in [0, 1), got 1.5",
        ),
        (
            lambda: gradtx.torch.adamw(betas=(0.9, -0.1)),
            "gradtx.torch.adamw: betas[1] must be in [0, 1), got -0.1",
        ),
        (
            lambda: gradtx.torch.adam(betas=0.9),
            "gradtx.torch.adam: betas must be a tuple of 2 values, got 0.9",
        ),
        (
            lambda: gradtx.torch.adam(weight_decay=-0.1),
            "gradtx.torch.adam: weight_decay must be in [0, inf), got -0.1",
        ),
        (lambda: gradtx.torch.adam(eps=float("nan")), "gradtx.torch.adam: eps must be in"),
        (
            lambda: gradtx.torch.adagrad(lr_decay=-1.0),
            "gradtx.torch.adagrad: lr_decay must be in [0, inf), got -1.0",
        ),
        (
            lambda: gradtx.torch.rmsprop(alpha=1.5),
            "gradtx.torch.rmsprop: alpha must be in [0, 1], got 1.5",
        ),
        (
            lambda: gradtx.torch.adadelta(rho=-0.5),
            "gradtx.torch.adadelta: rho must be in [0, 1], got -0.5",
        ),
        (
            lambda: gradtx.torch.nadam(momentum_decay=-1.0),
            "gradtx.torch.nadam: momentum_decay must be in [0, inf), got -1.0",
        ),
        (
            lambda: gradtx.torch.asgd(lambd=-1.0),
            "gradtx.torch.asgd: lambd must be in [0, inf), got -1.0",
        ),
        (
            lambda: gradtx.torch.rprop(etas=(1.5, 1.2)),
            "gradtx.torch.rprop: etas[0] must be in (0, 1), got 1.5",
        ),
        (
            lambda: gradtx.torch.rprop(etas=(0.5, 0.9)),
            "gradtx.torch.rprop: etas[1] must be in (1, inf), got 0.9",
        ),
        (
            lambda: gradtx.torch.rprop(step_sizes=(1e-6,)),
            "gradtx.torch.rprop: step_sizes must be a tuple of 2 values",
        ),
        (
            lambda: gradtx.torch.adafactor(d=0.0),
            "gradtx.torch.adafactor: d must be in (0, inf), got 0.0",
        ),
        (
            lambda: gradtx.torch.adafactor(eps=(-1.0, 1e-3)),
            "gradtx.torch.adafactor: eps[0] must be in [0, inf), got -1.0",
        ),
        (
            lambda: gradtx.torch.adafactor(beta2_decay=0.5),
            "gradtx.torch.adafactor: beta2_decay must be in (-inf, 0], got 0.5",
        ),
        (
            lambda: gradtx.torch.muon(momentum=1.0),
            "gradtx.torch.muon: momentum must be in [0, 1), got 1.0",
        ),
        (
            lambda: gradtx.torch.muon(adjust_lr_fn="spectral"),
            "gradtx.torch.muon: adjust_lr_fn must be one of None, 'original', 'match_rms_adamw'",
        ),
        (
            lambda: gradtx.torch.muon(ns_coefficients=(3.4, -4.7)),
            "gradtx.torch.muon: ns_coefficients must be a tuple of 3 values",
        ),
        (
            lambda: gradtx.torch.adam(foreach="yes"),
            "gradtx.torch.adam: foreach must be None, True or False, got 'yes'",
        ),
        (
            lambda: gradtx.torch.rmsprop(capturable=None),
            "gradtx.torch.rmsprop: capturable must be True or False, got None",
        ),
        (
            lambda: gradtx.torch.sgd(foreach=True, fused=True),
            "gradtx.torch.sgd: foreach and fused cannot both be True",
        ),
        (
            lambda: gradtx.torch.adam(amsgrad=1),
            "gradtx.torch.adam: amsgrad must be True or False, got 1",
        ),
    ],
)
def test_invalid_arguments_raise_naming_torchs_argument(make, message):
    with pytest.raises(gradtx.HyperparameterError) as err:
        make()
    assert message in str(err.value)


FLAGS = {"foreach": True, "fused": False, "capturable": True, "differentiable": True}


@pytest.mark.parametrize("name", sorted(TORCH_SIGNATURES))
def test_implementation_switches_change_no_number(name, x64):
    factory = getattr(gradtx.torch, name)
    names = inspect.signature(factory).parameters
    flags = {k: v for k, v in FLAGS.items() if k in names}
    p = {"w": jnp.asarray(np.linspace(-1.0, 1.0, 6).reshape(2, 3))}
    g = {"w": jnp.asarray(np.linspace(0.5, -0.3, 6).reshape(2, 3))}
    plain, switched = factory(lr=0.01), factory(lr=0.01, **flags)
    u1, _ = plain.update(g, plain.init(p), p)
    u2, _ = switched.update(g, switched.init(p), p)
    np.testing.assert_array_equal(u1["w"], u2["w"])


# ---------------------------------------------------------------------------------------------
# Hyperparameters as schedules (beyond the learning rate), against NumPy loops

STEPS = 12
GRADS = np.random.default_rng(7).normal(size=(STEPS, 4))
P0 = np.array([0.5, -1.0, 2.0, 0.1])


def _run(tx):
    p = jnp.asarray(P0)
    s = tx.init(p)
    out = []
    for g in GRADS:
        u, s = tx.update(jnp.asarray(g), s, p)
        p = gradtx.apply_updates(p, u)
        out.append(np.asarray(p))
    return np.array(out)


def _f64(k):
    return jnp.asarray(k, jnp.float64)


def _b1(k):
    return 0.9 - 0.4 * 0.8**k


def _eps(k):
    return 1e-3 if k < 5 else 1e-1


def test_adam_with_scheduled_betas_and_eps(x64):
    b1s = lambda k: 0.9 - 0.4 * 0.8 ** _f64(k)
    eps_s = lambda k: jnp.where(k < 5, 1e-3, 1e-1)
    got = _run(gradtx.torch.adam(0.05, betas=(b1s, 0.99), eps=eps_s, weight_decay=0.1))
    p, m, v, want = P0.copy(), np.zeros(4), np.zeros(4), []
    for k, g in enumerate(GRADS):
        b1, t = _b1(k), k + 1
        g = g + 0.1 * p
        m = b1 * m + (1 - b1) * g
        v = 0.99 * v + 0.01 * g * g
        # torch's bias correction reads the current beta: 1 - b1^t with this step's b1
        p = p - 0.05 * (m / (1 - b1**t)) / (np.sqrt(v / (1 - 0.99**t)) + _eps(k))
        want.append(p.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)


def test_rmsprop_adagrad_and_sgd_with_scheduled_hyperparameters(x64):
    alpha = lambda k: jnp.where(k >= 3, 0.99, 0.9)
    mom = lambda k: jnp.minimum(0.1 * _f64(k), 0.5)
    got = _run(gradtx.torch.rmsprop(0.01, alpha=alpha, momentum=mom, eps=lambda k: 1e-3))
    p, v, b, want = P0.copy(), np.zeros(4), np.zeros(4), []
    for k, g in enumerate(GRADS):
        a = 0.99 if k >= 3 else 0.9
        v = a * v + (1 - a) * g * g
        b = min(0.1 * k, 0.5) * b + g / (np.sqrt(v) + 1e-3)
        p = p - 0.01 * b
        want.append(p.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)

    got = _run(gradtx.torch.adagrad(0.1, lr_decay=lambda k: 0.01 * _f64(k), eps=1e-10))
    p, s, want = P0.copy(), np.zeros(4), []
    for k, g in enumerate(GRADS):
        s = s + g * g
        p = p - 0.1 / (1 + k * 0.01 * k) * g / (np.sqrt(s) + 1e-10)
        want.append(p.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)

    got = _run(gradtx.torch.sgd(0.1, momentum=0.9, dampening=lambda k: 0.5 * _f64(k % 2)))
    p, b, want = P0.copy(), None, []
    for k, g in enumerate(GRADS):
        b = g.copy() if b is None else 0.9 * b + (1 - 0.5 * (k % 2)) * g
        p = p - 0.1 * b
        want.append(p.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)


def test_a_schedule_keeps_the_state_and_capabilities(x64):
    tx = gradtx.torch.adam(0.05, eps=lambda k: 1e-8)
    plain = gradtx.torch.adam(0.05)
    p = jnp.asarray(P0)
    assert jax.tree.structure(tx.init(p)) == jax.tree.structure(plain.init(p))
    assert tx.is_elementwise() and plain.is_elementwise()
    np.testing.assert_array_equal(_run(tx), _run(plain))


def test_momentum_zero_is_torchs_off_switch(x64):
    """A literal 0 keeps no buffer; an array 0 keeps one whose step is the plain gradient."""
    plain = _run(gradtx.torch.sgd(0.1))
    np.testing.assert_array_equal(_run(gradtx.torch.sgd(0.1, 0, dampening=0.5)), plain)
    np.testing.assert_allclose(
        _run(gradtx.torch.sgd(0.1, jnp.asarray(0.0), dampening=0.5)), plain, rtol=0, atol=1e-15
    )
    no_buffer = gradtx.torch.rmsprop(0.01).init(jnp.asarray(P0))
    assert no_buffer[0].momentum_buffer is None


def test_seed_tutorial_momentum_is_a_keyword(x64):
    """SEEDS.md 3: b = m b + (1 - m) g from zero, decrement = lr * b."""
    got = _run(gradtx.torch.sgd(0.1, momentum=0.9, momentum_form="ema"))
    p, b, want = P0.copy(), np.zeros(4), []
    for g in GRADS:
        b = 0.9 * b + 0.1 * g
        p = p - 0.1 * b
        want.append(p.copy())
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)
