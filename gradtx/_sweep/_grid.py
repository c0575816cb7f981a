"""Grids of hyperparameters and the batched transform that holds a whole population.

A grid maps hyperparameter names to values. A plain name (``learning_rate``, ``b1``,
``weight_decay``) is a keyword of the optimizer factory; a dotted name
(``learning_rate.peak_value``, ``learning_rate.warmup_steps``) replaces a field of a schedule (or
any pytree dataclass) passed as that keyword. Every gridded value becomes an array leaf with a
leading population axis, so the factory builds one *batched* transform for ``jax.vmap`` with
``gradtx.batch_axes``.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _tree
from .._transform import Transform


@dataclasses.dataclass(frozen=True)
class Population:
    """A batched transform and the settings it holds (one dict per member)."""

    tx: Any
    settings: list[dict[str, Any]]
    names: tuple[str, ...]
    label: str

    @property
    def size(self) -> int:
        return len(self.settings)


GRID_SPEC_FORMS = "lo:hi:n (n log-spaced values), lo:hi:n:lin, lo:hi:n:int or a,b,c"
"""The forms of a grid spec, as error messages name them."""


def parse_values(spec: str) -> list[float | int]:
    """Parses a grid spec: ``lo:hi:n`` (n log-spaced values), ``lo:hi:n:lin`` or ``a,b,c``.

    Integers stay integers in lists (``100,200``); ``lo:hi:n`` always gives floats, unless
    ``:int`` is appended (rounded, deduplicated, e.g. warmup steps ``10:1000:5:int``).

    Raises:
      ValueError: the spec is not one of these forms, a value is not a number or is NaN, ``n``
        is not an integer >= 1, or a log-spaced range does not have 0 < lo and 0 < hi. The
        message quotes the spec and the part at fault.
    """
    text = str(spec).strip()
    if not text:
        raise ValueError(f"gradtx.sweep: empty grid spec; a grid spec is {GRID_SPEC_FORMS}")
    if ":" in text:
        parts = [x.strip() for x in text.split(":")]
        if len(parts) not in (3, 4):
            raise ValueError(
                f"gradtx.sweep: grid spec {text!r} has {len(parts)} ':'-separated parts; a grid "
                f"spec is {GRID_SPEC_FORMS}"
            )
        lo, hi = (_spec_number(text, x) for x in parts[:2])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"gradtx.sweep: grid spec {text!r}: lo and hi must be finite")
        if not re.fullmatch(r"\+?\d+", parts[2]) or int(parts[2]) < 1:
            raise ValueError(
                f"gradtx.sweep: grid spec {text!r}: n must be an integer in [1, inf), "
                f"got {parts[2]!r}"
            )
        n = int(parts[2])
        kind = parts[3] if len(parts) == 4 else "log"
        if kind not in ("lin", "log", "int"):
            raise ValueError(
                f"gradtx.sweep: grid spec {text!r}: the kind must be lin, log or int, got {kind!r}"
            )
        if kind == "lin":
            return [float(v) for v in np.linspace(lo, hi, n)]
        if lo <= 0 or hi <= 0:
            raise ValueError(
                f"gradtx.sweep: log-spaced grid {text!r} needs lo, hi > 0 (both in (0, inf)); "
                f"use {':'.join(parts[:3])}:lin for a linear range"
            )
        vals = np.geomspace(lo, hi, n)
        if kind == "int":
            return sorted({round(v) for v in vals})
        return [float(v) for v in vals]
    items = [x.strip() for x in text.split(",")]
    if any(not x for x in items):
        raise ValueError(
            f"gradtx.sweep: grid spec {text!r} has an empty item; a grid spec is {GRID_SPEC_FORMS}"
        )
    return [_spec_number(text, x) for x in items]


def _spec_number(spec: str, text: str) -> float | int:
    try:
        value = _number(text)
    except ValueError:
        raise ValueError(
            f"gradtx.sweep: grid spec {spec!r}: {text!r} is not a number; a grid spec is "
            f"{GRID_SPEC_FORMS}"
        ) from None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"gradtx.sweep: grid spec {spec!r}: NaN is not a grid value")
    return value


def _number(text: str) -> float | int:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return float(text)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'momentum'?"`` for the closest candidates to a misspelt name, or ``""``."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


def keywords(factory: Callable[..., Any]) -> list[str]:
    """The keyword arguments of an optimizer factory, in signature order."""
    defaults, _ = _signature_defaults(factory)
    return [n for n in defaults if n != "self"]


def expand_grid(grid: Mapping[str, Any], product: bool = True) -> list[dict[str, Any]]:
    """The settings of a grid: the Cartesian product of its values (or, with ``product=False``,
    the values zipped, which must then all have the same length)."""
    names = list(grid)
    values = []
    for n in names:
        v = grid[n]
        if isinstance(v, str):
            v = parse_values(v)
        v = np.asarray(v).reshape(-1).tolist()
        if not v:
            raise ValueError(f"gradtx.sweep: grid[{n!r}] is empty")
        values.append(v)
    if not names:
        return [{}]
    if product:
        return [dict(zip(names, combo)) for combo in itertools.product(*values)]
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise ValueError(
            "gradtx.sweep: with product=False every grid entry needs the same number of values, "
            f"got {dict(zip(names, (len(v) for v in values)))}"
        )
    return [dict(zip(names, combo)) for combo in zip(*values)]


def _leaf(values: Sequence[Any], like: Any) -> jax.Array:
    """Values as one array leaf: int32 when they are ints replacing an int (or unknown) value,
    else the default float dtype."""
    ints = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values)
    if like is None or like is inspect.Parameter.empty:
        like_int = True
    else:
        like_int = isinstance(like, (int, np.integer)) and not isinstance(like, bool)
    if ints and like_int:
        return jnp.asarray(np.asarray(values, np.int32))
    return jnp.asarray(np.asarray(values, np.float64), _tree.float_dtype())


def _replace_path(obj: Any, parts: Sequence[str], values: Sequence[Any], full: str) -> Any:
    head, rest = parts[0], parts[1:]
    if isinstance(obj, Mapping):
        if head not in obj:
            raise KeyError(head)
        new = dict(obj)
        new[head] = (
            _replace_path(obj[head], rest, values, full) if rest else _leaf(values, obj[head])
        )
        return type(obj)(new) if not isinstance(obj, dict) else new
    if not dataclasses.is_dataclass(obj) or not hasattr(obj, head):
        raise ValueError(
            f"gradtx.sweep: grid name {full!r}: {type(obj).__name__} has no field {head!r}; a "
            f"dotted name replaces a field of a schedule passed in hparams (for example "
            f"hparams={{'learning_rate': gradtx.cosine_decay_schedule(0.1, 1000)}} with grid "
            f"{{'learning_rate.init_value': [...]}})"
        )
    cur = getattr(obj, head)
    new = _replace_path(cur, rest, values, full) if rest else _leaf(values, cur)
    return dataclasses.replace(obj, **{head: new})


def _signature_defaults(factory: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return {}, True
    varkw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    return {n: p.default for n, p in sig.parameters.items()}, varkw


def required_arguments(factory: Callable[..., Any], given: Mapping[str, Any]) -> list[str]:
    """The arguments of ``factory`` without a default that ``given`` does not supply."""
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):  # pragma: no cover - builtins
        return []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [
        p.name
        for p in params
        if p.kind in kinds and p.default is inspect.Parameter.empty and p.name not in given
    ]


def accepts(factory: Callable[..., Any], name: str) -> bool:
    """Whether ``factory`` takes the (root of the) hyperparameter ``name``."""
    defaults, varkw = _signature_defaults(factory)
    return varkw or name.split(".")[0] in defaults


def resolve_optimizer(optimizer: Any) -> tuple[str, Callable[..., Any] | None, dict[str, Any]]:
    """``(label, factory, fixed hparams)`` for a factory, a registry name or key, or
    ``name(k=v, ...)``; a transform gives ``(label, None, {})``."""
    from .. import registry

    if isinstance(optimizer, Transform):
        return type(optimizer).__name__, None, {}
    if callable(optimizer):
        return getattr(optimizer, "__name__", repr(optimizer)), optimizer, {}
    if not isinstance(optimizer, str):
        raise TypeError(
            "gradtx.sweep: optimizer must be a factory (gradtx.adam), a registry name ('adam') or "
            f"a batched transform, got {type(optimizer).__name__}"
        )
    text = optimizer.strip()
    if text in registry.OPTIMIZERS:
        spec = registry.OPTIMIZERS[text]
        return text, spec.factory, dict(spec.hparams)
    m = re.fullmatch(r"([A-Za-z_][\w]*)\s*(?:[\(\[](.*)[\)\]])?", text)
    if not m:
        raise ValueError(
            f"gradtx.sweep: cannot parse optimizer {optimizer!r}; expected a name or "
            "name(keyword=value, ...)"
        )
    name, args = m.group(1), m.group(2)
    factory = registry.FACTORIES.get(name)
    if factory is None:
        import gradtx

        candidate = getattr(gradtx, name, None)
        if callable(candidate) and not isinstance(candidate, type):
            factory = candidate
    if factory is None:
        hint = did_you_mean(name, registry.FACTORIES)
        known = "" if hint else "; known: " + ", ".join(sorted(registry.FACTORIES))
        raise ValueError(f"gradtx.sweep: unknown optimizer {name!r}{hint}{known}")
    fixed: dict[str, Any] = {}
    if args:
        defaults, varkw = _signature_defaults(factory)
        names = keywords(factory)
        for item in args.split(","):
            if not item.strip():
                continue
            k, sep, v = item.partition("=")
            k = k.strip()
            if not sep or not k.isidentifier():
                raise ValueError(
                    f"gradtx.sweep: optimizer {text!r}: arguments are keyword=value, got "
                    f"{item.strip()!r}; {name}'s keywords: {', '.join(names)}"
                )
            if not varkw and k not in defaults:
                hint = did_you_mean(k, names)
                raise ValueError(
                    f"gradtx.sweep: optimizer {text!r}: {name} has no keyword {k!r}{hint} "
                    f"({name}'s keywords: {', '.join(names)})"
                )
            fixed[k] = _literal(v.strip())
    return text, factory, fixed


def _literal(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return _number(text)
    except ValueError:
        return text.strip("'\"")


def _batched_settings(tx: Any) -> tuple[int, list[dict[str, Any]], tuple[str, ...]]:
    flat, _ = jax.tree_util.tree_flatten_with_path(tx)
    batched = [(jax.tree_util.keystr(p), np.asarray(x)) for p, x in flat if jnp.ndim(x) >= 1]
    if not batched:
        return 1, [{}], ()
    sizes = {x.shape[0] for _, x in batched}
    if len(sizes) != 1:
        raise ValueError(
            "gradtx.sweep: the batched transform's array leaves have different leading sizes "
            f"{ {n: x.shape[0] for n, x in batched} }"
        )
    (n,) = sizes
    names = tuple(name.lstrip(".") for name, _ in batched)
    settings = [
        {nm: x[i].item() for nm, (_, x) in zip(names, batched) if x.ndim == 1} for i in range(n)
    ]
    return n, settings, names


def population(
    optimizer: Any,
    grid: Mapping[str, Any] | None = None,
    hparams: Mapping[str, Any] | None = None,
    product: bool = True,
) -> Population:
    """Builds the batched transform for ``optimizer`` over ``grid`` (see ``gradtx.sweep``)."""
    label, factory, fixed = resolve_optimizer(optimizer)
    if factory is None:
        if grid:
            raise ValueError(
                "gradtx.sweep: a batched transform already holds its population; pass grid=None "
                "(or pass a factory such as gradtx.adam with a grid)"
            )
        _, settings, names = _batched_settings(optimizer)
        return Population(optimizer, settings, names, label)
    kwargs = {**fixed, **dict(hparams or {})}
    grid = dict(grid or {})
    settings = expand_grid(grid, product)
    defaults, varkw = _signature_defaults(factory)
    for name in grid:
        root = name.split(".")[0]
        if not varkw and root not in defaults:
            hp = ", ".join(n for n in defaults if n not in ("self",))
            raise ValueError(
                f"gradtx.sweep: {label} has no hyperparameter {root!r} (grid name {name!r})"
                f"{did_you_mean(root, keywords(factory))} (its arguments are: {hp})"
            )
    for name in grid:
        values = [s[name] for s in settings]
        parts = name.split(".")
        if len(parts) == 1:
            kwargs[name] = _leaf(values, kwargs.get(name, defaults.get(name)))
            continue
        root = parts[0]
        if root not in kwargs:
            raise ValueError(
                f"gradtx.sweep: grid name {name!r} replaces a field of {root!r}, so pass "
                f"{root!r} in hparams (a schedule such as gradtx.cosine_decay_schedule(...))"
            )
        try:
            kwargs[root] = _replace_path(kwargs[root], parts[1:], values, name)
        except KeyError as e:
            raise ValueError(f"gradtx.sweep: grid name {name!r}: no key {e.args[0]!r}") from None
    missing = required_arguments(factory, kwargs)
    if missing:
        raise ValueError(
            f"gradtx.sweep: {label} needs {', '.join(missing)}; sweep it in grid (grid="
            f"{{{missing[0]!r}: [...]}}) or fix it in hparams (hparams={{{missing[0]!r}: ...}})"
        )
    tx = factory(**kwargs)
    return Population(tx, settings, tuple(grid), label)


def format_setting(setting: Mapping[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if (v == 0 or 1e-3 <= abs(v) < 1e4) else f"{v:.2e}"
        return str(v)

    return ", ".join(f"{k}={fmt(v)}" for k, v in setting.items()) or "-"


def is_finite_number(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------
# Ranges, sampled at random or by a scrambled Sobol sequence.


@dataclasses.dataclass(frozen=True)
class Range:
    """A hyperparameter range to sample: ``log_uniform``, ``uniform``, ``int_uniform`` or
    ``choice``. ``from_unit`` maps a number in [0, 1) to a value of the range."""

    kind: str
    low: float = 0.0
    high: float = 1.0
    values: tuple[Any, ...] = ()

    def from_unit(self, u: np.ndarray) -> list[Any]:
        u = np.clip(np.asarray(u, np.float64), 0.0, np.nextafter(1.0, 0.0))
        if self.kind == "log_uniform":
            lo, hi = math.log(self.low), math.log(self.high)
            return [float(v) for v in np.exp(lo + u * (hi - lo))]
        if self.kind == "uniform":
            return [float(v) for v in self.low + u * (self.high - self.low)]
        if self.kind == "int_uniform":
            lo, hi = int(self.low), int(self.high)
            return [int(v) for v in lo + np.floor(u * (hi - lo + 1)).astype(np.int64)]
        idx = np.floor(u * len(self.values)).astype(np.int64)
        return [self.values[i] for i in idx]

    @property
    def bounds(self) -> tuple[float, float]:
        """The smallest and largest value of the range."""
        if self.kind == "choice":
            nums = [float(v) for v in self.values]
            return min(nums), max(nums)
        return float(self.low), float(self.high)

    def __repr__(self) -> str:
        if self.kind == "choice":
            return f"choice({list(self.values)!r})"
        return f"{self.kind}({self.low!r}, {self.high!r})"


def _check_bounds(fn: str, low: Any, high: Any, positive: bool) -> None:
    for name, v in (("low", low), ("high", high)):
        if not is_finite_number(v):
            raise ValueError(f"gradtx.{fn}: {name} must be a finite number, got {v!r}")
        if positive and float(v) <= 0:
            raise ValueError(f"gradtx.{fn}: {name} must be in (0, inf), got {v!r}")
    if not float(low) < float(high):
        raise ValueError(f"gradtx.{fn}: low must be < high, got low={low!r}, high={high!r}")


def log_uniform(low: float, high: float) -> Range:
    """Values whose logarithm is uniform on [log(low), log(high)); 0 < low < high.

    Example: ``gradtx.sweep(..., grid={"learning_rate": gradtx.log_uniform(1e-4, 1e-1)},
    samples=32)``.
    """
    _check_bounds("log_uniform", low, high, positive=True)
    return Range("log_uniform", float(low), float(high))


def uniform(low: float, high: float) -> Range:
    """Values uniform on [low, high); low < high, both finite."""
    _check_bounds("uniform", low, high, positive=False)
    return Range("uniform", float(low), float(high))


def int_uniform(low: int, high: int) -> Range:
    """Integers uniform on {low, ..., high} (both included); low < high."""
    for name, v in (("low", low), ("high", high)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise ValueError(f"gradtx.int_uniform: {name} must be an int, got {v!r}")
    _check_bounds("int_uniform", low, high, positive=False)
    return Range("int_uniform", int(low), int(high))


def choice(values: Sequence[Any]) -> Range:
    """One of ``values`` (a non-empty sequence of numbers), each equally likely."""
    vals = tuple(np.asarray(values).reshape(-1).tolist())
    if not vals:
        raise ValueError("gradtx.choice: values must be a non-empty sequence, got []")
    for v in vals:
        if not is_finite_number(v) or isinstance(v, bool):
            raise ValueError(f"gradtx.choice: values must be finite numbers, got {v!r}")
    return Range("choice", values=vals)


SAMPLERS = ("random", "sobol")


def as_range(name: str, spec: Any) -> Range:
    """A grid entry as a range: a ``Range`` as is, a list of values as ``choice``."""
    if isinstance(spec, Range):
        return spec
    if isinstance(spec, str):
        spec = parse_values(spec)
    return choice(spec)


def has_ranges(grid: Mapping[str, Any] | None) -> bool:
    return any(isinstance(v, Range) for v in (grid or {}).values())


def sample_grid(
    grid: Mapping[str, Any], samples: int, sampler: str = "random", seed: int = 0
) -> dict[str, list[Any]]:
    """``samples`` settings drawn from ``grid`` (name -> ``Range`` or list of values), as a grid
    of equal-length lists (to use with ``product=False``).

    ``sampler="random"`` draws independent uniforms from ``numpy.random.default_rng(seed)``;
    ``"sobol"`` takes the first ``samples`` points of a Sobol sequence (Owen-scrambled with
    ``seed``, through ``scipy.stats.qmc``), which covers the box more evenly than random points:
    with ``samples = 2**m`` each of the ``2**m`` equal slices of any one axis holds one point.
    A point ``u`` in [0, 1) maps to ``exp(log lo + u * (log hi - log lo))`` (``log_uniform``),
    ``lo + u * (hi - lo)`` (``uniform``), ``lo + floor(u * (hi - lo + 1))`` (``int_uniform``)
    or ``values[floor(u * len(values))]`` (``choice``).

    References:
      Sobol, I. M. "On the distribution of points in a cube and the approximate evaluation of
      integrals". USSR Computational Mathematics and Mathematical Physics, 1967.
      https://doi.org/10.1016/0041-5553(67)90144-9

      Owen, A. B. "Scrambling Sobol' and Niederreiter-Xing points". Journal of Complexity, 1998.
      https://doi.org/10.1006/jcom.1998.0487

      Bergstra, J. and Bengio, Y. "Random Search for Hyper-Parameter Optimization". JMLR 2012.
      https://jmlr.org/papers/v13/bergstra12a.html
    """
    if not isinstance(samples, (int, np.integer)) or isinstance(samples, bool) or samples < 1:
        raise ValueError(f"gradtx.sweep: samples must be an int >= 1, got {samples!r}")
    if sampler not in SAMPLERS:
        raise ValueError(f"gradtx.sweep: sampler must be one of {SAMPLERS}, got {sampler!r}")
    names = list(grid)
    ranges = [as_range(n, grid[n]) for n in names]
    d = len(names)
    if d == 0:
        return {}
    if sampler == "random":
        u = np.random.default_rng(seed).random((samples, d))
    else:
        from scipy.stats import qmc

        engine = qmc.Sobol(d, scramble=True, seed=np.random.default_rng(seed))
        m = max(0, math.ceil(math.log2(samples)))
        u = engine.random_base2(m)[:samples]
    return {n: r.from_unit(u[:, j]) for j, (n, r) in enumerate(zip(names, ranges))}
