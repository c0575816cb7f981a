"""Built-in problems for sweeps and the CLI: the seed tutorials' problems and a few classics.

A problem is ``(loss_fn, params, data)`` with ``loss_fn(params, batch) -> scalar``, plus
defaults (steps, learning rate, minibatch size). ``--problem`` also takes a user's function
returning ``(loss_fn, params, data)`` (or a ``Problem``): ``module:function``,
``path/to/file.py:function`` or ``path/to/file.py`` (the function ``make_problem``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._grid import did_you_mean


@dataclasses.dataclass(frozen=True)
class Problem:
    name: str
    loss_fn: Callable[[Any, Any], Any]
    params: Any
    data: Any = None
    batch_size: int | None = None
    steps: int = 100
    learning_rate: float = 0.1
    description: str = ""
    accuracy_fn: Callable[[Any, Any], Any] | None = None
    eval_data: Any = None  # held-out data for the accuracy column (None: the training data)


# --- seed 1: d2l's quadratic with noisy gradients -------------------------------------------


def _quadratic_loss(x, noise):
    f = x[0] ** 2 + 2.0 * x[1] ** 2
    # The value is f(x); the gradient is grad f + noise (d2l's simulated stochastic gradient).
    return f + jnp.vdot(noise, x) - jax.lax.stop_gradient(jnp.vdot(noise, x))


def _quadratic_noise(step, key):
    return jax.random.normal(key, (2,), jnp.float32)


def quadratic_noise() -> Problem:
    return Problem(
        "quadratic-noise",
        _quadratic_loss,
        jnp.array([-5.0, -2.0], jnp.float32),
        _quadratic_noise,
        steps=50,
        learning_rate=0.1,
        description="f(x) = x1^2 + 2 x2^2 from (-5, -2), gradient + N(0, 1) noise (d2l 12.4)",
    )


# --- seed 2: the one-weight linear model ------------------------------------------------------


def _linear_1d_loss(w, batch):
    x, y = batch
    return jnp.mean((w * x - y) ** 2)


def linear_1d() -> Problem:
    data = (jnp.array([1.0, 2.0, 3.0]), jnp.array([2.0, 4.0, 6.0]))
    return Problem(
        "linear-1d",
        _linear_1d_loss,
        jnp.asarray(1.0, jnp.float32),
        data,
        steps=100,
        learning_rate=0.01,
        description="y_hat = w x on x = [1, 2, 3], y = [2, 4, 6], MSE, w0 = 1 (GD vs SGD seed)",
    )


# --- seed 4: the 1-D J(x) ---------------------------------------------------------------------


def _j_loss(x, batch):
    return 0.5 * (x - 1.0) ** 2 + 0.5


def j_1d() -> Problem:
    return Problem(
        "j-1d",
        _j_loss,
        jnp.asarray(-1.0, jnp.float32),
        None,
        steps=10,
        learning_rate=0.33,
        description="J(x) = 0.5 (x - 1)^2 + 0.5 from x = -1, 10 steps (learning-rate visualisation)",
    )


# --- seed 5: torch's Linear(2, 1) -------------------------------------------------------------


def _linear_2_1_loss(p, batch):
    x, y = batch
    pred = x @ p["weight"].T + p["bias"]
    return jnp.sum((pred - y) ** 2)


def linear_2_1() -> Problem:
    x = jnp.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = jnp.array([[0.0], [0.0], [1.0], [1.0]])
    # torch's default init for Linear(2, 1): U(-1/sqrt(2), 1/sqrt(2)); a fixed draw.
    bound = 1.0 / math.sqrt(2.0)
    kw, kb = jax.random.split(jax.random.PRNGKey(0))
    params = {
        "weight": jax.random.uniform(kw, (1, 2), jnp.float32, -bound, bound),
        "bias": jax.random.uniform(kb, (1,), jnp.float32, -bound, bound),
    }
    return Problem(
        "linear-2-1",
        _linear_2_1_loss,
        params,
        (x, y),
        steps=20,
        learning_rate=0.1,
        description="Linear(2, 1) on the 4 points of the torch SGD seed, summed squared error",
    )


# --- classics ---------------------------------------------------------------------------------


def _linreg_loss(p, batch):
    x, y = batch
    return jnp.mean((x @ p["w"] + p["b"] - y) ** 2)


def linear_regression(n: int = 512, d: int = 16) -> Problem:
    kx, kw, kn = jax.random.split(jax.random.PRNGKey(1), 3)
    x = jax.random.normal(kx, (n, d), jnp.float32)
    w_true = jax.random.normal(kw, (d,), jnp.float32)
    y = x @ w_true + 0.5 + 0.1 * jax.random.normal(kn, (n,), jnp.float32)
    params = {"w": jnp.zeros((d,), jnp.float32), "b": jnp.zeros((), jnp.float32)}
    return Problem(
        "linear-regression",
        _linreg_loss,
        params,
        (x, y),
        batch_size=32,
        steps=300,
        learning_rate=0.05,
        description=f"least squares, {n} x {d} Gaussian design, noise 0.1",
    )


def _rosenbrock_loss(p, batch):
    x, y = p[0], p[1]
    return (1.0 - x) ** 2 + 100.0 * (y - x**2) ** 2


def rosenbrock() -> Problem:
    return Problem(
        "rosenbrock",
        _rosenbrock_loss,
        jnp.array([-1.2, 1.0], jnp.float32),
        None,
        steps=1000,
        learning_rate=1e-3,
        description="(1 - x)^2 + 100 (y - x^2)^2 from (-1.2, 1), minimum 0 at (1, 1)",
    )


def _mlp_logits(p, x):
    h = jnp.tanh(x @ p["w1"] + p["b1"])
    return h @ p["w2"] + p["b2"]


def _mlp_loss(p, batch):
    x, y = batch
    logits = _mlp_logits(p, x)
    logp = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def _mlp_accuracy(p, batch):
    x, y = batch
    return jnp.mean(jnp.argmax(_mlp_logits(p, x), axis=1) == y)


def digits_data() -> tuple[jax.Array, jax.Array]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - optional dependency
        raise ImportError(
            "the digits-mlp problem needs scikit-learn: pip install 'gradtx[cli]'"
        ) from e
    d = load_digits()
    x = jnp.asarray(np.asarray(d.data, np.float32) / 16.0)
    y = jnp.asarray(np.asarray(d.target, np.int32))
    return x, y


def mlp_params(key: Any, sizes: tuple[int, ...] = (64, 32, 10)) -> dict[str, jax.Array]:
    k1, k2 = jax.random.split(key)
    d_in, d_h, d_out = sizes
    return {
        "w1": jax.random.normal(k1, (d_in, d_h), jnp.float32) / math.sqrt(d_in),
        "b1": jnp.zeros((d_h,), jnp.float32),
        "w2": jax.random.normal(k2, (d_h, d_out), jnp.float32) / math.sqrt(d_h),
        "b2": jnp.zeros((d_out,), jnp.float32),
    }


def digits_mlp(hidden: int = 32, batch_size: int = 128) -> Problem:
    x, y = digits_data()
    # A fixed shuffle, then 80% to train on and 20% held out for the accuracy column.
    perm = np.random.default_rng(0).permutation(x.shape[0])
    n_train = int(0.8 * x.shape[0])
    train, held = perm[:n_train], perm[n_train:]
    return Problem(
        "digits-mlp",
        _mlp_loss,
        mlp_params(jax.random.PRNGKey(0), (64, hidden, 10)),
        (x[train], y[train]),
        batch_size=batch_size,
        steps=500,
        learning_rate=1e-2,
        description=f"MLP 64-{hidden}-10 (tanh) on sklearn's digits (1437 of the 1797 8x8 "
        "images; 360 held out), cross-entropy",
        accuracy_fn=_mlp_accuracy,
        eval_data=(x[held], y[held]),
    )


PROBLEMS: dict[str, Callable[[], Problem]] = {
    "quadratic-noise": quadratic_noise,
    "linear-1d": linear_1d,
    "j-1d": j_1d,
    "linear-2-1": linear_2_1,
    "linear-regression": linear_regression,
    "digits-mlp": digits_mlp,
    "rosenbrock": rosenbrock,
}
"""Built-in problem name -> constructor."""

SEED_PROBLEMS = ("quadratic-noise", "linear-1d", "j-1d", "linear-2-1")


DEFAULT_FUNCTION = "make_problem"
"""The function ``--problem path/to/file.py`` calls when the path names no function."""

PROBLEM_FORMS = (
    "a built-in name, module:function, path/to/file.py:function or path/to/file.py "
    f"(calls {DEFAULT_FUNCTION})"
)


class ProblemError(ValueError):
    """``--problem`` names no problem: an unknown name, a missing file, module or function."""


@dataclasses.dataclass(frozen=True)
class ProblemSource:
    """A problem found but not built yet: ``load()`` calls its function (which may load data)."""

    spec: str
    function: Callable[[], Any]

    def load(self) -> Problem:
        out = self.function()
        if isinstance(out, Problem):
            return out
        if isinstance(out, dict):
            return Problem(name=self.spec, **out)
        if not isinstance(out, (tuple, list)) or len(out) not in (3, 4):
            raise ProblemError(
                f"{self.spec} must return (loss_fn, params, data), (loss_fn, params, data, "
                f"extras) or a Problem, got {type(out).__name__}"
            )
        loss_fn, params, data = out[:3]
        extra = out[3] if len(out) == 4 else {}
        return Problem(self.spec, loss_fn, params, data, **dict(extra))


def _split_spec(spec: str) -> tuple[str, str | None]:
    """``(module or path, function or None)``; a colon only splits off a Python identifier, so
    a Windows drive letter stays in the path."""
    head, sep, tail = spec.rpartition(":")
    if sep and re.fullmatch(r"[A-Za-z_]\w*", tail) and head:
        return head, tail
    return spec, None


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or os.sep in target


def _import_file(path: str, spec: str) -> Any:
    if not os.path.isfile(path):
        what = "is not a file" if os.path.exists(path) else "does not exist"
        raise ProblemError(f"{path!r} {what}; --problem takes {PROBLEM_FORMS}")
    folder = os.path.dirname(os.path.abspath(path))
    stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    name = f"_gradtx_problem_{stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ProblemError(f"cannot import {path!r} as Python source (for --problem {spec})")
    module = importlib.util.module_from_spec(module_spec)
    # As when the file runs as a script, its folder is importable (for its own helpers).
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except (ImportError, SyntaxError) as e:
        del sys.modules[name]
        raise ProblemError(f"cannot import {path!r} for --problem {spec}: {e}") from e
    return module


def resolve_problem(spec: str) -> ProblemSource:
    """Finds the problem ``spec`` names without building it (so without loading any data).

    Args:
      spec: a built-in name (``PROBLEMS``); ``module:function`` (an importable module);
        ``path/to/file.py:function``; or ``path/to/file.py``, which calls ``make_problem``. The
        function takes no arguments and returns ``(loss_fn, params, data)``, optionally with a
        4th item (a dict of ``Problem`` fields such as ``batch_size``), a dict of ``Problem``
        fields or a ``Problem``.

    Raises:
      ProblemError: an unknown name, a missing file, module or function (with suggestions).
    """
    spec = spec.strip()
    if spec in PROBLEMS:
        return ProblemSource(spec, PROBLEMS[spec])
    target, fn_name = _split_spec(spec)
    if _is_path(target):
        module = _import_file(target, spec)
        where = repr(target)
        fn_name = fn_name or DEFAULT_FUNCTION
    elif fn_name is None:
        hint = did_you_mean(spec, PROBLEMS)
        raise ProblemError(
            f"unknown problem {spec!r}{hint} (--problem takes {PROBLEM_FORMS}; built-in: "
            + ", ".join(PROBLEMS)
            + ")"
        )
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as e:
            raise ProblemError(f"cannot import {target!r} for --problem {spec}: {e}") from e
        where = f"module {target!r}"
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        names = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise ProblemError(
            f"{where} has no function {fn_name!r}{did_you_mean(fn_name, names)} "
            f"(for --problem {spec})"
        )
    return ProblemSource(spec, fn)


def load_problem(spec: str) -> Problem:
    """The problem ``spec`` names, built (see ``resolve_problem`` for the forms of ``spec``)."""
    return resolve_problem(spec).load()
