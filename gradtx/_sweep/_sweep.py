"""``gradtx.sweep``: a population of hyperparameter settings trained in one compiled program.

The program is ``vmap`` over settings of ``lax.scan`` over steps (``lax.map`` with a batch size
over chunks of settings when the population does not fit at once). Because hyperparameters are
pytree leaves, the population is one batched transform and one compile serves all of it.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._transform import apply_updates, batch_axes
from ._grid import Population, format_setting, population

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
        (see ``params_index``). A diverged setting keeps its last finite params.
      params_index: which setting each row of ``params`` belongs to.
      keys: (N, 2) uint32: each setting's PRNG key (its init and data keys are split from it).
      compile_seconds, run_seconds: time to compile the one program and to run it.
      label: the optimizer's name.
      names: the grid's hyperparameter names.
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
        return jax.tree.map(lambda x: x[int(rows[0])], self.params)

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
    xp = jnp if isinstance(final_loss, jax.Array) else np
    bad = diverged | ~xp.isfinite(final_loss)
    return xp.where(bad, xp.inf, final_loss)


# ---------------------------------------------------------------------------------------------
# Progress: one module-level host callback, so a progress bar never forces a recompile.

_PROGRESS: list[Any] = [None]  # XLA runs host callbacks on its own threads


def _progress_callback(step: Any) -> None:
    fn = _PROGRESS[0]
    if fn is not None:
        fn(int(step))


@dataclasses.dataclass(frozen=True, eq=True)
class _Config:
    """Everything static about one sweep program (hashable: functions compare by identity)."""

    loss_fn: Callable[..., Any]
    data_fn: Callable[..., Any] | None
    init_fn: Callable[..., Any] | None
    steps: int
    batch_size: int | None
    chunk_size: int | None
    keep_best: int | None
    max_loss: float | None
    report_every: int
    treedef: Any
    batched: tuple[bool, ...]
    size: int


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


def _where_tree(keep: Any, old: Any, new: Any) -> Any:
    return jax.tree.map(lambda o, n: jnp.where(keep, o, n), old, new)


def _run_one(cfg: _Config, tx: Any, key: jax.Array, params: Any, data: Any) -> dict[str, Any]:
    """Trains one setting (traced under vmap): scan over steps with divergence freezing."""
    init_key, data_key = jax.random.split(key)
    p0 = cfg.init_fn(init_key) if cfg.init_fn is not None else params
    s0 = tx.init(p0)
    value_and_grad = jax.value_and_grad(cfg.loss_fn)

    def batch_at(step: Any) -> Any:
        k = jax.random.fold_in(data_key, step)
        if cfg.data_fn is not None:
            return cfg.data_fn(step, k)
        if data is None or cfg.batch_size is None:
            return data
        n = jax.tree.leaves(data)[0].shape[0]
        idx = jax.random.randint(k, (cfg.batch_size,), 0, n)
        return jax.tree.map(lambda a: jnp.take(a, idx, axis=0), data)

    def body(carry, step):
        p, s, diverged, diverged_at = carry
        loss, g = value_and_grad(p, batch_at(step))
        u, s_new = tx.update(g, s, p, loss=loss)
        p_new = apply_updates(p, u)
        ok = jnp.isfinite(loss) & _tree.all_finite(g) & _tree.all_finite(p_new)
        if cfg.max_loss is not None:
            ok = ok & (loss <= cfg.max_loss)
        freeze = diverged | ~ok
        p = _where_tree(freeze, p, p_new)
        s = _where_tree(freeze, s, s_new)
        diverged_at = jnp.where(~diverged & ~ok, step, diverged_at)
        record = jnp.where(diverged, jnp.nan, loss.astype(jnp.float32))
        if cfg.report_every:
            jax.lax.cond(
                (step + 1) % cfg.report_every == 0,
                lambda: jax.debug.callback(_progress_callback, step),
                lambda: None,
            )
        return (p, s, freeze, diverged_at), record

    carry0 = (p0, s0, jnp.asarray(False), jnp.asarray(-1, jnp.int32))
    (p, _, diverged, diverged_at), losses = jax.lax.scan(
        body, carry0, jnp.arange(cfg.steps, dtype=jnp.int32)
    )
    if cfg.data_fn is not None:
        eval_batch = cfg.data_fn(cfg.steps, jax.random.fold_in(data_key, cfg.steps))
    else:
        eval_batch = data
    final = cfg.loss_fn(p, eval_batch).astype(jnp.float32)
    final = jnp.where(diverged, jnp.nan, final)
    return {
        "losses": losses,
        "final_loss": final,
        "diverged": diverged,
        "diverged_at": diverged_at,
        "params": p,
    }


def _top_k(cfg: _Config, score: jax.Array, index: jax.Array, params: Any):
    order = jnp.argsort(score, stable=True)[: cfg.keep_best]
    return score[order], index[order], jax.tree.map(lambda x: x[order], params)


def _pad(x: jax.Array, pad: int) -> jax.Array:
    """Repeats the last row ``pad`` times (padding settings whose results are dropped)."""
    return jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)]) if pad else x


def _program(cfg: _Config, batched: list[Any], shared: list[Any], keys, params, data):
    def one(xs):
        b, key = xs
        return _run_one(cfg, _join_leaves(cfg, b, shared), key, params, data)

    n = cfg.size
    chunk = cfg.chunk_size if cfg.chunk_size and cfg.chunk_size < n else None
    if chunk is None:
        out = jax.vmap(one)((batched, keys))
    elif cfg.keep_best is None:
        # Pad to whole chunks: lax.map would run a remainder unbatched, whose code (and last
        # bits) can differ from the vmapped chunks'.
        pad = -n % chunk
        xs = jax.tree.map(lambda x: _pad(x, pad), (batched, keys))
        out = jax.lax.map(one, xs, batch_size=chunk)
        out = jax.tree.map(lambda x: x[:n], out)
    else:
        return _chunked_keep_best(cfg, one, batched, keys, chunk)
    index = jnp.arange(n, dtype=jnp.int32)
    if cfg.keep_best is not None:
        score = _score(out["final_loss"], out["diverged"])
        _, index, out["params"] = _top_k(cfg, score, index, out["params"])
    out["params_index"] = index
    return out


def _chunked_keep_best(cfg: _Config, one, batched, keys, chunk: int):
    """Chunks of settings in a scan whose carry holds only the best ``keep_best`` params."""
    n = cfg.size
    n_chunks = -(-n // chunk)
    pad = n_chunks * chunk - n

    def padded(x):
        return _pad(x, pad).reshape(n_chunks, chunk, *x.shape[1:])

    xs = jax.tree.map(padded, (batched, keys))
    index = jnp.arange(n_chunks * chunk, dtype=jnp.int32).reshape(n_chunks, chunk)
    k = cfg.keep_best
    first = jax.eval_shape(lambda: jax.vmap(one)(jax.tree.map(lambda x: x[0], xs)))
    best_params = jax.tree.map(lambda s: jnp.zeros((k, *s.shape[1:]), s.dtype), first["params"])
    carry0 = (jnp.full((k,), jnp.inf, jnp.float32), jnp.full((k,), -1, jnp.int32), best_params)

    def body(carry, c):
        x, idx = c
        out = jax.vmap(one)(x)
        score = _score(out["final_loss"], out["diverged"])
        score = jnp.where(idx < n, score, jnp.inf)
        b_score, b_idx, b_params = carry
        all_score = jnp.concatenate([b_score, score])
        all_idx = jnp.concatenate([b_idx, idx])
        all_params = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), b_params, out["params"])
        carry = _top_k(cfg, all_score, all_idx, all_params)
        rest = {key: v for key, v in out.items() if key != "params"}
        return carry, rest

    (_, b_idx, b_params), rest = jax.lax.scan(body, carry0, (xs, index))
    out = jax.tree.map(lambda x: x.reshape(n_chunks * chunk, *x.shape[2:])[:n], rest)
    out["params"] = b_params
    out["params_index"] = b_idx
    return out


_jitted_program = jax.jit(_program, static_argnums=(0,))
_COMPILED: dict[Any, Any] = {}
_MAX_CACHE = 32


def _aval_key(tree: Any) -> Any:
    leaves, treedef = jax.tree.flatten(tree)
    return treedef, tuple(
        (jnp.shape(x), jnp.result_type(x), getattr(x, "weak_type", False)) for x in leaves
    )


def _compiled(cfg: _Config, args: tuple[Any, ...]) -> tuple[Any, float]:
    """The compiled program for ``cfg`` and these argument shapes (cached), and compile time."""
    cache_key = (cfg, _aval_key(args), jax.config.jax_enable_x64)
    hit = _COMPILED.get(cache_key)
    if hit is not None:
        return hit, 0.0
    t0 = time.perf_counter()
    compiled = _jitted_program.lower(cfg, *args).compile()
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
        (log-spaced) or ``"a,b,c"``). Names are the factory's keywords (``learning_rate``, ``b1``,
        ``weight_decay``) or dotted paths into a schedule given in ``hparams``
        (``"learning_rate.peak_value"``, ``"learning_rate.warmup_steps"``).
      steps: updates per setting.
      hparams: fixed keyword arguments of the factory.
      product: Cartesian product of the grid's values (default) or, if False, the values zipped.
      key: an int seed or a PRNG key, split into one key per setting; or an (N, 2) array of keys.
      batch_size: minibatch size when ``data`` is arrays (None: full batch).
      chunk_size: run at most this many settings at once (``lax.map`` with a batch size), for
        populations that do not fit in memory.
      keep_best: keep only the final params of the best ``keep_best`` settings (by final loss).
        With ``chunk_size`` only these are ever held, not the whole population's.
      max_loss: also treat a loss above this as divergence.
      progress: called on the host with the fraction done (0..1) as the program runs.

    A setting whose loss, gradients or params become NaN or Inf is marked diverged and frozen:
    its params and optimizer state stop updating. Settings never interact, so the others'
    results are those they would have without it.
    """
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
    chunks = -(-n // chunk_size) if chunk_size and chunk_size < n else 1
    report_every = max(1, steps // 50) if progress is not None else 0
    cfg = _Config(
        loss_fn=loss_fn,
        data_fn=data_fn,
        init_fn=init_fn,
        steps=int(steps),
        batch_size=batch_size,
        chunk_size=chunk_size,
        keep_best=min(keep_best, n) if keep_best is not None else None,
        max_loss=max_loss,
        report_every=report_every,
        treedef=treedef,
        batched=flags,
        size=n,
    )
    args = (batched, shared, keys, None if init_fn else params, None if data_fn else data)
    compiled, compile_s = _compiled(cfg, args)
    total_reports = chunks * (steps // report_every) if report_every else 0
    done = [0]

    def on_report(_step: int) -> None:
        done[0] += 1
        if progress is not None and total_reports:
            progress(min(1.0, done[0] / total_reports))

    _PROGRESS[0] = on_report
    try:
        t0 = time.perf_counter()
        out = compiled(*args)
        out = jax.block_until_ready(out)
        jax.effects_barrier()
        run_s = time.perf_counter() - t0
    finally:
        _PROGRESS[0] = None
    if progress is not None:
        progress(1.0)
    return SweepResult(
        settings=pop.settings,
        losses=np.asarray(out["losses"]),
        final_loss=np.asarray(out["final_loss"]),
        diverged=np.asarray(out["diverged"]),
        diverged_at=np.asarray(out["diverged_at"]),
        params=out["params"],
        params_index=np.asarray(out["params_index"]),
        keys=np.asarray(keys),
        compile_seconds=compile_s,
        run_seconds=run_s,
        label=pop.label,
        names=pop.names,
    )
