"""Checkpoints: save and restore any pytree (params, optimizer state, the transform itself) as
a NumPy ``.npz`` file, and check that a state belongs to an optimizer.

A transform is a pytree whose leaves are its hyperparameters, so it saves like any state. Its
static options (``amsgrad``, ``nesterov``, dtypes, the chain's layout) live in the treedef: the
file records the treedef's text, and loading into a differently configured ``like`` fails.

Paths: ``save_npz`` and ``load_npz`` both use the path as given when it ends in ``.npz`` and
append ``.npz`` otherwise (NumPy's ``savez`` rule), so ``save_npz("ckpt", t)`` and
``load_npz("ckpt", like)`` name the same file, ``ckpt.npz``. A save writes a temporary file in
the same directory, flushes it to disk and renames it over the target, so a save that is killed
partway leaves the previous checkpoint intact (and possibly a stray ``.<name>.*.tmp`` file).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import TreeMismatchError, first_difference, path_str

_META = "__gradtx__"
_SCALARS = (bool, int, float, complex)


def _is_key(leaf: Any) -> bool:
    dtype = getattr(leaf, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _describe(leaf: Any) -> str:
    if isinstance(leaf, _SCALARS):
        return f"Python {type(leaf).__name__}"
    if _is_key(leaf):
        return f"{leaf.dtype}{list(np.shape(leaf))}"
    return f"{np.dtype(leaf.dtype).name}{list(np.shape(leaf))}"


def npz_path(path: str | os.PathLike[str]) -> str:
    """The file ``save_npz`` and ``load_npz`` use for ``path``: ``.npz`` appended if missing."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else path + ".npz"


def _write_atomically(target: str, arrays: dict[str, np.ndarray]) -> None:
    """Writes ``arrays`` as an ``.npz`` to a temporary file beside ``target``, flushes it to disk
    and renames it over ``target`` (one atomic step on POSIX and Windows)."""
    directory = os.path.dirname(os.path.abspath(target))
    # os.open with mode 0o666 (not mkstemp's 0o600): the file gets the permissions np.savez
    # would give it, under the process's umask.
    tmp = os.path.join(
        directory, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; directories cannot be opened on Windows)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def save_npz(path: str | os.PathLike[str], tree: Any) -> None:
    """Saves ``tree``'s leaves to the ``.npz`` file ``path``, keyed by their paths.

    ``.npz`` is appended to ``path`` when it lacks it (``load_npz`` applies the same rule). The
    file is replaced atomically: the data goes to a temporary file in the same directory, is
    flushed to disk, then renamed over ``path``, so a crash or kill mid-save leaves the previous
    checkpoint at ``path`` loadable.

    Works for params, optimizer states and transforms (their hyperparameters are leaves).
    ``None`` leaves are part of the structure and store nothing. Sharded arrays are gathered to
    the host (on several hosts, use orbax-checkpoint instead). bfloat16 and other ml_dtypes are
    stored bit-exactly. The treedef's text is stored too, so ``load_npz`` can refuse a ``like``
    of another structure (for a transform: other static options).
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"treedef": _treedef_text(treedef), "leaves": []}
    for p, leaf in leaves:
        key = path_str(p)
        impl = None
        if _is_key(leaf):  # typed PRNG keys (noise transforms): their raw data and impl
            impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(leaf)
        dtype = arr.dtype
        if dtype.kind == "V" or dtype.type.__module__.startswith("ml_dtypes"):
            arr = arr.view(np.dtype(f"u{dtype.itemsize}"))  # bf16 & co as raw bits
        arrays[f"{len(arrays)}"] = arr
        kind = type(leaf).__name__ if isinstance(leaf, _SCALARS) else "array"
        meta["leaves"].append(
            {"path": key, "dtype": np.dtype(dtype).name, "kind": kind, "key_impl": impl}
        )
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    _write_atomically(npz_path(path), arrays)


def _treedef_text(treedef: Any) -> str:
    """The treedef's text without memory addresses (static callables print them)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(treedef))


def _first_text_difference(a: str, b: str, width: int = 70) -> tuple[str, str]:
    i = next((k for k, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    lo = max(0, i - width // 2)
    return a[lo : i + width // 2], b[lo : i + width // 2]


def load_npz(path: str | os.PathLike[str], like: Any) -> Any:
    """Loads a tree saved by ``save_npz`` into the structure of ``like``.

    ``path`` follows ``save_npz``'s rule (``.npz`` appended when missing). A file that is not a
    complete ``save_npz`` checkpoint (truncated, corrupt, or another kind of file) raises
    ``ValueError`` naming it.

    ``like`` is a tree of the same structure (a fresh ``tx.init(params)``, the params, or the
    transform itself; arrays or ``jax.ShapeDtypeStruct``). Every leaf must match by path, shape
    and dtype, else ``TreeMismatchError`` names the first difference. Arrays are placed with the
    sharding of ``like``'s leaf when it is committed to one (``jax.device_put``, a sharded
    ``init``); an uncommitted leaf (a fresh ``jnp`` array) comes back uncommitted on the default
    device, so a jitted step resumed from the checkpoint reuses its compiled program.
    Python-number leaves (a transform's hyperparameters) come back as Python numbers.
    """
    where = "gradtx.load_npz"
    path = npz_path(path)
    meta, stored = _read(where, path)
    like_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    saved_paths = [m["path"] for m in meta["leaves"]]
    like_paths = [path_str(p) for p, _ in like_leaves]
    for p, leaf in like_leaves:
        key = path_str(p)
        if key not in saved_paths:
            raise TreeMismatchError(
                f"{where}: {os.fspath(path)} has no entry for {key} (expected "
                f"{_describe(leaf)}); it was saved from a different tree. Load it into the "
                f"tree it was saved from (the same optimizer configuration and params)."
            )
    extra = [k for k in saved_paths if k not in like_paths]
    if extra:
        raise TreeMismatchError(
            f"{where}: {os.fspath(path)} has entries that `like` lacks: {', '.join(extra[:5])}; "
            f"it was saved from a different tree (for a state: a differently configured "
            f"optimizer)."
        )
    if meta["treedef"] != _treedef_text(treedef):
        saved, here = _first_text_difference(meta["treedef"], _treedef_text(treedef))
        raise TreeMismatchError(
            f"{where}: {os.fspath(path)} was saved from a tree with another structure: "
            f"saved ...{saved}... but `like` has ...{here}... (for a transform: its static "
            f"options differ)."
        )
    by_path = dict(zip(saved_paths, zip(stored, meta["leaves"])))
    out = []
    for p, leaf in like_leaves:
        key = path_str(p)
        arr, m = by_path[key]
        dtype = jnp.dtype(m["dtype"])
        if arr.dtype != dtype:
            arr = arr.view(dtype)
        if isinstance(leaf, _SCALARS):
            out.append(type(leaf)(arr.item()))
            continue
        if m.get("key_impl") is not None or _is_key(leaf):
            if m.get("key_impl") is None or not _is_key(leaf):
                raise TreeMismatchError(
                    f"{where}: {os.fspath(path)} and `like` disagree at {key}: one holds a "
                    f"PRNG key, the other {_describe(leaf)}."
                )
            out.append(jax.random.wrap_key_data(jnp.asarray(arr), impl=m["key_impl"]))
            continue
        want = jnp.dtype(leaf.dtype)
        if tuple(np.shape(leaf)) != arr.shape or want != dtype:
            raise TreeMismatchError(
                f"{where}: {os.fspath(path)} holds {dtype.name}{list(arr.shape)} at {key} but "
                f"`like` expects {_describe(leaf)}."
            )
        sharding = getattr(leaf, "sharding", None)
        if sharding is None or getattr(leaf, "committed", True) is False:
            # like a fresh jnp array: uncommitted, on the default device, so that a jitted step
            # fed the loaded tree reuses the program it compiled for the fresh one. A weakly
            # typed scalar (a hyperparameter made from a Python number) stays weakly typed:
            # the weak type is part of the abstract value a jitted step is compiled for.
            if getattr(leaf, "weak_type", False) and arr.ndim == 0:
                out.append(jnp.asarray(arr.item()))
            else:
                out.append(jnp.asarray(arr))
        else:
            out.append(jax.device_put(arr, sharding))
    return jax.tree_util.tree_unflatten(jax.tree.structure(like), out)


def _read(where: str, path: str) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The metadata and stored arrays of the checkpoint ``path``; a clear error if it is bad."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{where}: no checkpoint at {path}")
    try:
        # An open handle of our own: np.load leaks the one it opens when the zip is bad.
        with open(path, "rb") as fh:
            f = np.load(fh, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with f:
                if _META not in f.files:
                    raise ValueError(f"it has no {_META} entry; it was not written by save_npz")
                meta = json.loads(bytes(f[_META]).decode())
                stored = [f[str(i)] for i in range(len(meta["leaves"]))]
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, ValueError, TypeError) as err:
        raise ValueError(
            f"{where}: {path} is corrupt or truncated, or not a gradtx checkpoint ({err}). "
            f"Load another checkpoint (a save that was interrupted never replaces the previous "
            f"file), or save it again."
        ) from err
    return meta, stored


def check_state(tx: Any, state: Any, params: Any) -> None:
    """Raises ``TreeMismatchError`` unless ``state`` could come from ``tx.init(params)``.

    Compares structure, shapes and dtypes against ``tx.init`` traced abstractly (nothing is
    allocated). Use it after restoring a checkpoint (orbax or ``load_npz``) into a possibly
    reconfigured optimizer. Static options that do not change the state's layout (``nesterov``,
    ``eps_placement``) cannot be seen in a state: save the transform too (``save_npz(path,
    tx)``), whose file records them.
    """
    where = f"gradtx.check_state({type(tx).__name__})"
    expected = jax.eval_shape(tx.init, params)
    diff = first_difference(expected, state)
    hint = (
        "The state was made by a differently configured optimizer (another optimizer, "
        "amsgrad/momentum/centered on or off, weight decay on or off) or for other params; "
        "restore it into the optimizer and params it was saved from, or start from tx.init."
    )
    if diff is not None:
        path, exp, got = diff
        raise TreeMismatchError(
            f"{where}: the state does not match tx.init(params) at {path}: expected {exp}, "
            f"got {got}. {hint}"
        )
    exp_leaves = jax.tree_util.tree_flatten_with_path(expected)[0]
    for (p, e), g in zip(exp_leaves, jax.tree.leaves(state)):
        got_dtype = getattr(g, "dtype", None) or np.asarray(g).dtype
        if e.dtype != got_dtype:
            raise TreeMismatchError(
                f"{where}: the state does not match tx.init(params) at {path_str(p)}: expected "
                f"dtype {e.dtype}, got {got_dtype} (mu_dtype, nu_dtype or the params' dtype "
                f"changed). {hint}"
            )
