"""Optuna studies whose trials train in batches, each batch one compiled ``gradtx.sweep``.

Optuna (and Ray Tune) run each trial as its own process with its own compile. Here each round
asks a study for ``batch`` trials, trains them as one population and tells the study every
result: a completed trial with its final loss, a pruned one (its curve, reported step by step,
made the study's pruner stop it), a diverged one as failed. Optuna is imported when a function
runs, so ``import gradtx`` works without it (install it with ``pip install 'gradtx[optuna]'``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ._sweep._grid import Range
from ._sweep._sweep import SweepResult, sweep

__all__ = ["OptunaResult", "distribution", "optimize"]


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ImportError(
            "gradtx.optuna needs optuna; install the optuna extra: pip install 'gradtx[optuna]'"
        ) from e
    return optuna


def distribution(spec: Any) -> Any:
    """An Optuna distribution for a gradtx range (``log_uniform``, ``uniform``, ``int_uniform``,
    ``choice``); an Optuna distribution is returned as is."""
    optuna = _optuna()
    dists = optuna.distributions
    if isinstance(spec, dists.BaseDistribution):
        return spec
    if not isinstance(spec, Range):
        raise TypeError(
            "gradtx.optuna: a search space entry must be a gradtx range (gradtx.log_uniform, "
            "uniform, int_uniform, choice) or an optuna distribution, got "
            f"{type(spec).__name__}"
        )
    if spec.kind == "log_uniform":
        return dists.FloatDistribution(spec.low, spec.high, log=True)
    if spec.kind == "uniform":
        return dists.FloatDistribution(spec.low, spec.high)
    if spec.kind == "int_uniform":
        return dists.IntDistribution(int(spec.low), int(spec.high))
    return dists.CategoricalDistribution(list(spec.values))


@dataclasses.dataclass
class OptunaResult:
    """What ``gradtx.optuna.optimize`` returns.

    Attributes:
      study: the study, holding every trial (``rounds * batch`` more than it had).
      results: the ``gradtx.SweepResult`` of each round.
      trial_numbers: the study's trial number of each setting, per round.
      states: the state each trial was told (``"COMPLETE"``, ``"PRUNED"`` or ``"FAIL"``), per
        round.
    """

    study: Any
    results: list[SweepResult]
    trial_numbers: list[list[int]]
    states: list[list[str]]

    @property
    def best_value(self) -> float:
        return float(self.study.best_value)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.study.best_params)


def optimize(
    study: Any,
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    data: Any = None,
    optimizer: Any = "adam",
    space: Mapping[str, Any] | None = None,
    steps: int = 100,
    batch: int = 16,
    rounds: int = 1,
    *,
    hparams: Mapping[str, Any] | None = None,
    key: int = 0,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    max_loss: float | None = None,
    report_every: int | None = None,
    mesh: Any = None,
    mesh_axis: str | Sequence[str] | None = None,
    diverged_as: str = "fail",
    callback: Callable[[int, SweepResult], None] | None = None,
) -> OptunaResult:
    """Runs ``rounds`` rounds of ``batch`` trials of an Optuna study, each round one sweep.

    Each round: ``study.ask`` ``batch`` times with the space's distributions; train those
    settings for ``steps`` steps as one compiled program (``gradtx.sweep``, zipped settings);
    then for each trial report its training loss every ``report_every`` steps
    (``trial.report``, up to divergence) and tell the study: ``FAIL`` if the setting diverged
    (see ``diverged_as``), ``PRUNED`` if ``trial.should_prune()`` at any report (the pruner
    judges the curve; the steps were spent in the batch anyway), else ``COMPLETE`` with its
    final loss. The study must minimize.

    Args:
      study: an ``optuna.Study`` with direction ``minimize`` (any sampler and pruner).
      loss_fn, params, data, optimizer, hparams, batch_size, chunk_size, max_loss, mesh,
        mesh_axis: as in ``gradtx.sweep``.
      space: name -> a gradtx range (``gradtx.log_uniform(1e-4, 1e-1)``, ``uniform``,
        ``int_uniform``, ``choice``) or an Optuna distribution.
      steps: training steps per trial (>= 1).
      batch: trials per round (>= 1): the population of one compiled program.
      rounds: how many rounds (>= 1).
      key: an int seed; round ``r`` uses ``key + r`` (so its settings get new PRNG keys).
      report_every: steps between the intermediate values given to the pruner (default
        ``max(1, steps // 10)``).
      diverged_as: ``"fail"`` (default: Optuna's state for a trial without a value; samplers
        such as TPE ignore it) or ``"pruned"`` (TPE then counts it among the bad trials, by its
        last reported loss).
      callback: called with ``(round, SweepResult)`` after each round is told.
    """
    optuna = _optuna()
    for name, value, low in (("steps", steps, 1), ("batch", batch, 1), ("rounds", rounds, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(
                f"gradtx.optuna.optimize: {name} must be an int >= {low}, got {value!r}"
            )
    if not space:
        raise ValueError("gradtx.optuna.optimize: space must name at least one hyperparameter")
    if len(study.directions) != 1 or study.direction != optuna.study.StudyDirection.MINIMIZE:
        raise ValueError("gradtx.optuna.optimize: the study must have direction='minimize'")
    if diverged_as not in ("fail", "pruned"):
        raise ValueError(
            f"gradtx.optuna.optimize: diverged_as must be 'fail' or 'pruned', got {diverged_as!r}"
        )
    every = max(1, steps // 10) if report_every is None else int(report_every)
    dists = {name: distribution(spec) for name, spec in space.items()}
    state = optuna.trial.TrialState
    out = OptunaResult(study, [], [], [])
    for r in range(rounds):
        trials = [study.ask(dists) for _ in range(batch)]
        grid = {name: [t.params[name] for t in trials] for name in dists}
        res = sweep(
            loss_fn, params, data, optimizer, grid, steps, hparams=hparams, product=False,
            key=int(key) + r, batch_size=batch_size, chunk_size=chunk_size, max_loss=max_loss,
            mesh=mesh, mesh_axis=mesh_axis,
        )  # fmt: skip
        told = []
        for i, trial in enumerate(trials):
            told.append(_tell(study, trial, res, i, every, state, diverged_as))
        out.results.append(res)
        out.trial_numbers.append([t.number for t in trials])
        out.states.append(told)
        if callback is not None:
            callback(r, res)
    return out


def _tell(
    study: Any, trial: Any, res: SweepResult, i: int, every: int, state: Any, diverged_as: str
) -> str:
    curve = res.losses[i]
    final = float(res.final_loss[i])
    diverged = bool(res.diverged[i]) or not math.isfinite(final)
    for step in range(every - 1, curve.shape[0], every):
        value = float(curve[step])
        if not math.isfinite(value):
            break
        trial.report(value, step + 1)
        if not diverged and trial.should_prune():
            study.tell(trial, state=state.PRUNED)
            return "PRUNED"
    if diverged:
        told = state.FAIL if diverged_as == "fail" else state.PRUNED
        study.tell(trial, state=told)
        return told.name
    study.tell(trial, final)
    return "COMPLETE"
