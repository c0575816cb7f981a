"""Property tests (hypothesis, derandomized) over every registry optimizer.

For random pytrees, dtypes, values (with exact zeros and a wide range of magnitudes), learning
rates and weight decays:
- finite input never gives a NaN or an infinity (updates, state, new params);
- dtypes and structures are kept (updates follow the gradients, params and state keep theirs);
- a zero gradient with zero weight decay leaves the params bit-identical (memoryless entries);
- the compiled step equals the op-by-op (``jax.disable_jit``) step to a few ulps.

Trees and dtypes come from small pools so compiled programs are shared across examples (only
values and hyperparameters, which are leaves, change between most examples).
"""

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradtx
from gradtx import registry

KEYS = sorted(registry.OPTIMIZERS)
MAX_EXAMPLES = 3
CASES = {"run": 0}

_TREES = {
    "dense": {"w": (2, 3), "b": (3,)},
    "nested": {"s": (), "block": {"w": (3,), "frozen": None}},
    "list": [(4,), (1, 2)],
}
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _build(layout, dtype, rng, scale, zero_frac):
    def make(shape):
        if shape is None:
            return None
        x = rng.standard_normal(shape) * scale
        x = np.where(rng.random(shape) < zero_frac, 0.0, x)
        return jnp.asarray(x, jnp.float32).astype(dtype)

    return jax.tree.map(make, layout, is_leaf=lambda x: x is None or isinstance(x, tuple))


@st.composite
def problems(draw):
    return {
        "tree": draw(st.sampled_from(sorted(_TREES))),
        "dtype": draw(st.sampled_from(sorted(_DTYPES))),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "scale": draw(st.sampled_from([1e-4, 1.0, 1e3])),
        "zero_frac": draw(st.sampled_from([0.0, 0.5, 1.0])),
        "lr": draw(st.floats(1e-4, 1.0)),
        "weight_decay": draw(st.sampled_from([0.0, 1e-2])),
    }


@jax.jit
def _jit_step(tx, grads, state, params, extra):
    updates, state = tx.update(grads, state, params, **extra)
    return updates, state, gradtx.apply_updates(params, updates)


def _eager_step(tx, grads, state, params, extra):
    with jax.disable_jit():
        updates, state = tx.update(grads, state, params, **extra)
        return updates, state, gradtx.apply_updates(params, updates)


def _data(x):
    """A leaf as a NumPy array (a typed PRNG key as its raw key data)."""
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    return np.asarray(x)


def _finite(tree):
    return all(np.all(np.isfinite(_data(x).astype(np.float64))) for x in jax.tree.leaves(tree))


def _sig(tree):
    return jax.tree.structure(tree), [x.dtype for x in jax.tree.leaves(tree)]


def _close(a, b):
    """Equal to a few ulps of the dtype (fusion and op order differ between the two paths)."""
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        x64, y64 = _data(x).astype(np.float64), _data(y).astype(np.float64)
        dt = _data(x).dtype
        if not jnp.issubdtype(dt, jnp.inexact):  # counts, PRNG keys: exact
            np.testing.assert_array_equal(x64, y64)
            continue
        eps = float(jnp.finfo(dt).eps)
        ulps = 2 if dt == jnp.bfloat16 else 16  # bf16: one rounding flip; f32: a few ulps
        tol = ulps * eps * max(1.0, float(np.max(np.abs(y64), initial=0.0)))
        np.testing.assert_allclose(x64, y64, rtol=ulps * eps, atol=tol)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print(f"\nproperty cases run: {CASES['run']} ({len(KEYS)} registry entries)")


@pytest.mark.parametrize("key", KEYS)
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(problem=problems())
def test_optimizer_properties(key, problem):
    CASES["run"] += 1
    spec = registry.OPTIMIZERS[key]
    dtype = _DTYPES[problem["dtype"]]
    rng = np.random.default_rng(problem["seed"])
    layout = _TREES[problem["tree"]]
    params = _build(layout, dtype, rng, 1.0, 0.0)
    grads = [_build(layout, dtype, rng, problem["scale"], problem["zero_frac"]) for _ in range(2)]
    # Factories with Optax's signature and no decay argument (amsgrad, optimistic_adam) run
    # without decay.
    takes_decay = "weight_decay" in inspect.signature(spec.factory).parameters
    decay = {"weight_decay": problem["weight_decay"]} if takes_decay else {}
    tx = spec.make(learning_rate=problem["lr"], **decay)
    # Entries that read the loss get a positive one (Polyak-type steps divide by it).
    extra = {"loss": jnp.asarray(0.5 + problem["scale"], jnp.float32)} if spec.reads_loss else {}

    state = tx.init(params)
    sig_state, sig_params = _sig(state), _sig(params)
    for g in grads:
        updates, new_state, new_params = _jit_step(tx, g, state, params, extra)
        # jit == eager (op by op), from the same inputs.
        _close((updates, new_state, new_params), _eager_step(tx, g, state, params, extra))
        # Finite in, finite out.
        assert _finite((updates, new_state, new_params)), problem
        # Structures and dtypes kept.
        assert _sig(updates) == _sig(g)
        assert _sig(new_state) == sig_state
        assert _sig(new_params) == sig_params
        state, params = new_state, new_params

    if spec.memoryless and decay.get("weight_decay", 0.0) == 0.0:
        zeros = jax.tree.map(jnp.zeros_like, params)
        _, _, same = _jit_step(tx, zeros, state, params, extra)
        for a, b in zip(jax.tree.leaves(same), jax.tree.leaves(params)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
