"""The registry: every optimizer (and schedule) with sample hyperparameters and capabilities.

Tests, benchmarks, notebooks and the CLI read these tables. Capabilities are data here, so no
code anywhere branches on an optimizer's name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from .optimizers.adagrad import adagrad
from .optimizers.adam import adam, adamw
from .optimizers.rmsprop import rmsprop
from .optimizers.sgd import sgd


@dataclasses.dataclass(frozen=True)
class Spec:
    """One registry entry.

    Attributes:
      name: the public factory's name (``gradtx.<name>``).
      factory: the factory; called as ``factory(learning_rate=lr, **hparams)``.
      hparams: sample hyperparameters other than the learning rate, used by the contract suite.
      learning_rate: a learning rate that converges on the contract problems.
      steps: how many steps the contract problems get to converge.
      memoryless: the update is zero for a zero gradient (no momentum carries over), so a zero
        gradient leaves the parameters unchanged.
      convergence_tol: the loss the contract quadratic must fall below within ``steps``.
      reads_loss: ``update`` needs ``loss=`` among its extra arguments.
      invalid: hyperparameters that must raise ``HyperparameterError``: (kwargs, message part).
        A negative and a NaN learning rate are checked for every entry without being listed.
    """

    name: str
    factory: Callable[..., Any]
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 0.1
    steps: int = 200
    memoryless: bool = False
    convergence_tol: float = 1e-3
    reads_loss: bool = False
    invalid: tuple[tuple[dict[str, Any], str], ...] = ()

    def make(self, learning_rate: Any = None, **overrides: Any) -> Any:
        kwargs = {**self.hparams, **overrides}
        lr = self.learning_rate if learning_rate is None else learning_rate
        return self.factory(learning_rate=lr, **kwargs)


NEGATIVE_LR = ({"learning_rate": -1.0}, "learning_rate must be in [0, inf), got -1.0")
NAN_LR = ({"learning_rate": float("nan")}, "learning_rate must be in [0, inf), got nan")
_BAD_B1 = ({"b1": 1.5}, "b1 must be in [0, 1), got 1.5")


def _key(spec: Spec) -> str:
    if not spec.hparams:
        return spec.name
    return spec.name + "[" + ",".join(f"{k}={v}" for k, v in spec.hparams.items()) + "]"


# --- the seed optimizers (issue: core) --------------------------------------------------------
_SEED: list[Spec] = [
    Spec("sgd", sgd, {}, 0.1, 200, memoryless=True),
    Spec(
        "sgd",
        sgd,
        {"momentum": 0.9},
        0.05,
        300,
        invalid=(({"momentum": 1.5}, "momentum must be in [0, 1], got 1.5"),),
    ),
    Spec("sgd", sgd, {"momentum": 0.9, "nesterov": True}, 0.05, 300),
    Spec("sgd", sgd, {"momentum": 0.9, "dampening": 0.5}, 0.05, 300),
    Spec("sgd", sgd, {"momentum": 0.9, "momentum_form": "ema"}, 0.1, 300),
    Spec("sgd", sgd, {"weight_decay": 1e-3}, 0.1, 200, convergence_tol=1e-2),
    Spec(
        "adagrad",
        adagrad,
        {},
        0.5,
        300,
        invalid=(({"eps": -1.0}, "eps must be in [0, inf), got -1.0"),),
    ),
    Spec("adagrad", adagrad, {"lr_decay": 1e-3, "initial_accumulator_value": 0.1}, 0.5, 300),
    Spec(
        "adagrad",
        adagrad,
        {"eps_placement": "inside", "initial_accumulator_value": 0.1, "eps": 1e-7},
        0.5,
        300,
    ),
    Spec(
        "rmsprop",
        rmsprop,
        {},
        0.03,
        300,
        invalid=(({"decay": 1.5}, "decay must be in [0, 1], got 1.5"),),
    ),
    Spec("rmsprop", rmsprop, {"momentum": 0.5, "centered": True}, 0.01, 300),
    Spec(
        "rmsprop",
        rmsprop,
        {"decay": 0.9, "eps_placement": "inside"},
        0.03,
        300,
        convergence_tol=1e-2,
    ),
    Spec("adam", adam, {}, 0.05, 300, invalid=(_BAD_B1,)),
    Spec("adam", adam, {"amsgrad": True}, 0.05, 300),
    Spec("adam", adam, {"amsgrad": True, "amsgrad_max": "corrected"}, 0.1, 300),
    Spec("adam", adam, {"weight_decay": 1e-3}, 0.05, 300, convergence_tol=1e-2),
    Spec("adamw", adamw, {}, 0.05, 300, convergence_tol=1e-2, invalid=(_BAD_B1,)),
]

# --- torch.optim's catalogue (issue: catalogue) -----------------------------------------------
_TORCH_CATALOGUE: list[Spec] = []

# --- Optax's catalogue (issue: catalogue) -----------------------------------------------------
_OPTAX_CATALOGUE: list[Spec] = []

# --- modern optimizers (issue: catalogue) -----------------------------------------------------
_MODERN: list[Spec] = []

OPTIMIZERS: dict[str, Spec] = {
    _key(s): s for s in [*_SEED, *_TORCH_CATALOGUE, *_OPTAX_CATALOGUE, *_MODERN]
}
"""Registry key -> Spec. Keys name the factory and its sample options, e.g. ``adam[amsgrad=True]``."""

FACTORIES: dict[str, Callable[..., Any]] = {s.name: s.factory for s in OPTIMIZERS.values()}
"""Public optimizer name -> factory."""
