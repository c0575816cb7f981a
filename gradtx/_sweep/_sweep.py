"""``gradtx.sweep``: a population of hyperparameter settings trained in one compiled program.

The program is ``vmap`` over settings of ``lax.scan`` over steps (``lax.map`` with a batch size
over chunks of settings when the population does not fit at once). Because hyperparameters are
pytree leaves, the population is one batched transform and one compile serves all of it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from .._transform import batch_axes
from ._engine import (
    PROGRESS,
    Layout,
    Problem,
    host,
    map_members,
    member_eval,
    member_init,
    member_train,
    pad_rows,
    score,
)
from ._grid import Population, format_setting, has_ranges, population, sample_grid
from ._resume import Checkpoints, fingerprint
from ._segments import Joiner, Runner

__all__ = ["SweepResult", "sweep"]


@dataclasses.dataclass
class SweepResult:
    """What ``gradtx.sweep`` returns.

    Attributes:
      settings: one dict of hyperparameter values per setting (N of them), in grid order.
      losses: float array (N, steps): the training loss of each setting before each update (the
        batch loss when minibatching). After a setting diverges its entries are NaN.
      final_loss: (N,): the loss of the final params on the full data (arrays), on the batch of
        step ``steps`` (a data function) or with ``batch=None`` (no data). NaN if diverged.
      diverged: (N,) bool: a loss, gradient or parameter became NaN or Inf (or the loss exceeded
        ``max_loss``); the setting's params and state were frozen from then on.
      diverged_at: (N,) int: the step at which it diverged, -1 if it did not.
      params: the final params, with a leading axis: all N settings, or the best ``keep_best``
        (see ``params_index``). A diverged setting keeps its last finite params. With a mesh
        they stay split over its devices (padded to a whole number of rows per device).
      params_index: which setting each row of ``params`` belongs to (-1: a padding row).
      keys: (N, 2) uint32: each setting's PRNG key (its init and data keys are split from it).
      compile_seconds, run_seconds: time to compile the one program and to run it.
      label: the optimizer's name.
      names: the grid's hyperparameter names.
      layout: where the settings ran (the mesh and its axes, if any).
    """

    settings: list[dict[str, Any]]
    losses: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    params: Any
    params_index: np.ndarray
    keys: np.ndarray
    compile_seconds: float
    run_seconds: float
    label: str = ""
    names: tuple[str, ...] = ()
    layout: Layout = dataclasses.field(default_factory=Layout)

    @property
    def size(self) -> int:
        return len(self.settings)

    def order(self) -> np.ndarray:
        """Setting indices best first (lowest final loss; diverged settings last)."""
        return np.argsort(_score(self.final_loss, self.diverged), kind="stable")

    def best(self, k: int = 1) -> list[int]:
        return [int(i) for i in self.order()[:k]]

    def params_of(self, index: int) -> Any:
        """The final params of setting ``index`` (which must be kept, see ``keep_best``)."""
        rows = np.flatnonzero(self.params_index == index)
        if rows.size == 0:
            raise KeyError(
                f"gradtx.SweepResult: the params of setting {index} were not kept "
                f"(keep_best kept {self.params_index.tolist()})"
            )
        return self.layout.gather(self.params, int(rows[0]))

    def rows(self) -> list[dict[str, Any]]:
        """One dict per setting, best first: rank, index, hyperparameters, losses, divergence."""
        out = []
        for rank, i in enumerate(self.order(), 1):
            curve = self.losses[i]
            finite = curve[np.isfinite(curve)]
            out.append(
                {
                    "rank": rank,
                    "index": int(i),
                    "optimizer": self.label,
                    **self.settings[i],
                    "final_loss": float(self.final_loss[i]),
                    "min_loss": float(finite.min()) if finite.size else math.nan,
                    "diverged": bool(self.diverged[i]),
                    "diverged_at": int(self.diverged_at[i]),
                }
            )
        return out

    def __repr__(self) -> str:
        b = self.best(1)[0]
        return (
            f"SweepResult({self.label}: {self.size} settings x {self.losses.shape[1]} steps, "
            f"{int(self.diverged.sum())} diverged, best {format_setting(self.settings[b])} "
            f"final_loss={self.final_loss[b]:.4g})"
        )


def _score(final_loss: Any, diverged: Any) -> Any:
    return score(final_loss, diverged)


@dataclasses.dataclass(frozen=True, eq=True)
class _Config:
    """Everything static about one sweep program (hashable: functions compare by identity).

    ``size`` is the number of settings each shard runs (all of them without a mesh); ``total``
    the number of real settings (the rest are padding).
    """

    prob: Problem
    steps: int
    chunk_size: int | None
    keep_best: int | None
    treedef: Any
    batched: tuple[bool, ...]
    size: int
    total: int
    layout: Layout


def _split_leaves(tx: Any) -> tuple[Any, list[Any], list[Any], tuple[bool, ...]]:
    """Splits the transform's leaves into batched and shared ones, by ``gradtx.batch_axes``."""
    leaves, treedef = jax.tree.flatten(tx)
    # batch_axes gives 0 for a batched leaf and None for a shared one; flatten it with the
    # transform's own treedef so None markers line up with the leaves (not with None fields).
    axes = treedef.flatten_up_to(batch_axes(tx))
    batched = tuple(a is not None for a in axes)
    return (
        treedef,
        [x for x, b in zip(leaves, batched) if b],
        [x for x, b in zip(leaves, batched) if not b],
        batched,
    )


def _join_leaves(cfg: _Config, batched: list[Any], shared: list[Any]) -> Any:
    ib, ish = iter(batched), iter(shared)
    return jax.tree.unflatten(cfg.treedef, [next(ib) if b else next(ish) for b in cfg.batched])


def _run_one(cfg: _Config, tx: Any, key: jax.Array, params: Any, data: Any) -> dict[str, Any]:
    """Trains one setting (traced under vmap): init, ``steps`` steps, the final loss."""
    carry = member_init(cfg.prob, tx, key, params)
    (p, _, diverged, diverged_at), losses = member_train(
        cfg.prob, tx, key, carry, data, jnp.asarray(0, jnp.int32), cfg.steps
    )
    final = member_eval(cfg.prob, key, p, diverged, data, cfg.steps)
    return {
        "losses": losses,
        "final_loss": final,
        "diverged": diverged,
        "diverged_at": diverged_at,
        "params": p,
    }


def _top_k(k: int, score: jax.Array, index: jax.Array, params: Any):
    order = jnp.argsort(score, stable=True)[:k]
    return score[order], index[order], jax.tree.map(lambda x: x[order], params)


def _shard_offset(cfg: _Config) -> Any:
    if cfg.layout.mesh is None:
        return 0
    return jax.lax.axis_index(cfg.layout.axes) * cfg.size


def _local_program(cfg: _Config, rows: Any, shared_args: Any) -> dict[str, Any]:
    """One shard's settings (all of them without a mesh)."""
    batched, keys = rows
    shared, params, data = shared_args

    def one(xs):
        b, key = xs
        return _run_one(cfg, _join_leaves(cfg, b, shared), key, params, data)

    n = cfg.size
    chunk = cfg.chunk_size if cfg.chunk_size and cfg.chunk_size < n else None
    offset = _shard_offset(cfg)
    if chunk is not None and cfg.keep_best is not None:
        return _chunked_keep_best(cfg, one, batched, keys, chunk, offset)
    out = map_members(one, (batched, keys), chunk)
    index = offset + jnp.arange(n, dtype=jnp.int32)
    if cfg.keep_best is not None:
        s = score(out["final_loss"], out["diverged"])
        s = jnp.where(index < cfg.total, s, jnp.inf)
        _, index, out["params"] = _top_k(min(cfg.keep_best, n), s, index, out["params"])
    out["params_index"] = jnp.where(index < cfg.total, index, -1)
    return out


def _chunked_keep_best(cfg: _Config, one, batched, keys, chunk: int, offset: Any):
    """Chunks of settings in a scan whose carry holds only the best ``keep_best`` params."""
    n = cfg.size
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def padded(x):
        return pad_rows(x, pad).reshape(n_chunks, chunk, *x.shape[1:])

    xs = jax.tree.map(padded, (batched, keys))
    index = jnp.arange(n_chunks * chunk, dtype=jnp.int32).reshape(n_chunks, chunk)
    k = min(cfg.keep_best, n)
    first = jax.eval_shape(lambda: jax.vmap(one)(jax.tree.map(lambda x: x[0], xs)))
    best_params = jax.tree.map(lambda s: jnp.zeros((k, *s.shape[1:]), s.dtype), first["params"])
    carry0 = (jnp.full((k,), jnp.inf, jnp.float32), jnp.full((k,), -1, jnp.int32), best_params)

    def body(carry, c):
        x, idx = c
        out = jax.vmap(one)(x)
        s = score(out["final_loss"], out["diverged"])
        s = jnp.where((idx < n) & (offset + idx < cfg.total), s, jnp.inf)
        b_score, b_idx, b_params = carry
        all_score = jnp.concatenate([b_score, s])
        all_idx = jnp.concatenate([b_idx, idx])
        all_params = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), b_params, out["params"])
        carry = _top_k(k, all_score, all_idx, all_params)
        rest = {key: v for key, v in out.items() if key != "params"}
        return carry, rest

    (_, b_idx, b_params), rest = jax.lax.scan(body, carry0, (xs, index))
    out = jax.tree.map(lambda x: x.reshape(n_chunks * chunk, *x.shape[2:])[:n], rest)
    out["params"] = b_params
    g_idx = offset + b_idx
    out["params_index"] = jnp.where((b_idx >= 0) & (g_idx < cfg.total), g_idx, -1)
    return out


def _program(cfg: _Config, batched: list[Any], shared: list[Any], keys, params, data):
    out = cfg.layout.shard(lambda rows, rep: _local_program(cfg, rows, rep))(
        (batched, keys), (shared, params, data)
    )
    n = cfg.total
    for name in ("losses", "final_loss", "diverged", "diverged_at"):
        out[name] = out[name][:n]
    if cfg.layout.mesh is not None and cfg.keep_best is not None:
        # Each shard kept its own best; keep the best of those.
        idx = out["params_index"]
        s = score(out["final_loss"], out["diverged"])[jnp.clip(idx, 0, n - 1)]
        s = jnp.where(idx >= 0, s, jnp.inf)
        _, out["params_index"], out["params"] = _top_k(min(cfg.keep_best, n), s, idx, out["params"])
    return out


_COMPILED: dict[Any, Any] = {}
_MAX_CACHE = 32


def _aval_key(tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (jnp.shape(x), jnp.result_type(x), getattr(x, "weak_type", False)) for x in leaves
    )


def _out_shardings(cfg: _Config) -> Any:
    """Small results replicated (every host reads them); full-population params split."""
    layout = cfg.layout
    if layout.mesh is None:
        return None
    rep = layout.replicated()
    params = rep if cfg.keep_best is not None else layout.rows()
    return {
        "losses": rep,
        "final_loss": rep,
        "diverged": rep,
        "diverged_at": rep,
        "params": params,
        "params_index": rep,
    }


def _compiled(cfg: _Config, args: tuple[Any, ...]) -> tuple[Any, float]:
    """The compiled program for ``cfg`` and these argument shapes (cached), and compile time."""
    cache_key = (cfg, _aval_key(args), jax.config.jax_enable_x64)
    hit = _COMPILED.get(cache_key)
    if hit is not None:
        return hit, 0.0
    t0 = time.perf_counter()
    fn = jax.jit(functools.partial(_program, cfg), out_shardings=_out_shardings(cfg))
    compiled = fn.lower(*args).compile()
    seconds = time.perf_counter() - t0
    if len(_COMPILED) >= _MAX_CACHE:
        _COMPILED.pop(next(iter(_COMPILED)))
    _COMPILED[cache_key] = compiled
    return compiled, seconds


def _keys_for(key: Any, n: int) -> jax.Array:
    if key is None:
        key = 0
    if isinstance(key, (int, np.integer)):
        key = jax.random.PRNGKey(int(key))
    key = jnp.asarray(key)
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    if key.ndim == 2:
        if key.shape[0] != n:
            raise ValueError(f"gradtx.sweep: got {key.shape[0]} keys for {n} settings")
        return key
    return jax.random.split(key, n)


def _is_function(x: Any) -> bool:
    """A callable holding no arrays (a callable module, an Equinox one say, is params, not a
    function)."""
    if not callable(x):
        return False
    return not any(isinstance(leaf, (jax.Array, np.ndarray)) for leaf in jax.tree.leaves(x))


def sweep(
    loss_fn: Callable[[Any, Any], Any],
    params: Any,
    data: Any = None,
    optimizer: Any = "adam",
    grid: Mapping[str, Any] | None = None,
    steps: int = 100,
    *,
    hparams: Mapping[str, Any] | None = None,
    product: bool = True,
    key: Any = 0,
    batch_size: int | None = None,
    chunk_size: int | None = None,
    keep_best: int | None = None,
    max_loss: float | None = None,
    progress: Callable[[float], None] | None = None,
    samples: int | None = None,
    sampler: str = "random",
    mesh: Mesh | None = None,
    mesh_axis: str | Sequence[str] | None = None,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
) -> SweepResult:
    """Trains every hyperparameter setting of ``grid`` for ``steps`` steps in one compiled program.

    The program is ``jax.vmap`` over settings of a ``lax.scan`` over steps, compiled once for the
    whole population (the settings are array leaves of one batched transform). Example::

        res = gradtx.sweep(loss_fn, params, (x, y), gradtx.adam,
                           {"learning_rate": np.geomspace(1e-4, 1e-1, 32)}, steps=500,
                           batch_size=128)
        res.best(3), res.losses.shape            # (32, 500)

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the initial params (shared by every setting), or a function ``key -> params`` to
        initialise each setting from its own key.
      data: ``None`` (``batch`` is ``None``); a pytree of arrays with a leading example axis
        (the full batch every step, or ``batch_size`` examples drawn with replacement from each
        setting's key); or a function ``(step, key) -> batch``.
      optimizer: a factory (``gradtx.adam``), a registry name or key (``"adam"``,
        ``"sgd[momentum=0.9]"``, ``"sgd(momentum=0.9)"``) or an already batched transform
        (``gradtx.adam(jnp.array([1e-3, 1e-2]))``, vmapped with ``gradtx.batch_axes``).
      grid: hyperparameter name -> values (a sequence, an array or a spec string ``"lo:hi:n"``
        (log-spaced) or ``"a,b,c"``) or a range to sample (``gradtx.log_uniform(1e-4, 1e-1)``,
        ``gradtx.uniform``, ``gradtx.int_uniform``, ``gradtx.choice``; needs ``samples``).
        Names are the factory's keywords (``learning_rate``, ``b1``, ``weight_decay``) or dotted
        paths into a schedule given in ``hparams`` (``"learning_rate.peak_value"``,
        ``"learning_rate.warmup_steps"``).
      steps: updates per setting.
      hparams: fixed keyword arguments of the factory.
      product: Cartesian product of the grid's values (default) or, if False, the values zipped.
      key: an int seed or a PRNG key, split into one key per setting; or an (N, 2) array of keys.
      batch_size: minibatch size when ``data`` is arrays (None: full batch).
      chunk_size: run at most this many settings at once (``lax.map`` with a batch size), for
        populations that do not fit in memory; with a mesh, at most this many per device.
      keep_best: keep only the final params of the best ``keep_best`` settings (by final loss).
        With ``chunk_size`` only these are ever held, not the whole population's.
      max_loss: also treat a loss above this as divergence.
      progress: called on the host with the fraction done (0..1) as the program runs. With
        ``checkpoint_dir`` it is called after each checkpoint is written, and an exception it
        raises stops the sweep there (a rerun resumes from that checkpoint).
      samples: draw this many settings from the grid instead of taking all of them: ranges by
        their distribution, lists of values uniformly (``gradtx.choice``). Default: all grid
        points; required when the grid has ranges.
      sampler: ``"random"`` (independent draws) or ``"sobol"`` (a scrambled Sobol sequence, more
        even coverage), both seeded by ``key`` when it is an int (else by 0).
      mesh: a ``jax.sharding.Mesh``: the settings are split over its devices (each device runs a
        block of them, in chunks of ``chunk_size``), across processes under
        ``jax.distributed``. Losses are gathered; the final params stay split over the devices
        (``params_of`` gathers one setting). Default: one device.
      mesh_axis: the mesh axis (or axes) to split the settings over; default all of them.
      checkpoint_dir: a directory for Orbax checkpoints of the whole population every
        ``checkpoint_every`` steps. A sweep finding checkpoints of the same sweep there resumes
        from the latest and ends bit-identical to an uninterrupted run.
      checkpoint_every: steps between checkpoints (default: ``steps // 10``, at least 1).

    A setting whose loss, gradients or params become NaN or Inf is marked diverged and frozen:
    its params and optimizer state stop updating. Settings never interact, so the others'
    results are those they would have without it.
    """
    if samples is not None or has_ranges(grid):
        if samples is None:
            raise ValueError(
                "gradtx.sweep: the grid has ranges (log_uniform, uniform, int_uniform, choice); "
                "pass samples=N to draw N settings from it"
            )
        seed = int(key) if isinstance(key, (int, np.integer)) else 0
        grid, product = sample_grid(dict(grid or {}), samples, sampler, seed), False
    pop: Population = population(optimizer, grid, hparams, product)
    n = pop.size
    keys = _keys_for(key, n)
    treedef, batched, shared, flags = _split_leaves(pop.tx)
    data_fn = data if _is_function(data) else None
    init_fn = params if _is_function(params) else None
    if batch_size is not None and (data is None or data_fn is not None):
        raise ValueError("gradtx.sweep: batch_size needs data given as arrays")
    if keep_best is not None and not 1 <= keep_best:
        raise ValueError(f"gradtx.sweep: keep_best must be >= 1, got {keep_best}")
    if chunk_size is not None and not 1 <= chunk_size:
        raise ValueError(f"gradtx.sweep: chunk_size must be >= 1, got {chunk_size}")
    layout = Layout.of(mesh, mesh_axis)
    n_pad = layout.padded(n)
    local = n_pad // layout.shards
    chunks = -(-local // chunk_size) if chunk_size and chunk_size < local else 1
    report_every = max(1, steps // 50) if progress is not None and not checkpoint_dir else 0
    prob = Problem(loss_fn, data_fn, init_fn, batch_size, max_loss, report_every)
    if n_pad != n:
        batched = [pad_rows(jnp.asarray(x), n_pad - n) for x in batched]
        keys = pad_rows(keys, n_pad - n)
    rows = layout.place_rows((batched, keys))
    rep = layout.place_replicated((shared, None if init_fn else params, None if data_fn else data))
    meta = {
        "settings": pop.settings,
        "keys": np.asarray(keys)[:n],
        "label": pop.label,
        "names": pop.names,
        "layout": layout,
    }
    if checkpoint_dir is not None:
        return _segmented(
            prob, Joiner(treedef, flags), layout, rows, rep, n, int(steps), chunk_size,
            keep_best, progress, checkpoint_dir, checkpoint_every, meta,
        )  # fmt: skip
    cfg = _Config(
        prob=prob,
        steps=int(steps),
        chunk_size=chunk_size,
        keep_best=min(keep_best, n) if keep_best is not None else None,
        treedef=treedef,
        batched=flags,
        size=local,
        total=n,
        layout=layout,
    )
    args = (rows[0], rep[0], rows[1], rep[1], rep[2])
    compiled, compile_s = _compiled(cfg, args)
    total_reports = layout_devices(layout) * chunks * (steps // report_every) if report_every else 0
    done = [0]

    def on_report(_step: int) -> None:
        done[0] += 1
        if progress is not None and total_reports:
            progress(min(1.0, done[0] / total_reports))

    PROGRESS[0] = on_report
    try:
        t0 = time.perf_counter()
        out = compiled(*args)
        out = jax.block_until_ready(out)
        jax.effects_barrier()
        run_s = time.perf_counter() - t0
    finally:
        PROGRESS[0] = None
    if progress is not None:
        progress(1.0)
    return SweepResult(
        losses=host(out["losses"]),
        final_loss=host(out["final_loss"]),
        diverged=host(out["diverged"]),
        diverged_at=host(out["diverged_at"]),
        params=out["params"],
        params_index=host(out["params_index"]),
        compile_seconds=compile_s,
        run_seconds=run_s,
        **meta,
    )


def layout_devices(layout: Layout) -> int:
    """How many of this process's devices run a block of settings (each reports progress)."""
    if layout.mesh is None:
        return 1
    me = jax.process_index()
    return sum(1 for d in layout.mesh.devices.flat if d.process_index == me)


def _segmented(
    prob: Problem,
    make_tx: Joiner,
    layout: Layout,
    rows: Any,
    rep: Any,
    n: int,
    steps: int,
    chunk_size: int | None,
    keep_best: int | None,
    progress: Callable[[float], None] | None,
    checkpoint_dir: Any,
    checkpoint_every: int | None,
    meta: dict[str, Any],
) -> SweepResult:
    """The sweep as segments of ``checkpoint_every`` steps with a checkpoint after each."""
    every = max(1, steps // 10) if checkpoint_every is None else int(checkpoint_every)
    if every < 1:
        raise ValueError(f"gradtx.sweep: checkpoint_every must be >= 1, got {checkpoint_every}")
    (batched, keys), (shared, params, data) = rows, rep
    runner = Runner(prob, make_tx, layout, chunk_size)
    ident = fingerprint(
        {"settings": meta["settings"], "keys": meta["keys"].tolist(), "steps": steps,
         "every": every, "label": meta["label"], "n_pad": int(keys.shape[0])}
    )  # fmt: skip
    ckpt = Checkpoints(checkpoint_dir, ident)
    t0 = time.perf_counter()
    carry = runner.compiled_init()(batched, shared, keys, params)
    n_pad = keys.shape[0]
    losses = np.full((n_pad, steps), np.nan, np.float32)
    final = np.full((n_pad,), np.nan, np.float32)
    done = 0
    latest = ckpt.latest()
    if latest is not None:
        state = ckpt.restore(latest, {"carry": carry, "losses": losses, "final": final})
        carry, losses, final = state["carry"], np.asarray(state["losses"]), state["final"]
        final = np.asarray(final)
        done = int(latest)
    compile_s = 0.0
    try:
        while done < steps:
            length = min(every, steps - done)
            seg = runner.compiled_segment(length)
            start = layout.place_replicated(jnp.asarray(done, jnp.int32))
            carry, seg_losses, final = seg(batched, shared, keys, carry, data, start)
            losses[:, done : done + length] = host(seg_losses)
            final = host(final)
            done += length
            ckpt.save(done, {"carry": carry, "losses": losses, "final": final})
            if progress is not None:
                progress(done / steps)
    finally:
        ckpt.close()
    run_s = time.perf_counter() - t0
    p, _, diverged, diverged_at = carry
    diverged, diverged_at = layout.fetch((diverged, diverged_at))
    final_loss = final[:n]
    index = np.arange(n_pad)
    if keep_best is not None:
        s = score(final_loss, diverged[:n])
        index = np.argsort(s, kind="stable")[: min(keep_best, n)]
        p = layout.gather(p, index)
    else:
        index = np.where(index < n, index, -1)
    return SweepResult(
        losses=losses[:n],
        final_loss=final_loss,
        diverged=diverged[:n],
        diverged_at=diverged_at[:n],
        params=p,
        params_index=np.asarray(index),
        compile_seconds=compile_s,
        run_seconds=run_s,
        **meta,
    )
