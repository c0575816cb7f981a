"""``gradtx.pbt``: population based training as one compiled program.

A ``lax.scan`` over intervals: each trains every member ``interval`` steps (``vmap``, split over a
mesh when given), ranks them by their loss at the end of it, and the worst fraction copy the
params, optimizer state and hyperparameters of members drawn from the best fraction (a gather,
since hyperparameters are leaves) and then perturb or resample their hyperparameters.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ._engine import Layout, Problem, host, score
from ._grid import (
    Range,
    _leaf,
    _signature_defaults,
    as_range,
    expand_grid,
    format_setting,
    has_ranges,
    resolve_optimizer,
    sample_grid,
)
from ._segments import Builder, Runner, padded_index
from ._sweep import _is_function, _keys_for

__all__ = ["PBTResult", "pbt"]

EXPLOIT = ("truncation",)
EXPLORE = ("perturb", "resample")


@dataclasses.dataclass
class PBTResult:
    """What ``gradtx.pbt`` returns (M members, T intervals of ``interval`` steps).

    Attributes:
      hparams_history: swept name -> (T, M) array: the value each member trained with during
        each interval.
      lineage: (T, M) int: the member whose params, state and hyperparameters member ``m`` took
        at the start of interval ``t`` (``m`` itself when it was not replaced; row 0 is
        ``arange(M)``).
      scores: (T, M) float32: each member's loss at the end of each interval (NaN: diverged).
      losses: (M, steps) float32: the training loss of each member slot before each step.
      final_loss, diverged: (M,): at the end of training.
      best: the member with the lowest final loss; ``best_params`` its params, ``best_hparams``
        its hyperparameters in the last interval.
      params: every member's final params (leading axis M; split over the mesh if given).
      initial: the initial setting of each member.
      run_seconds: compile and run time of the one program.
    """

    hparams_history: dict[str, np.ndarray]
    lineage: np.ndarray
    scores: np.ndarray
    losses: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    best: int
    best_params: Any
    best_hparams: dict[str, Any]
    params: Any
    initial: list[dict[str, Any]]
    interval: int
    run_seconds: float
    label: str = ""
    names: tuple[str, ...] = ()

    def ancestry(self, member: int) -> list[int]:
        """The member each interval of ``member``'s final params was trained in, first to last."""
        chain = [int(member)]
        for t in range(self.lineage.shape[0] - 1, 0, -1):
            chain.append(int(self.lineage[t, chain[-1]]))
        return chain[::-1]

    def __repr__(self) -> str:
        return (
            f"PBTResult({self.label}: {self.lineage.shape[1]} members x "
            f"{self.lineage.shape[0]} intervals of {self.interval} steps, best member "
            f"{self.best} ({format_setting(self.best_hparams)}) "
            f"final_loss={self.final_loss[self.best]:.4g})"
        )


@dataclasses.dataclass(frozen=True, eq=True)
class _PBTConfig:
    runner: Runner
    names: tuple[str, ...]
    interval: int
    intervals: int
    total: int
    fraction: float
    explore: str
    factors: tuple[float, ...]
    bounds: tuple[tuple[float, float], ...]
    ints: tuple[bool, ...]
    ranges: tuple[Range, ...]


def _resample(r: Range, key: jax.Array, shape: tuple[int, ...], dtype: Any) -> jax.Array:
    u = jax.random.uniform(key, shape, jnp.float32)
    if r.kind == "log_uniform":
        lo, hi = math.log(r.low), math.log(r.high)
        v = jnp.exp(lo + u * (hi - lo))
    elif r.kind == "uniform":
        v = r.low + u * (r.high - r.low)
    elif r.kind == "int_uniform":
        v = jnp.floor(r.low + u * (r.high - r.low + 1)).clip(r.low, r.high)
    else:
        vals = jnp.asarray(np.asarray(r.values, np.float64), dtype)
        return vals[jnp.minimum((u * len(r.values)).astype(jnp.int32), len(r.values) - 1)]
    return v.astype(dtype)


def _explore(cfg: _PBTConfig, hp: dict[str, Any], replaced: Any, key: jax.Array) -> dict[str, Any]:
    out = {}
    keys = jax.random.split(key, len(cfg.names))
    for j, name in enumerate(cfg.names):
        v = hp[name]
        if cfg.explore == "perturb":
            factors = jnp.asarray(cfg.factors, jnp.float32)
            pick = jax.random.randint(keys[j], v.shape, 0, len(cfg.factors))
            new = v.astype(jnp.float32) * factors[pick]
            if cfg.ints[j]:
                new = jnp.round(new)
            lo, hi = cfg.bounds[j]
            new = jnp.clip(new, lo, hi).astype(v.dtype)
        else:
            new = _resample(cfg.ranges[j], keys[j], v.shape, v.dtype)
        out[name] = jnp.where(replaced, new, v)
    return out


def _program(cfg: _PBTConfig, hp, shared, keys, params, data, pbt_key):
    runner = cfg.runner
    carry = runner.init(hp, shared, keys, params)
    m = keys.shape[0]
    members = jnp.arange(m, dtype=jnp.int32)
    n_q = max(1, math.ceil(cfg.fraction * cfg.total))

    def body(state, t):
        carry, hp, prev_score, key = state
        key, k_pick, k_explore = jax.random.split(key, 3)
        # Exploit (from interval 1 on): the worst n_q real members take a random one of the best.
        real = jnp.where(members < cfg.total, prev_score, jnp.inf)
        order = jnp.argsort(real, stable=True)  # padding rows (inf, highest index) sort last
        top = order[:n_q]
        bottom = jax.lax.dynamic_slice(order, (cfg.total - n_q,), (n_q,))
        chosen = top[jax.random.randint(k_pick, (n_q,), 0, n_q)]
        parent = members.at[bottom].set(chosen)
        parent = jnp.where(t > 0, parent, members)
        carry = jax.tree.map(lambda x: x[parent], carry)
        hp = jax.tree.map(lambda x: x[parent], hp)
        hp = _explore(cfg, hp, parent != members, k_explore)
        start = t * cfg.interval
        carry, losses, final = runner.segment(cfg.interval, hp, shared, keys, carry, data, start)
        s = score(final, carry[2])
        return (carry, hp, s, key), (hp, parent, final, losses)

    init_score = jnp.zeros((m,), jnp.float32)
    (carry, _, _, _), (hist, lineage, scores, losses) = jax.lax.scan(
        body,
        (carry, hp, init_score, pbt_key),
        jnp.arange(cfg.intervals, dtype=jnp.int32),
    )
    # losses: (T, M, interval) -> (M, T * interval)
    losses = jnp.moveaxis(losses, 0, 1).reshape(m, cfg.intervals * cfg.interval)
    return {
        "carry": carry,
        "hparams": hist,
        "lineage": lineage,
        "scores": scores,
        "losses": losses,
        "final_loss": scores[-1],
    }


_JITTED: dict[Any, Any] = {}


def _jitted(cfg: _PBTConfig) -> Callable[..., Any]:
    fn = _JITTED.get(cfg)
    if fn is None:
        layout = cfg.runner.layout
        out = None
        if layout.mesh is not None:
            rep = layout.replicated()
            out = {
                "carry": layout.rows(),
                "hparams": rep,
                "lineage": rep,
                "scores": rep,
                "losses": rep,
                "final_loss": rep,
            }
        fn = jax.jit(functools.partial(_program, cfg), out_shardings=out)
        if len(_JITTED) >= 16:
            _JITTED.pop(next(iter(_JITTED)))
        _JITTED[cfg] = fn
    return fn


def _err(msg: str) -> ValueError:
    return ValueError(f"gradtx.pbt: {msg}")


def pbt(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    data: Any = None,
    optimizer: Any = "adam",
    grid: Mapping[str, Any] | None = None,
    steps: int = 100,
    *,
    interval: int = 10,
    exploit: str = "truncation",
    explore: str = "perturb",
    fraction: float = 0.25,
    factors: Sequence[float] = (0.8, 1.2),
    bounds: Mapping[str, tuple[float, float]] | None = None,
    key: Any = 0,
    hparams: Mapping[str, Any] | None = None,
    product: bool = True,
    samples: int | None = None,
    sampler: str = "random",
    batch_size: int | None = None,
    chunk_size: int | None = None,
    max_loss: float | None = None,
    mesh: Mesh | None = None,
    mesh_axis: str | Sequence[str] | None = None,
) -> PBTResult:
    """Population based training: the population trains in intervals, and between intervals the
    worst members restart from copies of the best with perturbed hyperparameters.

    Every ``interval`` steps, inside the one compiled program::

        score_m   = loss of member m at the end of the interval (diverged: +inf)
        bottom    = the ceil(fraction * M) members with the highest score
        top       = the ceil(fraction * M) members with the lowest score
        for m in bottom:  parent_m ~ Uniform(top)                    (exploit: truncation)
            params_m, state_m, h_m <- params_parent, state_parent, h_parent
            h_m <- clip(h_m * f, lo, hi),  f ~ Uniform(factors)       (explore: perturb)
            or h_m ~ the grid entry's range                           (explore: resample)

    A replaced member keeps its own PRNG key (its minibatch stream), and its step count goes on
    from the copied optimizer state's.

    Args:
      loss_fn, params, data, optimizer, hparams, product, samples, sampler, batch_size,
        chunk_size, max_loss, mesh, mesh_axis: as in ``gradtx.sweep``. ``optimizer`` must be a
        factory or a registry name (the hyperparameters are rebuilt by name).
      grid: the initial population: name -> values (their product, or zipped with
        ``product=False``), or ranges with ``samples``.
      steps: total steps per member, a multiple of ``interval``.
      interval: steps between exploit-and-explore rounds (int >= 1).
      exploit: ``"truncation"`` (the only one).
      explore: ``"perturb"`` (multiply by a random one of ``factors``, rounding integers,
        clipped to ``bounds``) or ``"resample"`` (a new draw from the grid entry's range; a list
        of values counts as a ``gradtx.choice`` of them).
      fraction: the share of members replaced each round, in (0, 0.5]; default 0.25.
      factors: the perturbation factors; default (0.8, 1.2).
      bounds: name -> (low, high) for perturbed values. Default: the range's bounds for a range,
        the smallest and largest listed value for a list (so that a perturbed ``b1`` never
        leaves the values you allowed; give wider bounds to let PBT go further).
      key: an int seed or PRNG key: split into per-member keys and the exploit/explore key.

    References:
      Jaderberg, M., Dalibard, V., Osindero, S., Czarnecki, W. M., Donahue, J., Razavi, A.,
      Vinyals, O., Green, T., Dunning, I., Simonyan, K., Fernando, C. and Kavukcuoglu, K.
      "Population Based Training of Neural Networks". arXiv 2017.
      https://arxiv.org/abs/1711.09846
    """
    if not isinstance(interval, (int, np.integer)) or isinstance(interval, bool) or interval < 1:
        raise _err(f"interval must be an int >= 1, got {interval!r}")
    if not isinstance(steps, (int, np.integer)) or steps < interval or steps % interval:
        raise _err(f"steps must be a positive multiple of interval={interval}, got {steps!r}")
    if exploit not in EXPLOIT:
        raise _err(f"exploit must be one of {EXPLOIT}, got {exploit!r}")
    if explore not in EXPLORE:
        raise _err(f"explore must be one of {EXPLORE}, got {explore!r}")
    if not 0.0 < float(fraction) <= 0.5:
        raise _err(f"fraction must be in (0, 0.5], got {fraction!r}")
    if not factors or any(not (float(f) > 0) for f in factors):
        raise _err(f"factors must be positive numbers, got {factors!r}")
    label, factory, fixed = resolve_optimizer(optimizer)
    if factory is None:
        raise _err("optimizer must be a factory (gradtx.adam) or a registry name, not a transform")
    grid = dict(grid or {})
    if not grid:
        raise _err("grid must name at least one hyperparameter to train")
    ranges = tuple(as_range(name, grid[name]) for name in grid)
    if samples is not None or has_ranges(grid):
        if samples is None:
            raise _err("the grid has ranges; pass samples=N to draw N members")
        seed = int(key) if isinstance(key, (int, np.integer)) else 0
        settings = expand_grid(sample_grid(grid, samples, sampler, seed), product=False)
    else:
        settings = expand_grid(grid, product)
    names = tuple(grid)
    m = len(settings)
    if m < 2:
        raise _err(f"the population needs at least 2 members, got {m}")
    kwargs = {**fixed, **dict(hparams or {})}
    defaults, varkw = _signature_defaults(factory)
    values = {}
    for name in names:
        root = name.split(".")[0]
        if not varkw and root not in defaults:
            raise _err(f"{label} has no hyperparameter {root!r} (grid name {name!r})")
        like = kwargs.get(name, defaults.get(name)) if "." not in name else None
        values[name] = _leaf([s[name] for s in settings], like)
    # Validates the initial values (the factory checks concrete numbers).
    from ._grid import population

    population(optimizer, {n: [s[n] for s in settings] for n in names}, hparams, product=False)
    bounds = dict(bounds or {})
    lohi = []
    for name, r in zip(names, ranges):
        if name in bounds:
            lo, hi = (float(b) for b in bounds[name])
            if not lo <= hi:
                raise _err(
                    f"bounds[{name!r}] must be (low, high) with low <= high, got {bounds[name]!r}"
                )
            lohi.append((lo, hi))
        else:
            lohi.append(r.bounds)
    unknown = set(bounds) - set(names)
    if unknown:
        raise _err(f"bounds names {sorted(unknown)} are not grid names {list(names)}")
    data_fn = data if _is_function(data) else None
    init_fn = params if _is_function(params) else None
    if batch_size is not None and (data is None or data_fn is not None):
        raise _err("batch_size needs data given as arrays")
    if isinstance(key, (int, np.integer)):
        key = jax.random.PRNGKey(int(key))
    member_key, pbt_key = jax.random.split(jnp.asarray(key))
    keys = _keys_for(member_key, m)
    layout = Layout.of(mesh, mesh_axis)
    builder, shared = Builder.of(factory, kwargs, names)
    runner = Runner(
        Problem(loss_fn, data_fn, init_fn, batch_size, max_loss), builder, layout, chunk_size
    )
    cfg = _PBTConfig(
        runner=runner,
        names=names,
        interval=int(interval),
        intervals=int(steps) // int(interval),
        total=m,
        fraction=float(fraction),
        explore=explore,
        factors=tuple(float(f) for f in factors),
        bounds=tuple(lohi),
        ints=tuple(bool(jnp.issubdtype(values[n].dtype, jnp.integer)) for n in names),
        ranges=ranges,
    )
    index = padded_index(np.arange(m), layout)
    hp, keys = layout.place_rows(({n: values[n][index] for n in names}, keys[index]))
    shared, params0, data0 = layout.place_replicated(
        (shared, None if init_fn else params, None if data_fn else data)
    )
    t0 = time.perf_counter()
    out = _jitted(cfg)(hp, shared, keys, params0, data0, layout.place_replicated(pbt_key))
    out = jax.block_until_ready(out)
    run_s = time.perf_counter() - t0
    history = {n: host(out["hparams"][n])[:, :m] for n in names}
    final = host(out["final_loss"])[:m]
    diverged = layout.fetch(out["carry"][2])[:m]
    best = int(np.argsort(score(final, diverged), kind="stable")[0])
    return PBTResult(
        hparams_history=history,
        lineage=host(out["lineage"])[:, :m],
        scores=host(out["scores"])[:, :m],
        losses=host(out["losses"])[:m],
        final_loss=final,
        diverged=diverged,
        best=best,
        best_params=layout.gather(out["carry"][0], best),
        best_hparams={n: history[n][-1, best].item() for n in names},
        params=out["carry"][0],
        initial=settings,
        interval=int(interval),
        run_seconds=run_s,
        label=label,
        names=names,
    )
