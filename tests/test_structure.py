"""The package's structure: no import cycles between its modules, no private JAX imports."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "gradtx"


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _graph() -> dict[str, set[str]]:
    """Module -> the gradtx modules it imports, at module level or inside functions."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        package = m if path.name == "__init__.py" else m.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in mods:
                    graph[m].add(f"{target}.{alias.name}")
                elif target in mods:
                    graph[m].add(target)
    return graph


def test_no_import_cycle_between_modules():
    graph = _graph()
    # Package __init__ files only re-export; a module importing its package is not a cycle.
    packages = {m for m, p in _modules().items() if p.name == "__init__.py"}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(u: str) -> None:
        state[u] = 1
        stack.append(u)
        for v in sorted(graph[u] - packages):
            if state.get(v) == 1:
                cycles.append([*stack[stack.index(v) :], v])
            elif v not in state:
                visit(v)
        stack.pop()
        state[u] = 2

    for m in sorted(set(graph) - packages):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_reads_real_imports():
    """The graph is built from real imports: the layout imports masks, not the reverse."""
    graph = _graph()
    assert "gradtx._mask" in graph["gradtx._layout"]
    for masks in ("gradtx._mask", "gradtx.transforms._masking", "gradtx.transforms._partition"):
        assert "gradtx._layout" not in graph[masks]


def test_no_private_jax_imports():
    bad = [
        str(p.relative_to(ROOT.parent))
        for p in ROOT.rglob("*.py")
        if "jax._src" in p.read_text() or "from jax import _src" in p.read_text()
    ]
    assert not bad, f"private JAX imports in {bad}"


def test_import_does_not_start_jax():
    """``import gradtx`` builds no arrays, so JAX can still be configured after it (here: the
    CPU fusion flag, which only takes effect before the backend starts)."""
    import os
    import subprocess
    import sys

    code = "import gradtx, gradtx.registry; gradtx.enable_cpu_multi_output_fusion(); print('ok')"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
