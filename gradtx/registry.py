"""The registry: every optimizer (and schedule) with sample hyperparameters and capabilities.

Tests, benchmarks, notebooks and the CLI read these tables. Capabilities are data here, so no
code anywhere branches on an optimizer's name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from .optimizers.adagrad import adagrad
from .optimizers.adam import adam, adamw
from .optimizers.amsgrad import amsgrad
from .optimizers.rmsprop import rmsprop
from .optimizers.sgd import sgd


@dataclasses.dataclass(frozen=True)
class Spec:
    """One registry entry.

    Attributes:
      name: the public factory's name (``gradtx.<name>``).
      factory: the factory; called as ``factory(<lr_arg>=lr, **hparams)``.
      hparams: sample hyperparameters other than the learning rate, used by the contract suite.
      learning_rate: a learning rate that converges on the contract problems.
      steps: how many steps the contract problems get to converge.
      memoryless: the update is zero for a zero gradient (no momentum carries over), so a zero
        gradient leaves the parameters unchanged.
      convergence_tol: the loss the contract quadratic must fall below within ``steps``.
      reads_loss: ``update`` needs the loss among its extra arguments (``value=``, Optax's name;
        ``loss=`` is accepted too).
      random: ``update`` draws noise from a PRNG key held in the state (reproducible per key).
      inert_steps: how many first updates leave the params unchanged by design (ADOPT's first
        update only initializes its second moment).
      invalid: hyperparameters that must raise ``HyperparameterError``: (kwargs, message part).
        A negative and a NaN learning rate are checked for every entry without being listed.
      lr_arg: the factory's learning-rate argument (``learning_rate``; Optax names polyak_sgd's
        ``scaling``).
      elementwise: each output element depends only on the same element of the gradient, state
        and params (no per-leaf norms or shapes), so packed buffers give the same updates. Read
        from the classes of the transform the entry builds (``Transform.is_elementwise``), never
        set by hand.
      stack_aware: not elementwise, but runs leaf by leaf on stacked buffers (their leading
        axis indexes the stacked leaves; ``gradtx.pack`` stacks equal-shaped leaves for it) and
        gives the tree's numbers there. Read from the classes (``Transform.is_stackable``).
    """

    name: str
    factory: Callable[..., Any]
    hparams: dict[str, Any] = dataclasses.field(default_factory=dict)
    learning_rate: float = 0.1
    steps: int = 200
    memoryless: bool = False
    convergence_tol: float = 1e-3
    reads_loss: bool = False
    random: bool = False
    inert_steps: int = 0
    invalid: tuple[tuple[dict[str, Any], str], ...] = ()
    lr_arg: str = "learning_rate"

    def make(self, learning_rate: Any = None, **overrides: Any) -> Any:
        kwargs = {**self.hparams, **overrides}
        lr = self.learning_rate if learning_rate is None else learning_rate
        return self.factory(**{self.lr_arg: lr}, **kwargs)

    # Read from the classes on first use (building a transform makes JAX arrays, which must not
    # happen at import: the user may still configure JAX after ``import gradtx``).
    @functools.cached_property
    def elementwise(self) -> bool:
        return self.make().is_elementwise()

    @functools.cached_property
    def stack_aware(self) -> bool:
        tx = self.make()
        return not tx.is_elementwise() and tx.is_stackable()


NEGATIVE_LR = ({"learning_rate": -1.0}, "learning_rate must be in [0, inf), got -1.0")
NAN_LR = ({"learning_rate": float("nan")}, "learning_rate must be in [0, inf), got nan")
_BAD_B1 = ({"b1": 1.5}, "b1 must be in [0, 1), got 1.5")


def _key(spec: Spec) -> str:
    if not spec.hparams:
        return spec.name
    return spec.name + "[" + ",".join(f"{k}={v}" for k, v in spec.hparams.items()) + "]"


# --- the seed optimizers
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
        {"eps_placement": "outside", "initial_accumulator_value": 0.0, "eps": 1e-10},
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
        {"decay": 0.99, "eps_in_sqrt": False},
        0.03,
        300,
        convergence_tol=1e-2,
    ),
    Spec("adam", adam, {}, 0.05, 300, invalid=(_BAD_B1,)),
    Spec("adam", adam, {"amsgrad": True}, 0.05, 300),
    Spec("adam", adam, {"amsgrad": True, "amsgrad_max": "corrected"}, 0.1, 300),
    Spec("adam", adam, {"weight_decay": 1e-3}, 0.05, 300, convergence_tol=1e-2),
    Spec("adamw", adamw, {}, 0.05, 300, convergence_tol=1e-2, invalid=(_BAD_B1,)),
    Spec("adam", adam, {"nesterov": True}, 0.05, 300),
    Spec("amsgrad", amsgrad, {}, 0.1, 300, invalid=(_BAD_B1,)),
    Spec("amsgrad", amsgrad, {"bias_correction_mu": False, "bias_correction_nu": False}, 0.05, 300),
]

# --- torch.optim's catalogue
from .optimizers.adadelta import adadelta  # noqa: E402
from .optimizers.adafactor import adafactor  # noqa: E402
from .optimizers.adamax import adamax, adamaxw  # noqa: E402
from .optimizers.asgd import asgd  # noqa: E402
from .optimizers.muon import muon  # noqa: E402
from .optimizers.nadam import nadam, nadamw  # noqa: E402
from .optimizers.radam import radam  # noqa: E402
from .optimizers.rprop import rprop  # noqa: E402

_TORCH_CATALOGUE: list[Spec] = [
    Spec(
        "adadelta",
        adadelta,
        {},
        4.0,
        500,
        convergence_tol=1e-2,
        invalid=(
            ({"rho": 1.5}, "rho must be in [0, 1], got 1.5"),
            ({"eps": -1.0}, "eps must be in [0, inf), got -1.0"),
        ),
    ),
    Spec("adadelta", adadelta, {"weight_decay": 1e-3}, 4.0, 500, convergence_tol=1e-2),
    Spec("adamax", adamax, {}, 0.1, 300, invalid=(_BAD_B1,)),
    Spec(
        "adamax",
        adamax,
        {"weight_decay": 1e-2, "decoupled_weight_decay": True},
        0.1,
        300,
        convergence_tol=1e-2,
    ),
    Spec("adamaxw", adamaxw, {}, 0.1, 300, convergence_tol=1e-2, invalid=(_BAD_B1,)),
    Spec("nadam", nadam, {}, 0.1, 300, invalid=(_BAD_B1,)),
    Spec("nadamw", nadamw, {}, 0.1, 300, convergence_tol=1e-2, invalid=(_BAD_B1,)),
    Spec(
        "nadam",
        nadam,
        {"weight_decay": 1e-3, "decoupled_weight_decay": True},
        0.1,
        300,
        convergence_tol=1e-2,
    ),
    Spec(
        "radam",
        radam,
        {},
        0.1,
        300,
        invalid=(
            _BAD_B1,
            ({"eps_placement": "inside"}, "eps_placement must be one of 'raw', 'corrected'"),
        ),
    ),
    Spec("radam", radam, {"threshold_inclusive": False, "eps_placement": "raw"}, 0.1, 300),
    Spec("radam", radam, {"nesterov": True}, 0.1, 300),
    Spec(
        "radam",
        radam,
        {"weight_decay": 1e-3, "decoupled_weight_decay": True},
        0.1,
        300,
        convergence_tol=1e-2,
    ),
    Spec(
        "rprop",
        rprop,
        {},
        0.01,
        200,
        memoryless=True,
        invalid=(
            ({"eta_plus": 0.5}, "eta_plus must be in (1, inf), got 0.5"),
            ({"eta_minus": 1.5}, "eta_minus must be in (0, 1), got 1.5"),
        ),
    ),
    Spec(
        "rprop",
        rprop,
        {"eta_minus": 0.3, "eta_plus": 1.5, "min_step_size": 1e-4, "max_step_size": 1.0},
        0.01,
        200,
        memoryless=True,
    ),
    Spec(
        "asgd",
        asgd,
        {},
        0.1,
        200,
        invalid=(({"lambd": -1.0}, "lambd must be in [0, inf), got -1.0"),),
    ),
    Spec("asgd", asgd, {"lambd": 1e-3, "alpha": 0.5, "t0": 10.0}, 0.1, 200),
    Spec(
        "adafactor",
        adafactor,
        {},
        0.1,
        300,
        memoryless=True,
        invalid=(
            ({"clipping_threshold": 0.0}, "clipping_threshold must be in (0, inf), got 0.0"),
            ({"decay_rate": -0.5}, "decay_rate must be in [0, inf), got -0.5"),
            ({"convention": "keras"}, "convention must be one of 'torch', 'optax'"),
        ),
    ),
    Spec("adafactor", adafactor, {"momentum": 0.9}, 0.05, 300),
    Spec("adafactor", adafactor, {"convention": "torch", "eps": None}, 0.3, 300, memoryless=True),
    Spec(
        "adafactor",
        adafactor,
        {"convention": "torch", "eps": None, "weight_decay": 1e-3},
        0.3,
        300,
        convergence_tol=1e-2,
    ),
    Spec(
        "muon",
        muon,
        {},
        0.05,
        400,
        convergence_tol=1e-2,
        invalid=(
            ({"momentum": 1.5}, "momentum must be in [0, 1), got 1.5"),
            ({"adjust_lr_fn": "rms"}, "adjust_lr_fn must be one of"),
        ),
    ),
    Spec(
        "muon",
        muon,
        {"nesterov": False, "adjust_lr_fn": "match_rms_adamw", "weight_decay": 0.0},
        0.05,
        400,
        convergence_tol=1e-2,
    ),
]

# --- Optax's catalogue
from .optimizers.adabelief import adabelief  # noqa: E402
from .optimizers.adan import adan  # noqa: E402
from .optimizers.fromage import fromage  # noqa: E402
from .optimizers.lamb import lamb  # noqa: E402
from .optimizers.lars import lars  # noqa: E402
from .optimizers.lbfgs import lbfgs  # noqa: E402
from .optimizers.lion import lion  # noqa: E402
from .optimizers.noisy_sgd import noisy_sgd  # noqa: E402
from .optimizers.novograd import novograd  # noqa: E402
from .optimizers.optimistic import (  # noqa: E402
    optimistic_adam,
    optimistic_adam_v2,
    optimistic_gradient_descent,
)
from .optimizers.polyak_sgd import polyak_sgd  # noqa: E402
from .optimizers.sign import sign_sgd, signum  # noqa: E402
from .optimizers.sm3 import sm3  # noqa: E402
from .optimizers.yogi import yogi  # noqa: E402

_OPTAX_CATALOGUE: list[Spec] = [
    Spec("lion", lion, {}, 0.02, 1000, invalid=(({"b1": 1.5}, "b1 must be in [0, 1], got 1.5"),)),
    Spec("lion", lion, {"weight_decay": 0.0, "mode": "refined"}, 0.02, 1000),
    Spec("lamb", lamb, {}, 0.05, 400, invalid=(_BAD_B1,)),
    Spec("lamb", lamb, {"weight_decay": 1e-3}, 0.05, 400, convergence_tol=1e-2),
    Spec("lars", lars, {}, 30.0, 300,
         invalid=(({"trust_coefficient": -1.0}, "trust_coefficient must be in [0, inf)"),)),
    Spec("lars", lars, {"weight_decay": 1e-3, "nesterov": True}, 30.0, 300,
         convergence_tol=1e-2),
    Spec("adabelief", adabelief, {}, 0.05, 300, invalid=(_BAD_B1,)),
    Spec("adabelief", adabelief, {"nesterov": True}, 0.05, 300),
    Spec("yogi", yogi, {}, 0.05, 300, invalid=(_BAD_B1,)),
    Spec("novograd", novograd, {}, 0.01, 600, invalid=(_BAD_B1,)),
    Spec("novograd", novograd, {"weight_decay": 1e-3}, 0.01, 600, convergence_tol=1e-2),
    Spec("adan", adan, {}, 0.1, 600,
         invalid=(({"b3": 1.5}, "b3 must be in [0, 1), got 1.5"),)),
    Spec("adan", adan, {"weight_decay": 1e-3}, 0.1, 600, convergence_tol=1e-2),
    Spec("sign_sgd", sign_sgd, {}, 0.01, 600, memoryless=True),
    Spec("signum", signum, {}, 0.01, 600,
         invalid=(({"beta": 1.5}, "beta must be in [0, 1), got 1.5"),)),
    Spec("sm3", sm3, {}, 0.5, 300,
         invalid=(({"momentum": 1.5}, "momentum must be in [0, 1), got 1.5"),)),
    Spec("fromage", fromage, {}, 0.05, 300,
         invalid=(({"min_norm": -1.0}, "min_norm must be in [0, inf), got -1.0"),)),
    Spec("noisy_sgd", noisy_sgd, {}, 0.1, 200, random=True,
         invalid=(({"eta": -1.0}, "eta must be in [0, inf), got -1.0"),)),
    # polyak_sgd's learning rate is Optax's ``scaling``.
    Spec("polyak_sgd", polyak_sgd, {}, 1.0, 200, memoryless=True, reads_loss=True,
         invalid=(({"variant": "x"}, "variant must be one of 'sps', 'sps+', got 'x'"),),
         lr_arg="scaling"),
    Spec("polyak_sgd", polyak_sgd, {"variant": "sps+", "max_learning_rate": 0.5}, 0.5, 200,
         memoryless=True, reads_loss=True, lr_arg="scaling"),
    Spec("optimistic_adam", optimistic_adam, {}, 0.05, 300,
         invalid=(({"optimism": -1.0}, "optimism must be in [0, inf), got -1.0"),)),
    Spec("optimistic_adam_v2", optimistic_adam_v2, {}, 0.05, 300,
         invalid=(({"beta": -1.0}, "beta must be in [0, inf), got -1.0"), _BAD_B1)),
    Spec("optimistic_gradient_descent", optimistic_gradient_descent, {}, 0.05, 300,
         invalid=(({"beta": -1.0}, "beta must be in [0, inf), got -1.0"),)),
    # Without a line search: update needs no objective, so every suite can drive it. (The
    # default zoom search needs value=, grad= and value_fn=; tests/test_lbfgs.py checks it.)
    Spec("lbfgs", lbfgs, {"linesearch": None}, 0.5, 100,
         invalid=(({"memory_size": 0}, "gradtx.lbfgs: memory_size must be in [1, inf), got 0"),)),
]  # fmt: skip

# --- modern optimizers
from .optimizers.ademamix import ademamix  # noqa: E402
from .optimizers.adopt import adopt  # noqa: E402
from .optimizers.kron import kron  # noqa: E402
from .optimizers.mars import mars  # noqa: E402
from .optimizers.prodigy import prodigy  # noqa: E402
from .optimizers.schedule_free import schedule_free_adamw, schedule_free_sgd  # noqa: E402
from .optimizers.soap import soap  # noqa: E402

_MODERN: list[Spec] = [
    Spec("schedule_free_sgd", schedule_free_sgd, {}, 0.1, 300,
         invalid=(({"b1": 1.5}, "b1 must be in [0, 1], got 1.5"),)),
    Spec("schedule_free_sgd", schedule_free_sgd, {"weight_decay": 1e-3, "warmup_steps": 20},
         0.1, 300, convergence_tol=1e-2),
    Spec("schedule_free_adamw", schedule_free_adamw, {}, 0.2, 400,
         invalid=(({"b2": 1.5}, "b2 must be in [0, 1), got 1.5"),)),
    Spec("schedule_free_adamw", schedule_free_adamw, {"weight_decay": 1e-3, "warmup_steps": 20},
         0.2, 400, convergence_tol=1e-2),
    Spec("adopt", adopt, {}, 0.1, 300, inert_steps=1, invalid=(_BAD_B1,)),
    Spec("adopt", adopt, {"weight_decay": 1e-3, "decoupled_weight_decay": True}, 0.1, 300,
         inert_steps=1, convergence_tol=1e-2),
    Spec("ademamix", ademamix, {"b3": 0.99}, 0.05, 600,
         invalid=(({"b3": 1.5}, "b3 must be in [0, 1), got 1.5"),)),
    Spec("ademamix", ademamix, {"b3": 0.99, "warmup_steps": 100}, 0.05, 600),
    # d0 = 1e-3 rather than 1e-6: the first step is about d0 * lr, and at 1e-6 the contract's
    # one-step comparison of learning rates falls below float32 resolution of the params.
    Spec("prodigy", prodigy, {"d0": 1e-3}, 1.0, 300,
         invalid=(({"d0": 0.0}, "d0 must be in (0, inf), got 0.0"),)),
    Spec("prodigy", prodigy, {"d0": 1e-3, "weight_decay": 1e-3, "bias_correction": True,
                              "safeguard_warmup": True}, 1.0, 300, convergence_tol=1e-2),
    Spec("mars", mars, {}, 0.05, 300,
         invalid=(({"gamma": -1.0}, "gamma must be in [0, inf), got -1.0"),)),
    Spec("mars", mars, {"weight_decay": 1e-3, "gamma": 0.1}, 0.05, 300, convergence_tol=1e-2),
    Spec("soap", soap, {"weight_decay": 0.0}, 0.05, 300,
         invalid=(({"b2": 1.5}, "b2 must be in [0, 1), got 1.5"),)),
    Spec("soap", soap, {"precondition_frequency": 2}, 0.05, 300, convergence_tol=1e-2),
    Spec("kron", kron, {}, 0.03, 300, convergence_tol=1e-2,
         invalid=(({"b1": 1.5}, "b1 must be in [0, 1), got 1.5"),
                  ({"memory_save_mode": "x"}, "memory_save_mode must be one of"))),
    Spec("kron", kron, {"memory_save_mode": "one_diag", "weight_decay": 1e-3,
                        "preconditioner_update_probability": 0.5}, 0.03, 300,
         convergence_tol=1e-2),
]  # fmt: skip

OPTIMIZERS: dict[str, Spec] = {
    _key(s): s for s in [*_SEED, *_TORCH_CATALOGUE, *_OPTAX_CATALOGUE, *_MODERN]
}
"""Registry key -> Spec. Keys name the factory and its sample options, e.g. ``adam[amsgrad=True]``."""

FACTORIES: dict[str, Callable[..., Any]] = {s.name: s.factory for s in OPTIMIZERS.values()}
"""Public optimizer name -> factory."""


# --- schedules
from .schedules._basic import (  # noqa: E402
    constant_schedule,
    cosine_decay_schedule,
    exponential_decay,
    inverse_time_decay_schedule,
    linear_schedule,
    piecewise_constant_schedule,
)
from .schedules._cosine import (  # noqa: E402
    cosine_restarts_schedule,
    sgdr_schedule,
    warmup_cosine_decay_schedule,
)
from .schedules._cyclic import (  # noqa: E402
    cosine_onecycle_schedule,
    cyclic_schedule,
    linear_onecycle_schedule,
    onecycle_momentum_schedule,
)
from .schedules._join import join_schedules, multiply_schedules  # noqa: E402
from .schedules._piecewise import piecewise_interpolate_schedule  # noqa: E402
from .schedules._polynomial import inverse_sqrt_schedule, polynomial_schedule  # noqa: E402
from .schedules._warmup import (  # noqa: E402
    warmup_constant_schedule,
    warmup_exponential_decay_schedule,
    warmup_stable_decay_schedule,
)
from .transforms._averaging import swa_schedule  # noqa: E402


@dataclasses.dataclass(frozen=True)
class ScheduleSpec:
    """One SCHEDULES entry.

    Attributes:
      name: the public factory's name (``gradtx.<name>``).
      factory: the factory; ``factory(*args, **kwargs)`` builds a sample schedule.
      args: sample positional arguments, or a function returning them (for arguments that are
        schedules themselves: built on use, not at import).
      kwargs: sample keyword arguments.
      values: leaves of the built schedule that hold values (peaks, initial values, scales), as
        key paths without the leading dot (``"peak_value"``, ``"schedules[1].init_value"``).
      steps: leaves that hold step counts (warmup lengths, periods, boundaries), same form.
    """

    name: str
    factory: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    values: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    def make(self) -> Any:
        args = self.args() if callable(self.args) else self.args
        return self.factory(*args, **self.kwargs)


def _skey(spec: ScheduleSpec) -> str:
    if not spec.kwargs:
        return spec.name
    return spec.name + "[" + ",".join(f"{k}={v}" for k, v in spec.kwargs.items()) + "]"


_SCHEDULES: list[ScheduleSpec] = [
    ScheduleSpec("constant_schedule", constant_schedule, (0.1,), values=("value",)),
    ScheduleSpec(
        "linear_schedule",
        linear_schedule,
        (0.01, 0.1, 20),
        {"transition_begin": 5},
        values=("init_value", "end_value"),
        steps=("transition_steps", "transition_begin"),
    ),
    ScheduleSpec(
        "exponential_decay",
        exponential_decay,
        (0.1, 1, 0.9),
        values=("init_value",),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "exponential_decay",
        exponential_decay,
        (0.1, 10, 0.5),
        {"staircase": True, "end_value": 1e-3},
        values=("init_value", "end_value"),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "inverse_time_decay_schedule",
        inverse_time_decay_schedule,
        (0.1, 1.0, 0.5),
        values=("init_value", "decay_rate"),
    ),
    ScheduleSpec(
        "piecewise_constant_schedule",
        piecewise_constant_schedule,
        (0.1, {10: 0.5, 30: 0.2}),
        values=("init_value", "scales[0]"),
        steps=("boundaries[0]",),
    ),
    ScheduleSpec(
        "cosine_decay_schedule",
        cosine_decay_schedule,
        (0.1, 50, 0.1),
        values=("init_value", "alpha"),
        steps=("decay_steps",),
    ),
    ScheduleSpec(
        "cosine_decay_schedule",
        cosine_decay_schedule,
        (0.0, 50),
        {"end_value": 0.1},
        values=("end_value",),
        steps=("decay_steps",),
    ),
    ScheduleSpec(
        "polynomial_schedule",
        polynomial_schedule,
        (0.1, 0.001, 2.0, 50),
        {"transition_begin": 5},
        values=("init_value", "end_value"),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "piecewise_interpolate_schedule",
        piecewise_interpolate_schedule,
        ("linear", 0.1, {10: 2.0, 40: 0.1}),
        values=("init_value", "scales[1]"),
        steps=("boundaries[0]",),
    ),
    ScheduleSpec(
        "piecewise_interpolate_schedule",
        piecewise_interpolate_schedule,
        ("cosine", 0.1, {10: 2.0, 40: 0.1}),
        values=("init_value",),
        steps=("boundaries[1]",),
    ),
    ScheduleSpec(
        "warmup_cosine_decay_schedule",
        warmup_cosine_decay_schedule,
        (0.0, 0.1, 10, 60),
        {"end_value": 1e-3},
        values=("peak_value", "init_value"),
        steps=("warmup_steps", "decay_steps"),
    ),
    ScheduleSpec(
        "sgdr_schedule",
        sgdr_schedule,
        (
            [
                {"init_value": 0.0, "peak_value": 0.1, "warmup_steps": 5, "decay_steps": 30},
                {"init_value": 0.01, "peak_value": 0.05, "warmup_steps": 10, "decay_steps": 60},
            ],
        ),
        values=("cycles[0].peak_value", "cycles[1].peak_value"),
        steps=("cycles[0].decay_steps", "cycles[1].warmup_steps"),
    ),
    ScheduleSpec(
        "cosine_restarts_schedule",
        cosine_restarts_schedule,
        (0.1, 10),
        {"min_value": 1e-3},
        values=("init_value",),
        steps=("first_period",),
    ),
    ScheduleSpec(
        "cosine_restarts_schedule",
        cosine_restarts_schedule,
        (0.1, 10, 2),
        values=("init_value",),
        steps=("first_period", "period_mult"),
    ),
    ScheduleSpec(
        "cosine_onecycle_schedule",
        cosine_onecycle_schedule,
        (100, 0.1),
        values=("peak_value", "div_factor"),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "cosine_onecycle_schedule",
        cosine_onecycle_schedule,
        (100, 0.1),
        {"convention": "torch"},
        values=("peak_value", "div_factor"),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "linear_onecycle_schedule",
        linear_onecycle_schedule,
        (100, 0.1),
        values=("peak_value",),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "linear_onecycle_schedule",
        linear_onecycle_schedule,
        (100, 0.1),
        {"three_phase": False, "convention": "torch"},
        values=("peak_value",),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "onecycle_momentum_schedule",
        onecycle_momentum_schedule,
        (100,),
        values=("base_momentum", "max_momentum"),
        steps=("transition_steps",),
    ),
    ScheduleSpec(
        "cyclic_schedule",
        cyclic_schedule,
        (0.01, 0.1, 10),
        values=("base_value", "max_value"),
        steps=("step_size_up",),
    ),
    ScheduleSpec(
        "cyclic_schedule",
        cyclic_schedule,
        (0.01, 0.1, 10, 5),
        {"mode": "triangular2"},
        values=("max_value",),
        steps=("step_size_down",),
    ),
    ScheduleSpec(
        "cyclic_schedule",
        cyclic_schedule,
        (0.01, 0.1, 10),
        {"mode": "exp_range", "gamma": 0.99},
        values=("max_value", "gamma"),
        steps=("step_size_up",),
    ),
    ScheduleSpec(
        "warmup_constant_schedule",
        warmup_constant_schedule,
        (0.0, 0.1, 10),
        values=("peak_value",),
        steps=("warmup_steps",),
    ),
    ScheduleSpec(
        "warmup_exponential_decay_schedule",
        warmup_exponential_decay_schedule,
        (0.0, 0.1, 10, 5, 0.9),
        values=("peak_value",),
        steps=("warmup_steps", "transition_steps"),
    ),
    ScheduleSpec(
        "warmup_stable_decay_schedule",
        warmup_stable_decay_schedule,
        (0.1, 10, 30, 20),
        values=("peak_value", "end_value"),
        steps=("warmup_steps", "stable_steps", "decay_steps"),
    ),
    ScheduleSpec(
        "warmup_stable_decay_schedule",
        warmup_stable_decay_schedule,
        (0.1, 10, 30, 20),
        {"decay_shape": "cosine"},
        values=("peak_value",),
        steps=("decay_steps",),
    ),
    ScheduleSpec(
        "warmup_stable_decay_schedule",
        warmup_stable_decay_schedule,
        (0.1, 10, 30, 20),
        {"decay_shape": "sqrt", "end_value": 1e-3},
        values=("peak_value",),
        steps=("decay_steps", "warmup_steps"),
    ),
    ScheduleSpec(
        "inverse_sqrt_schedule",
        inverse_sqrt_schedule,
        (0.1, 20),
        values=("peak_value",),
        steps=("warmup_steps",),
    ),
    ScheduleSpec(
        "join_schedules",
        join_schedules,
        lambda: ([linear_schedule(0.0, 0.1, 10), cosine_decay_schedule(0.1, 50)], [10]),
        values=("schedules[0].end_value", "schedules[1].init_value"),
        steps=("boundaries[0]", "schedules[1].decay_steps"),
    ),
    ScheduleSpec(
        "swa_schedule",
        swa_schedule,
        (0.1, 0.01, 50, 10),
        values=("base", "swa_lr"),
        steps=("start_step", "anneal_steps"),
    ),
    ScheduleSpec(
        "multiply_schedules",
        multiply_schedules,
        lambda: (warmup_constant_schedule(0.0, 1.0, 10), exponential_decay(0.1, 1, 0.95)),
        values=("schedules[1].init_value",),
        steps=("schedules[0].warmup_steps",),
    ),
]

from .schedules._probability import precond_update_prob_schedule  # noqa: E402

_SCHEDULES.append(
    ScheduleSpec(
        "precond_update_prob_schedule",
        precond_update_prob_schedule,
        (1.0, 0.03, 0.5, 5),
        values=("max_prob", "min_prob"),
        steps=("flat_start",),
    )
)

SCHEDULES: dict[str, ScheduleSpec] = {_skey(s): s for s in _SCHEDULES}
"""Registry key -> ScheduleSpec: every public schedule with sample arguments (the contract
suite runs over all of them)."""
